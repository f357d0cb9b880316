"""The array-API path (refconf.backend): every map runs in a non-NumPy namespace.

``array_api_strict`` stands in for a GPU library: it implements nothing beyond the
standard and refuses NumPy arrays and NumPy scalars in its operations, so a function that
silently computes in NumPy (or mixes the two) fails here, as it would on CuPy.

* every bijector of the law registry (``tests/test_bijector_laws.py``, random parameters
  far from the identity), moved with ``Bijector.to``: forward, inverse and log-dets in
  ``array_api_strict`` equal the NumPy results (float64 ``rtol = 1e-12``, float32
  ``1e-4``, relative to the largest value) with NumPy's dtypes, and the outputs are
  ``array_api_strict`` arrays, so no NumPy round trip hides inside;
* the spectral functions directly, 1-D and 2-D, including the DCT-I by rfft;
* CONF models (both kernel kinds, odd and even dimension, every mixing) at perturbed
  parameters: ``log_prob`` (including the ``-inf`` overflow report) and ``sample``;
* :func:`~refconf.backend.namespace` errors, :func:`~refconf.backend.require_cupy`
  without CuPy (or without a CUDA device), and the :func:`~refconf.backend.to_device`
  round trip.
"""

import importlib.util
import types
import warnings

import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconf import backend, spectral
from refconf.bijectors import ElementwiseFromRegularizer, SymmetricConv
from refconf.bijectors.base import validate_input
from refconf.engines import EngineUnavailableError
from refconf.flows import MIXINGS, conf
from refconf.primitives import dct1, dct1_via_rfft, idct1, idct1_via_irfft

from . import strategies as S
from .test_bijector_laws import FLOAT64_ONLY, NUMPY_ONLY, REGISTRY, gamma_abs

RTOL = {np.float64: 1e-12, np.float32: 1e-4}
#: Examples per bijector and dtype, a third of the profile's (the NumPy maps themselves
#: are law-tested in test_bijector_laws.py): 8 under "ci".
EXAMPLES = max(1, settings.default.max_examples // 3)


def _is_strict(a):
    return backend.namespace(a) is xps


def _assert_close(actual, expected, dtype):
    """``actual`` (an array_api_strict array) equals the NumPy ``expected`` to ``rtol``
    relative to the largest entry (a per-entry relative error would fail on entries that
    cancel to near zero)."""
    assert _is_strict(actual), f"expected an array_api_strict array, got {type(actual)}"
    actual = backend.to_numpy(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


# --- every bijector --------------------------------------------------------------------


CASES = [pytest.param(name, dtype, id=f"{name}-{dtype.__name__}")
         for name in REGISTRY if name not in FLOAT64_ONLY | NUMPY_ONLY
         for dtype in (np.float64, np.float32)]


@pytest.mark.parametrize("name, dtype", CASES)
def test_bijector_in_array_api_strict_equals_numpy(name, dtype):
    @settings(max_examples=EXAMPLES)
    @given(st.data())
    def run(data):
        bijector, x = REGISTRY[name](data.draw, dtype)
        y, log_det = bijector.forward(x)
        x_back, log_det_inv = bijector.inverse(y)

        moved = bijector.to(xps)
        y_s, log_det_s = moved.forward(backend.to_device(x, xps))
        _assert_close(y_s, y, dtype)
        _assert_close(log_det_s, log_det, dtype)
        for actual, expected in [(y_s, y), (log_det_s, log_det)]:  # NumPy's dtypes too
            assert actual.dtype == backend.to_device(np.asarray(expected), xps).dtype
        x_s, log_det_inv_s = moved.inverse(backend.to_device(y, xps))
        _assert_close(x_s, x_back, dtype)
        _assert_close(log_det_inv_s, log_det_inv, dtype)
        # back on the host the copy computes as the original did
        y_host, _ = moved.to("numpy").forward(x)
        np.testing.assert_array_equal(y_host, y)

    run()


def test_moved_bijector_knows_its_namespace_and_rejects_numpy_input():
    rng = S.rng_from(0)
    conv = SymmetricConv(S.symmetric_spectrum(rng, (6,)))
    moved = conv.to(xps)
    assert moved.namespace() is xps and conv.namespace() is backend.namespace(np.ones(1))
    assert isinstance(conv.w_hat, np.ndarray), "to() must not change the original"
    with pytest.raises(ValueError, match="different devices.*to_device"):
        moved.forward(rng.normal(size=(2, 6)))


def test_lemma1_bijector_is_numpy_only():
    lemma = ElementwiseFromRegularizer(gamma_abs(1.0))
    x = xps.asarray([[0.5, -1.0]])
    for direction in (lemma.forward, lemma.inverse):
        with pytest.raises(ValueError, match="NumPy arrays only"):
            direction(x)


def test_validate_input_on_device_arrays():
    x = xps.asarray([[0.0, float("nan"), float("inf")]])
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        validate_input(x, 1)
    with pytest.raises(ValueError, match="real floating-point"):
        validate_input(xps.asarray([[1, 2]]), 1)
    with pytest.raises(ValueError, match=r"trailing event shape \(3,\)"):
        validate_input(xps.ones((2, 2)), 1, (3,))
    assert validate_input(x, 1, finite=False) is x


# --- the spectral functions -------------------------------------------------------------


@pytest.mark.parametrize("kind", S.CONV_KINDS)
@settings(max_examples=5)
@given(data=st.data())
def test_spectral_functions_in_array_api_strict(kind, data):
    shape, ndim = data.draw(S.conv_event_shapes(kind), label="event shape, ndim")
    rng = S.rng_from(data.draw(S.seeds(), label="seed"))
    x = S.data(rng, (2,) + shape)
    w = rng.normal(size=shape)
    w_hat = S.symmetric_spectrum(rng, shape)
    w_spatial, w_half = S.circular_kernel_of_shape(rng, shape, ndim)
    n = shape[-1]
    d = backend.to_device
    checks = [
        (spectral.symmetric_spectrum(d(w, xps), ndim), spectral.symmetric_spectrum(w, ndim)),
        (spectral.symmetric_conv(d(x, xps), d(w_hat, xps), ndim),
         spectral.symmetric_conv(x, w_hat, ndim)),
        (spectral.symmetric_deconv(d(x, xps), d(w_hat, xps), ndim),
         spectral.symmetric_deconv(x, w_hat, ndim)),
        (spectral.symmetric_log_abs_det(d(w_hat, xps), len(shape)),
         spectral.symmetric_log_abs_det(w_hat, len(shape))),
        (spectral.circular_spectrum(d(w_spatial, xps), ndim),
         spectral.circular_spectrum(w_spatial, ndim)),
        (spectral.circular_kernel(d(w_half, xps), n, ndim), w_spatial),
        (spectral.circular_conv(d(x, xps), d(w_half, xps), ndim),
         spectral.circular_conv(x, w_half, ndim)),
        (spectral.circular_deconv(d(x, xps), d(w_half, xps), ndim),
         spectral.circular_deconv(x, w_half, ndim)),
        (spectral.circular_log_abs_det(d(w_half, xps), n, ndim, len(shape)),
         spectral.circular_log_abs_det(w_half, n, ndim, len(shape))),
    ]
    for actual, expected in checks:
        _assert_close(actual, expected, np.float64)


def test_dct1_by_rfft_in_array_api_strict():
    rng = S.rng_from(1)
    for L in (2, 3, 8, 9):
        x = rng.normal(size=(3, L))
        _assert_close(dct1_via_rfft(xps.asarray(x), xps), dct1(x), np.float64)
        _assert_close(idct1_via_irfft(xps.asarray(x), xps), idct1(x), np.float64)
        x32 = xps.asarray(x.astype(np.float32))
        assert idct1_via_irfft(x32, xps).dtype == xps.float32


def test_check_invertible_on_device_arrays():
    with pytest.raises(ValueError, match="1 zero or near-zero eigenvalue"):
        spectral.check_invertible(xps.asarray([[2.0, 1e-20, -1.0]]), 1)
    with pytest.raises(ValueError, match="non-finite"):
        spectral.check_invertible(xps.asarray([2.0, float("nan")]), 1)
    spectral.check_invertible(xps.asarray([2.0, -0.5]), 1)


# --- CONF models ----------------------------------------------------------------------


def _perturbed(params, rng, spread=0.1):
    """Every floating parameter moved by N(0, spread^2): far from the identity."""
    return backend.map_leaves(
        lambda a: a + spread * rng.normal(size=np.shape(a)) if isinstance(a, np.ndarray) else a,
        params)


MODELS = [pytest.param(kind, mixing, dim, id=f"{kind}-{mixing}-D{dim}")
          for kind in ("symmetric", "circular") for mixing in MIXINGS for dim in (5, 6)]


def conf_case(kind, mixing, dim, batch):
    """A CONF model of MODELS, data, and parameters far from the identity."""
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(batch, dim))
    model = conf(dim, steps=3, m=2, hidden=(8,), kind=kind, mixing=mixing,
                 spectrum="raw" if dim % 2 else "exp", random_state=1)
    return model, _perturbed(model.init_params(x, random_state=2), rng), x


@pytest.mark.parametrize("kind, mixing, dim", MODELS)
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_conf_model_in_array_api_strict_equals_numpy(kind, mixing, dim):
    model, params, x = conf_case(kind, mixing, dim, batch=16)
    flow = model.build(params)
    strict_flow = model.build(backend.to_device(params, xps))
    assert strict_flow.namespace is xps

    log_p = flow.log_prob(x)
    assert np.ptp(log_p) > 1.0, "a flow this close to a constant would hide mistakes"
    _assert_close(strict_flow.log_prob(backend.to_device(x, xps)), log_p, np.float64)
    _assert_close(strict_flow.log_prob(x), log_p, np.float64)     # NumPy input is moved
    _assert_close(flow.to(xps).log_prob(x), log_p, np.float64)    # a moved flow
    # a NumPy flow given device input computes (and answers) in NumPy
    np.testing.assert_allclose(flow.log_prob(backend.to_device(x, xps)), log_p, rtol=1e-15)

    _assert_close(strict_flow.sample(8, random_state=3), flow.sample(8, random_state=3),
                  np.float64)


def test_conf_log_prob_overflow_is_minus_inf_in_array_api_strict():
    """A sample far in the tails overflows an expanding gate: -inf and one warning, on
    both paths."""
    rng = np.random.default_rng(0)
    model = conf(4, steps=2, m=1, hidden=(8,), actnorm=False, alpha_init=3.0)
    params = _perturbed(model.init_params(random_state=0), rng, spread=1.0)
    x = np.array([[0.1, -0.2, 0.3, 0.4], [1e300, -1e300, 1e300, 1e300]])
    with pytest.warns(RuntimeWarning, match="1 sample"):
        log_p = model.build(params).log_prob(x)
    assert np.isfinite(log_p[0]) and log_p[1] == -np.inf
    with pytest.warns(RuntimeWarning, match="1 sample"):
        log_p_s = model.build(backend.to_device(params, xps)).log_prob(x)
    _assert_close(log_p_s[:1], log_p[:1], np.float64)
    assert float(log_p_s[1]) == -np.inf


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed")
def test_numba_engine_rejects_device_parameters():
    model = conf(4, steps=1, m=1, hidden=(8,))
    params = backend.to_device(model.init_params(random_state=0), xps)
    with pytest.raises(ValueError, match="numba.*NumPy arrays only"):
        model.build(params, engine="numba")
    with pytest.raises(ValueError, match="numba.*NumPy arrays only"):
        model.build(model.init_params(random_state=0), engine="numba").chain.to(xps)


# --- namespace, require_cupy, to_device --------------------------------------------------


def test_namespace_of_host_and_device_arrays():
    host = backend.namespace(np.ones(2), 1.0, np.float32(2.0), None, [1.0])
    assert backend.is_autograd(host)
    assert backend.namespace(xps.ones(2), 1.0, None) is xps
    with pytest.raises(ValueError, match=r"argument 0 is a NumPy array.*argument 2 is .*"
                                         r"array_api_strict.*to_device"):
        backend.namespace(np.ones(2), 3.0, xps.ones(2))
    with pytest.raises(ValueError, match="different devices"):
        spectral.symmetric_conv(np.ones((2, 3)), xps.ones(3))


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_require_cupy_without_cupy_names_the_package():
    with pytest.raises(EngineUnavailableError, match=r"cupy.*refconf\[gpu\]"):
        backend.require_cupy()
    with pytest.raises(EngineUnavailableError, match="cupy"):
        backend.to_device(np.ones(2), "cupy")


def _fake_cupy(get_device_count):
    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(__name__="cupy", cuda=types.SimpleNamespace(runtime=runtime))


def test_require_cupy_without_a_cuda_device(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(EngineUnavailableError, match=r"no CUDA device.*getDeviceCount"):
        backend.require_cupy()

    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver")

    monkeypatch.setitem(__import__("sys").modules, "cupy", _fake_cupy(no_driver))
    with pytest.raises(EngineUnavailableError, match="CUDA is not usable.*InsufficientDriver"):
        backend.require_cupy()


def test_to_device_round_trip_keeps_values_dtypes_and_structure():
    rng = np.random.default_rng(0)
    tree = {
        "f64": rng.normal(size=(3, 2)),
        "f32": rng.normal(size=4).astype(np.float32),
        "c128": rng.normal(size=3) + 1j * rng.normal(size=3),
        "i64": rng.permutation(5),
        "nested": [(np.float32(1.5), 2.0, "text"), {"none": None, "n": 7}],
    }
    moved = backend.to_device(tree, xps)
    assert moved["f32"].dtype == xps.float32 and moved["c128"].dtype == xps.complex128
    assert moved["i64"].dtype == xps.int64 and moved["nested"][0][0].dtype == xps.float32
    assert all(_is_strict(moved[k]) for k in ("f64", "f32", "c128", "i64"))
    assert isinstance(moved["nested"][0], tuple) and moved["nested"][0][1:] == (2.0, "text")
    back = backend.to_numpy(moved)
    for key in ("f64", "f32", "c128", "i64"):
        assert isinstance(back[key], np.ndarray) and back[key].dtype == tree[key].dtype
        np.testing.assert_array_equal(back[key], tree[key])
    assert back["nested"][0][0] == np.float32(1.5) and back["nested"][0][0].dtype == np.float32
    assert back["nested"][1] == {"none": None, "n": 7}
    back["f64"][0, 0] = 0.0  # host copies are writable


def test_to_device_rejects_unknown_targets():
    with pytest.raises(ValueError, match="unknown target"):
        backend.to_device(np.ones(2), "tpu")


def test_flow_sample_is_the_same_on_every_device():
    model = conf(3, steps=1, m=1, hidden=(4,))
    params = model.init_params(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = model.build(params).sample(5, random_state=7)
        b = model.build(backend.to_device(params, xps)).sample(5, random_state=7)
    _assert_close(b, a, np.float64)
