"""Baselines: Real NVP's affine coupling, MADE/MAF, Glow, the Gaussian, and the registry.

Every bijector is checked at random parameters far from the identity against dense
Jacobians (:func:`refconf.testing.check_bijector`), the MADE Jacobian's triangular
structure in its order, written-out formulas, and gradients by finite differences.
"""

import itertools

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from refconf.baselines import (
    MODEL_NAMES,
    build_model,
    gaussian,
    glow,
    load_flow_model,
    maf,
    model_from_spec,
    realnvp,
)
from refconf.bijectors.affine import AffineCoupling
from refconf.bijectors.autoregressive import MaskedAutoregressive, made_degrees, made_masks
from refconf.bijectors.coupling import split_sizes
from refconf.conditioners import mlp, mlp_init
from refconf.flows import conf
from refconf.params import save_model
from refconf.reference import dense_jacobian
from refconf.testing import check_bijector
from refconf.train import fit


def random_affine_coupling(dim, swap, rng, hidden=(10,), activation="relu"):
    d1, d2 = split_sizes(dim)
    d_base, d_update = (d2, d1) if swap else (d1, d2)
    conditioner = mlp_init(d_base, hidden, 2 * d_update, random_state=rng, zero_output=False)
    conditioner[-1]["b"] = rng.normal(size=2 * d_update)
    scale = rng.uniform(0.5, 2.0, size=d_update) * rng.choice([-1, 1], size=d_update)
    return AffineCoupling(conditioner, scale, activation=activation, swap=swap)


def random_made(dim, order, rng, hidden=(12,), activation="relu"):
    made = mlp_init(dim, hidden, 2 * dim, random_state=rng, zero_output=False)
    made[-1]["W"] *= 0.8
    made[-1]["b"] = 0.5 * rng.normal(size=2 * dim)
    return MaskedAutoregressive(made, order, activation=activation)


def perturb(params, rng, scale=0.3):
    """Every learned array of a model moved away from its initial value."""
    if isinstance(params, dict):
        return {k: perturb(v, rng, scale) for k, v in params.items()}
    if isinstance(params, list):
        return [perturb(v, rng, scale) for v in params]
    return params + scale * rng.normal(size=np.shape(params))


# --- AffineCoupling ----------------------------------------------------------------------


@given(st.integers(2, 9), st.booleans(), st.sampled_from(["relu", "tanh"]),
       st.integers(0, 2**16))
def test_affine_coupling_laws_at_random_parameters(dim, swap, activation, seed):
    rng = np.random.default_rng(seed)
    layer = random_affine_coupling(dim, swap, rng, activation=activation)
    x = 2.0 * rng.normal(size=(3, dim))
    report = check_bijector(layer, x)
    assert max(report.values()) < 1e-9
    _, log_det = layer.forward(x)
    assert np.all(np.abs(log_det) > 1e-3), "the test must not sit at a zero log-det"


@pytest.mark.parametrize("dim, swap", [(5, False), (5, True), (6, False), (7, True)])
def test_affine_coupling_is_real_nvp_written_out(dim, swap):
    """y1 = x1, y2 = x2 exp(scale tanh(o_s)) + t with d1 = floor(D/2) (the base half, or
    the updated half when swapped), from the conditioner outputs by hand."""
    rng = np.random.default_rng(dim + 10 * swap)
    layer = random_affine_coupling(dim, swap, rng)
    x = rng.normal(size=(4, dim))
    d1 = dim // 2
    if swap:  # update = first floor(D/2), base = last ceil(D/2)
        x2, x1 = x[:, :d1], x[:, d1:]
    else:
        x1, x2 = x[:, :d1], x[:, d1:]
    out = mlp(layer.conditioner, x1)
    n = x2.shape[1]
    s = layer.scale * np.tanh(out[:, :n])
    y2 = x2 * np.exp(s) + out[:, n:]
    expected = np.concatenate([y2, x1] if swap else [x1, y2], axis=1)
    y, log_det = layer.forward(x)
    np.testing.assert_allclose(y, expected, rtol=1e-13)
    np.testing.assert_allclose(log_det, s.sum(axis=1), rtol=1e-13)
    assert np.all(np.abs(s) <= np.abs(layer.scale) + 1e-15)  # tanh bound


def test_affine_coupling_is_the_identity_at_initialisation():
    x = np.random.default_rng(0).normal(size=(5, 7)) * 3
    for swap in (False, True):
        d_base, d_update = (4, 3) if swap else (3, 4)
        layer = AffineCoupling(**AffineCoupling.init_params(d_base, d_update, (8,), 0),
                               swap=swap)
        y, log_det = layer.forward(x)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(log_det, 0.0)


def test_affine_coupling_gradients_in_parameters():
    rng = np.random.default_rng(1)
    layer = random_affine_coupling(5, False, rng, activation="tanh")
    x = rng.normal(size=(3, 5))

    def objective(params):
        y, log_det = AffineCoupling(params["conditioner"], params["scale"],
                                    activation="tanh").forward(x)
        return anp.sum(anp.sin(y)) + anp.sum(log_det)

    check_grads(objective, modes=["rev"], order=1)(
        {"conditioner": layer.conditioner, "scale": layer.scale})


@pytest.mark.parametrize("bad, message", [
    ({"conditioner": mlp_init(2, (4,), 5)}, "2 \\* d_update"),
    ({"scale": np.ones(2)}, "scale must have shape"),
    ({"activation": "sigmoid"}, "activation"),
])
def test_affine_coupling_rejects_bad_parameters(bad, message):
    kwargs = {"conditioner": mlp_init(2, (4,), 6), "scale": np.ones(3)}
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        AffineCoupling(**kwargs)


def _as_float32(tree):
    if isinstance(tree, dict):
        return {k: _as_float32(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_as_float32(v) for v in tree]
    return np.asarray(tree, dtype=np.float32)


@pytest.mark.parametrize("kind", ["affine", "made"])
def test_float32_parameters_and_data_stay_float32(kind):
    """float32 in, float32 out, laws within refconf.testing.default_tolerance (2e-3)."""
    rng = np.random.default_rng(6)
    if kind == "affine":
        layer = random_affine_coupling(7, True, rng)
        layer = AffineCoupling(_as_float32(layer.conditioner), _as_float32(layer.scale),
                               swap=True)
    else:
        layer = random_made(6, rng.permutation(6), rng, hidden=(10,))
        layer = MaskedAutoregressive(_as_float32(layer.made), layer.order)
    x = rng.normal(size=(3, layer.event_shape[0])).astype(np.float32)
    y, log_det = layer.forward(x)
    assert y.dtype == np.float32 and log_det.dtype == np.float32
    assert max(check_bijector(layer, x).values()) < 2e-3


# --- MADE / MaskedAutoregressive ---------------------------------------------------------


def test_made_masks_allow_exactly_the_autoregressive_paths():
    """Connectivity by path counting (product of the masks): input j reaches output i
    iff degree(j) < degree(i), once each hidden layer holds every degree 1..D-1."""
    rng = np.random.default_rng(0)
    for dim, hidden in [(2, (3,)), (5, (4, 6)), (6, (5, 5, 7))]:
        order = rng.permutation(dim)
        degrees = made_degrees(order, hidden)
        masks = made_masks(order, hidden)
        paths = masks[0]
        for mask in masks[1:]:
            paths = paths @ mask
        allowed = degrees[0][:, None] < degrees[0][None, :]
        for block in (paths[:, :dim], paths[:, dim:]):  # mu and alpha
            np.testing.assert_array_equal(block > 0, allowed)
        for d in degrees[1:]:
            assert d.min() >= 1 and d.max() <= dim - 1


@given(st.integers(2, 7), st.lists(st.integers(1, 9), min_size=1, max_size=2),
       st.sampled_from(["relu", "tanh"]), st.integers(0, 2**16))
def test_made_laws_at_random_parameters(dim, hidden, activation, seed):
    rng = np.random.default_rng(seed)
    layer = random_made(dim, rng.permutation(dim), rng, tuple(hidden), activation)
    x = rng.normal(size=(3, dim))
    report = check_bijector(layer, x)
    assert max(report.values()) < 1e-9


@pytest.mark.parametrize("dim", [2, 5, 8])
def test_made_jacobian_is_triangular_in_its_order(dim):
    """dz/dx with rows and columns taken in the order is lower triangular, its diagonal
    is exp(-alpha), and (hidden layers wide enough) every entry below it is non-zero."""
    rng = np.random.default_rng(dim)
    order = rng.permutation(dim)
    layer = random_made(dim, order, rng, hidden=(3 * dim, 3 * dim), activation="tanh")
    x = rng.normal(size=dim)
    J = dense_jacobian(lambda s: layer.forward(s[None])[0][0], x)
    P = J[np.ix_(order, order)]
    assert np.all(np.triu(P, 1) == 0.0)
    _, alpha = layer.mu_alpha(x[None])
    np.testing.assert_allclose(np.diag(P), np.exp(-alpha[0, order]), rtol=1e-13)
    below = P[np.tril_indices(dim, -1)]
    assert np.all(below != 0.0), "the masks must not cut allowed connections"
    # in the natural order (unless it is the same) the Jacobian is not triangular
    if not np.array_equal(order, np.arange(dim)):
        assert np.any(np.triu(J, 1) != 0.0)


def test_made_inverse_matches_the_coordinate_by_coordinate_definition():
    """x_{o_i} = z_{o_i} exp(alpha_{o_i}(x)) + mu_{o_i}(x), solved in the order one
    coordinate at a time, against the D-pass inverse."""
    rng = np.random.default_rng(3)
    dim = 6
    order = rng.permutation(dim)
    layer = random_made(dim, order, rng, hidden=(10, 10))
    z = rng.normal(size=(4, dim))
    x = np.zeros_like(z)
    for i in order:
        mu, alpha = layer.mu_alpha(x)
        x[:, i] = z[:, i] * np.exp(alpha[:, i]) + mu[:, i]
    _, alpha = layer.mu_alpha(x)
    x_inv, log_det = layer.inverse(z)
    np.testing.assert_allclose(x_inv, x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_det, alpha.sum(axis=1), rtol=1e-12)


def test_made_forward_is_maf_eq_written_out():
    rng = np.random.default_rng(4)
    layer = random_made(4, [3, 1, 0, 2], rng)
    x = rng.normal(size=(5, 4))
    mu, alpha = layer.mu_alpha(x)
    z, log_det = layer.forward(x)
    np.testing.assert_allclose(z, (x - mu) * np.exp(-alpha), rtol=1e-14)
    np.testing.assert_allclose(log_det, -alpha.sum(axis=1), rtol=1e-14)
    # the first coordinate in the order has constant mu and alpha: the output biases
    np.testing.assert_allclose(mu[:, 3], layer.made[-1]["b"][3])
    np.testing.assert_allclose(alpha[:, 3], layer.made[-1]["b"][4 + 3])


def test_made_gradients_in_parameters():
    rng = np.random.default_rng(5)
    layer = random_made(4, [2, 0, 3, 1], rng, hidden=(6,), activation="tanh")
    x = rng.normal(size=(3, 4))

    def objective(made):
        z, log_det = MaskedAutoregressive(made, [2, 0, 3, 1], activation="tanh").forward(x)
        return anp.sum(anp.sin(z)) + anp.sum(log_det)

    check_grads(objective, modes=["rev"], order=1)(layer.made)


def test_made_inverse_overflow_is_reported():
    layer = random_made(3, [0, 1, 2], np.random.default_rng(0))
    layer.made[-1]["b"][3:] = 400.0  # alpha = 400: exp(alpha) * z overflows
    with pytest.raises(ValueError, match="overflow"):
        layer.inverse(np.ones((1, 3)))


@pytest.mark.parametrize("order", [[0, 0, 1], [0], [1, 2, 3]])
def test_made_rejects_an_order_that_is_not_a_permutation(order):
    with pytest.raises(ValueError, match="permutation"):
        made_degrees(order, (4,))


def test_made_rejects_a_network_of_the_wrong_shape():
    with pytest.raises(ValueError, match="2 outputs|6 outputs"):
        MaskedAutoregressive(mlp_init(3, (4,), 3), [0, 1, 2])


# --- models and registry ----------------------------------------------------------------


def small_model(name, dim, seed=0, **kwargs):
    if name == "gaussian":
        return build_model(name, dim)
    defaults = {"steps": 3, "hidden": (8,), "random_state": seed}
    if name == "conf":
        defaults["m"] = 1
    defaults.update(kwargs)
    return build_model(name, dim, **defaults)


MODEL_CASES = [("realnvp", {"mixing": "reverse"}), ("realnvp", {"mixing": "permutation"}),
               ("glow", {}), ("maf", {"order": "reverse"}), ("maf", {"order": "random"}),
               ("gaussian", {})]


@pytest.mark.parametrize("name, kwargs", MODEL_CASES)
@pytest.mark.parametrize("dim", [3, 6])
def test_model_log_det_matches_dense_jacobian(name, kwargs, dim):
    rng = np.random.default_rng(dim)
    model = small_model(name, dim, **kwargs)
    x = rng.normal(size=(40, dim)) @ rng.normal(size=(dim, dim))
    flow = model.build(perturb(model.init_params(x, random_state=1), rng))
    report = check_bijector(flow.chain, x[:3])
    assert max(report.values()) < 1e-9


@pytest.mark.parametrize("name, kwargs", MODEL_CASES)
def test_model_log_prob_gradients(name, kwargs):
    rng = np.random.default_rng(7)
    model = small_model(name, 4, hidden=(5,), **kwargs) if name != "gaussian" else gaussian(4)
    x = rng.normal(size=(30, 4))
    params = perturb(model.init_params(x, random_state=0), rng, scale=0.2)
    check_grads(lambda p: anp.mean(model.build(p).log_prob(x[:4])), modes=["rev"],
                order=1)(params)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_saves_loads_and_rebuilds_from_its_spec(name, tmp_path):
    rng = np.random.default_rng(2)
    model = small_model(name, 5)
    x = rng.normal(size=(50, 5))
    params = perturb(model.init_params(x, random_state=0), rng, scale=0.1)
    path = tmp_path / f"{name}.npz"
    save_model(path, params, model.spec, {"note": "test"})
    loaded, loaded_params, metadata = load_flow_model(path)
    assert loaded.spec == model.spec and loaded.spec["model"] == name
    assert metadata == {"note": "test"}
    np.testing.assert_array_equal(loaded.build(loaded_params).log_prob(x),
                                  model.build(params).log_prob(x))


@pytest.mark.parametrize("name", ["realnvp", "glow", "maf"])
def test_sample_is_one_inverse_pass_of_base_noise(name):
    rng = np.random.default_rng(3)
    model = small_model(name, 5)
    x = rng.normal(size=(50, 5))
    flow = model.build(perturb(model.init_params(x, random_state=0), rng, scale=0.1))
    samples = flow.sample(7, random_state=11)
    z = np.random.default_rng(11).standard_normal((7, 5))
    np.testing.assert_allclose(flow.forward(samples)[0], z, atol=1e-9)


@pytest.mark.parametrize("name, kwargs", [("realnvp", {"actnorm": False}),
                                          ("maf", {"actnorm": False})])
def test_models_are_the_identity_at_initialisation(name, kwargs):
    x = np.random.default_rng(0).normal(size=(6, 7)) * 3
    model = small_model(name, 7, **kwargs)  # 3 steps: the two reverse mixings cancel
    z, log_det = model.build(model.init_params(random_state=0)).forward(x)
    np.testing.assert_allclose(z, x, atol=1e-14)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-14)


def test_gaussian_is_the_closed_form_maximum_likelihood_fit():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + rng.normal(size=4)
    model = gaussian(4, ridge=0.0)
    params = model.init_params(x)
    log_p = model.build(params).log_prob(x)
    reference = multivariate_normal(x.mean(axis=0), np.cov(x, rowvar=False, bias=True))
    np.testing.assert_allclose(log_p, reference.logpdf(x), rtol=1e-12)
    # the maximum: the gradient of the mean log-likelihood vanishes there
    g = grad(lambda p: anp.mean(model.build(p).log_prob(x)))(params)
    for key in ("loc", "log_s"):
        assert np.max(np.abs(g[key])) < 1e-10
    assert np.max(np.abs(np.tril(g["lower"], -1))) < 1e-10


def test_gaussian_refuses_singular_data_without_a_ridge():
    x = np.random.default_rng(0).normal(size=(50, 3))
    x = np.hstack([x, x.mean(axis=1, keepdims=True)])
    with pytest.raises(ValueError, match="singular"):
        gaussian(4, ridge=0.0).init_params(x)
    assert np.isfinite(gaussian(4, ridge=1e-9).init_params(x)["log_s"]).all()


def test_build_model_conf_delegates_to_flows_conf():
    assert build_model("conf", 6, steps=2, m=3).spec == conf(6, steps=2, m=3).spec
    assert isinstance(model_from_spec(conf(6).spec), type(conf(6)))


def test_baselines_learn_a_correlated_density():
    """A few epochs of the shared training loop lower each model's held-out NLL."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(1200, 3))
    x = np.column_stack([u[:, 0], u[:, 0] ** 2 + 0.3 * u[:, 1], np.sin(u[:, 1]) + 0.2 * u[:, 2]])
    train, test = x[:1000], x[1000:]
    for name in ("realnvp", "glow", "maf"):
        model = small_model(name, 3, hidden=(16,))
        params = model.init_params(train, random_state=0)

        def loss(p, batch, model=model):
            return -anp.mean(model.build(p).log_prob(batch))

        before = float(loss(params, test))
        result = fit(loss, params, train, epochs=4, batch_size=100, learning_rate=1e-2,
                     random_state=0, progress=False)
        after = float(loss(result.params, test))
        assert after < before - 0.2, (name, before, after)


@pytest.mark.parametrize("call, message", [
    (lambda: build_model("nice", 4), "model name"),
    (lambda: build_model("maf", 4, m=2), "takes no argument"),
    (lambda: build_model("realnvp", 1), "dimension >= 2"),
    (lambda: realnvp(4, mixing="1x1"), "mixing"),
    (lambda: maf(4, order="sorted"), "order"),
    (lambda: glow(4, steps=0), "steps"),
    (lambda: realnvp(4, hidden=()), "hidden"),
    (lambda: model_from_spec([1, 2]), "must be a dict"),
    (lambda: model_from_spec({"model": "flowpp"}), "unknown model"),
    (lambda: model_from_spec({"model": "maf", "dim": 3}), "missing"),
    (lambda: model_from_spec({**glow(4).spec, "mixing": "reverse"}), "mixing"),
    (lambda: model_from_spec({**maf(4, steps=2).spec, "orders": [[0, 1, 2, 3]]}), "orders"),
])
def test_bad_model_arguments_are_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_registry_name_builds_a_flow_of_the_right_dimension():
    x = np.random.default_rng(0).normal(size=(20, 5))
    for name, dim in itertools.product(MODEL_NAMES, (2, 5)):
        model = small_model(name, dim)
        assert model.dim == dim and model.spec["model"] == name
        assert model.build(model.init_params(x[:, :dim])).log_prob(x[:, :dim]).shape == (20,)


def test_float32_maf_inverse_survives_large_alpha():
    """Forward outputs with alpha beyond float32's exp range (|alpha| > 88) invert without
    overflow: the inverse forms z exp(alpha) without the overflowing exp(alpha), and no pass
    feeds an overflowed guess of an unfixed coordinate (inf times a masked 0 is NaN) to the
    MADE. The same weights in float64 round-trip to 1e-6 (they are badly conditioned)."""
    large = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        made = MaskedAutoregressive.init_params(5, hidden=(8,), random_state=seed)
        made = [{"W": 2 * rng.normal(size=layer["W"].shape), "b": layer["b"]} for layer in made]
        order = rng.permutation(5)
        x = 3 * rng.normal(size=(16, 5))
        single = MaskedAutoregressive(_as_float32(made), order)
        with np.errstate(over="ignore", under="ignore"):
            z, _ = single.forward(x.astype(np.float32))
            alpha = MaskedAutoregressive(made, order).mu_alpha(x)[1]
        # rows float32 can represent: finite z, none flushed to zero
        keep = np.all(np.isfinite(z) & (z != 0), axis=1)
        large += int(np.sum(np.abs(alpha[keep]) > 88))
        back, _ = single.inverse(z[keep])
        assert np.all(np.isfinite(back))
        double = MaskedAutoregressive(made, order)
        np.testing.assert_allclose(double.inverse(double.forward(x)[0])[0], x, rtol=1e-6,
                                   atol=1e-6)
    assert large > 0  # the case that overflowed before
