"""The validation scripts run end to end (small sizes; no timing assertions)."""

import json
import subprocess
import sys
from pathlib import Path

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
