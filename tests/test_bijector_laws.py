"""Every bijector against every law (``docs/architecture.md``, "Tests").

One registry, :data:`REGISTRY`, maps a name to a builder ``(draw, dtype) -> (bijector,
x)``; hypothesis draws the shapes and a seed, the builder draws random parameters far
from the identity (``tests/strategies.py``). Each case goes through
:func:`refconf.testing.check_bijector`:

* ``inverse(forward(x)) == x``;
* forward log-det == ``slogdet`` of the dense Jacobian of one sample (autograd), for
  every sample of the batch;
* inverse log-det == minus the forward log-det; all outputs finite with one log-det per
  sample.

Chains are also checked to add their members' log-dets, and the Lemma-1 bijector
(``ElementwiseFromRegularizer``) against the S-Log gate and against finite differences
of its quadrature (its VJPs are written analytically, so the dense-Jacobian law alone
would only compare the VJP with the log-det formula, both derived from ``gamma``).

Tolerances (errors are relative to ``max(1, |expected|)``), and the largest errors
seen over 300 random cases per registry entry and dtype (~19,000 cases, sizes as drawn
here; measured with ``check_bijector(..., rtol=inf)``):

* float64: ``FLOAT64_RTOL = 1e-9`` (:func:`refconf.testing.default_tolerance`).
  Largest seen: 1e-14 for single maps, 2e-13 for the round trip of a nine-map chain.
* float32: ``FLOAT32_RTOL = 1e-4`` for single maps. Largest seen: round trip 5e-6
  (Glow 1x1 weight, condition number <= 100), log-det against the dense Jacobian 5e-6
  (symmetric (C, H, W) convolution with |w_hat| in [0.1, 10]): ~40 float32 ulps, as the
  condition numbers (<= 100) predict. The margin is ~20x.
* float32 chains: ``FLOAT32_CHAIN_RTOL = 1e-3``. Condition numbers multiply along a
  chain; largest seen: round trip 1.2e-4, log-det 4e-5 (margin ~8x).

Ordinary log-det mistakes (a sign, a missing term, a forgotten factor) are errors of
order 1, far above every bound (``tests/test_testing.py`` shows the checker catching
them, including a 1% log-det error in float32).

The Lemma-1 bijector is float64 only: its quadrature and root finding run in double
precision and return float64.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refconf
from refconf import (
    ActNorm,
    Chain,
    CircularConv,
    ElementwiseFromRegularizer,
    Inverse,
    Invertible1x1,
    Permutation,
    Reverse,
    Scale,
    Shift,
    SLog,
    SymmetricConv,
)
from refconf.backend import map_leaves
from refconf.bijectors import (
    AffineCoupling,
    AffineCoupling2D,
    ConvCoupling,
    ConvCoupling2D,
    Logit,
    MaskedAutoregressive,
    MultiScaleLevel,
)
from refconf.bijectors.coupling import split_sizes
from refconf.bijectors.squeeze import Squeeze
from refconf.conditioners import conv_init, mlp_init
from refconf.image_flows import conf_image
from refconf.testing import check_bijector, check_vjp

from . import strategies as S

FLOAT64_RTOL = 1e-9
FLOAT32_RTOL = 1e-4
FLOAT32_CHAIN_RTOL = 1e-3


def _rng(draw):
    return S.rng_from(draw(S.seeds(), label="seed"))


def _batch(draw):
    return draw(S.batch_shapes(), label="batch shape")


def _conv(kind, spectral):
    """Builder of a convolution of the ``kind`` layout; ``spectral`` is "symmetric",
    "circular" (spatial kernel) or "circular_half" (from_half_spectrum)."""

    def build(draw, dtype):
        shape, ndim = draw(S.conv_event_shapes(kind), label="event shape, ndim")
        rng = _rng(draw)
        if spectral == "symmetric":
            bijector = SymmetricConv(S.cast(S.symmetric_spectrum(rng, shape), dtype), ndim)
        else:
            w, w_half = S.circular_kernel_of_shape(rng, shape, ndim)
            if spectral == "circular":
                bijector = CircularConv(S.cast(w, dtype), ndim)
            else:
                bijector = CircularConv.from_half_spectrum(S.cast(w_half, dtype), shape[-1], ndim)
        return bijector, S.cast(S.data(rng, _batch(draw) + shape), dtype)

    return build


def _vector_shape(draw, max_length=8):
    return (draw(S.lengths(2, max_length), label="event length"),)


def _image_shape(draw):
    return (draw(S.channels(), label="C"), draw(S.image_sides(4), label="H"),
            draw(S.image_sides(4), label="W"))


def _slog(per_element):
    def build(draw, dtype):
        shape = _vector_shape(draw)
        rng = _rng(draw)
        alpha = S.slog_alpha(rng, shape if per_element else ())
        return SLog(S.cast(alpha, dtype)), S.cast(S.data(rng, _batch(draw) + shape, 3.0), dtype)
    return build


def _scale(draw, dtype):
    shape = _vector_shape(draw)
    rng = _rng(draw)
    s = S.cast(S.scale_factors(rng, shape), dtype)
    return Scale(s), S.cast(S.data(rng, _batch(draw) + shape), dtype)


def _shift(draw, dtype):
    shape = _vector_shape(draw)
    rng = _rng(draw)
    return Shift(S.cast(S.shift(rng, shape), dtype)), S.cast(S.data(rng, _batch(draw) + shape), dtype)


def _logit(draw, dtype):
    shape = _vector_shape(draw)
    rng = _rng(draw)
    lam = float(rng.uniform(1e-3, 0.2))
    return Logit(lam), S.cast(rng.uniform(0.0, 1.0, _batch(draw) + shape), dtype)


def _random_mlp(rng, n_in, n_out, dtype, scale=0.3):
    """A conditioner far from its identity initialisation (non-zero output layer)."""
    layers = mlp_init(n_in, (8,), n_out, random_state=rng, zero_output=False)
    layers[-1]["W"] *= scale
    layers[-1]["b"] = scale * rng.normal(size=n_out)
    return [{k: S.cast(v, dtype) for k, v in layer.items()} for layer in layers]


def _coupling_halves(draw):
    dim = draw(S.lengths(2, 8), label="D")
    swap = draw(st.booleans(), label="swap")
    d1, d2 = split_sizes(dim)
    return dim, swap, ((d2, d1) if swap else (d1, d2))


def _conv_coupling(kind):
    """The CONF step (eq. 5) at random conditioner weights and S-Log scales a != a'."""

    def build(draw, dtype):
        dim, swap, (d_base, d_update) = _coupling_halves(draw)
        m = draw(st.integers(1, 3), label="m")
        spectrum = draw(st.sampled_from(["raw", "exp"]), label="spectrum")
        rng = _rng(draw)
        log_alpha = rng.normal(0.0, 0.5, m)
        layer = ConvCoupling(
            _random_mlp(rng, d_base, (2 * m + 1) * d_update, dtype),
            S.cast(log_alpha, dtype), S.cast(log_alpha + rng.normal(0.0, 0.3, m), dtype),
            kind=kind, spectrum=spectrum, activation="tanh", swap=swap)
        return layer, S.cast(S.data(rng, _batch(draw) + (dim,)), dtype)

    return build


def _affine_coupling(draw, dtype):
    dim, swap, (d_base, d_update) = _coupling_halves(draw)
    rng = _rng(draw)
    layer = AffineCoupling(_random_mlp(rng, d_base, 2 * d_update, dtype, scale=1.0),
                           S.cast(rng.uniform(0.5, 2.0, d_update), dtype), swap=swap)
    return layer, S.cast(S.data(rng, _batch(draw) + (dim,)), dtype)


def _masked_autoregressive(draw, dtype):
    dim = draw(S.lengths(2, 7), label="D")
    rng = _rng(draw)
    made = MaskedAutoregressive.init_params(dim, hidden=(3 * dim,), random_state=rng)
    for layer in made:
        layer["W"] = S.cast(layer["W"] + 0.3 * rng.normal(size=layer["W"].shape), dtype)
        layer["b"] = S.cast(layer["b"] + 0.3 * rng.normal(size=layer["b"].shape), dtype)
    return (MaskedAutoregressive(made, rng.permutation(dim)),
            S.cast(S.data(rng, _batch(draw) + (dim,)), dtype))


def gamma_abs(a):
    """The S-Log regulariser ``gamma(y) = a|y|``."""
    return lambda y: a * anp.abs(y)


def gamma_smooth(y):
    """A smooth, non-even regulariser: ``g(y) = int_0^y exp(t^2/2 + sin(2t)) dt``."""
    return 0.5 * y**2 + anp.sin(2.0 * y)


def _lemma(kind):
    def build(draw, dtype):
        # tiny events: every evaluation runs quadrature and root finding
        shape = (draw(st.integers(1, 3), label="event length"),)
        rng = _rng(draw)
        gamma = gamma_abs(float(S.slog_alpha(rng))) if kind == "abs" else gamma_smooth
        batch = draw(S.batch_shapes(max_dims=1), label="batch shape")
        return ElementwiseFromRegularizer(gamma), S.data(rng, batch + shape, 3.0).astype(dtype)
    return build


def _permutation(event_ndim):
    def build(draw, dtype):
        shape = _vector_shape(draw) if event_ndim == 1 else _image_shape(draw)
        rng = _rng(draw)
        perm = S.permutation(rng, shape[0])
        return Permutation(perm, event_ndim), S.cast(S.data(rng, _batch(draw) + shape), dtype)
    return build


def _reverse(event_ndim):
    def build(draw, dtype):
        shape = _vector_shape(draw) if event_ndim == 1 else _image_shape(draw)
        rng = _rng(draw)
        return Reverse(event_ndim), S.cast(S.data(rng, _batch(draw) + shape), dtype)
    return build


def _invertible_1x1(event_ndim):
    def build(draw, dtype):
        shape = _vector_shape(draw) if event_ndim == 1 else _image_shape(draw)
        rng = _rng(draw)
        params = S.cast(S.invertible_1x1_params(rng, shape[0]), dtype)
        bijector = Invertible1x1(**params, event_ndim=event_ndim)
        return bijector, S.cast(S.data(rng, _batch(draw) + shape), dtype)
    return build


def _actnorm(event_ndim):
    def build(draw, dtype):
        shape = _vector_shape(draw) if event_ndim == 1 else _image_shape(draw)
        rng = _rng(draw)
        params = S.actnorm_params(rng, (shape[0],) if event_ndim == 1 else (shape[0], 1, 1))
        bijector = ActNorm(**S.cast(params, dtype), event_ndim=event_ndim)
        return bijector, S.cast(S.data(rng, _batch(draw) + shape), dtype)
    return build


def _squeeze(draw, dtype):
    """Space-to-depth of 1 x 4 x 4 and 3 x 4 x 4 images."""
    C = draw(st.sampled_from([1, 3]), label="C")
    rng = _rng(draw)
    return Squeeze(), S.cast(S.data(rng, _batch(draw) + (C, 4, 4)), dtype)


#: Image shapes of the 2-D coupling: odd (2 x 3 x 5), odd channel count (3 x 4 x 4), even.
COUPLING_2D_SHAPES = [(2, 3, 5), (3, 4, 4), (4, 4, 4)]


def _random_conv_net(rng, c_in, c_out, dtype, scale=0.15):
    """A convolutional conditioner far from its identity initialisation."""
    layers = conv_init(c_in, (3,), c_out, random_state=rng, zero_output=False)
    layers[-1]["W"] *= scale
    layers[-1]["b"] = scale * rng.normal(size=c_out)
    return [{k: S.cast(v, dtype) for k, v in layer.items()} for layer in layers]


def _coupling_2d(kind):
    """The 2-D CONF step on (C, H, W) images at random conditioner weights, a != a'."""

    def build(draw, dtype):
        shape = draw(st.sampled_from(COUPLING_2D_SHAPES), label="C, H, W")
        swap = draw(st.booleans(), label="swap")
        m = draw(st.integers(1, 2), label="m")
        spectrum = draw(st.sampled_from(["raw", "exp"]), label="spectrum")
        rng = _rng(draw)
        c_base = shape[0] // 2
        log_alpha = rng.normal(0.0, 0.5, m)
        layer = ConvCoupling2D(
            _random_conv_net(rng, c_base, (2 * m + 1) * (shape[0] - c_base), dtype),
            S.cast(log_alpha, dtype), S.cast(log_alpha + rng.normal(0.0, 0.3, m), dtype),
            shape, kind=kind, spectrum=spectrum, swap=swap)
        return layer, S.cast(S.data(rng, _batch(draw) + shape), dtype)

    return build


def _affine_coupling_2d(draw, dtype):
    """The affine coupling of Real NVP and Glow on images, random conditioner weights."""
    shape = draw(st.sampled_from(COUPLING_2D_SHAPES), label="C, H, W")
    swap = draw(st.booleans(), label="swap")
    rng = _rng(draw)
    c_base = shape[0] // 2
    conditioner = _random_conv_net(rng, c_base, 2 * (shape[0] - c_base), dtype, scale=1.0)
    layer = AffineCoupling2D(conditioner, shape, activation="tanh", swap=swap)
    return layer, S.cast(S.data(rng, _batch(draw) + shape), dtype)


def _perturbed(params, rng, dtype, scale):
    return map_leaves(lambda a: S.cast(a + scale * rng.normal(size=np.shape(a)), dtype), params)


def _multiscale_level(draw, dtype):
    """A squeeze and one step of 1 x 4 x 4 or 3 x 4 x 4 images, half the channels
    factored out, inside vectors with already factored-out entries in front."""
    C = draw(st.sampled_from([1, 3]), label="C")
    offset = draw(st.integers(0, 3), label="offset")
    rng = _rng(draw)
    steps = conf_image((C, 4, 4), levels=1, steps_per_level=1, hidden=(3,))
    step = _perturbed(steps.init_params(random_state=rng), rng, dtype, 0.1)["steps"][0][0]
    chain = Chain([Squeeze(), steps._step(0, 0, step)])
    level = MultiScaleLevel(offset + 16 * C, offset, (C, 4, 4), chain, (4 * C, 2, 2),
                            factor_out=2 * C)
    return level, S.cast(S.data(rng, _batch(draw) + (offset + 16 * C,)), dtype)


def _two_level_model(kind, coupling="conf", mixing="1x1"):
    """A whole two-level image model of 1 x 4 x 4 or 2 x 4 x 4 images: 2-D CONF, or the
    affine coupling with 1x1 (Glow-style) or reversal (Real NVP-style) mixing."""

    def build(draw, dtype):
        C = draw(st.sampled_from([1, 2]), label="C")
        rng = _rng(draw)
        model = conf_image((C, 4, 4), levels=2, steps_per_level=2, hidden=(3,), kind=kind,
                           coupling=coupling, mixing=mixing,
                           random_state=rng.integers(1 << 31))
        params = _perturbed(model.init_params(random_state=rng), rng, dtype, 0.05)
        batch = draw(S.batch_shapes(max_dims=1), label="batch shape")
        return model.build(params).chain, S.cast(S.data(rng, batch + (16 * C,)), dtype)

    return build


#: Chains compose up to nine maps and their condition numbers multiply, so their members
#: are drawn from a narrower (still far from identity) range: |spectra| and |scales| in
#: [0.3, 3] with mixed signs.
CHAIN_RANGE = (0.3, 3.0)


def vector_chain(rng, L, dtype):
    """Symmetric conv, S-Log, scale, shift, permutation, circular conv, ActNorm, 1x1, reverse."""
    c = lambda a: S.cast(a, dtype)
    w, _ = S.circular_kernel_of_shape(rng, (L,), 1, *CHAIN_RANGE)
    return Chain([
        SymmetricConv(c(S.symmetric_spectrum(rng, (L,), *CHAIN_RANGE))),
        SLog(c(S.slog_alpha(rng))),
        Scale(c(S.scale_factors(rng, (L,), *CHAIN_RANGE))),
        Shift(c(S.shift(rng, (L,)))),
        Permutation(S.permutation(rng, L)),
        CircularConv(c(w)),
        ActNorm(**c(S.actnorm_params(rng, (L,)))),
        Invertible1x1(**c(S.invertible_1x1_params(rng, L, spread=0.2))),
        Reverse(),
    ])


def image_chain(rng, shape, dtype):
    """2-D symmetric conv, ActNorm, 1x1 conv, per-row S-Log (event_ndim 1 inside a
    (C, H, W) chain), 2-D circular conv, channel reversal."""
    c = lambda a: S.cast(a, dtype)
    C = shape[0]
    w, _ = S.circular_kernel_of_shape(rng, shape, 2, *CHAIN_RANGE)
    return Chain([
        SymmetricConv(c(S.symmetric_spectrum(rng, shape, *CHAIN_RANGE)), ndim=2),
        ActNorm(**c(S.actnorm_params(rng, (C, 1, 1))), event_ndim=3),
        Invertible1x1(**c(S.invertible_1x1_params(rng, C, spread=0.2)), event_ndim=3),
        SLog(c(S.slog_alpha(rng, shape[-1:])), event_ndim=1),
        CircularConv(c(w), ndim=2),
        Reverse(event_ndim=3),
    ])


def _chain(kind):
    def build(draw, dtype):
        shape = _vector_shape(draw) if kind == "vector" else _image_shape(draw)
        rng = _rng(draw)
        if kind == "vector":
            chain = vector_chain(rng, shape[0], dtype)
        else:
            chain = image_chain(rng, shape, dtype)
        batch = draw(S.batch_shapes(max_dims=1), label="batch shape")
        return chain, S.cast(S.data(rng, batch + shape), dtype)
    return build


def _inverse_of(name):
    def build(draw, dtype):
        bijector, x = REGISTRY[name](draw, dtype)
        # data for the inverse's forward are outputs of the original's forward
        return Inverse(bijector), bijector.forward(x)[0]
    return build


REGISTRY = {
    **{f"symmetric_conv_{k}": _conv(k, "symmetric") for k in S.CONV_KINDS},
    **{f"circular_conv_{k}": _conv(k, "circular") for k in S.CONV_KINDS},
    "circular_conv_from_half_spectrum_1d": _conv("channels_1d", "circular_half"),
    "circular_conv_from_half_spectrum_2d": _conv("channels_2d", "circular_half"),
    "slog_scalar_alpha": _slog(per_element=False),
    "slog_per_element_alpha": _slog(per_element=True),
    "scale": _scale,
    "shift": _shift,
    "logit": _logit,
    "lemma1_abs": _lemma("abs"),
    "lemma1_smooth": _lemma("smooth"),
    "permutation_vector": _permutation(1),
    "permutation_channels": _permutation(3),
    "reverse_vector": _reverse(1),
    "reverse_channels": _reverse(3),
    "invertible_1x1_vector": _invertible_1x1(1),
    "invertible_1x1_image": _invertible_1x1(3),
    "actnorm_vector": _actnorm(1),
    "actnorm_image": _actnorm(3),
    "conv_coupling_symmetric": _conv_coupling("symmetric"),
    "conv_coupling_circular": _conv_coupling("circular"),
    "affine_coupling": _affine_coupling,
    "masked_autoregressive": _masked_autoregressive,
    "chain_vector": _chain("vector"),
    "chain_image": _chain("image"),
    "squeeze": _squeeze,
    "conv_coupling_2d_symmetric": _coupling_2d("symmetric"),
    "conv_coupling_2d_circular": _coupling_2d("circular"),
    "multiscale_level": _multiscale_level,
    "image_model_symmetric": _two_level_model("symmetric"),
    "image_model_circular": _two_level_model("circular"),
    "affine_coupling_2d": _affine_coupling_2d,
    "image_model_glow": _two_level_model("symmetric", "affine", "1x1"),
    "image_model_realnvp": _two_level_model("symmetric", "affine", "reverse"),
}
REGISTRY.update({
    "inverse_symmetric_conv_2d": _inverse_of("symmetric_conv_2d"),
    "inverse_circular_conv_channels_1d": _inverse_of("circular_conv_channels_1d"),
    "inverse_slog": _inverse_of("slog_per_element_alpha"),
    "inverse_logit": _inverse_of("logit"),
    "inverse_invertible_1x1_image": _inverse_of("invertible_1x1_image"),
    "inverse_chain_vector": _inverse_of("chain_vector"),
    "inverse_squeeze": _inverse_of("squeeze"),
    "inverse_conv_coupling_2d_circular": _inverse_of("conv_coupling_2d_circular"),
})

FLOAT64_ONLY = {"lemma1_abs", "lemma1_smooth"}
#: The image layers compute in autograd.numpy (the im2col conditioner, the recorded VJP):
#: NumPy arrays only, so they are left out of the array-API tests (tests/test_namespace.py).
NUMPY_ONLY = {"conv_coupling_2d_symmetric", "conv_coupling_2d_circular", "multiscale_level",
              "image_model_symmetric", "image_model_circular", "affine_coupling_2d",
              "image_model_glow", "image_model_realnvp", "inverse_conv_coupling_2d_circular"}
#: Networks and several layers inside one bijector: the chain tolerance in float32.
COMPOSITE = {"conv_coupling_symmetric", "conv_coupling_circular", "affine_coupling",
             "conv_coupling_2d_symmetric", "conv_coupling_2d_circular", "multiscale_level",
             "image_model_symmetric", "image_model_circular", "affine_coupling_2d",
             "image_model_glow", "image_model_realnvp",
             "inverse_conv_coupling_2d_circular",
             "masked_autoregressive"}
#: The Lemma-1 bijector runs quadrature and root finding on every call: fewer examples.
SLOW = {"lemma1_abs", "lemma1_smooth"}


def _examples(name):
    n = settings.default.max_examples
    return max(1, n // 3) if name in SLOW else n


def _law_test(name, dtype):
    if dtype == np.float64:
        rtol = FLOAT64_RTOL
    else:
        rtol = FLOAT32_CHAIN_RTOL if name in COMPOSITE or "chain" in name else FLOAT32_RTOL

    @settings(max_examples=_examples(name))
    @given(st.data())
    def run(data):
        bijector, x = REGISTRY[name](data.draw, dtype)
        report = check_bijector(bijector, x, rtol=rtol)
        assert set(report) == {"round_trip", "inverse_log_det", "log_det_vs_dense_jacobian"}
        y, _ = bijector.forward(x)
        assert np.asarray(y).dtype == dtype, f"forward turned {dtype.__name__} into {y.dtype}"

    run()


CASES = [pytest.param(name, dtype, id=f"{name}-{dtype.__name__}")
         for name in REGISTRY for dtype in (np.float64, np.float32)
         if not (dtype == np.float32 and name in FLOAT64_ONLY)]


@pytest.mark.parametrize("name, dtype", CASES)
def test_bijector_laws(name, dtype):
    _law_test(name, dtype)


@settings(max_examples=1)
@given(st.data())
def test_registry_covers_every_public_bijector(data):
    built = set()
    for build in REGISTRY.values():
        stack = [build(data.draw, np.float64)[0]]
        while stack:
            b = stack.pop()
            built.add(type(b).__name__)
            stack.extend(getattr(b, "bijectors", []))
            if isinstance(b, Inverse):
                stack.append(b.bijector)
    public = {name for name in refconf.bijectors.__all__ if name != "Bijector"}
    assert public <= built, f"no law test for {sorted(public - built)}"


@settings(max_examples=10)
@given(st.data(), st.sampled_from(["vector", "image"]))
def test_chain_log_dets_add(data, kind):
    """A chain's log-det is the sum of its members' log-dets along the way, in both
    directions, and it is not a trivial sum (the members' log-dets are non-zero)."""
    chain, x = _chain(kind)(data.draw, np.float64)
    y, log_det = chain.forward(x)
    total, h = 0.0, x
    nonzero = 0
    for b in chain.bijectors:
        h, ld = b.forward(h)
        ld = np.sum(ld, axis=tuple(range(np.ndim(log_det), np.ndim(ld))))
        nonzero += bool(np.any(np.abs(ld) > 1e-3))
        total = total + ld
    np.testing.assert_allclose(h, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(log_det, total, rtol=1e-12, atol=1e-12)
    assert nonzero >= 3
    x_back, log_det_inv = chain.inverse(y)
    total_inv, h = 0.0, y
    for b in reversed(chain.bijectors):
        h, ld = b.inverse(h)
        total_inv = total_inv + np.sum(ld, axis=tuple(range(np.ndim(log_det), np.ndim(ld))))
    np.testing.assert_allclose(log_det_inv, total_inv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_back, x, rtol=1e-9, atol=1e-9)


# --- the Lemma-1 bijector -----------------------------------------------------------------


@settings(max_examples=10)
@given(alpha=st.floats(0.2, 4.0), seed=S.seeds())
def test_lemma1_with_abs_regulariser_is_slog(alpha, seed):
    """gamma = a|y| gives the S-Log gate: same values and log-dets, both directions."""
    rng = S.rng_from(seed)
    x = S.data(rng, (2, 5), 4.0)
    lemma, gate = ElementwiseFromRegularizer(gamma_abs(alpha)), SLog(alpha)
    y, log_det = lemma.forward(x)
    y_ref, log_det_ref = gate.forward(x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-10, atol=1e-12)
    z = S.data(rng, (2, 5), 2.0)
    x_back, log_det_inv = lemma.inverse(z)
    x_ref, log_det_inv_ref = gate.inverse(z)
    np.testing.assert_allclose(x_back, x_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_det_inv, log_det_inv_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gamma", [gamma_abs(1.3), gamma_smooth], ids=["abs", "smooth"])
def test_lemma1_quadrature_derivative_is_exp_gamma(gamma):
    """Central differences of the quadrature g (the inverse) equal exp(gamma(y)), and of
    the root finder f (the forward) equal exp(-gamma(f(x))): Lemma 1's defining ODE,
    checked on the computed values, not through the hand-written VJPs (which are then
    checked against finite differences too)."""
    lemma = ElementwiseFromRegularizer(gamma)
    y = np.array([[-1.7, -0.6, -0.05, 0.3, 0.9, 1.6]])
    h = 1e-5
    g = lambda v: lemma.inverse(v)[0]
    np.testing.assert_allclose((g(y + h) - g(y - h)) / (2 * h), np.exp(gamma(y)), rtol=1e-6)
    x = g(y)
    f = lambda v: lemma.forward(v)[0]
    np.testing.assert_allclose(f(x), y, rtol=1e-10, atol=1e-12)
    hx = 1e-5 * np.maximum(1.0, np.abs(x))
    np.testing.assert_allclose((f(x + hx) - f(x - hx)) / (2 * hx), np.exp(-gamma(y)), rtol=1e-6)
    # the hand-written VJPs of both primitives against finite differences
    np.random.seed(0)
    check_vjp(g, y)
    check_vjp(f, x)
