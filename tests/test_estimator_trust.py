"""ConfDensity on awkward but legal data: scale laws, degenerate data, honest training,
tail warnings, feature names, non-finite training."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from refconf import ConfDensity
from refconf.estimator import TailWarning
from refconf.params import load_checkpoint
from refconf.scaling import DiscreteDataWarning

TINY = {"steps": 2, "m": 1, "hidden": (8,), "epochs": 3, "batch_size": 64, "patience": None}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[:, 1] += 0.8 * X[:, 0] ** 2  # a curved, skewed column
    return X


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ConfDensity(**dict(TINY, **kw), random_state=0).fit(X)


column_law = st.tuples(st.floats(-12, 12), st.floats(-12, 12), st.sampled_from([-1.0, 1.0]),
                       st.sampled_from([-1.0, 1.0]))


@settings(max_examples=6, deadline=None)
@given(st.lists(column_law, min_size=3, max_size=3), st.booleans())
def test_fitting_rescaled_data_gives_the_same_fit_shifted_by_the_log_jacobian(data, laws, whiten):
    """Per column x_j -> c_j x_j + b_j with |c_j| in [1e-12, 1e12] and |b_j| up to 1e12
    (at most 1e4 standard deviations, beyond which float64 cannot hold the variation)."""
    c = np.array([sign * 10.0 ** e for e, _, sign, _ in laws])
    b = np.array([bsign * min(10.0 ** min(eb, 12.0), 1e4 * abs(cj))
                  for (_, eb, _, bsign), cj in zip(laws, c)])
    base = _fit(data, whiten=whiten)
    moved = _fit(data * c + b, whiten=whiten)
    expected = base.score_samples(data[:40]) - np.sum(np.log(np.abs(c)))
    np.testing.assert_allclose(moved.score_samples(data[:40] * c + b), expected, rtol=1e-6,
                               atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(moved.sample(5, random_state=1),
                               base.sample(5, random_state=1) * c + b, rtol=1e-5,
                               atol=1e-5 * np.abs(b + c).max())


def test_tiny_scale_column_gives_the_right_density(data):
    """The issue's case: a column of std 1e-7 (and 1e-30) is exactly the unit case shifted by
    -log(1e-7), not off by nats (or by 1e39)."""
    base = _fit(data)
    for scale in (1e-7, 1e-30):
        X = data * [1.0, scale, 1.0]
        got = _fit(X).score_samples(X[:20])
        np.testing.assert_allclose(got, base.score_samples(data[:20]) - np.log(scale),
                                   rtol=1e-8)


@pytest.mark.parametrize("column", [np.full(300, 4.2), 1e12 + np.arange(300) * 1e-8])
def test_a_column_without_resolvable_variation_is_an_error_naming_it(data, column):
    X = data.copy()
    X[:, 2] = column
    frame = pd.DataFrame(X, columns=["a", "b", "height"])
    with pytest.raises(ValueError, match=r"column 2 \('height'\).*singular"):
        _fit(frame)


def test_identical_rows_are_an_error_not_a_huge_likelihood():
    with pytest.raises(ValueError, match="column 0 is constant"):
        _fit(np.tile([[1.0, 2.0, 3.0]], (300, 1)))


def test_discrete_data_warn_and_dequantisation_fits_them(data):
    X = np.round(data * 2) / 2  # a grid of step 0.5: most rows repeat
    with pytest.warns(DiscreteDataWarning, match="look discrete"):
        _fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscreteDataWarning)
        est = _fit(X, dequantize=True)
    np.testing.assert_allclose(est.quantum_, [0.5, 0.5, 0.5])
    assert est.log_quantum_ == pytest.approx(3 * np.log(0.5))
    # a lower bound on log P(x): a probability, so at most 0 on average over the data
    assert np.mean(est.score_samples(X) + est.log_quantum_) < 0


def test_epoch_cap_on_a_still_improving_model_warns(data):
    with pytest.warns(ConvergenceWarning, match="still improving"):
        est = ConfDensity(**dict(TINY, epochs=4), learning_rate=3e-3, random_state=0).fit(data)
    assert est.n_iter_ == 4 and est.stopped_reason_ == "completed"


def test_early_stopping_attributes_and_min_delta(data):
    kw = dict(TINY, epochs=40, patience=2, learning_rate=3e-3, random_state=0)
    loose = ConfDensity(**kw).fit(data[:200], X_val=data[200:])
    strict = ConfDensity(**kw, min_delta=0.5).fit(data[:200], X_val=data[200:])
    assert strict.n_iter_ < loose.n_iter_
    for est in (loose, strict):
        assert est.stopped_reason_ == "early_stopping"
        assert est.n_iter_ == len(est.history_)
        assert est.best_epoch_ == est.n_iter_ - 2
        assert est.best_val_loss_ == pytest.approx(
            min(h["val_loss"] for h in est.history_[:est.best_epoch_]))


def test_rows_far_outside_the_training_latent_range_warn(data):
    est = _fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TailWarning)
        est.score_samples(data[:50])
    far = data[:4] + [12 * data[:, 0].std(), 0, 0]
    far[:2] = data[:2]
    with pytest.warns(TailWarning, match="2 of 4 rows map outside.*latent norm up to"):
        est.score_samples(far)


def test_feature_names_are_checked_like_scikit_learn(data):
    frame = pd.DataFrame(data, columns=["x", "y", "z"])
    est = _fit(frame)
    assert list(est.feature_names_in_) == ["x", "y", "z"]
    np.testing.assert_array_equal(est.score_samples(frame), est.score_samples(data))
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        est.score_samples(frame[["y", "x", "z"]])
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        est.score_samples(frame[["x", "y"]])


def test_saved_model_keeps_scaling_and_names(data, tmp_path):
    frame = pd.DataFrame(data * [1e-9, 1e6, 1.0], columns=["x", "y", "z"])
    est = _fit(frame)
    est.save(tmp_path / "m.npz")
    loaded = ConfDensity.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.score_samples(frame), est.score_samples(frame))
    assert list(loaded.feature_names_in_) == ["x", "y", "z"]
    assert (loaded.n_iter_, loaded.best_epoch_) == (est.n_iter_, est.best_epoch_)


def test_diverging_training_names_the_layer_and_keeps_the_last_good_checkpoint(data, tmp_path):
    """A learning rate of 50 blows the S-Log gates up within a few steps."""
    path = tmp_path / "ckpt.npz"
    est = ConfDensity(**dict(TINY, epochs=30), learning_rate=50.0, clip_norm=None,
                      random_state=0)
    with pytest.raises(FloatingPointError) as info:
        est.fit(data, checkpoint_path=path)
    message = str(info.value)
    assert "Where:" in message and "completed" not in message
    assert "step" in message.split("Where:")[1]
    if path.exists():  # the epochs before the failure, all finite
        state = load_checkpoint(path)
        assert np.all(np.isfinite(state["x"])) and np.all(np.isfinite(state["best_x"]))
    assert not hasattr(est, "stopped_reason_")


@pytest.mark.parametrize("setting", [{"defensive": 1.0}, {"defensive": -0.1},
                                     {"shrinkage": 2.0}])
def test_bad_mixture_or_shrinkage_weight_is_an_error(data, setting):
    name = next(iter(setting))
    with pytest.raises(ValueError, match=name):
        ConfDensity(**TINY, **setting).fit(data)


def test_defensive_mixture_bounds_the_loss_against_the_flow_and_the_gaussian(data):
    pure = _fit(data, defensive=0.0)
    mixed = _fit(data, defensive=0.05)
    far = data[:5] * 30  # far in the tails
    for rows in (data[:50], far):
        flow = pure.score_samples(rows)
        U = mixed.scaling_.transform(rows)
        gauss = (-0.5 * np.sum(U**2, axis=1) - 1.5 * np.log(2 * np.pi)
                 + mixed.scaling_.log_jacobian)
        got = mixed.score_samples(rows)
        assert np.all(got >= flow + np.log(0.95) - 1e-9)
        assert np.all(got >= gauss + np.log(0.05) - 1e-9)
        np.testing.assert_allclose(got, np.logaddexp(flow + np.log(0.95),
                                                     gauss + np.log(0.05)), rtol=1e-10)
