"""Every bijector's explicit reverse pass (``forward_saved`` / ``backward``).

For every bijector (and, through ``Inverse``, the inverse maps that have one), 1-D and
2-D, odd and even lengths, at random parameters far from the identity:

* ``forward_saved`` gives the values and log-det of the readable ``forward``;
* ``backward``, registered as the VJP of an autograd primitive of the inputs and the
  parameters, passes ``check_grads`` (finite differences in random directions), and
  equals autograd's VJP of the readable ``forward`` to 1e-10;
* the same holds on NumPy arrays (compiled kernels) and through each kernel's readable
  version on NumPy, and in ``array_api_strict`` (the readable kernels, as on CuPy).

The whole-model pass (``refconf.engines.nll_and_grad``) is checked against autograd in
``tests/test_engines.py`` and in another array namespace in
``tests/test_model_pass_namespace.py``.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import make_vjp
from autograd.builtins import tuple as traced_tuple
from autograd.extend import defvjp_argnums, primitive

from refconf import (
    ActNorm,
    AffineCoupling,
    Chain,
    CircularConv,
    ConvCoupling,
    ElementwiseFromRegularizer,
    Inverse,
    Invertible1x1,
    MaskedAutoregressive,
    Permutation,
    Reverse,
    Scale,
    Shift,
    SLog,
    SymmetricConv,
)
from refconf.backend import to_device, to_numpy
from refconf.bijectors import Logit
from refconf.bijectors.squeeze import Squeeze
from refconf.conditioners import mlp_init
from refconf.params import ravel
from refconf.testing import check_vjp

from . import strategies as S


def _actnorm(event_ndim):
    def build(rng):
        shape = (5,) if event_ndim == 1 else (3, 4, 4)
        params = S.actnorm_params(rng, (shape[0],) if event_ndim == 1 else (3, 1, 1))
        return (lambda p: ActNorm(**p, event_ndim=event_ndim)), params, shape
    return build


def _invertible_1x1(event_ndim):
    def build(rng):
        params = S.invertible_1x1_params(rng, 3 if event_ndim == 3 else 5)
        fixed = {k: params.pop(k) for k in ("perm", "sign")}
        shape = (5,) if event_ndim == 1 else (3, 4, 4)
        return (lambda p: Invertible1x1(**fixed, **p, event_ndim=event_ndim)), params, shape
    return build


def _coupling(kind, spectrum, swap, dim):
    def build(rng):
        d_base, d_update = (dim - dim // 2, dim // 2) if swap else (dim // 2, dim - dim // 2)
        m = 2
        conditioner = mlp_init(d_base, (6,), (2 * m + 1) * d_update, random_state=rng,
                               zero_output=False)
        conditioner[-1]["W"] *= 0.3
        params = {"conditioner": conditioner, "log_alpha": rng.normal(0.0, 0.5, size=m),
                  "log_alpha_prime": rng.normal(0.0, 0.5, size=m)}
        return (lambda p: ConvCoupling(**p, kind=kind, spectrum=spectrum, activation="tanh",
                                       swap=swap)), params, (dim,)
    return build


def _no_parameters(bijector, shape):
    def build(rng):
        return (lambda p: bijector), {}, shape
    return build


def _with(make_bijector, **draw):
    """A case of a bijector ``make_bijector(**params)`` whose parameters are drawn by
    ``draw[name](rng)``; the event shape is ``shape`` (a keyword of ``draw``)."""
    shape = draw.pop("shape")

    def build(rng):
        params = {name: fn(rng) for name, fn in draw.items()}
        return (lambda p: make_bijector(**p)), params, shape
    return build


def _inverse(case):
    """The case's bijector wrapped in :class:`~refconf.bijectors.Inverse`."""
    def build(rng):
        make, params, shape = case(rng)[:3]
        return (lambda p: Inverse(make(p))), params, shape
    return build


def _symmetric(shape, ndim):
    return _with(lambda w_hat: SymmetricConv(w_hat, ndim=ndim), shape=shape,
                 w_hat=lambda rng: S.symmetric_spectrum(rng, shape))


def _circular(shape, ndim):
    return _with(lambda w: CircularConv(w, ndim=ndim), shape=shape,
                 w=lambda rng: S.circular_kernel_of_shape(rng, shape, ndim)[0])


def _affine(dim, swap, activation):
    def build(rng):
        d_base, d_update = (dim - dim // 2, dim // 2) if swap else (dim // 2, dim - dim // 2)
        params = AffineCoupling.init_params(d_base, d_update, hidden=(6,), random_state=rng)
        params["conditioner"][-1]["W"] = 0.3 * rng.normal(size=(6, 2 * d_update))
        params["conditioner"][-1]["b"] = 0.3 * rng.normal(size=2 * d_update)
        params["scale"] = rng.uniform(0.5, 2.0, size=d_update)
        return (lambda p: AffineCoupling(**p, activation=activation, swap=swap)), params, (dim,)
    return build


def _maf(dim):
    def build(rng):
        made = MaskedAutoregressive.init_params(dim, hidden=(8, 7), random_state=rng)
        made[-1]["W"] = 0.3 * rng.normal(size=(7, 2 * dim))
        made[-1]["b"] = 0.3 * rng.normal(size=2 * dim)
        order = S.permutation(rng, dim)
        return (lambda p: MaskedAutoregressive(p["made"], order, activation="tanh")), \
            {"made": made}, (dim,)
    return build


def _gamma(y):
    """A smooth, asymmetric regulariser for the Lemma-1 bijector."""
    return 0.5 * anp.log1p(y * y) + 0.3 * y


def _chain(rng):
    actnorm, a_params, _ = _actnorm(1)(rng)
    mixing, m_params, _ = _invertible_1x1(1)(rng)
    coupling, c_params, _ = _coupling("circular", "exp", True, 5)(rng)
    params = {"actnorm": a_params, "coupling": c_params, "mixing": m_params}

    def make(p):
        return Chain([actnorm(p["actnorm"]), coupling(p["coupling"]), mixing(p["mixing"])],
                     keys=["actnorm", "coupling", "mixing"])
    return make, params, (5,)


CASES = {
    "actnorm_vector": _actnorm(1), "actnorm_image": _actnorm(3),
    "invertible_1x1_vector": _invertible_1x1(1), "invertible_1x1_image": _invertible_1x1(3),
    "permutation": _no_parameters(Permutation([2, 0, 4, 1, 3]), (5,)),
    "permutation_channels": _no_parameters(Permutation([1, 2, 0], event_ndim=3), (3, 2, 2)),
    "reverse": _no_parameters(Reverse(), (5,)),
    "reverse_channels": _no_parameters(Reverse(event_ndim=3), (3, 2, 2)),
    "squeeze": _no_parameters(Squeeze(), (3, 4, 4)),
    "coupling_symmetric_raw": _coupling("symmetric", "raw", False, 7),
    "coupling_symmetric_exp_swap": _coupling("symmetric", "exp", True, 6),
    "coupling_circular_raw_swap": _coupling("circular", "raw", True, 7),
    "coupling_circular_exp": _coupling("circular", "exp", False, 8),
    "chain": _chain,
    "slog_scalar": _with(SLog, shape=(5,), alpha=lambda rng: S.slog_alpha(rng)),
    "slog_per_element": _with(lambda alpha: SLog(alpha, event_ndim=2), shape=(2, 3),
                              alpha=lambda rng: S.slog_alpha(rng, (3,))),
    "scale": _with(Scale, shape=(5,), s=lambda rng: S.scale_factors(rng, (5,))),
    "scale_broadcast": _with(lambda s: Scale(s, event_ndim=2), shape=(2, 3),
                             s=lambda rng: S.scale_factors(rng, (1, 3))),
    "shift": _with(Shift, shape=(4,), t=lambda rng: S.shift(rng, (4,))),
    "shift_broadcast": _with(lambda t: Shift(t, event_ndim=2), shape=(3, 4),
                             t=lambda rng: S.shift(rng, (1, 4))),
    "logit": _no_parameters(Logit(0.05), (5,)),
    "lemma1": _no_parameters(ElementwiseFromRegularizer(_gamma), (3,)),
    "symmetric_1d_odd": _symmetric((7,), 1), "symmetric_1d_even": _symmetric((6,), 1),
    "symmetric_depthwise": _symmetric((2, 5), 1),
    "symmetric_2d_odd": _symmetric((3, 5), 2), "symmetric_2d_even": _symmetric((4, 6), 2),
    "circular_1d_odd": _circular((7,), 1), "circular_1d_even": _circular((8,), 1),
    "circular_depthwise": _circular((2, 6), 1),
    "circular_2d_odd": _circular((3, 5), 2), "circular_2d_even": _circular((4, 6), 2),
    "affine_odd": _affine(7, False, "tanh"), "affine_even_swap": _affine(6, True, "relu"),
    "affine_odd_swap": _affine(5, True, "tanh"),
    "maf_odd": _maf(5), "maf_even": _maf(6),
}
CASES.update({f"inverse_{name}": _inverse(CASES[name]) for name in [
    "slog_per_element", "scale_broadcast", "shift_broadcast", "logit", "lemma1",
    "symmetric_1d_odd", "symmetric_2d_even", "circular_1d_even", "circular_2d_odd",
    "permutation", "reverse"]})
CASES["inverse_squeeze"] = _inverse(_no_parameters(Squeeze(), (12, 2, 2)))

#: Cases whose data must lie in (0, 1) in the forward direction, or be any real in the
#: inverse direction of such a bijector.
UNIT_INTERVAL = {"logit"}


def _explicit(make):
    """``(x, params) -> (y, log_det)`` by ``forward_saved``, as an autograd primitive
    whose VJP is the bijector's ``backward``."""
    @primitive
    def f(x, params):
        y, log_det, _ = make(params).forward_saved(x)
        return y, log_det * np.ones(x.shape[0])

    def vjp_maker(argnums, ans, args, kwargs):
        x, params = args
        _, _, saved = make(params).forward_saved(x)

        def vjp(g):
            g_x, grads = make(params).backward(saved, g[0], g[1])
            both = (g_x, {} if grads is None else grads)
            return tuple(both[i] for i in argnums)
        return vjp

    defvjp_argnums(f, vjp_maker)
    return f


def _readable(make):
    def f(x, params):
        return traced_tuple(make(params).forward(x))
    return f


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_passes_check_grads_and_equals_autograd(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    make, params, shape = CASES[name](rng)
    x = S.data(rng, (4,) + shape)
    if name in UNIT_INTERVAL:
        x = rng.uniform(0.02, 0.98, size=x.shape)
    explicit, readable = _explicit(make), _readable(make)
    for a, b in zip(explicit(x, params), readable(x, params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    check_vjp(explicit, x, params)
    cotangent = (rng.normal(size=x.shape[:1] + make(params).forward(x)[0].shape[1:]),
                 rng.normal(size=x.shape[:1]))
    got = make_vjp(explicit, argnum=0)(x, params)[0](cotangent)
    expected = make_vjp(readable, argnum=0)(x, params)[0](cotangent)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    if params:
        got = make_vjp(explicit, argnum=1)(x, params)[0](cotangent)
        expected = make_vjp(readable, argnum=1)(x, params)[0](cotangent)
        np.testing.assert_allclose(ravel(got), ravel(expected), rtol=1e-10, atol=1e-10)


def test_a_bijector_without_an_explicit_pass_says_so():
    coupling, params, _ = _coupling("symmetric", "raw", False, 5)(np.random.default_rng(0))
    with pytest.raises(NotImplementedError, match="ConvCoupling has no explicit reverse pass"):
        Inverse(coupling(params)).forward_saved(np.ones((2, 5)))


#: Bijectors that compute in NumPy only (SciPy quadrature and root finding).
NUMPY_ONLY = {"lemma1", "inverse_lemma1"}


@pytest.mark.parametrize("name", sorted(set(CASES) - NUMPY_ONLY))
def test_backward_in_another_namespace_equals_numpy(name):
    """The same explicit pass with the readable kernels in ``array_api_strict`` (which
    stands in for CuPy): values, log-dets and every cotangent equal NumPy's."""
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(sorted(CASES).index(name))
    make, params, shape = CASES[name](rng)
    x = S.data(rng, (4,) + shape)
    if name in UNIT_INTERVAL:
        x = rng.uniform(0.02, 0.98, size=x.shape)
    results = []
    for move in (lambda a: a, lambda a: to_device(a, xps)):
        bijector = make(move(params))
        y, log_det, saved = bijector.forward_saved(move(x))
        cotangents = (np.random.default_rng(1).normal(size=tuple(y.shape)),
                      np.random.default_rng(2).normal(size=x.shape[:1]))
        g_x, grads = bijector.backward(saved, *(move(c) for c in cotangents))
        results.append(to_numpy((y, log_det, g_x, {} if grads is None else grads)))
    np.testing.assert_allclose(ravel(results[1]), ravel(results[0]), rtol=1e-12, atol=1e-12)
