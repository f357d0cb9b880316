"""The ``refconf`` command line: train, evaluate, sample, demo, and its error handling."""

import json
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from refconf import ConfDensity
from refconf.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
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
    _, npy, _ = data_files
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
    bits = metrics["digits_bits_per_dim"]
    assert 0.5 < bits["conf_image"] < 8.0 and 0.5 < bits["gaussian"] < 8.0
    for name in ["learning_curves.png", "digits_samples.png", "density_two_moons.png",
                 "digits_image_samples.png"]:
        assert (out / name).stat().st_size > 1000


def _save(path, array):
    np.save(path, array)
    return path


def _write(path, text):
    path.write_text(text)
    return path


# --- chunks, JSON, resume, interruption, help ----------------------------------------------


@pytest.fixture
def model_file(data_files, tmp_path):
    _, npy, _ = data_files
    model = tmp_path / "m.npz"
    assert main(["train", str(npy), "--out", str(model), "--seed", "2", *TRAIN_ARGS]) == 0
    return model


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_sample_streams_chunks_equal_to_one_draw(model_file, tmp_path, monkeypatch, suffix):
    monkeypatch.setattr("refconf.cli_data.CHUNK_VALUES", 12)  # 4 rows of 3 features per chunk
    out = tmp_path / f"s{suffix}"
    assert main(["sample", str(model_file), "-n", "23", "--out", str(out), "--seed", "4",
                 "--quiet"]) == 0
    samples = np.load(out) if suffix == ".npy" else np.loadtxt(out, delimiter=",")
    expected = ConfDensity.load(model_file).sample(23, random_state=4)
    np.testing.assert_allclose(samples, expected, rtol=1e-12, atol=1e-12)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_evaluate_in_chunks_equals_one_pass(model_file, data_files, monkeypatch, capsys):
    X, npy, _ = data_files
    monkeypatch.setattr("refconf.cli_data.CHUNK_VALUES", 3 * 7)  # 43 chunks of 7 rows
    assert main(["evaluate", str(model_file), str(npy), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    nll = -ConfDensity.load(model_file).score_samples(X)
    assert result["n"] == len(X) and result["n_non_finite"] == 0
    assert result["nll_mean"] == pytest.approx(nll.mean(), rel=1e-12)
    assert result["nll_stderr"] == pytest.approx(nll.std(ddof=1) / np.sqrt(len(X)), rel=1e-9)


def test_evaluate_json_stays_valid_when_rows_overflow(model_file, data_files, tmp_path, capsys):
    X, _, _ = data_files
    bad = X[:6].copy()
    bad[1], bad[4] = 1e300, -1e250
    np.save(tmp_path / "over.npy", bad)
    assert main(["evaluate", str(model_file), str(tmp_path / "over.npy"), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert result["nll_mean"] is None and result["non_finite"]["nll_mean"] == "inf"
    assert result["n_non_finite"] == 2
    finite = -ConfDensity.load(model_file).score_samples(bad[[0, 2, 3, 5]])
    assert result["nll_mean_finite"] == pytest.approx(finite.mean(), rel=1e-12)
    assert all(line.startswith("refconf evaluate: warning:")
               for line in captured.err.strip().splitlines())


def test_metrics_record_the_engine(data_files, tmp_path):
    _, npy, _ = data_files
    metrics = tmp_path / "metrics.jsonl"
    assert main(["train", str(npy), "--out", str(tmp_path / "m.npz"), "--metrics", str(metrics),
                 "--engine", "numpy", *TRAIN_ARGS]) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert {r["engine"] for r in records if "epoch" in r and "event" not in r} == {"numpy"}


def _interrupt_at(monkeypatch, epoch):
    """Make the next fit raise KeyboardInterrupt after ``epoch`` (its checkpoint written)."""
    import refconf.estimator

    real = refconf.estimator.train_fit

    def stop(params, record):
        if record["epoch"] == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(refconf.estimator, "train_fit",
                        lambda *a, **k: real(*a, callback=stop, **k))
    return real


def test_ctrl_c_names_the_checkpoint_and_the_resume_command_which_is_bit_exact(
        data_files, tmp_path, monkeypatch, capsys):
    _, npy, _ = data_files
    settings = ["--steps", "2", "--m", "1", "--hidden", "8", "--epochs", "5", "--batch-size",
                "32", "--lr", "0.003", "--patience", "100", "--seed", "3", "--quiet"]
    full = tmp_path / "full.npz"
    assert main(["train", str(npy), "--out", str(full), *settings]) == 0
    real = _interrupt_at(monkeypatch, 2)
    argv = ["train", str(npy), "--out", str(tmp_path / "m.npz"), "--checkpoint",
            str(tmp_path / "ckpt.npz"), *settings]
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds epoch 2" in err
    command = err.split("resume with: ")[1]
    assert shlex.split(command)[1:] == [*argv, "--resume"]
    assert not (tmp_path / "m.npz").exists()
    monkeypatch.setattr("refconf.estimator.train_fit", real)
    # the model options are fixed by the checkpoint; only --checkpoint and --resume needed
    assert main(["train", str(npy), "--out", str(tmp_path / "m.npz"), "--checkpoint",
                 str(tmp_path / "ckpt.npz"), "--resume", "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().err
    X = np.load(npy)
    np.testing.assert_array_equal(ConfDensity.load(tmp_path / "m.npz").score_samples(X),
                                  ConfDensity.load(full).score_samples(X))
    assert ConfDensity.load(tmp_path / "m.npz").batch_size == 32


def test_resume_overrides_training_flags_by_name(data_files, tmp_path, capsys):
    _, npy, _ = data_files
    ckpt = tmp_path / "ckpt.npz"
    assert main(["train", str(npy), "--out", str(tmp_path / "a.npz"), "--checkpoint", str(ckpt),
                 "--patience", "50", *TRAIN_ARGS]) == 0
    capsys.readouterr()
    assert main(["train", str(npy), "--out", str(tmp_path / "b.npz"), "--checkpoint", str(ckpt),
                 "--resume", "--epochs", "4", "--steps", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "overridden: --epochs 4 (was 2)" in captured.err
    assert "--steps" not in captured.err  # equal to the checkpoint's: no contradiction
    assert "4 epochs, 2 new" in captured.out
    assert len(ConfDensity.load(tmp_path / "b.npz").history_) == 4


def test_debug_shows_the_traceback_and_internal_errors_are_one_line(
        model_file, tmp_path, monkeypatch, capsys):
    argv = ["evaluate", str(model_file), str(tmp_path / "none.npy")]
    with pytest.raises(Exception, match="no such file"):
        main([*argv, "--debug"])

    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr("refconf.cli.read_data", broken)
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "internal error: TypeError: a bug" in err and "--debug" in err


def test_every_option_has_help_and_shows_its_default(capsys):
    from refconf.cli import _parser

    sub = next(a for a in _parser()._actions if a.dest == "command")
    for name in ("demo", "train", "evaluate", "sample"):
        parser = sub.choices[name]
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
                assert "(default: " in formatter._get_help_string(action), action.dest
    # train's defaults are the estimator's
    defaults = ConfDensity().get_params()
    text = " ".join(sub.choices["train"].format_help().split())
    for flag, name in (("--batch-size", "batch_size"), ("--epochs", "epochs"),
                       ("--patience", "patience"), ("--defensive", "defensive")):
        assert re.search(rf"{flag} \S+ .*?\(default: {defaults[name]}\)", text), flag


def test_sigint_in_a_real_process_exits_130_with_one_line(data_files, tmp_path):
    """A real Ctrl-C (SIGINT to the process) during training: no traceback, exit 130."""
    X = np.random.default_rng(0).normal(size=(20000, 4))
    np.save(tmp_path / "x.npy", X)
    ckpt = tmp_path / "ckpt.npz"
    argv = [sys.executable, "-m", "refconf.cli", "train", str(tmp_path / "x.npy"), "--out",
            str(tmp_path / "m.npz"), "--checkpoint", str(ckpt), "--epochs", "10000",
            "--batch-size", "32", "--hidden", "16", "--steps", "2", "--quiet"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        for _ in range(1200):  # wait for the first checkpoint (at most two minutes)
            if ckpt.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        err = process.communicate(timeout=120)[1].strip()
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "resume with: refconf train" in err and err.endswith("--resume")
    assert not (tmp_path / "m.npz").exists()


def test_data_larger_than_the_free_memory_are_refused_with_the_numbers(
        data_files, tmp_path, monkeypatch, capsys):
    _, npy, _ = data_files
    monkeypatch.setattr("refconf.cli_support.available_memory", lambda: 1000)
    assert main(["train", str(npy), "--out", str(tmp_path / "m.npz"), *TRAIN_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "(300 x 3 values) needs 7.2 KB of memory, but only 1.0 KB are available" in err
    assert not (tmp_path / "m.npz").exists()


def _raise(err):
    def handler(args):
        raise err
    return handler


def _system_error_from_ctrl_c(args):
    """What compiled code can turn Ctrl-C into: a SystemError raised while handling it."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise SystemError("<built-in function> returned a result with an exception set")


def _warns(args):
    import warnings

    warnings.warn("first\nwarning", UserWarning, stacklevel=1)
    warnings.warn("second", RuntimeWarning, stacklevel=1)
    return 0


@pytest.mark.parametrize("handler, code, message", [
    (_raise(KeyboardInterrupt()), 130, "refconf x: interrupted"),
    (_system_error_from_ctrl_c, 130, "refconf x: interrupted"),
    (_raise(MemoryError("Unable to allocate 8.0 TiB")), 2,
     "refconf x: error: out of memory: Unable to allocate 8.0 TiB"),
    (_raise(OSError(28, "No space left on device", "out.npy")), 2,
     "refconf x: error: out.npy: No space left on device"),
    (_raise(ValueError("bad\n  value")), 2, "refconf x: error: bad value"),
    (_raise(TypeError("a bug")), 1, "refconf x: internal error: TypeError: a bug"),
    (_warns, 0, "refconf x: warning: first warning\nrefconf x: warning: second"),
])
def test_one_error_path_for_every_kind_of_error(capsys, handler, code, message):
    import argparse

    from refconf.cli_support import run_handler

    assert run_handler(argparse.Namespace(handler=handler), "refconf x") == code
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "Traceback" not in err
    assert len(err.splitlines()) == len(message.splitlines())
