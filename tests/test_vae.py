"""Flow posteriors of the VAE: per-sample log-dets against dense Jacobians at random
parameters far from the identity, ELBO gradients against finite differences, and the
importance-sampled marginal likelihood against exact values and the ELBO."""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import jacobian
from autograd.test_util import check_grads
from scipy.stats import norm

from refconf.params import flatten, tree_map
from refconf.vae import (
    OPTIMIZERS,
    VAE,
    adamax_step,
    bjorck_orthonormalize,
    elbo,
    fit_vae,
    importance_nll,
    is_estimate,
    log_weights,
    make_flow,
    warmup_beta,
)

D, F, B = 6, 5, 4
OPTIONS = {"vae": {}, "planar": {}, "iaf": {"hidden": 12}, "osnf": {"bottleneck": 3},
           "conf": {"m": 2, "hidden": (7,)}}


def _far_from_identity(flow, rng):
    """Global parameters drawn at scale 0.5 (no zero last layers, a != a'), amortised
    parameters and features at scale 1."""
    params = tree_map(lambda p: 0.5 * rng.normal(size=np.shape(p)), flow.init_params(rng))
    amortised = rng.normal(size=(B, flow.amortised_size))
    return params, amortised, rng.normal(size=(B, F)), rng.normal(size=(B, D))


# every flow with the encoder features, and CONF also without (its conditioner-input flag)
@pytest.mark.parametrize("name, conditioner_input",
                         [(name, "z1+h") for name in OPTIONS] + [("conf", "z1")])
def test_log_det_matches_the_dense_jacobian_per_sample(name, conditioner_input):
    options = {**OPTIONS[name], **({"conditioner_input": conditioner_input}
                                   if name == "conf" else {})}
    flow = make_flow(name, D, F, 3, **options)
    rng = np.random.default_rng(7)
    params, amortised, h, z = _far_from_identity(flow, rng)
    z_out, log_det = flow.forward(params, amortised, h, z)
    assert z_out.shape == (B, D) and log_det.shape == (B,)
    if name != "vae":
        assert not np.allclose(z_out, z)  # really not the identity
    for i in range(B):
        def one(zi, i=i):
            return flow.forward(params, amortised[i:i + 1], h[i:i + 1], zi[None])[0][0]
        sign, expected = np.linalg.slogdet(jacobian(one)(z[i]))
        assert sign != 0
        np.testing.assert_allclose(log_det[i], expected, rtol=1e-9, atol=1e-9)


def test_bjorck_gives_orthonormal_columns_and_keeps_an_orthonormal_matrix():
    rng = np.random.default_rng(0)
    q = bjorck_orthonormalize(rng.normal(size=(3, 8, 4)))
    np.testing.assert_allclose(np.swapaxes(q, 1, 2) @ q, np.broadcast_to(np.eye(4), (3, 4, 4)),
                               atol=1e-10)
    orthonormal = np.linalg.qr(rng.normal(size=(8, 4)))[0]
    np.testing.assert_allclose(bjorck_orthonormalize(orthonormal), orthonormal, atol=1e-10)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_elbo_gradients_pass_check_grads(name):
    model = VAE(7, 4, (6,), name, 2, OPTIONS[name] if name != "osnf" else {"bottleneck": 2})
    rng = np.random.default_rng(3)
    # scale 0.15: CONF's S-Log gates with a' != a grow like powers, stacked over layers
    params = tree_map(lambda p: p + 0.15 * rng.normal(size=np.shape(p)), model.init_params(1))
    vector, unflatten = flatten(params)
    x = (rng.random((3, 7)) < 0.5).astype(float)
    eps = rng.normal(size=(3, 4))
    assert np.all(np.isfinite(elbo(model, params, x, eps)))

    def objective(v):
        return anp.mean(elbo(model, unflatten(v), x, eps, beta=0.7))

    check_grads(objective, modes=["rev"], order=1)(vector)


class LinearGaussian:
    """``p(z) = N(0, 1)``, ``p(x|z) = N(a z, s^2)``: ``p(x) = N(0, a^2 + s^2)``; proposal
    ``q(z|x) = N(c x, v)``, deliberately not the posterior."""

    a, s, c, v = 1.5, 0.7, 0.2, 0.8

    def log_w(self, x, eps):
        z = self.c * x + np.sqrt(self.v) * eps
        return (norm.logpdf(x, self.a * z, self.s) + norm.logpdf(z)
                - norm.logpdf(z, self.c * x, np.sqrt(self.v)))

    def exact(self, x):
        return norm.logpdf(x, 0.0, np.hypot(self.a, self.s))


def test_is_estimate_lies_between_elbo_and_the_exact_marginal_and_converges():
    model, x = LinearGaussian(), np.array([-1.3, 0.4, 2.2])
    rng = np.random.default_rng(0)
    exact = model.exact(x)
    gaps = []
    for S in (1, 10, 100, 1000):
        estimates = np.array([is_estimate(model.log_w(x, rng.normal(size=(S, 3))))[0]
                              for _ in range(200)])
        mean, spread = estimates.mean(0), estimates.std(0, ddof=1) / np.sqrt(200)
        assert np.all(mean <= exact + 4 * spread)  # biased low, never above log p(x)
        gaps.append(np.abs(mean - exact))
    elbo_value = model.log_w(x, rng.normal(size=(200000, 3))).mean(0)
    assert np.all(elbo_value < exact - 0.05)  # the proposal is not the posterior
    assert np.all(np.diff(np.array(gaps), axis=0) < 0)  # converges as S grows
    assert np.all(gaps[-1] < 0.01)


def test_is_standard_error_matches_the_spread_of_repeated_estimates():
    model, x = LinearGaussian(), np.array([0.9, -2.0])
    rng = np.random.default_rng(1)
    runs = [is_estimate(model.log_w(x, rng.normal(size=(2000, 2)))) for _ in range(100)]
    spread = np.std([r[0] for r in runs], axis=0, ddof=1)
    reported = np.mean([r[1] for r in runs], axis=0)
    np.testing.assert_allclose(reported, spread, rtol=0.3)


def test_vae_is_nll_is_below_the_elbo_and_decreases_with_more_samples():
    rng = np.random.default_rng(2)
    model = VAE(10, 3, (8,), "planar", 2)
    params = tree_map(lambda p: p + 0.3 * rng.normal(size=np.shape(p)), model.init_params(0))
    x = (rng.random((6, 10)) < 0.3).astype(float)
    results = {S: [importance_nll(model, params, x, S, random_state=k) for k in range(20)]
               for S in (2, 50)}
    for runs in results.values():
        for r in runs:
            assert r["nll"] <= r["neg_elbo"]  # Jensen, sample by sample
    small, large = (np.mean([r["nll"] for r in results[S]]) for S in (2, 50))
    assert large < small
    neg_elbo = -np.mean([elbo(model, params, x, rng.normal(size=(6, 3))) for _ in range(400)])
    assert large < neg_elbo


def test_log_weights_beta_scales_only_the_kl_term():
    model = VAE(10, 3, (8,), "conf", 2, {"m": 2, "hidden": (4,)})
    params = model.init_params(0)
    x = np.random.default_rng(0).integers(0, 2, size=(4, 10)).astype(float)
    eps = np.random.default_rng(1).normal(size=(4, 3))
    rec1, kl1 = log_weights(model, params, x, eps, 1.0)
    rec2, kl2 = log_weights(model, params, x, eps, 0.25)
    np.testing.assert_allclose(rec1, rec2)
    np.testing.assert_allclose(kl2, 0.25 * kl1)


def test_training_improves_the_validation_elbo_and_warmup_is_linear():
    assert [warmup_beta(e, 4) for e in (1, 2, 4, 9)] == [0.25, 0.5, 1.0, 1.0]
    assert warmup_beta(3, 0) == 1.0
    rng = np.random.default_rng(0)
    prototypes = rng.random((3, 12)) < 0.5
    x = (prototypes[rng.integers(0, 3, 300)] ^ (rng.random((300, 12)) < 0.05)).astype(float)
    model = VAE(12, 2, (16,), "iaf", 1)
    for optimizer in OPTIMIZERS:
        fitted = fit_vae(model, model.init_params(0), x[:200], x[200:], epochs=8,
                         batch_size=20, learning_rate=3e-3, warmup=2, patience=3,
                         optimizer=optimizer, random_state=0)
        losses = [h["val_neg_elbo"] for h in fitted.history]
        assert fitted.best_val_neg_elbo < losses[0] - 1.0
        assert fitted.best_val_neg_elbo == min(losses)


def test_adamax_is_kingma_and_ba_algorithm_2():
    rng = np.random.default_rng(5)
    x, m, u = rng.normal(size=4), np.zeros(4), np.zeros(4)
    g1, g2 = rng.normal(size=4), rng.normal(size=4)
    x1, m1, u1 = adamax_step(x, g1, m, u, 1, 0.01)
    x2, m2, u2 = adamax_step(x1, g2, m1, u1, 2, 0.01)
    expected_m = 0.9 * 0.1 * g1 + 0.1 * g2
    expected_u = np.maximum(0.999 * np.abs(g1), np.abs(g2))
    np.testing.assert_allclose(m2, expected_m)
    np.testing.assert_allclose(u2, expected_u)
    np.testing.assert_allclose(x2, x1 - 0.01 / (1 - 0.9 ** 2) * expected_m / (expected_u + 1e-8))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown posterior flow"):
        make_flow("realnvp", 4, 3, 2)
    with pytest.raises(ValueError, match="conditioner_input"):
        make_flow("conf", 4, 3, 2, conditioner_input="h")
    with pytest.raises(ValueError, match="latent must be a positive integer"):
        VAE(10, 0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit_vae(VAE(10, 2, (4,)), VAE(10, 2, (4,)).init_params(0), np.zeros((4, 10)),
                np.zeros((2, 10)), epochs=1, optimizer="sgd")
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        importance_nll(VAE(10, 2, (4,)), VAE(10, 2, (4,)).init_params(0), np.zeros((2, 10)), 0)


def test_non_finite_batches_are_skipped_and_counted():
    rng = np.random.default_rng(4)
    x = (rng.random((40, 6)) < 0.5).astype(float)
    bad = x.copy()
    bad[0, 0] = np.nan  # one batch of four gives a NaN loss
    model = VAE(6, 2, (4,), "planar", 1)
    fitted = fit_vae(model, model.init_params(0), bad, x[:10], epochs=2, batch_size=10,
                     warmup=0, optimizer="adam", clip_norm=1.0, random_state=0)
    assert fitted.stopped_reason == "completed" and fitted.skipped_steps == 2
    assert [h["skipped"] for h in fitted.history] == [1, 1]
    stopped = fit_vae(model, model.init_params(0), np.full((20, 6), np.nan), x[:10], epochs=2,
                      batch_size=10, random_state=0)
    assert stopped.stopped_reason == "non_finite" and stopped.history == []
