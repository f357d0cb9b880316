"""The ``refconf`` command line: train, evaluate, sample, demo, and its error handling."""

import json

import numpy as np
import pytest

from refconf import ConfDensity
from refconf.cli import main

TRAIN_ARGS = ["--steps", "2", "--m", "1", "--hidden", "8", "--epochs", "2", "--quiet"]


@pytest.fixture
def data_files(tmp_path):
    X = np.random.default_rng(0).normal(size=(300, 3)) @ np.diag([1.0, 2.0, 0.5])
    npy, csv = tmp_path / "x.npy", tmp_path / "x.csv"
    np.save(npy, X)
    np.savetxt(csv, X, delimiter=",")
    return X, npy, csv


def test_train_evaluate_sample_round_trip(data_files, tmp_path, capsys):
    X, npy, csv = data_files
    model = tmp_path / "m.npz"
    assert main(["train", str(csv), "--out", str(model), "--seed", "1", *TRAIN_ARGS]) == 0
    assert main(["evaluate", str(model), str(npy), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = -ConfDensity.load(model).score_samples(X).mean()
    assert result["nll_mean"] == pytest.approx(expected, rel=1e-12)
    out = tmp_path / "s.npy"
    assert main(["sample", str(model), "-n", "11", "--out", str(out), "--seed", "3"]) == 0
    samples = np.load(out)
    assert samples.shape == (11, 3)
    np.testing.assert_array_equal(samples, ConfDensity.load(model).sample(11, random_state=3))


def test_train_is_reproducible_from_the_seed(data_files, tmp_path):
    _, npy, _ = data_files
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for path in (a, b):
        assert main(["train", str(npy), "--out", str(path), "--seed", "5", *TRAIN_ARGS]) == 0
    X = np.load(npy)
    np.testing.assert_array_equal(ConfDensity.load(a).score_samples(X),
                                  ConfDensity.load(b).score_samples(X))


def test_train_writes_metrics_and_checkpoint(data_files, tmp_path):
    _, npy, _ = data_files
    metrics, ckpt = tmp_path / "metrics.jsonl", tmp_path / "ckpt.npz"
    assert main(["train", str(npy), "--out", str(tmp_path / "m.npz"), "--metrics", str(metrics),
                 "--checkpoint", str(ckpt), *TRAIN_ARGS]) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records if "epoch" in r][:2] == [1, 2]
    assert ckpt.exists()


@pytest.mark.parametrize("make_input, message", [
    (lambda d: d / "missing.npy", "no such file"),
    (lambda d: _save(d / "flat.npy", np.arange(5.0)), "2-D"),
    (lambda d: _save(d / "nan.npy", np.array([[1.0, 2.0], [np.nan, 1.0], [0.0, 0.0]])), "NaN"),
    (lambda d: _write(d / "text.csv", "a,b\nc,d\n"), "cannot read"),
    (lambda d: _write(d / "data.txt", "1,2\n"), "unknown file type"),
])
def test_train_rejects_bad_input_with_one_line(tmp_path, capsys, make_input, message):
    path = make_input(tmp_path)
    code = main(["train", str(path), "--out", str(tmp_path / "m.npz"), *TRAIN_ARGS])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.npz").exists()


def test_evaluate_rejects_a_missing_model_and_wrong_width(data_files, tmp_path, capsys):
    X, npy, _ = data_files
    assert main(["evaluate", str(tmp_path / "none.npz"), str(npy)]) == 2
    model = tmp_path / "m.npz"
    assert main(["train", str(npy), "--out", str(model), *TRAIN_ARGS]) == 0
    np.save(tmp_path / "wide.npy", np.zeros((4, 5)))
    capsys.readouterr()
    assert main(["evaluate", str(model), str(tmp_path / "wide.npy")]) == 2
    assert "features" in capsys.readouterr().err


def test_unknown_option_exits_non_zero():
    with pytest.raises(SystemExit) as info:
        main(["train", "x.npy", "--out", "m.npz", "--no-such-option"])
    assert info.value.code != 0


def test_demo_quick_writes_the_report(tmp_path):
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["toy"]) == {"two_moons", "checkerboard", "rings"}
    assert np.isfinite(metrics["digits"]["conf"]["mean"])
    for name in ["learning_curves.png", "digits_samples.png", "density_two_moons.png"]:
        assert (out / name).stat().st_size > 1000


def _save(path, array):
    np.save(path, array)
    return path


def _write(path, text):
    path.write_text(text)
    return path
