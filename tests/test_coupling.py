"""The CONF coupling step and full CONF models against dense Jacobians (eqs. 4-6)."""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd.test_util import check_grads
from hypothesis import given
from hypothesis import strategies as st

from refconf.bijectors.coupling import ConvCoupling, split_sizes
from refconf.conditioners import mlp, mlp_init
from refconf.flows import conf
from refconf.spectral import circular_conv, circular_log_abs_det, symmetric_conv
from refconf.testing import check_bijector


def random_coupling_params(d_base, d_update, m, rng, hidden=(12,), scale=0.3):
    """Conditioner far from the identity (non-zero output layer) and S-Log scales with
    a != a'."""
    conditioner = mlp_init(d_base, hidden, (2 * m + 1) * d_update, random_state=rng,
                           zero_output=False)
    conditioner[-1]["W"] *= scale
    conditioner[-1]["b"] = scale * rng.normal(size=conditioner[-1]["b"].shape)
    log_alpha = rng.normal(0.0, 0.5, size=m)
    return conditioner, log_alpha, log_alpha + rng.normal(0.0, 0.3, size=m)


def perturb_model_params(params, rng, scale=0.15):
    """Move every learned part of a CONF model away from its identity initialisation."""
    for step in params["steps"]:
        c = step["coupling"]
        last = c["conditioner"][-1]
        last["W"] = scale * rng.normal(size=last["W"].shape) / np.sqrt(last["W"].shape[0])
        last["b"] = scale * rng.normal(size=last["b"].shape)
        c["log_alpha"] = c["log_alpha"] + rng.normal(0.0, 0.5, size=c["log_alpha"].shape)
        c["log_alpha_prime"] = c["log_alpha"] + rng.normal(0.0, 0.2, size=c["log_alpha"].shape)
        if "actnorm" in step:
            step["actnorm"]["log_scale"] = step["actnorm"]["log_scale"] + rng.normal(
                0.0, 0.3, size=step["actnorm"]["log_scale"].shape)
        for key, value in step.get("mixing", {}).items():
            step["mixing"][key] = value + 0.2 * rng.normal(size=value.shape)
    return params


coupling_cases = st.fixed_dictionaries({
    "dim": st.integers(2, 9),
    "m": st.integers(1, 3),
    "kind": st.sampled_from(["symmetric", "circular"]),
    "spectrum": st.sampled_from(["raw", "exp"]),
    "swap": st.booleans(),
    "seed": st.integers(0, 2**16),
})


@given(coupling_cases)
def test_coupling_laws_at_random_parameters(case):
    rng = np.random.default_rng(case["seed"])
    d1, d2 = split_sizes(case["dim"])
    d_base, d_update = (d2, d1) if case["swap"] else (d1, d2)
    layer = ConvCoupling(*random_coupling_params(d_base, d_update, case["m"], rng),
                         kind=case["kind"], spectrum=case["spectrum"], swap=case["swap"])
    x = rng.normal(size=(3, case["dim"]))
    report = check_bijector(layer, x)
    assert max(report.values()) < 1e-9
    _, log_det = layer.forward(x)
    assert np.all(np.abs(log_det) > 1e-3), "the test must not sit at a zero log-det"


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
def test_coupling_matches_eqs_4_and_5_written_out(kind):
    """y2 = F_1(F_2(x2)) + t with F_i(h) = g_a'(s_i f_a(w_i * h)), and the log-det
    formula of ``docs/theory/conf-step.md``, from the conditioner outputs by hand."""
    rng = np.random.default_rng(7)
    m, d1, d2 = 2, 3, 4
    conditioner, log_alpha, log_alpha_prime = random_coupling_params(d1, d2, m, rng)
    layer = ConvCoupling(conditioner, log_alpha, log_alpha_prime, kind=kind)
    x = rng.normal(size=(5, d1 + d2))
    x1, h = x[:, :d1], x[:, d1:]
    out = mlp(conditioner, x1).reshape(5, 2 * m + 1, d2)
    a, a_prime = np.exp(log_alpha), np.exp(log_alpha_prime)
    log_det = np.zeros(5)
    for i in (1, 0):
        if kind == "symmetric":
            w = 1.0 + out[:, i]
            u = symmetric_conv(h, w)
            log_det += np.sum(np.log(np.abs(w)), axis=-1)
        else:
            w = np.fft.rfft(np.eye(d2)[0] + out[:, i])
            u = circular_conv(h, w)
            log_det += circular_log_abs_det(w, d2)
        s = np.exp(out[:, m + i])
        v = s * np.sign(u) * np.log1p(a[i] * np.abs(u)) / a[i]
        h = np.sign(v) * np.expm1(a_prime[i] * np.abs(v)) / a_prime[i]
        log_det += np.sum(-np.log1p(a[i] * np.abs(u)) + np.log(s) + a_prime[i] * np.abs(v), axis=-1)
    y, ld = layer.forward(x)
    np.testing.assert_allclose(y, np.concatenate([x1, h + out[:, -1]], axis=1), rtol=1e-12)
    np.testing.assert_allclose(ld, log_det, rtol=1e-12)


def test_identity_at_initialisation_for_any_alpha():
    rng = np.random.default_rng(0)
    model = conf(7, steps=3, m=2, hidden=(8,), actnorm=False, alpha_init=2.5)
    x = rng.normal(size=(6, 7)) * 3
    z, log_det = model.build(model.init_params(random_state=0)).forward(x)
    # two reverse mixings sit between the three steps and cancel
    np.testing.assert_allclose(z, x, atol=1e-12)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-12)


model_cases = st.fixed_dictionaries({
    "dim": st.integers(2, 7),
    "kind": st.sampled_from(["symmetric", "circular"]),
    "mixing": st.sampled_from(["reverse", "permutation", "1x1"]),
    "spectrum": st.sampled_from(["raw", "exp"]),
    "actnorm": st.booleans(),
    "seed": st.integers(0, 2**16),
})


@given(model_cases)
def test_full_model_log_det_matches_dense_jacobian(case):
    rng = np.random.default_rng(case["seed"])
    model = conf(case["dim"], steps=3, m=2, hidden=(10,), kind=case["kind"],
                 mixing=case["mixing"], spectrum=case["spectrum"], actnorm=case["actnorm"],
                 random_state=case["seed"])
    x = rng.normal(size=(3, case["dim"]))
    params = perturb_model_params(model.init_params(x, random_state=1), rng)
    flow = model.build(params)
    report = check_bijector(flow.chain, x)
    assert max(report.values()) < 1e-9


def test_log_prob_gradient_in_parameters():
    rng = np.random.default_rng(3)
    model = conf(5, steps=2, m=2, hidden=(6,), mixing="1x1")
    x = rng.normal(size=(4, 5))
    params = perturb_model_params(model.init_params(x, random_state=0), rng)

    def mean_log_prob(p):
        return anp.mean(model.build(p).log_prob(x))

    check_grads(mean_log_prob, modes=["rev"], order=1)(params)


def test_sample_is_one_inverse_pass_of_base_noise():
    rng = np.random.default_rng(4)
    model = conf(6, steps=2, m=1, hidden=(8,), kind="circular")
    flow = model.build(perturb_model_params(model.init_params(rng.normal(size=(50, 6))), rng))
    x = flow.sample(20, random_state=11)
    z = np.random.default_rng(11).standard_normal((20, 6))
    np.testing.assert_allclose(flow.forward(x)[0], z, atol=1e-9)


def test_log_prob_is_normalised_in_two_dimensions():
    """exp(log_prob) of a random (non-trained) 2-D CONF model integrates to 1."""
    rng = np.random.default_rng(5)
    model = conf(2, steps=2, m=1, hidden=(8,), actnorm=False)
    flow = model.build(perturb_model_params(model.init_params(random_state=0), rng, scale=0.1))
    axis = np.linspace(-9, 9, 601)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    mass = np.exp(flow.log_prob(grid)).sum() * (axis[1] - axis[0]) ** 2
    assert abs(mass - 1.0) < 0.01


def test_sampling_overflow_is_reported_not_returned():
    model = conf(4, steps=1, m=1, hidden=(4,), actnorm=False)
    params = model.init_params(random_state=0)
    params["steps"][0]["coupling"]["log_alpha"][:] = np.log(50.0)
    coupling = model.build(params).chain.bijectors[0].bijectors[0]
    with pytest.raises(ValueError, match="overflow"):
        coupling.inverse(np.full((1, 4), 1e8))


def test_density_direction_overflow_gives_inf_for_the_training_guard():
    model = conf(4, steps=1, m=1, hidden=(4,), actnorm=False)
    params = model.init_params(random_state=0)
    params["steps"][0]["coupling"]["log_alpha_prime"][:] = np.log(50.0)
    coupling = model.build(params).chain.bijectors[0].bijectors[0]
    y, _ = coupling.forward(np.full((1, 4), 1e9))
    assert np.isinf(y).any()


@pytest.mark.parametrize("bad, message", [
    (dict(kind="toeplitz"), "kind"),
    (dict(mixing="shuffle"), "mixing"),
    (dict(spectrum="softplus"), "spectrum"),
    (dict(steps=0), "steps"),
    (dict(dim=1), "dimension"),
])
def test_conf_rejects_bad_architecture(bad, message):
    kwargs = dict(dim=4, steps=2)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        conf(**kwargs)


def test_model_rejects_data_of_the_wrong_width():
    model = conf(4, steps=1)
    flow = model.build(model.init_params(random_state=0))
    with pytest.raises(ValueError, match="event shape"):
        flow.log_prob(np.zeros((2, 5)))


def test_actnorm_data_dependent_initialisation_standardises_every_step():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(400, 6)) * rng.uniform(0.5, 5, size=6) + rng.normal(size=6) * 3
    model = conf(6, steps=3, m=1, hidden=(8,), mixing="permutation")
    # the initial parameters standardise the activations entering each ActNorm
    h = x
    for step in model.build(model.init_params(x, random_state=0)).chain.bijectors:
        h_norm, _ = step.bijectors[0].forward(h)
        np.testing.assert_allclose(h_norm.mean(axis=0), 0.0, atol=1e-10)
        np.testing.assert_allclose(h_norm.std(axis=0), 1.0, atol=1e-5)
        h = step.forward(h)[0]
