"""The numba engine against the readable (numpy) engine, one to one.

Values, log-dets and gradients of every compiled primitive equal the readable tier's to
1e-12 in float64, at random parameters far from the identity; each primitive's VJP passes
``check_grads``; the transforms pass the adjoint (dot) test; models trained with either
engine end at the same parameters. Compilation is cached, so the first run of this file
pays the JIT once (about 10 s).
"""

import functools
import json
import subprocess
import sys
import types
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads
from hypothesis import assume, given
from hypothesis import strategies as st

from refconf import conditioners, engines, spectral, transforms
from refconf.baselines import build_model
from refconf.bijectors import _step_kernels_numba, coupling, step_kernels
from refconf.bijectors.coupling import ConvCoupling, split_sizes
from refconf.cli import main
from refconf.engines import (
    EngineUnavailableError,
    get_engine,
    nll_and_grad,
    numba_engine,
    resolve_engine,
)
from refconf.estimator import ConfDensity
from refconf.flows import conf
from refconf.params import flatten, load_model, ravel
from refconf.testing import check_bijector
from refconf.train import fit
from refconf.train import nll_objective as train_nll_objective

from . import strategies as S

NUMBA = get_engine("numba")
NUMPY = get_engine("numpy")
TOL = 1e-12


def assert_close(actual, expected, tol=TOL):
    """Equal to ``tol`` relative to the largest entry of ``expected`` (and at least 1)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


# --- cases -------------------------------------------------------------------------------

step_cases = st.fixed_dictionaries({
    "kind": st.sampled_from(["symmetric", "circular"]),
    "d2": S.lengths(1, 20),
    "m": st.integers(1, 3),
    "batch": st.integers(1, 5),
    "seed": S.seeds(),
})


def random_step_args(kind, d2, m, batch, seed):
    """``(x2, w_hat, s, t, alpha, alpha_prime)`` far from the identity: spectra with mixed
    signs (symmetric) or random phases (circular), scales of both signs, shifts, and
    ``a' != a``.

    Magnitudes are narrower than the project's usual [0.1, 10]: a layer raises its input
    to about the power ``|s| a' / a`` (the gates are logarithmic and exponential), so
    three stacked layers with ``|s|`` up to 2 reach 1e6 and amplify rounding differences
    between two correct engines beyond 1e-12. With spectra in [0.5, 2] and scales in
    [0.7, 1.4] the comparison holds to 1e-12 (checked over 300 examples of the "dev"
    profile)."""
    rng = S.rng_from(seed)
    if kind == "symmetric":
        w_hat = S.symmetric_spectrum(rng, (m, batch, d2), 0.5, 2.0)
    else:
        w_hat = S.half_spectrum(rng, (m, batch, d2), 1, 0.5, 2.0)
    s = S.scale_factors(rng, (m, batch, d2), 0.7, 1.4)
    alpha = S.slog_alpha(rng, (m,))
    alpha_prime = alpha * np.exp(rng.normal(0.0, 0.2, size=m))
    return [S.data(rng, (batch, d2), 1.0), w_hat, s, S.shift(rng, (batch, d2)), alpha,
            alpha_prime]


def step_objective(engine, kind, inverse, cotangents):
    """A real function of the step's arguments whose gradient is the VJP of ``(y, log_det)``
    with the given random cotangents."""
    gy, gl = cotangents
    step = engine.conf_step_inverse if inverse else engine.conf_step

    def objective(args):
        y, log_det = step(*args, kind=kind)
        return anp.sum(gy * y) + anp.sum(gl * log_det)

    return objective


# --- the step, one to one ----------------------------------------------------------------


@given(step_cases, st.booleans())
def test_step_values_log_dets_and_gradients_equal_the_readable_engine(case, inverse):
    args = random_step_args(**case)
    kind = case["kind"]
    if inverse:  # a point in the image of the forward map
        args[0] = NUMPY.conf_step(*args, kind=kind)[0]
    step = "conf_step_inverse" if inverse else "conf_step"
    fast = getattr(NUMBA, step)(*args, kind=kind)
    readable = getattr(NUMPY, step)(*args, kind=kind)
    for a, b in zip(fast, readable):
        assert_close(a, b)
    assert np.max(np.abs(readable[1])) > 1e-3, "the test must not sit at a zero log-det"

    rng = S.rng_from(case["seed"] + 1)
    cotangents = rng.normal(size=readable[0].shape), rng.normal(size=readable[1].shape)
    g_fast = grad(step_objective(NUMBA, kind, inverse, cotangents))(args)
    g_readable = grad(step_objective(NUMPY, kind, inverse, cotangents))(args)
    for a, b in zip(g_fast, g_readable):
        assert_close(a, b)


@pytest.mark.parametrize("kind, d2", [("symmetric", 257), ("symmetric", 300),
                                      ("circular", 64), ("circular", 77)])
@pytest.mark.parametrize("inverse", [False, True])
def test_fft_path_equals_the_readable_engine(kind, d2, inverse):
    """Long signals take the FFT path (FFT_MIN_LENGTH); the same one-to-one check."""
    assert d2 >= transforms.FFT_MIN_LENGTH[kind]
    args = random_step_args(kind, d2, m=2, batch=3, seed=d2)
    if inverse:
        args[0] = NUMPY.conf_step(*args, kind=kind)[0]
    step = "conf_step_inverse" if inverse else "conf_step"
    for a, b in zip(getattr(NUMBA, step)(*args, kind=kind),
                    getattr(NUMPY, step)(*args, kind=kind)):
        assert_close(a, b)
    rng = np.random.default_rng(d2)
    cotangents = rng.normal(size=(3, d2)), rng.normal(size=3)
    for a, b in zip(grad(step_objective(NUMBA, kind, inverse, cotangents))(args),
                    grad(step_objective(NUMPY, kind, inverse, cotangents))(args)):
        assert_close(a, b)


@given(step_cases)
def test_inverse_step_undoes_the_step(case):
    args = random_step_args(**case)
    y2, log_det = NUMBA.conf_step(*args, kind=case["kind"])
    x2, log_det_inv = NUMBA.conf_step_inverse(y2, *args[1:], kind=case["kind"])
    assert_close(x2, args[0], 1e-10)
    assert_close(log_det_inv, -log_det, 1e-10)


@pytest.mark.parametrize("kind, d2", [("symmetric", 1), ("symmetric", 6), ("symmetric", 257),
                                      ("circular", 5), ("circular", 65)])
@pytest.mark.parametrize("inverse", [False, True])
def test_step_primitives_pass_check_grads(kind, d2, inverse):
    """The primitives themselves, in all array arguments at once, on both transform paths
    (dense matrix; FFT from FFT_MIN_LENGTH) and in both directions."""
    assert (d2 >= transforms.FFT_MIN_LENGTH[kind]) == (d2 in (65, 257))
    args = random_step_args(kind, d2, m=2, batch=2, seed=d2)
    if inverse:
        args[0] = NUMPY.conf_step(*args, kind=kind)[0]
        step = lambda a: numba_engine._conf_step_inverse(*a, kind, True)
    else:
        step = lambda a: numba_engine._conf_step(*a, kind, "inf", True)
    check_grads(step, modes=["rev"], order=1)(args)


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
@pytest.mark.parametrize("inverse", [False, True])
def test_vjp_without_the_forward_handoff_recomputes_the_same(kind, inverse):
    """The VJP maker normally reads the traced forward's intermediates; given an output it
    has no intermediates for, it recomputes them and must agree."""
    args = random_step_args(kind, 7, m=2, batch=3, seed=5)
    rng = np.random.default_rng(0)
    if inverse:
        args[0] = NUMPY.conf_step(*args, kind=kind)[0]
        primitive, maker, extra = (numba_engine._conf_step_inverse,
                                   numba_engine._conf_step_inverse_vjp, (kind,))
    else:
        primitive, maker, extra = (numba_engine._conf_step, numba_engine._conf_step_vjp,
                                   (kind, "inf"))
    g = (rng.normal(size=(3, 7)), rng.normal(size=3))
    argnums = tuple(range(6))
    expected = grad(step_objective(NUMBA, kind, inverse, g))(args)
    ans = primitive(*args, *extra, False)
    got = maker(argnums, ans, (*args, *extra, False), {})(g)
    for a, b in zip(got, expected):
        assert_close(a, b)


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
@pytest.mark.parametrize("L", [2, 3, 8, 9, 20, 21])
def test_matrix_and_fft_transforms_agree_with_spectral_and_are_adjoint(kind, L):
    """conv/deconv of both paths equal refconf.spectral; each VJP is the adjoint of the
    (bilinear) map: <conv(h, w), g> = <h, gh> = Re sum(gw * w)."""
    rng = np.random.default_rng(L)
    B = 3
    h, g = rng.normal(size=(B, L)), rng.normal(size=(B, L))
    if kind == "symmetric":
        w = S.symmetric_spectrum(rng, (B, L))
        conv, deconv = spectral.symmetric_conv, spectral.symmetric_deconv
    else:
        w = S.half_spectrum(rng, (B, L), 1)
        conv, deconv = spectral.circular_conv, spectral.circular_deconv
    for ops in (_step_kernels_numba.CompiledMatrixTransforms(kind, L, h.dtype),
                _step_kernels_numba.NumpyFFTTransforms(kind, L, h.dtype),
                transforms.MatrixTransforms(np, kind, L, h.dtype),
                transforms.FFTTransforms(np, kind, L, h.dtype)):
        u, U = ops.conv(h, w)
        assert_close(u, conv(h, w))
        gh, gw = ops.conv_vjp(g, w, U)
        assert np.isclose(np.sum(u * g), np.sum(h * gh), rtol=1e-12)
        assert np.isclose(np.sum(u * g), np.sum(np.real(gw * w)), rtol=1e-12)
        back, U = ops.deconv(u, w)
        assert_close(back, deconv(u, w))
        assert_close(back, h, 1e-10)
        gu, gw = ops.deconv_vjp(g, w, U)
        assert np.isclose(np.sum(back * g), np.sum(u * gu), rtol=1e-12)
        # deconv is homogeneous of degree -1 in w: <d/dw h(w), w> = -h
        assert np.isclose(np.sum(np.real(gw * w)), -np.sum(back * g), rtol=1e-12)


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
@pytest.mark.parametrize("lead", [(), (2, 3)])
def test_step_takes_any_batch_shape_like_the_readable_engine(kind, lead):
    args = random_step_args(kind, 5, m=2, batch=int(np.prod(lead)), seed=8)
    args = [args[0].reshape(lead + (5,)), args[1].reshape((2,) + lead + args[1].shape[-1:]),
            args[2].reshape((2,) + lead + (5,)), args[3].reshape(lead + (5,)), *args[4:]]
    for step in ("conf_step", "conf_step_inverse"):
        for a, b in zip(getattr(NUMBA, step)(*args, kind=kind),
                        getattr(NUMPY, step)(*args, kind=kind)):
            assert_close(a, b)
    cotangents = (np.ones(lead + (5,)), np.ones(lead))
    for a, b in zip(grad(step_objective(NUMBA, kind, False, cotangents))(args),
                    grad(step_objective(NUMPY, kind, False, cotangents))(args)):
        assert_close(a, b)


# --- errors: the readable tier's contract --------------------------------------------------


def test_inverse_raises_on_a_zero_eigenvalue_and_on_gate_overflow():
    args = random_step_args("symmetric", 4, m=1, batch=2, seed=1)
    w_hat = args[1].copy()
    w_hat[0, 1, 2] = 0.0
    for engine in (NUMPY, NUMBA):
        with pytest.raises(ValueError, match="not invertible"):
            engine.conf_step_inverse(args[0], w_hat, *args[2:])
    # f_{a'} contracts 1e300 to log1p(a' 1e300) / a' ~ 1400, then g_a expands a|r| ~ 14000
    huge, s, alpha, alpha_prime = np.full((2, 4), 1e300), np.full((1, 2, 4), 0.5), [5.0], [0.5]
    for engine in (NUMPY, NUMBA):
        with pytest.raises(ValueError, match="would overflow"):
            engine.conf_step_inverse(huge, args[1], s, args[3], np.array(alpha),
                                     np.array(alpha_prime))


def test_forward_overflow_raises_or_gives_inf_like_the_readable_engine():
    args = random_step_args("symmetric", 3, m=1, batch=2, seed=2)
    args[0] = np.full((2, 3), 1e300)
    args[5] = np.array([50.0])
    for engine in (NUMPY, NUMBA):
        with pytest.raises(ValueError, match="would overflow"):
            engine.conf_step(*args, overflow="raise")
    with np.errstate(all="raise"):
        y, _ = NUMBA.conf_step(*args, overflow="inf")
    assert np.all(np.isinf(y))


@pytest.mark.parametrize("bad, match", [
    (lambda a: [a[0][:, :-1]] + a[1:], "t must have the shape"),
    (lambda a: a[:1] + [a[1][:, :, :-1]] + a[2:], "w_hat must have shape"),
    (lambda a: a[:4] + [-a[4]] + a[5:], "alpha must be finite and > 0"),
])
def test_bad_arguments_get_the_readable_error(bad, match):
    args = bad(random_step_args("symmetric", 4, m=2, batch=2, seed=3))
    for engine in (NUMPY, NUMBA):
        with pytest.raises(ValueError, match=match):
            engine.conf_step(*args)


def test_float32_input_matches_float64_within_float32_precision():
    args = random_step_args("circular", 6, m=2, batch=3, seed=4)
    single = [a.astype(np.complex64 if np.iscomplexobj(a) else np.float32) for a in args]
    y32, ld32 = NUMBA.conf_step(*single, kind="circular")
    y64, ld64 = NUMPY.conf_step(*args, kind="circular")
    assert y32.dtype == np.float32
    assert_close(y32.astype(np.float64), y64, 1e-4)
    assert_close(ld32.astype(np.float64), ld64, 1e-4)


# --- the conditioner MLP -------------------------------------------------------------------


@given(st.fixed_dictionaries({
    "n_in": st.integers(1, 6), "hidden": st.lists(st.integers(1, 9), min_size=0, max_size=3),
    "n_out": st.integers(1, 7), "batch": st.integers(1, 6),
    "activation": st.sampled_from(["tanh", "relu"]), "seed": S.seeds()}))
def test_mlp_values_and_gradients_equal_the_readable_engine(case):
    rng = S.rng_from(case["seed"])
    params = conditioners.mlp_init(case["n_in"], case["hidden"], case["n_out"],
                                   random_state=rng, zero_output=False)
    for layer in params:
        layer["b"] = rng.normal(size=layer["b"].shape)
    x = S.data(rng, (case["batch"], case["n_in"]))
    g = rng.normal(size=(case["batch"], case["n_out"]))
    act = case["activation"]
    assert_close(NUMBA.mlp(params, x, act), NUMPY.mlp(params, x, act))

    def objective(engine):
        return lambda p, x: anp.sum(g * engine.mlp(p, x, act))

    for argnum in (0, 1):
        fast, _ = flatten(grad(objective(NUMBA), argnum)(params, x))
        readable, _ = flatten(grad(objective(NUMPY), argnum)(params, x))
        assert_close(fast, readable)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_primitive_passes_check_grads(activation):
    rng = np.random.default_rng(1)
    params = conditioners.mlp_init(3, (5, 4), 2, random_state=rng, zero_output=False)
    args = [rng.normal(size=(4, 3))] + [p for layer in params for p in (layer["W"], layer["b"])]
    check_grads(lambda a: numba_engine._mlp(a[0], activation, True, *a[1:]), modes=["rev"],
                order=1)(args)


def test_mlp_keeps_leading_batch_axes():
    params = conditioners.mlp_init(3, (4,), 2, random_state=0, zero_output=False)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    assert_close(NUMBA.mlp(params, x, "tanh"), NUMPY.mlp(params, x, "tanh"))


# --- bijectors, models, training ----------------------------------------------------------

coupling_cases = st.fixed_dictionaries({
    "dim": st.integers(2, 11), "m": st.integers(1, 3),
    "kind": st.sampled_from(["symmetric", "circular"]),
    "spectrum": st.sampled_from(["raw", "exp"]),
    "activation": st.sampled_from(["tanh", "relu"]), "swap": st.booleans(),
    "seed": S.seeds()})


@given(coupling_cases)
def test_coupling_with_either_engine_is_the_same_bijector(case):
    rng = S.rng_from(case["seed"])
    d1, d2 = split_sizes(case["dim"])
    d_base, d_update = (d2, d1) if case["swap"] else (d1, d2)
    conditioner = conditioners.mlp_init(d_base, (8,), (2 * case["m"] + 1) * d_update,
                                        random_state=rng, zero_output=False)
    conditioner[-1]["W"] *= 0.3
    log_alpha = rng.normal(0.0, 0.5, size=case["m"])
    log_alpha_prime = log_alpha + rng.normal(0.0, 0.3, size=case["m"])
    options = {k: case[k] for k in ("kind", "spectrum", "activation", "swap")}
    fast, readable = (ConvCoupling(conditioner, log_alpha, log_alpha_prime, engine=get_engine(e),
                                    **options)
                      for e in ("numba", "numpy"))
    x = rng.normal(size=(3, case["dim"]))
    for a, b in zip(fast.forward(x) + fast.inverse(x), readable.forward(x) + readable.inverse(x)):
        assert_close(a, b)
    assert max(check_bijector(fast, x).values()) < 1e-9


model_cases = st.fixed_dictionaries({
    "dim": st.integers(2, 9), "kind": st.sampled_from(("symmetric", "circular")),
    "mixing": st.sampled_from(("reverse", "permutation", "1x1")),
    "spectrum": st.sampled_from(("raw", "exp")), "activation": st.sampled_from(("tanh", "relu")),
    "actnorm": st.booleans(), "steps": st.integers(1, 3), "m": st.integers(1, 3),
    "seed": S.seeds()})


def _perturbed_model(case, batch=17, scale=0.15):
    """A CONF model, data and parameters far from the identity (every leaf perturbed; not
    so far that the compounding expanding gates overflow)."""
    rng = np.random.default_rng(case["seed"])
    settings = {key: case[key] for key in ("kind", "mixing", "spectrum", "activation",
                                           "actnorm", "steps", "m")}
    model = conf(case["dim"], hidden=(6, 5), random_state=case["seed"], **settings)
    x = rng.normal(size=(batch, case["dim"]))
    theta, unflatten = flatten(model.init_params(x, random_state=case["seed"]))
    return model, unflatten(theta + scale * rng.normal(size=theta.shape)), x


@given(model_cases)
def test_model_pass_equals_autograd_of_the_readable_model(case):
    model, params, x = _perturbed_model(case)

    def loss(p):
        return -anp.mean(model.build(p, engine="numpy").log_prob(x))

    # gates compounding past the float range, or to near it, where round-off grows
    # with the values: no meaningful comparison
    assume(abs(loss(params)) < 1e8)
    nll, grads = nll_and_grad(model, params, x)
    expected = flatten(grad(loss)(params))[0]
    np.testing.assert_allclose(nll, loss(params), rtol=1e-12)
    np.testing.assert_allclose(ravel(grads), expected, rtol=0,
                               atol=1e-10 * max(1.0, np.max(np.abs(expected))))


@pytest.mark.parametrize("name, dim, options", [
    ("realnvp", 5, {"mixing": "reverse"}), ("realnvp", 6, {"mixing": "permutation"}),
    ("realnvp", 5, {"mixing": "permutation", "actnorm": False, "activation": "tanh"}),
    ("glow", 5, {}), ("glow", 4, {"activation": "tanh"}),
    ("maf", 5, {}), ("maf", 4, {"actnorm": False, "order": "random", "activation": "tanh"})])
def test_model_pass_runs_the_baselines(name, dim, options):
    """Real NVP, Glow and MAF are chains of bijectors with explicit reverse passes, so
    the explicit pass trains them too, with autograd's gradient."""
    rng = np.random.default_rng(dim)
    model = build_model(name, dim, steps=3, hidden=(6, 5), **options)
    x = rng.normal(size=(17, dim))
    theta, unflatten = flatten(model.init_params(x, random_state=1))
    params = unflatten(theta + 0.3 * rng.normal(size=theta.shape))

    def loss(p):
        return -anp.mean(model.build(p).log_prob(x))

    nll, grads = nll_and_grad(model, params, x)
    expected = flatten(grad(loss)(params))[0]
    np.testing.assert_allclose(nll, loss(params), rtol=1e-12)
    np.testing.assert_allclose(flatten(grads)[0], expected, rtol=0,
                               atol=1e-10 * max(1.0, np.max(np.abs(expected))))


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
def test_model_pass_runs_in_float32_within_float32_precision(kind):
    case = {"dim": 7, "kind": kind, "mixing": "1x1", "spectrum": "raw", "activation": "tanh",
            "actnorm": True, "steps": 2, "m": 2, "seed": 4}
    model, params, x = _perturbed_model(case)
    nll, grads = nll_and_grad(model, params, x)
    single = flatten(params)[1](flatten(params)[0].astype(np.float32))
    nll32, grads32 = nll_and_grad(model, single, x.astype(np.float32))
    g, g32 = ravel(grads), ravel(grads32)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(nll32, nll, rtol=1e-5)
    np.testing.assert_allclose(g32, g, rtol=0, atol=1e-4 * np.max(np.abs(g)))


@given(st.integers(1, 9), st.integers(1, 7), st.data())
def test_layout_kernels_equal_the_array_expressions(B, D, data):
    """The compiled split/join kernels of the explicit pass against the array-API
    expressions (here on NumPy), at any block of columns and on strided input."""
    L = data.draw(st.integers(1, D))
    start = data.draw(st.integers(0, D - L))
    rng = np.random.default_rng(B * 100 + D * 10 + L)
    x = rng.normal(size=(B, 2 * D))[:, ::-2]  # a strided view, as after a reversal
    numpy_kernels = types.SimpleNamespace(**{
        name: functools.partial(getattr(step_kernels, name).readable, np)
        for name in ("split_columns", "join_columns", "conditioner_outputs",
                     "conditioner_cotangent")})
    compiled = _step_kernels_numba
    rest, part = compiled.split_columns(x, start, L)
    rest_e, part_e = numpy_kernels.split_columns(x, start, L)
    np.testing.assert_array_equal(rest, rest_e)
    np.testing.assert_array_equal(part, part_e)
    np.testing.assert_array_equal(compiled.join_columns(rest, part, start), x)
    add = rng.normal(size=rest.shape)
    np.testing.assert_array_equal(compiled.join_columns(rest, part, start, add),
                                  numpy_kernels.join_columns(rest, part, start, add))
    m = data.draw(st.integers(1, 3))
    out = rng.normal(size=(B, (2 * m + 1) * L))
    for got, expected in zip(compiled.conditioner_outputs(out, m, L),
                             numpy_kernels.conditioner_outputs(out, m, L)):
        np.testing.assert_array_equal(got, expected)
    g_ow, g_s, s = (rng.normal(size=(m, B, L)) for _ in range(3))
    np.testing.assert_array_equal(compiled.conditioner_cotangent(g_ow, g_s, s, part),
                                  numpy_kernels.conditioner_cotangent(g_ow, g_s, s, part))


def test_fit_checks_the_shape_of_an_explicit_gradient():
    model, params, x = _perturbed_model({"dim": 4, "kind": "symmetric", "mixing": "reverse",
                                         "spectrum": "raw", "activation": "tanh",
                                         "actnorm": True, "steps": 2, "m": 1, "seed": 0})

    def loss(p, batch):
        return -anp.mean(model.build(p).log_prob(batch))

    def partial_gradient(p, batch):
        value, grads = nll_and_grad(model, p, batch)
        return value, {"steps": grads["steps"][:1]}

    with pytest.raises(ValueError, match="gradient returned"):
        fit(loss, params, x, epochs=1, batch_size=8, progress=False, gradient=partial_gradient)


def test_trained_parameters_are_the_same_with_either_engine():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 7)) * np.linspace(0.5, 2.0, 7) + rng.normal(size=7)
    fitted = {}
    for kind in ("symmetric", "circular"):
        model = conf(7, steps=2, m=2, hidden=(8,), kind=kind)
        params = model.init_params(X, random_state=0)
        for engine in ("numpy", "numba", "model_pass"):
            def loss(p, batch, model=model, engine=engine):
                name = "numba" if engine == "model_pass" else engine
                return -anp.mean(model.build(p, engine=name).log_prob(batch))

            def gradient(p, batch, model=model):
                return nll_and_grad(model, p, batch)

            result = fit(loss, params, X, epochs=3, batch_size=32, learning_rate=1e-2,
                         random_state=0, progress=False,
                         gradient=gradient if engine == "model_pass" else None)
            fitted[kind, engine] = flatten(result.params)[0]
        start = flatten(params)[0]
        assert np.max(np.abs(fitted[kind, "numpy"] - start)) > 1e-3  # it did train
        for engine in ("numba", "model_pass"):
            np.testing.assert_allclose(fitted[kind, engine], fitted[kind, "numpy"], rtol=0,
                                       atol=1e-10)


# --- selection and recording --------------------------------------------------------------


def test_engines_are_selected_by_name():
    assert NUMPY.conf_step is coupling.conf_step
    assert NUMBA.conf_step is numba_engine.conf_step
    assert get_engine(NUMBA) is NUMBA
    assert resolve_engine("auto") == "numba"
    with pytest.raises(ValueError, match="unknown engine 'cuda'"):
        get_engine("cuda")
    with pytest.raises(ValueError, match="unknown engine"):
        ConvCoupling(conditioners.mlp_init(2, (3,), 6), np.zeros(1), np.zeros(1),
                     engine="fast")
    model = conf(4, steps=2, hidden=(3,))
    flow = model.build(model.init_params(random_state=0), engine="numba")
    couplings = [b for step in flow.chain.bijectors for b in step.bijectors
                 if isinstance(b, ConvCoupling)]
    assert [c.engine.name for c in couplings] == ["numba", "numba"]


@pytest.fixture
def without_numba(monkeypatch):
    """Pretend numba is not installed (the engine cache is cleared before and after)."""
    engines._load.cache_clear()
    monkeypatch.setattr(engines, "_has_numba", lambda: False)
    yield
    engines._load.cache_clear()


def test_an_unavailable_engine_raises_a_clear_error(without_numba):
    assert resolve_engine("auto") == "numpy"
    assert engines.available_engines() == ("numpy",)
    with pytest.raises(EngineUnavailableError, match="needs the numba package"):
        get_engine("numba")
    with pytest.raises(ValueError, match="needs the numba package"):
        ConfDensity(engine="numba", epochs=1).fit(np.random.default_rng(0).normal(size=(20, 3)))


@pytest.mark.skipif("cupy" in engines.available_engines(), reason="a CUDA device is usable here")
def test_the_cupy_engine_without_a_gpu_raises_a_clear_error_and_is_never_automatic(tmp_path,
                                                                                  capsys):
    with pytest.raises(EngineUnavailableError, match="cupy"):
        get_engine("cupy")
    assert "cupy" not in engines.available_engines()
    assert resolve_engine("auto") != "cupy"
    X = np.random.default_rng(0).normal(size=(40, 3))
    path = tmp_path / "model.npz"
    ConfDensity(steps=1, hidden=(4,), epochs=1, random_state=0).fit(X).save(path)
    data = tmp_path / "x.npy"
    np.save(data, X)
    assert main(["evaluate", str(path), str(data), "--engine", "cupy"]) == 2
    assert "cupy" in capsys.readouterr().err
    out = tmp_path / "m.npz"
    assert main(["train", str(data), "--out", str(out), "--engine", "cupy", "--quiet"]) == 2
    assert "cupy" in capsys.readouterr().err and not out.exists()


def test_device_training_pass_trains_like_the_numba_engine():
    """The cupy engine's gradient (nll_and_grad_on) through array_api_strict on the CPU:
    the same fit as the numba engine's host pass."""
    import array_api_strict as xps

    X = np.random.default_rng(3).normal(size=(64, 5))
    model = conf(5, steps=2, m=2, hidden=(8,), mixing="1x1", random_state=1)
    params = model.init_params(X, random_state=0)
    loss, host_gradient = train_nll_objective(model, "numba")
    fitted = {}
    for name, gradient in (("host", host_gradient),
                           ("device", functools.partial(engines.nll_and_grad_on, xps, model))):
        fitted[name] = flatten(fit(loss, params, X, epochs=2, batch_size=16,
                                   learning_rate=1e-2, random_state=0, progress=False,
                                   gradient=gradient).params)[0]
    assert np.max(np.abs(fitted["host"] - flatten(params)[0])) > 1e-3  # it did train
    np.testing.assert_allclose(fitted["device"], fitted["host"], rtol=0, atol=1e-10)


def test_estimator_records_the_engine_and_both_engines_fit_the_same(tmp_path):
    X = np.random.default_rng(1).normal(size=(120, 5))
    settings = {"steps": 2, "hidden": (8,), "epochs": 2, "batch_size": 40, "random_state": 0}
    fast = ConfDensity(engine="numba", **settings).fit(X)
    readable = ConfDensity(engine="numpy", **settings).fit(X)
    assert fast.engine_ == "numba" and readable.engine_ == "numpy"
    assert all(record["engine"] == "numba" for record in fast.history_)
    np.testing.assert_allclose(flatten(fast.params_)[0], flatten(readable.params_)[0],
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.score_samples(X[:9]), readable.score_samples(X[:9]),
                               rtol=1e-12)
    np.testing.assert_allclose(fast.sample(7, random_state=2),
                               readable.sample(7, random_state=2), rtol=1e-10)
    path = tmp_path / "model.npz"
    fast.save(path)
    assert load_model(path)[2]["engine"] == "numba"
    loaded = ConfDensity.load(path)
    assert loaded.engine_ == "numba" and loaded.engine == "numba"


def test_cli_engine_option(tmp_path, capsys):
    data, model = tmp_path / "x.npy", tmp_path / "m.npz"
    np.save(data, np.random.default_rng(2).normal(size=(80, 4)))
    assert main(["train", str(data), "--out", str(model), "--steps", "1", "--hidden", "6",
                 "--epochs", "1", "--quiet", "--engine", "numpy"]) == 0
    assert "engine numpy" in capsys.readouterr().out
    results = {}
    for engine in ("numpy", "numba"):
        assert main(["evaluate", str(model), str(data), "--json", "--engine", engine]) == 0
        results[engine] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert results[engine]["engine"] == engine
    assert results["numba"]["nll_mean"] == pytest.approx(results["numpy"]["nll_mean"],
                                                         rel=1e-12)
    assert main(["sample", str(model), "-n", "5", "--out", str(tmp_path / "s.npy"),
                 "--engine", "numba"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 4)
    single = tmp_path / "m32.npz"
    assert main(["train", str(data), "--out", str(single), "--steps", "1", "--hidden", "6",
                 "--epochs", "1", "--quiet", "--dtype", "float32"]) == 0
    assert load_model(single)[0]["steps"][0]["coupling"]["log_alpha"].dtype == np.float32


def test_second_derivatives_are_refused_not_wrong():
    args = random_step_args("symmetric", 3, m=1, batch=2, seed=6)

    def first(x2):
        return anp.sum(grad(lambda x: anp.sum(NUMBA.conf_step(x, *args[1:])[0] ** 2))(x2))

    with pytest.raises(NotImplementedError, match="first derivatives only"):
        grad(first)(args[0])


def test_benchmark_script_runs_and_writes_its_tables(tmp_path):
    """A smoke run of validation/bench_engines.py (tiny sizes; no timing is asserted)."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "validation" / "bench_engines.py"), "--quick",
         "--skip-peers", "--skip-cold", "--threads", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=root, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "bench_engines.json").read_text())
    assert {row["impl"] for row in report["train"]} == {"refconf-numpy", "refconf-numba"}
    assert all(row["median"] > 0 for row in report["train"] + report["sample"])
    assert "## Training step" in (tmp_path / "bench_engines.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench_engines.json",
                                                          "bench_engines.md"]


def _far_from_identity(model, X, seed):
    """Parameters whose conditioner output layers are random (not the zero init)."""
    params = model.init_params(X, random_state=0)
    rng = np.random.default_rng(seed)
    params["steps"] = [
        {**step, "coupling": {**step["coupling"], "conditioner": [
            *step["coupling"]["conditioner"][:-1],
            {key: 0.3 * rng.normal(size=np.shape(value))
             for key, value in step["coupling"]["conditioner"][-1].items()}]}}
        for step in params["steps"]]
    return params


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_threaded_sampling_gives_the_samples_of_one_pass(engine):
    X = np.random.default_rng(4).normal(size=(256, 7))
    model = conf(7, steps=2, m=2, hidden=(16,), mixing="1x1", random_state=2)
    flow = model.build(_far_from_identity(model, X, 5), engine=engine)
    one = flow.sample(1001, random_state=3, threads=1)
    three = flow.sample(1001, random_state=3, threads=3)
    assert one.shape == three.shape == (1001, 7)
    # BLAS may round differently for blocks of other sizes, and the expanding gates
    # amplify it: samples here reach 1e6
    np.testing.assert_allclose(three, one, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(flow.sample(1001, random_state=3), one)  # < 2,048 a thread
    np.testing.assert_allclose(flow.sample(3, random_state=3, threads=8), one[:3],
                               rtol=1e-9, atol=1e-12)  # more threads than samples
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        flow.sample(10, threads=0)

