"""The maximum-likelihood loop (refconf/train/), on a small self-contained model.

The model is a 2-D affine flow, z = A (x - shift) with A lower triangular,
A = [[exp(l0), 0], [c, exp(l1)]], and a standard normal base: log|det dz/dx| = l0 + l1,
so -log p(x) = |z|^2 / 2 + log(2 pi) - l0 - l1. Its maximum-likelihood solution is known
in closed form (shift = sample mean, A^T A = inverse sample covariance).
"""

import json
import math
import os

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.tracer import getval

from refconf.params import flatten, load_checkpoint, tree_map
from refconf.train import (
    FitConfig,
    NonFiniteTraining,
    adam_step,
    adam_step_inplace,
    clip_by_global_norm,
    fit,
)

TRUE_MEAN = np.array([1.0, -2.0])
TRUE_COV = np.array([[2.0, 0.9], [0.9, 1.0]])


def nll(params, x):
    """Mean negative log-likelihood of the affine flow (nats per sample)."""
    shift = params["shift"]
    log_diag, coupling = params["scale"]
    u = x - shift
    z0 = anp.exp(log_diag[0]) * u[:, 0]
    z1 = coupling * u[:, 0] + anp.exp(log_diag[1]) * u[:, 1]
    return anp.mean(0.5 * (z0**2 + z1**2)) + math.log(2 * math.pi) - anp.sum(log_diag)


def init_params():
    """Far from the solution; nested dict/list with a Python float leaf."""
    return {"shift": np.array([3.0, 1.0]), "scale": [np.array([0.3, 0.7]), -0.5]}


def data(n, seed, mean=TRUE_MEAN):
    return np.random.default_rng(seed).multivariate_normal(mean, TRUE_COV, size=n)


def mle_params(x):
    """Closed-form maximum-likelihood parameters: A = L^{-1} with cov = L L^T."""
    inverse_cholesky = np.linalg.inv(np.linalg.cholesky(np.cov(x.T, bias=True)))
    return {"shift": x.mean(0),
            "scale": [np.log(np.diag(inverse_cholesky)), float(inverse_cholesky[1, 0])]}


def vector(params):
    return flatten(params)[0]


def strip_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class Recorder:
    """Callback keeping a copy of the parameters after every epoch."""

    def __init__(self, stop_after=None):
        self.params, self.records, self.stop_after = [], [], stop_after

    def __call__(self, params, record):
        self.params.append(vector(params).copy())
        self.records.append(record)
        if record["epoch"] == self.stop_after:
            raise KeyboardInterrupt("simulated kill")


TRAIN, VAL = data(300, 0), data(70, 1)
SETTINGS = {"batch_size": 32, "learning_rate": 0.05, "lr_decay": 0.97, "random_state": 7,
            "progress": False}


# --- convergence and the optimiser -------------------------------------------------------


def test_fit_reaches_the_closed_form_maximum_likelihood():
    result = fit(nll, init_params(), TRAIN, epochs=60, batch_size=50, learning_rate=0.1,
                 lr_decay=0.96, random_state=0, progress=False)
    best = mle_params(TRAIN)
    assert result.stopped_reason == "completed" and result.best_epoch == 60
    assert result.n_steps == 60 * 6
    np.testing.assert_allclose(vector(result.params), vector(best), atol=2e-2)
    assert nll(result.params, TRAIN) - nll(best, TRAIN) < 1e-3
    assert nll(init_params(), TRAIN) - nll(best, TRAIN) > 5.0  # the start was far away
    # structure, key order and leaf types come back as given (the float as a 0-d array)
    assert list(result.params) == ["shift", "scale"] and type(result.params["scale"]) is list


def test_adam_against_textbook_loop_with_clipping_and_decay():
    """Full-batch training equals Kingma & Ba's Algorithm 1 on clipped gradients with an
    exponentially decayed step size, written out here independently."""
    x = TRAIN[:64]
    lr, decay, clip, epochs = 0.1, 0.8, 0.5, 6
    result = fit(nll, init_params(), x, epochs=epochs, batch_size=64, learning_rate=lr,
                 lr_decay=decay, clip_norm=clip, random_state=3, progress=False)

    theta, unflatten = flatten(init_params())
    gradient = grad(lambda t: nll(unflatten(t), x))
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    norms = []
    for t in range(1, epochs + 1):
        g = gradient(theta)
        norms.append(np.sqrt(np.sum(g**2)))
        g = g * min(1.0, clip / norms[-1])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        step = lr * decay ** (t - 1)
        theta = theta - step * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(vector(result.params), theta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose([r["grad_norm"] for r in result.history], norms, rtol=1e-12)
    assert min(norms) > 2 * clip  # clipping was active at every step
    np.testing.assert_allclose([r["lr"] for r in result.history],
                               lr * decay ** np.arange(epochs), rtol=1e-15)

    unclipped = fit(nll, init_params(), x, epochs=epochs, batch_size=64, learning_rate=lr,
                    lr_decay=decay, random_state=3, progress=False)
    assert np.max(np.abs(vector(unclipped.params) - theta)) > 1e-3


def test_adam_step_bias_correction():
    rng = np.random.default_rng(0)
    x, m, v = rng.normal(size=4), rng.normal(size=4), rng.uniform(0.1, 1, size=4)
    g = rng.normal(size=4) * 10
    new_x, new_m, new_v = adam_step(x, g, m, v, step=5, learning_rate=0.01, beta1=0.5,
                                    beta2=0.75, eps=1e-3)
    np.testing.assert_allclose(new_m, 0.5 * m + 0.5 * g)
    np.testing.assert_allclose(new_v, 0.75 * v + 0.25 * g**2)
    m_hat, v_hat = new_m / (1 - 0.5**5), new_v / (1 - 0.75**5)
    np.testing.assert_allclose(new_x, x - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-3))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("step", [1, 7, 3000])
@pytest.mark.parametrize("tier", ["compiled", "readable"])
def test_in_place_adam_step_equals_adam_step_bit_for_bit(dtype, step, tier):
    rng = np.random.default_rng(step)
    n = 1000
    x, m, g = (rng.normal(scale=10.0, size=n).astype(dtype) for _ in range(3))
    v = rng.uniform(1e-6, 50.0, size=n).astype(dtype)
    expected = adam_step(x, g, m, v, step, learning_rate=0.03, beta1=0.8, beta2=0.99,
                         eps=1e-4)
    x2, m2, v2 = x.copy(), m.copy(), v.copy()
    update = adam_step_inplace if tier == "compiled" else adam_step_inplace.readable
    update(np, x2, g, m2, v2, step, 0.03, 0.8, 0.99, 1e-4)
    for got, want in zip((x2, m2, v2), expected):
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(x2, x)  # it did update in place


def test_clip_by_global_norm():
    g = np.random.default_rng(1).normal(size=10) * 7
    norm = np.linalg.norm(g)
    clipped, reported = clip_by_global_norm(g, norm / 3)
    assert reported == pytest.approx(norm, rel=1e-15)
    assert np.linalg.norm(clipped) == pytest.approx(norm / 3, rel=1e-14)
    np.testing.assert_allclose(clipped * 3, g, rtol=1e-14)  # same direction
    same, _ = clip_by_global_norm(g, norm * 1.01)
    assert same is g
    assert clip_by_global_norm(g, None)[0] is g


def test_validation_loss_is_the_batched_mean_over_all_samples():
    recorder = Recorder()
    result = fit(nll, init_params(), TRAIN, VAL, epochs=3, callback=recorder, **SETTINGS)
    _, unflatten = flatten(init_params())
    for record, theta in zip(result.history, recorder.params):
        # 70 samples in batches of 32: the last batch (6) must weigh 6/70
        assert record["val_loss"] == pytest.approx(nll(unflatten(theta), VAL), rel=1e-13)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]


def test_float32_parameters_stay_float32():
    params = tree_map(np.float32, init_params())
    result = fit(nll, params, TRAIN.astype(np.float32), epochs=2, **SETTINGS)
    assert result.params["shift"].dtype == np.float32
    assert result.params["scale"][0].dtype == np.float32


# --- reproducibility, checkpoints and resume ---------------------------------------------


def test_seeded_runs_are_bit_identical_and_seed_matters():
    first = fit(nll, init_params(), TRAIN, VAL, epochs=4, **SETTINGS)
    second = fit(nll, init_params(), TRAIN, VAL, epochs=4, **SETTINGS)
    assert vector(first.params).tobytes() == vector(second.params).tobytes()
    assert strip_seconds(first.history) == strip_seconds(second.history)
    other = fit(nll, init_params(), TRAIN, VAL, epochs=4, **dict(SETTINGS, random_state=8))
    assert not np.array_equal(vector(first.params), vector(other.params))


@pytest.mark.parametrize("interrupt", ["killed", "shorter_run"])
def test_resume_continues_exactly(tmp_path, interrupt):
    kwargs = dict(SETTINGS, clip_norm=1.0, patience=20)
    full_metrics = tmp_path / "full.jsonl"
    full = fit(nll, init_params(), TRAIN, VAL, epochs=6, metrics_path=full_metrics,
               checkpoint_path=tmp_path / "full.npz", **kwargs)

    ckpt, metrics = tmp_path / "ckpt.npz", tmp_path / "metrics.jsonl"
    if interrupt == "killed":  # dies after the checkpoint of epoch 3 was written
        with pytest.raises(KeyboardInterrupt):
            fit(nll, init_params(), TRAIN, VAL, epochs=6, checkpoint_path=ckpt,
                metrics_path=metrics, callback=Recorder(stop_after=3), **kwargs)
    else:
        fit(nll, init_params(), TRAIN, VAL, epochs=3, checkpoint_path=ckpt,
            metrics_path=metrics, **kwargs)
    assert load_checkpoint(ckpt)["epoch"] == 3
    # a stray metrics line written after the checkpoint must not survive the resume
    with open(metrics, "a") as f:
        f.write('{"epoch": 99}\n')

    resumed = fit(nll, init_params(), TRAIN, VAL, epochs=6, checkpoint_path=ckpt,
                  metrics_path=metrics, resume=True, **kwargs)
    assert vector(resumed.params).tobytes() == vector(full.params).tobytes()
    assert strip_seconds(resumed.history) == strip_seconds(full.history)
    assert (resumed.n_steps, resumed.best_epoch, resumed.best_val_loss) == (
        full.n_steps, full.best_epoch, full.best_val_loss)
    assert strip_seconds(read_jsonl(metrics)) == strip_seconds(read_jsonl(full_metrics))
    final, reference = load_checkpoint(ckpt), load_checkpoint(tmp_path / "full.npz")
    for key in ("x", "m", "v", "best_x"):
        assert final[key].tobytes() == reference[key].tobytes()
    assert final["rng_state"] == reference["rng_state"]


def test_resume_without_checkpoint_starts_fresh_and_finished_run_returns(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    fresh = fit(nll, init_params(), TRAIN, epochs=2, checkpoint_path=ckpt, resume=True,
                **SETTINGS)
    again = fit(nll, init_params(), TRAIN, epochs=2, checkpoint_path=ckpt, resume=True,
                **SETTINGS)
    assert again.n_steps == fresh.n_steps == 2 * 10
    assert vector(again.params).tobytes() == vector(fresh.params).tobytes()


def test_resume_checks_the_checkpoint_fits(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    fit(nll, init_params(), TRAIN, epochs=1, checkpoint_path=ckpt, **SETTINGS)
    bigger = dict(init_params(), extra=np.zeros(3))
    with pytest.raises(ValueError, match=r"ckpt\.npz: checkpoint holds 5 parameters.*has 8"):
        fit(lambda p, x: nll(p, x) + anp.sum(p["extra"] ** 2), bigger, TRAIN, epochs=2,
            checkpoint_path=ckpt, resume=True, **SETTINGS)
    with pytest.warns(UserWarning, match=r"batch_size: 32 -> 16"):
        fit(nll, init_params(), TRAIN, epochs=2, checkpoint_path=ckpt, resume=True,
            **dict(SETTINGS, batch_size=16))


def test_crash_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt.npz"
    fit(nll, init_params(), TRAIN, epochs=2, checkpoint_path=ckpt, **SETTINGS)
    before = ckpt.read_bytes()
    real_savez = np.savez

    def dies_mid_write(file, *args, **kwargs):
        real_savez(file, *args, **kwargs)
        file.truncate(file.tell() // 3)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(np, "savez", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        fit(nll, init_params(), TRAIN, epochs=4, checkpoint_path=ckpt, resume=True, **SETTINGS)
    monkeypatch.undo()
    assert ckpt.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert load_checkpoint(ckpt)["epoch"] == 2

    def replace_fails(src, dst):
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError, match="no space left"):
        fit(nll, init_params(), TRAIN, epochs=4, checkpoint_path=ckpt, resume=True, **SETTINGS)
    monkeypatch.undo()
    assert ckpt.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


# --- early stopping and the non-finite guard ---------------------------------------------


def test_early_stopping_restores_the_best_parameters(tmp_path):
    # validation data centred away from the training data: the validation loss falls while
    # the shift moves from its start towards VAL's centre, then rises as it heads to TRAIN's
    val = data(60, 2, mean=np.array([2.0, -0.5]))
    recorder = Recorder()
    metrics = tmp_path / "metrics.jsonl"
    patience = 3
    result = fit(nll, init_params(), TRAIN, val, epochs=200, patience=patience,
                 metrics_path=metrics, callback=recorder, **SETTINGS)
    val_losses = [r["val_loss"] for r in result.history]
    assert result.stopped_reason == "early_stopping"
    assert len(result.history) < 200
    assert result.best_epoch == 1 + int(np.argmin(val_losses))
    assert result.best_epoch >= 3  # the validation loss did improve for a while
    assert len(result.history) == result.best_epoch + patience
    assert result.best_val_loss == min(val_losses)
    assert vector(result.params).tobytes() == recorder.params[result.best_epoch - 1].tobytes()
    lines = read_jsonl(metrics)
    assert strip_seconds(lines[:-1]) == strip_seconds(result.history)
    assert lines[-1]["event"] == "early_stopping"
    assert lines[-1]["best_epoch"] == result.best_epoch
    assert f"epoch {result.best_epoch}" in result.message


def nan_below(threshold):
    """The affine-flow NLL, NaN once the first shift falls below ``threshold``."""

    def loss(params, x):
        value = nll(params, x)
        return value * np.nan if getval(params["shift"])[0] < threshold else value

    return loss


def test_non_finite_loss_stops_and_keeps_best(tmp_path):
    recorder = Recorder()
    metrics = tmp_path / "metrics.jsonl"
    with pytest.warns(RuntimeWarning, match=r"non-finite training loss \(nan\) in epoch \d+"):
        result = fit(nan_below(2.0), init_params(), TRAIN, VAL, epochs=100,
                     metrics_path=metrics, callback=recorder, **SETTINGS)
    assert result.stopped_reason == "non_finite"
    assert 10 <= len(result.history) < 100
    assert result.best_epoch == 1 + int(np.argmin([r["val_loss"] for r in result.history]))
    assert vector(result.params).tobytes() == recorder.params[result.best_epoch - 1].tobytes()
    assert np.all(np.isfinite(vector(result.params)))
    assert recorder.params[-1][3] >= 2.0  # the last completed epoch was still finite
    event = read_jsonl(metrics)[-1]
    assert event["event"] == "non_finite" and event["epoch"] == len(result.history) + 1
    assert event["step"] > result.n_steps
    assert "lower learning_rate" in event["message"]

    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        fit(nan_below(2.0), init_params(), TRAIN, VAL, epochs=100, on_non_finite="raise",
            **SETTINGS)


def test_non_finite_at_first_step_returns_initial_parameters():
    def loss(params, x):
        return nll(params, x) + anp.sqrt(params["shift"][0] - 10.0)  # NaN from the start

    with pytest.warns(RuntimeWarning, match="returned the initial parameters"), \
            np.errstate(invalid="ignore"):
        result = fit(loss, init_params(), TRAIN, epochs=3, **SETTINGS)
    assert (result.stopped_reason, result.best_epoch, result.n_steps) == ("non_finite", 0, 0)
    assert vector(result.params).tobytes() == vector(init_params()).tobytes()


def test_non_finite_gradient_with_finite_loss_is_caught():
    def loss(params, x):  # d/ds sqrt(|s - 3|) is infinite at the starting point s = 3
        return nll(params, x) + anp.sqrt(anp.abs(params["shift"][0] - 3.0))

    with pytest.warns(RuntimeWarning, match="non-finite gradient"), \
            np.errstate(invalid="ignore", divide="ignore"):
        result = fit(loss, init_params(), TRAIN, epochs=3, **SETTINGS)
    assert result.stopped_reason == "non_finite"


def test_progress_bar_shows_losses(capsys):
    fit(nll, init_params(), TRAIN, VAL, epochs=2, **dict(SETTINGS, progress=True))
    err = capsys.readouterr().err
    assert "train_loss=" in err and "val_loss=" in err


# --- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": -3}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"lr_decay": 0.0}, "lr_decay"),
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"patience": 0}, "patience"),
        ({"patience": 3, "val": None}, "validation"),
        ({"beta1": 1.0}, "beta1"),
        ({"eps": 0.0}, "eps"),
        ({"resume": True}, "checkpoint_path"),
        ({"callback": "print"}, "callback"),
        ({"on_non_finite": "ignore"}, "on_non_finite"),
        ({"loss": None}, "loss"),
    ],
)
def test_bad_arguments(changes, match):
    kwargs = {"loss": nll, "params": init_params(), "train": TRAIN, "val": VAL, "epochs": 2,
              "batch_size": 8, "progress": False}
    kwargs.update(changes)
    with pytest.raises(ValueError, match=match):
        fit(**kwargs)


@pytest.mark.parametrize(
    "train, val, match",
    [
        (np.zeros((0, 2)), None, "train is empty"),
        (TRAIN, np.zeros((0, 2)), "val is empty"),
        (np.where(np.arange(600).reshape(300, 2) == 17, np.nan, TRAIN), None, "1 NaN"),
        (TRAIN, np.full((3, 2), np.inf), "6 NaN or infinite"),
        (TRAIN, data(5, 0)[:, :1], r"val samples have shape \(1,\), train samples \(2,\)"),
        (np.arange(10), None, "floating"),
        (np.float64(3.0), None, "at least 1 axes"),
    ],
)
def test_bad_data(train, val, match):
    with pytest.raises(ValueError, match=match):
        fit(nll, init_params(), train, val, epochs=1, batch_size=8, progress=False)


def test_bad_initial_parameters():
    with pytest.raises(ValueError, match="shift has NaN"):
        fit(nll, {"shift": np.array([np.nan, 0.0]), "scale": [np.zeros(2), 0.0]}, TRAIN,
            epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="floating"):
        fit(nll, {"shift": np.array([1, 0]), "scale": [np.zeros(2), 0.0]}, TRAIN,
            epochs=1, batch_size=8, progress=False)


def test_fit_config_object_equals_the_keyword_call():
    config = FitConfig(epochs=5, batch_size=32, learning_rate=0.05, patience=2, min_delta=0.01)
    a = fit(nll, init_params(), TRAIN, VAL, config=config, random_state=1, progress=False)
    b = fit(nll, init_params(), TRAIN, VAL, epochs=5, batch_size=32, learning_rate=0.05,
            patience=2, min_delta=0.01, random_state=1, progress=False)
    assert vector(a.params).tobytes() == vector(b.params).tobytes()
    with pytest.raises(ValueError, match="min_delta"):
        FitConfig(epochs=5, batch_size=32, min_delta=-1.0)


def test_min_delta_ignores_improvements_below_it():
    settings = dict(SETTINGS, learning_rate=0.05)
    loose = fit(nll, init_params(), TRAIN, VAL, epochs=200, patience=3, **settings)
    strict = fit(nll, init_params(), TRAIN, VAL, epochs=200, patience=3, min_delta=0.05,
                 **settings)
    assert strict.stopped_reason == "early_stopping"
    assert len(strict.history) < len(loose.history)
    # every improvement the strict run accepted beat the previous best by > min_delta
    val = [r["val_loss"] for r in strict.history]
    assert val[strict.best_epoch - 1] == strict.best_val_loss


def test_diverging_loss_raises_with_the_offending_parameters():
    def loss(params, x):  # finite but astronomically large once shift[0] passes 2
        return nll(params, x) + anp.where(params["shift"][0] < 2.0, 1e12, 0.0)

    with pytest.raises(NonFiniteTraining, match=r"diverging training loss") as info:
        fit(loss, init_params(), TRAIN, VAL, epochs=100, on_non_finite="raise", **SETTINGS)
    assert info.value.params["shift"][0] < 2.0 <= info.value.best_params["shift"][0]
    assert info.value.batch is not None and info.value.batch.shape[1] == 2


def test_still_improving():
    from refconf.train.stopping import still_improving

    falling = [{"val_loss": 10.0 - k, "train_loss": 0.0} for k in range(10)]
    flat = [{"val_loss": max(5.0, 10.0 - k), "train_loss": 0.0} for k in range(10)]
    assert still_improving(falling) and not still_improving(flat)
    assert not still_improving(falling, min_delta=2.5)  # the last fifth gained 2 nats
