"""The CuPy backend on a CUDA GPU equals the CPU (``pytest -m gpu``; skipped without
CuPy or a CUDA device).

* every bijector of the law registry (``tests/test_bijector_laws.py``, random parameters
  far from the identity), moved with ``Bijector.to("cupy")``: forward, inverse and
  log-dets on the GPU equal the NumPy results (float64 ``1e-10``; float32 the law tests'
  tolerances, since cuFFT and pocketfft round differently), relative to the largest
  value, and come back as CuPy arrays;
* CONF models (both kernel kinds, every mixing, odd and even dimension) at perturbed
  parameters, built with ``engine="cupy"``: ``log_prob`` and ``sample`` (same seed);
* :class:`refconf.ConfDensity` with ``engine="cupy"``: ``score_samples`` and ``sample``
  equal the numba engine's, as NumPy arrays; fitting on the GPU is refused;
* the :func:`~refconf.backend.to_device` / :func:`~refconf.backend.to_numpy` round trip.

The same comparisons run without a GPU on ``array_api_strict`` (``tests/test_namespace.py``)
and, as a script with timings, in ``validation/gpu_check.py``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconf import ConfDensity, backend
from refconf.engines import EngineUnavailableError
from refconf.params import flatten

from .test_bijector_laws import (
    COMPOSITE,
    FLOAT32_CHAIN_RTOL,
    FLOAT32_RTOL,
    FLOAT64_ONLY,
    NUMPY_ONLY,
    REGISTRY,
)
from .test_namespace import MODELS, _perturbed, conf_case

cupy = pytest.importorskip("cupy", reason="the GPU tests need CuPy: pip install 'refconf[gpu]'")
try:
    backend.require_cupy()
except EngineUnavailableError as e:
    pytest.skip(f"no usable CUDA device: {e}", allow_module_level=True)

pytestmark = pytest.mark.gpu

FLOAT64_RTOL = 1e-10


def _rtol(name, dtype):
    if dtype == np.float64:
        return FLOAT64_RTOL
    return FLOAT32_CHAIN_RTOL if name in COMPOSITE or "chain" in name else FLOAT32_RTOL


def _assert_close(actual, expected, rtol):
    """``actual`` (a CuPy array) equals the NumPy ``expected`` to ``rtol`` relative to the
    largest entry."""
    assert isinstance(actual, cupy.ndarray), f"expected a CuPy array, got {type(actual)}"
    actual, expected = actual.get(), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


CASES = [pytest.param(name, dtype, id=f"{name}-{dtype.__name__}")
         for name in REGISTRY if name not in FLOAT64_ONLY | NUMPY_ONLY
         for dtype in (np.float64, np.float32)]


@pytest.mark.parametrize("name, dtype", CASES)
def test_bijector_on_the_gpu_equals_numpy(name, dtype):
    rtol = _rtol(name, dtype)

    @settings(max_examples=5)
    @given(st.data())
    def run(data):
        bijector, x = REGISTRY[name](data.draw, dtype)
        y, log_det = bijector.forward(x)
        x_back, log_det_inv = bijector.inverse(y)

        on_gpu = bijector.to("cupy")
        y_g, log_det_g = on_gpu.forward(backend.to_device(x, "cupy"))
        _assert_close(y_g, y, rtol)
        _assert_close(log_det_g, log_det, rtol)
        assert y_g.dtype == np.asarray(y).dtype
        x_g, log_det_inv_g = on_gpu.inverse(backend.to_device(y, "cupy"))
        _assert_close(x_g, x_back, rtol)
        _assert_close(log_det_inv_g, log_det_inv, rtol)

    run()


@pytest.mark.parametrize("kind, mixing, dim", MODELS)
def test_conf_model_on_the_gpu_equals_numpy(kind, mixing, dim):
    model, params, x = conf_case(kind, mixing, dim, batch=64)
    flow = model.build(params, engine="numpy")
    gpu_flow = model.build(params, engine="cupy")

    log_p = flow.log_prob(x)
    assert np.ptp(log_p) > 1.0, "a flow this close to a constant would hide mistakes"
    _assert_close(gpu_flow.log_prob(backend.to_device(x, "cupy")), log_p, FLOAT64_RTOL)
    _assert_close(gpu_flow.log_prob(x), log_p, FLOAT64_RTOL)  # NumPy input is moved
    _assert_close(flow.to("cupy").log_prob(x), log_p, FLOAT64_RTOL)
    _assert_close(gpu_flow.sample(32, random_state=3), flow.sample(32, random_state=3),
                  FLOAT64_RTOL)


@pytest.fixture(scope="module")
def estimator():
    """A small ConfDensity fitted with numba, its parameters then moved off the fit's
    near-identity start."""
    rng = np.random.default_rng(0)
    X = rng.laplace(size=(512, 6)) @ rng.normal(size=(6, 6))
    est = ConfDensity(steps=2, m=2, hidden=(16,), epochs=2, batch_size=256,
                      random_state=0, engine="numba").fit(X)
    est.params_ = _perturbed(est.params_, rng)
    return est, X


def test_conf_density_on_the_gpu_equals_numba(estimator):
    est, X = estimator
    expected_scores = est.score_samples(X)
    expected_samples = est.sample(100, random_state=4)
    est.set_params(engine="cupy")
    try:
        scores, samples = est.score_samples(X), est.sample(100, random_state=4)
    finally:
        est.set_params(engine="numba")
    assert isinstance(scores, np.ndarray) and isinstance(samples, np.ndarray)
    for actual, expected in ((scores, expected_scores), (samples, expected_samples)):
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(actual, expected, rtol=FLOAT64_RTOL,
                                   atol=FLOAT64_RTOL * scale)


def test_conf_density_fits_on_the_gpu_like_the_numba_engine():
    X = np.random.default_rng(1).normal(size=(64, 4))
    settings = {"steps": 2, "hidden": (8,), "epochs": 2, "batch_size": 16, "random_state": 0}
    gpu = ConfDensity(engine="cupy", **settings).fit(X)
    cpu = ConfDensity(engine="numba", **settings).fit(X)
    assert gpu.engine_ == "cupy"
    np.testing.assert_allclose(flatten(gpu.params_)[0], flatten(cpu.params_)[0], rtol=0,
                               atol=1e-10)


def test_to_device_and_back_keeps_values_dtypes_and_structure():
    rng = np.random.default_rng(5)
    tree = {"w": rng.normal(size=(3, 4)), "w32": rng.normal(size=5).astype(np.float32),
            "spectrum": rng.normal(size=3) + 1j * rng.normal(size=3),
            "perm": rng.permutation(6), "layers": [{"b": rng.normal(size=2)}, (2.5, None)],
            "name": "conf"}
    moved = backend.to_device(tree, "cupy")
    for key in ("w", "w32", "spectrum", "perm"):
        assert isinstance(moved[key], cupy.ndarray) and moved[key].dtype == tree[key].dtype
    assert isinstance(moved["layers"][0]["b"], cupy.ndarray)
    assert moved["layers"][1] == (2.5, None) and moved["name"] == "conf"
    back = backend.to_numpy(moved)
    for key in ("w", "w32", "spectrum", "perm"):
        assert isinstance(back[key], np.ndarray)
        np.testing.assert_array_equal(back[key], tree[key])
        assert back[key].dtype == tree[key].dtype
    np.testing.assert_array_equal(back["layers"][0]["b"], tree["layers"][0]["b"])
    assert backend.namespace(moved["w"]) is not backend.namespace(tree["w"])
