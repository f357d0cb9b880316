"""Public checkers of fitted models: normalisation, spectrum health, non-finite location.
Each must fail on a planted bug."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from refconf import ConfDensity
from refconf.bijectors.coupling import conf_layer_inverse
from refconf.flows import conf
from refconf.health import NearSingularWarning, locate_non_finite, spectrum_report
from refconf.testing import check_normalization


def _trained_params(model, x, seed=0):
    """Initial parameters moved far from the identity (random conditioner output layers)."""
    rng = np.random.default_rng(seed)
    params = model.init_params(x, random_state=seed)
    for step in params["steps"]:
        last = step["coupling"]["conditioner"][-1]
        last["W"] = 0.3 * rng.normal(size=last["W"].shape)
        last["b"] = 0.3 * rng.normal(size=last["b"].shape)
    return params


@pytest.fixture(scope="module")
def gaussian():
    return multivariate_normal([0.5, -1.0, 2.0], [[1.0, 0.3, 0.0], [0.3, 2.0, 0.4],
                                                   [0.0, 0.4, 0.5]])


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_grid_quadrature_passes_a_density_and_fails_a_planted_missing_log_det(gaussian, dim):
    samples = gaussian.rvs(3000, random_state=0)[:, :dim]
    marginal = multivariate_normal(gaussian.mean[:dim], gaussian.cov[:dim, :dim])
    report = check_normalization(marginal.logpdf, samples)
    assert report["method"] == "grid" and abs(report["mass"] - 1) < 0.01
    # planted bug: the log-det of a scaling by 1.3 per axis forgotten
    with pytest.raises(AssertionError, match="integrates to"):
        check_normalization(lambda x: marginal.logpdf(x / 1.3), samples * 1.3)


def test_importance_sampling_above_three_dimensions_with_a_standard_error():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(6, 6))
    target = multivariate_normal(np.arange(6.0), A @ A.T + np.eye(6))
    samples = target.rvs(4000, random_state=2)
    report = check_normalization(target.logpdf, samples)
    assert report["method"] == "importance" and 0 < report["std_error"] < 0.02
    with pytest.raises(AssertionError, match="importance"):  # planted: a constant of 0.1 nats
        check_normalization(lambda x: target.logpdf(x) + 0.1, samples)


def test_a_fitted_conf_estimator_is_normalised_and_a_planted_bug_is_not():
    X = np.random.default_rng(0).normal(size=(400, 2)) * [2.0, 0.5]
    X[:, 1] += 0.5 * X[:, 0] ** 2
    est = ConfDensity(steps=2, m=1, hidden=(8,), epochs=5, random_state=0).fit(X)
    assert abs(check_normalization(est, X)["mass"] - 1) < 0.02

    class MissingJacobian:  # the scale's log-Jacobian forgotten
        def score_samples(self, x):
            return est.score_samples(x) - est.scaling_.log_jacobian

    with pytest.raises(AssertionError):
        check_normalization(MissingJacobian(), X)


def test_spectrum_report_predicts_the_round_trip_error_of_a_trained_model():
    model = conf(6, steps=2, m=2, hidden=(8,))
    x = np.random.default_rng(0).normal(size=(64, 6))
    rows = spectrum_report(model, _trained_params(model, x), x)
    assert len(rows) == 4
    for row in rows:
        assert row["condition_number"] > 1.0 and row["min_abs_w_hat"] > 0
        assert row["measured_float64"] <= 10 * row["predicted_float64"]
        assert row["measured_float64"] < row["measured_float32"]
        assert row["measured_float32"] <= 10 * row["predicted_float32"]


def test_spectrum_report_warns_for_a_planted_near_singular_layer():
    model = conf(6, steps=2, m=1, hidden=(8,))
    x = np.random.default_rng(0).normal(size=(64, 6))
    params = _trained_params(model, x)
    # planted: the kernel spectrum's first bin pushed to 1 + o = 1e-6 for every input
    last = params["steps"][1]["coupling"]["conditioner"][-1]
    last["W"][:, 0] = 0.0
    last["b"][0] = -1.0 + 1e-6
    with pytest.warns(NearSingularWarning, match="step 1 ConvCoupling 1/1"):
        rows = spectrum_report(model, params, x)
    bad = rows[-1]
    assert bad["min_abs_w_hat"] < 1e-5 and bad["condition_number"] > 1e4
    assert bad["predicted_float32"] > 1e-3  # float32 cannot invert it to 3 digits


def test_spectrum_report_catches_a_planted_broken_inverse(monkeypatch):
    """An inverse off by a relative 1e-6 shows up as measured >> predicted in float64."""
    from refconf import health

    def wrong(y2, w_hat, s, alpha, alpha_prime, kind):
        x2, log_det = conf_layer_inverse(y2, w_hat, s, alpha, alpha_prime, kind)
        return x2 * (1 + 1e-6), log_det

    model = conf(6, steps=1, m=1, hidden=(8,))
    x = np.random.default_rng(0).normal(size=(64, 6))
    monkeypatch.setattr(health, "conf_layer_inverse", wrong)
    row = spectrum_report(model, _trained_params(model, x), x)[0]
    assert row["measured_float64"] > 100 * row["predicted_float64"]


def test_locate_non_finite_names_the_parameter_or_the_layer_and_gate():
    model = conf(4, steps=2, m=2, hidden=(8,))
    x = np.random.default_rng(0).normal(size=(8, 4))
    params = model.init_params(x, random_state=0)
    params["steps"][1]["actnorm"]["log_scale"][2] = np.nan
    assert "steps/1/actnorm/log_scale" in locate_non_finite(model, params, x)
    params = model.init_params(x, random_state=0)
    params["steps"][1]["coupling"]["log_alpha_prime"][:] = 6.0
    where = locate_non_finite(model, params, x * 1e3)
    assert where.startswith("step 1 ConvCoupling, combined layer") and "g_a'" in where
