"""The validation scripts run end to end (small sizes; no timing assertions)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_logdet_scaling_runs_and_writes_its_plot_and_numbers(tmp_path):
    out = tmp_path / "scaling"
    result = subprocess.run(
        [sys.executable, str(ROOT / "validation" / "logdet_scaling.py"), "--max-k", "10",
         "--repeats", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    png, js = out / "logdet_scaling.png", out / "logdet_scaling.json"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads(js.read_text())
    assert numbers["passed"] and not numbers["failures"]
    assert [r["N"] for r in numbers["spectral"]["symmetric"]] == [257, 513, 1025]
    for kind in ("symmetric", "circular"):
        assert len(numbers["dense"][kind]) == 3
        assert all(r["rel_diff"] <= 1e-8 for r in numbers["dense"][kind])
    assert "fitted log-log exponents" in result.stdout
    assert "dense slogdet / spectral" in result.stdout
    # nothing half-written is left behind
    assert sorted(p.name for p in out.iterdir()) == ["logdet_scaling.json", "logdet_scaling.png"]


def test_gpu_check_dry_run_on_array_api_strict(tmp_path):
    """validation/gpu_check.py end to end without a GPU: the same code on array_api_strict."""
    out = tmp_path / "gpu_check.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "validation" / "gpu_check.py"), "--device", "strict",
         "--dims", "8,16", "--batches", "64,256", "--steps", "2", "--repeats", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    rows = report["correctness"]
    names = {r["name"] for r in rows}
    for bijector in ("symmetric_conv_channels_2d", "circular_conv_half_spectrum_channels_2d",
                     "slog_scalar", "logit", "1x1_image", "actnorm_image",
                     "conv_coupling_symmetric", "conv_coupling_circular", "affine_coupling",
                     "masked_autoregressive", "chain_image", "inverse_chain_vector"):
        assert bijector in names
    assert {r["dtype"] for r in rows} == {"float64", "float32"}
    assert sum(r["name"].startswith("CONF") for r in rows) == 16  # 4 models x 2 ops x 2 dtypes
    failed = [r for r in rows if not r["passed"] or r["max_rel_err"] > r["limit"]]
    assert report["passed"] and not failed, failed
    throughput = report["throughput"]
    assert [(r["dim"], r["op"], r["batch"]) for r in throughput] == [
        (d, op, n) for d in (8, 16) for op in ("log_prob", "sample") for n in (64, 256)]
    assert all(r["status"] == "ok" and r["device_s"] > 0 and r["cpu_s"] > 0
               and r["ratio"] > 0 for r in throughput)
    assert "timings measure nothing" in result.stdout
    assert "| CONF circular D=8 1x1 sample | float64 |" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.json"]


def test_gpu_check_skips_throughput_rows_past_its_budget(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "validation" / "gpu_check.py"), "--device", "strict",
         "--dims", "8", "--batches", "64", "--budget-s", "0", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())["throughput"]
    assert len(rows) == 2 and all(r["status"].startswith("skipped (budget") for r in rows)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_gpu_check_without_cupy_exits_2_naming_the_package(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "validation" / "gpu_check.py"),
         "--out", str(tmp_path / "gpu_check.json")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert result.returncode == 2
    assert "cupy" in result.stderr and "refconf[gpu]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_defaults_benchmark_prints_its_table_and_checks_its_claim(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "validation" / "defaults_benchmark.py"), "--tables",
         "diabetes", "--seeds", "2", "--methods", "Gaussian,CONF defaults", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's refconf
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| diabetes | 9 | 442 |" in result.stdout
    numbers = json.loads(out.read_text())
    row = numbers["rows"][0]
    assert len(row["nll"]["CONF defaults"]) == 2 and not numbers["failures"]
    assert max(row["nll"]["CONF defaults"]) < min(row["nll"]["Gaussian"])
