"""The explicit training pass (refconf.engines.nll_and_grad) in a non-NumPy array namespace.

``array_api_strict`` stands in for CuPy (it implements only the standard and refuses
NumPy arrays in its operations), so a pass that silently computes in NumPy fails here:

* :func:`~refconf.engines.nll_and_grad` on ``array_api_strict`` parameters
  and data equals the NumPy (numba-kernel) pass, which ``tests/test_engines.py`` checks
  against autograd of the readable model: CONF models of both kinds, every mixing, raw
  and exp spectra, tanh and relu, ActNorm on and off, odd and even dimension, 1 to 3
  layers per step, at parameters far from the identity (nll ``rtol = 1e-12``, gradient
  ``atol = 1e-10 * max|grad|``); the gradient is a pytree of ``array_api_strict`` arrays
  with the parameters' structure and shapes;
* the FFT transforms of :mod:`refconf.transforms` (and their transposes)
  equal its dense-matrix transforms, and a whole pass through them the NumPy pass;
* float32 parameters give float32 gradients within float32 precision;
* a few :func:`refconf.train.fit` steps with the gradient computed in ``array_api_strict``
  give the parameters of the NumPy pass (to 1e-10).
"""

import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import assume, given

from refconf import backend, transforms
from refconf.engines import nll_and_grad
from refconf.flows import conf
from refconf.params import flatten, ravel
from refconf.train import fit

from .test_engines import _perturbed_model, model_cases


def _structure(tree):
    """The pytree's containers with each leaf replaced by its shape."""
    return backend.map_leaves(lambda a: tuple(np.shape(backend.host_value(a))), tree)


def _leaves_are_strict(tree):
    leaves = []
    backend.map_leaves(leaves.append, tree)
    return all(backend.namespace(a) is xps for a in leaves)


def _strict_pass(model, params, x):
    return nll_and_grad(model, backend.to_device(params, xps),
                                   backend.to_device(x, xps))


def _assert_same_pass(model, params, x, rtol=1e-12, atol=1e-10):
    nll, grads = nll_and_grad(model, params, x)
    assert np.isfinite(nll)
    nll_s, grads_s = _strict_pass(model, params, x)
    assert backend.namespace(nll_s) is xps
    assert _leaves_are_strict(grads_s)
    assert _structure(grads_s) == _structure(params)
    np.testing.assert_allclose(float(nll_s), nll, rtol=rtol)
    expected = ravel(grads)
    np.testing.assert_allclose(ravel(backend.to_numpy(grads_s)), expected, rtol=0,
                               atol=atol * max(1.0, np.max(np.abs(expected))))


@given(model_cases)
def test_pass_in_array_api_strict_equals_the_numpy_pass(case):
    model, params, x = _perturbed_model(case, scale=0.12)
    readable = -np.mean(model.build(params, engine="numpy").log_prob(x))
    # gates compounding past the float range: no gradient
    assume(np.isfinite(readable) and np.isfinite(nll_and_grad(model, params, x)[0]))
    _assert_same_pass(model, params, x)


@pytest.mark.parametrize("kind, L", [("symmetric", 2), ("symmetric", 5), ("symmetric", 8),
                                     ("circular", 2), ("circular", 5), ("circular", 8)])
def test_fft_transforms_equal_the_matrix_transforms(kind, L):
    rng = np.random.default_rng(L)
    nb = L if kind == "symmetric" else L // 2 + 1
    w = 1.0 + 0.3 * rng.normal(size=(4, nb))
    if kind == "circular":
        w = w + 0.3j * rng.normal(size=(4, nb))
    h, gu = rng.normal(size=(4, L)), rng.normal(size=(4, L))
    h, gu, w = (backend.to_device(a, xps) for a in (h, gu, w))
    fft = transforms.FFTTransforms(xps, kind, L, xps.float64)
    dense = transforms.MatrixTransforms(xps, kind, L, xps.float64)
    (u, U), (u_d, U_d) = fft.conv(h, w), dense.conv(h, w)
    (gh, gw), (gh_d, gw_d) = fft.conv_vjp(gu, w, U), dense.conv_vjp(gu, w, U_d)
    for a, b in [(u, u_d), (U, U_d), (gh, gh_d), (gw, gw_d), (fft.weights, dense.weights)]:
        assert backend.namespace(a) is xps and a.dtype == b.dtype
        np.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind, mixing, dim", [("symmetric", "1x1", 9), ("circular", "reverse", 8),
                                               ("circular", "permutation", 7)])
def test_pass_through_the_fft_transforms_equals_the_numpy_pass(monkeypatch, request, kind, mixing,
                                                               dim):
    monkeypatch.setattr(transforms, "FFT_MIN_LENGTH", {"symmetric": 2, "circular": 2})
    transforms.transforms.cache_clear()
    request.addfinalizer(transforms.transforms.cache_clear)
    case = {"dim": dim, "kind": kind, "mixing": mixing, "spectrum": "exp",
            "activation": "relu", "actnorm": True, "steps": 2, "m": 2, "seed": 3}
    model, params, x = _perturbed_model(case, scale=0.1)
    ops = transforms.transforms(xps, kind, dim // 2, xps.float64)
    assert isinstance(ops, transforms.FFTTransforms)
    _assert_same_pass(model, params, x)


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
def test_pass_in_array_api_strict_runs_in_float32(kind):
    case = {"dim": 7, "kind": kind, "mixing": "1x1", "spectrum": "raw", "activation": "tanh",
            "actnorm": True, "steps": 2, "m": 2, "seed": 4}
    model, params, x = _perturbed_model(case)
    theta, unflatten = flatten(params)
    single = unflatten(theta.astype(np.float32))
    nll, grads = nll_and_grad(model, params, x)
    nll32, grads32 = _strict_pass(model, single, x.astype(np.float32))
    assert nll32.dtype == xps.float32 and _leaves_are_strict(grads32)
    g32 = ravel(backend.to_numpy(grads32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(float(nll32), nll, rtol=1e-5)
    np.testing.assert_allclose(g32, ravel(grads), rtol=0, atol=1e-4 * np.max(np.abs(ravel(grads))))


def test_pass_refuses_numpy_data_with_device_parameters():
    model = conf(4, steps=1, hidden=(3,))
    x = np.random.default_rng(0).normal(size=(5, 4))
    params = backend.to_device(model.init_params(x, random_state=0), xps)
    with pytest.raises(ValueError, match="different devices"):
        nll_and_grad(model, params, x)


def test_training_with_the_array_api_pass_equals_the_numpy_pass():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 7)) * np.linspace(0.5, 2.0, 7) + rng.normal(size=7)
    for kind, mixing in (("symmetric", "1x1"), ("circular", "permutation")):
        model = conf(7, steps=2, m=2, hidden=(8,), kind=kind, mixing=mixing, random_state=0)
        params = model.init_params(X, random_state=0)

        def loss(p, batch, model=model):
            return -np.mean(model.build(p, engine="numpy").log_prob(batch))

        def numpy_gradient(p, batch, model=model):
            return nll_and_grad(model, p, batch)

        def strict_gradient(p, batch, model=model):
            nll, grads = _strict_pass(model, p, batch)
            return float(nll), backend.to_numpy(grads)

        fitted = [flatten(fit(loss, params, X, epochs=2, batch_size=32, learning_rate=1e-2,
                              random_state=0, progress=False, gradient=g).params)[0]
                  for g in (numpy_gradient, strict_gradient)]
        assert np.max(np.abs(fitted[0] - flatten(params)[0])) > 1e-3  # it did train
        np.testing.assert_allclose(fitted[1], fitted[0], rtol=0, atol=1e-10)
