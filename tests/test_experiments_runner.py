"""The experiments' runner: every executor gives the serial numbers, a rerun resumes from the
per-trial result files (and refuses those of another configuration), a failed run
resumes, and the model registry takes a scikit-learn style estimator."""

import dataclasses
import json
import os

import numpy as np
import pytest
from sklearn.neighbors import KernelDensity

from refconf.classical import GaussianMixtureDensity, KernelDensityEstimate
from refconf.cli import main as cli_main
from refconf.data import sample_toy, toy_log_density
from refconf.experiments import (
    MODELS,
    RunnerOptions,
    estimator_model,
    format_markdown,
    reproduce_table1,
)

SIZES = {"n_train": 160, "n_val": 40, "n_test": 80}
CONFIG = {"datasets": {name: {"data": SIZES} for name in ("toy:two_moons", "toy:rings")}}
# 2 datasets x 3 models x 2 seeds = 12 trials, a CONF model among them (numba engine)
TINY = {"datasets": ["toy:two_moons", "toy:rings"], "models": ["conf", "maf", "gaussian"],
        "trials": 2, "epochs": 2, "steps": 1, "hidden": (4,), "m": 1, "batch_size": 32,
        "seed": 3, "config": CONFIG, "progress": False, "log": lambda line: None}
N_TRIALS = 12


def _numbers(report):
    return {(d, m): cell["test_nll"] for d, cells in report["results"].items()
            for m, cell in cells.items()}


@pytest.fixture(scope="module")
def serial():
    return reproduce_table1(**TINY)


def test_the_tiny_table_trained(serial):
    numbers = _numbers(serial)
    assert len(numbers) == 6 and all(len(v) == 2 and all(np.isfinite(v)) for v in numbers.values())
    assert numbers["toy:rings", "conf"][0] != numbers["toy:rings", "conf"][1]  # seeds differ
    assert [r["seed"] for r in serial["results"]["toy:rings"]["conf"]["trials"]] == [3, 4]


def test_joblib_with_two_processes_gives_the_serial_numbers(serial):
    report = reproduce_table1(**TINY, executor="joblib", jobs=2)
    assert _numbers(report) == _numbers(serial)  # bit for bit
    assert format_markdown(report) == format_markdown(serial)


def test_a_local_dask_cluster_of_two_processes_gives_the_serial_numbers(serial):
    pytest.importorskip("distributed")
    report = reproduce_table1(**TINY, executor="dask", jobs=2)
    assert _numbers(report) == _numbers(serial)  # bit for bit
    assert format_markdown(report) == format_markdown(serial)


def test_an_existing_dask_cluster_at_its_address_gives_the_serial_numbers(serial):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        report = reproduce_table1(**TINY, executor="dask", scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:  # the cluster outlives the run
            assert len(client.scheduler_info()["workers"]) == 2
    assert _numbers(report) == _numbers(serial)


def _counting(monkeypatch, fail_on=None):
    """Count the trials run in this process (serial executor); optionally fail one."""
    calls = []
    for name in TINY["models"]:
        entry = MODELS[name]

        def run(spec, dataset, progress=False, entry=entry):
            if fail_on is not None and fail_on(spec):
                raise RuntimeError(f"killed in {spec.dataset} {spec.model} seed {spec.seed}")
            calls.append((spec.dataset, spec.model, spec.seed))
            return entry.run(spec, dataset, progress)

        monkeypatch.setitem(MODELS, name, dataclasses.replace(entry, run=run))
    return calls


def _trial_files(out):
    folder = out / "trials"
    return {p.name: os.stat(p).st_mtime_ns for p in folder.iterdir()}


def test_a_rerun_runs_only_the_missing_trial(serial, tmp_path, monkeypatch):
    out = tmp_path / "run"
    calls = _counting(monkeypatch)
    first = reproduce_table1(**TINY, out=out)
    assert len(calls) == N_TRIALS and _numbers(first) == _numbers(serial)
    files = _trial_files(out)
    assert len(files) == N_TRIALS
    os.remove(out / "trials" / "toy-rings-maf-seed4.json")
    calls.clear()
    again = reproduce_table1(**TINY, out=out)
    assert calls == [("toy:rings", "maf", 4)]  # only the deleted trial ran
    after = _trial_files(out)
    assert sorted(after) == sorted(files)
    assert {k: v for k, v in after.items() if k != "toy-rings-maf-seed4.json"} == {
        k: v for k, v in files.items() if k != "toy-rings-maf-seed4.json"}  # untouched
    assert _numbers(again) == _numbers(first)
    assert (out / "table1.md").read_text() == format_markdown(first)
    calls.clear()
    reproduce_table1(**TINY, out=out)
    assert calls == []  # everything finished: nothing runs


def test_a_failed_run_resumes_where_it_stopped(serial, tmp_path, monkeypatch):
    out = tmp_path / "run"
    last = ("toy:rings", "gaussian", 4)  # the run's last trial, after every other finished
    calls = _counting(monkeypatch, fail_on=lambda s: (s.dataset, s.model, s.seed) == last)
    with pytest.raises(RuntimeError, match="killed"):
        reproduce_table1(**TINY, out=out)
    assert len(calls) == N_TRIALS - 1 and len(_trial_files(out)) == N_TRIALS - 1
    assert not (out / "results.json").exists()
    monkeypatch.undo()
    calls = _counting(monkeypatch)
    report = reproduce_table1(**TINY, out=out)
    assert calls == [last]
    assert _numbers(report) == _numbers(serial)
    assert format_markdown(report) == format_markdown(serial)
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_results_of_another_configuration_are_refused(tmp_path):
    out = tmp_path / "run"
    settings = {**TINY, "datasets": ["toy:rings"], "models": ["gaussian"], "trials": 1}
    reproduce_table1(**settings, out=out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"toy-rings-gaussian-seed3.json was recorded under "
                                         r"another configuration \(model_kwargs.ridge: 1e-09 "
                                         r"then, 0.001 now\)"):
        reproduce_table1(**settings, out=out, model_kwargs={"gaussian": {"ridge": 1e-3}})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched
    (out / "trials" / "toy-rings-gaussian-seed3.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match=r"seed3.json: not a trial result of refconf"):
        reproduce_table1(**settings, out=out)


def test_an_estimator_joins_the_registry_with_one_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(MODELS, "kde", estimator_model("KDE", KernelDensity, seeded=False))
    config = {"datasets": {"toy:rings": {"data": SIZES, "models": {"kde": {"bandwidth": 0.2}}}}}
    report = reproduce_table1(**{**TINY, "datasets": ["toy:rings"], "models": ["kde", "gaussian"],
                                 "trials": 1, "config": config}, out=tmp_path)
    cell = report["results"]["toy:rings"]["kde"]
    # the same KDE by hand, on the same samples (seeds [3, 0..2])
    train, _, test = (sample_toy("rings", n, random_state=np.random.default_rng([3, i]))
                      for i, n in enumerate(SIZES.values()))
    expected = -KernelDensity(bandwidth=0.2).fit(train).score_samples(test).mean()
    assert cell["test_nll"] == [pytest.approx(expected, rel=1e-12)]
    assert cell["trials"][0]["stopped_reason"] == "estimator"
    # a KDE of bandwidth 0.2 is closer to the rings than one Gaussian
    assert cell["mean"] < report["results"]["toy:rings"]["gaussian"]["mean"]
    assert cell["mean"] > -np.mean(toy_log_density("rings", test)) - 1.0
    assert "| KDE (this run) |" in format_markdown(report)
    assert "bandwidth = 0.2" in format_markdown(report)


def test_the_classical_baselines_are_table_models(tmp_path):
    """GMM (BIC) and KDE (CV) run in the harness as they do on their own, seeded alike."""
    report = reproduce_table1(**{**TINY, "datasets": ["toy:rings"], "models": ["gmm", "kde"],
                                 "trials": 1}, out=tmp_path)
    train, _, test = (sample_toy("rings", n, random_state=np.random.default_rng([3, i]))
                      for i, n in enumerate(SIZES.values()))
    seed = report["results"]["toy:rings"]["gmm"]["trials"][0]["seed"]
    for name, make in (("gmm", GaussianMixtureDensity), ("kde", KernelDensityEstimate)):
        expected = -make(random_state=seed).fit(train).score_samples(test).mean()
        assert report["results"]["toy:rings"][name]["test_nll"] == [
            pytest.approx(expected, rel=1e-12)]
    assert "| GMM (BIC) (this run) |" in format_markdown(report)


@pytest.mark.parametrize("kwargs, message", [
    ({"executor": "spark"}, "executor must be one of"),
    ({"executor": "joblib", "jobs": 0}, "jobs must be a positive integer"),
    ({"scheduler": "tcp://localhost:8786"}, "needs the dask executor"),
])
def test_bad_runner_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RunnerOptions(**kwargs)


def _run_cli(argv):
    return cli_main(argv)


def test_a_data_dir_without_any_maf_set_is_an_error(tmp_path, capsys):
    out = tmp_path / "report"
    code = _run_cli(["reproduce", "table1", "--data-dir", str(tmp_path / "TYPO"),
                     "--models", "gaussian", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert err[-1].startswith("refconf reproduce: error: no MAF dataset found under --data-dir")
    assert "TYPO (no such folder)" in err[-1]


def test_every_option_of_the_command_says_its_default(capsys):
    with pytest.raises(SystemExit):
        _run_cli(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    models = "(default: conf,realnvp,glow,maf)"
    for default in ("(default: serial)", "(default: 3)", "(default: reports/table1)",
                    "(default: none)", "(default: 0)", models):
        assert default in text
    assert "--scheduler ADDRESS" in text and "tcp://" in text
