"""Hypothesis strategies and random parameter generators for refconf's tests.

Hypothesis draws the structure of a case (lengths, event and batch shapes, a seed) and
shrinks it to the smallest failing shape; the values are then drawn from
``numpy.random.default_rng(seed)``. Every parameter is random and far from the identity:

* symmetric spectra ``w_hat`` have ``|w_hat|`` log-uniform in ``[0.1, 10]`` and mixed
  signs (at least one of each), so the convolution is invertible by construction;
* circular kernels come from a half spectrum with ``|W|`` log-uniform in ``[0.1, 10]``,
  uniform random phases and real self-conjugate bins (DC, and Nyquist for even lengths)
  of random sign, converted to a real spatial kernel with
  :func:`refconf.spectral.circular_kernel`;
* S-Log alphas, scales, shifts, 1x1-convolution factors and ActNorm parameters are drawn
  well away from the values at which those maps are the identity.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from refconf.bijectors.mixing import Invertible1x1
from refconf.spectral import circular_kernel

__all__ = [
    "CONV_KINDS",
    "SPECIAL_LENGTHS",
    "SPECTRUM_RANGE",
    "actnorm_params",
    "batch_shapes",
    "cast",
    "channels",
    "circular_kernel_of_shape",
    "conv_event_shapes",
    "data",
    "half_spectrum",
    "hermitian_spectrum",
    "image_sides",
    "invertible_1x1_params",
    "lengths",
    "magnitudes",
    "permutation",
    "random_signs",
    "rng_from",
    "scale_factors",
    "seeds",
    "shift",
    "slog_alpha",
    "symmetric_spectrum",
]

SPECTRUM_RANGE = (0.1, 10.0)

#: Lengths that matter for the transforms: the smallest DCT-I (L = 2), DCT-I sizes
#: 2^k + 1 (N = 2^k, the radix-2 case) and both parities.
SPECIAL_LENGTHS = (2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 65)

#: The four event layouts of a convolution: (L,), (C, L), (H, W), (C, H, W).
CONV_KINDS = ("1d", "channels_1d", "2d", "channels_2d")


def seeds():
    """Seeds for ``numpy.random.default_rng``."""
    return st.integers(0, 2**32 - 1)


def lengths(min_value=2, max_value=17):
    """Signal lengths between the bounds: odd and even, including 2 and ``2^k + 1``."""
    special = [n for n in SPECIAL_LENGTHS if min_value <= n <= max_value]
    return st.one_of(st.sampled_from(special), st.integers(min_value, max_value))


def image_sides(max_value=5):
    """Image heights and widths, odd and even, at least 2 (a DCT-I axis)."""
    return lengths(2, max_value)


def channels(max_value=3):
    return st.integers(1, max_value)


def batch_shapes(max_dims=2, max_side=2):
    """Leading batch shapes: none, one axis or two (the laws must hold for each)."""
    return array_shapes(min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side)


@st.composite
def conv_event_shapes(draw, kind, max_length=17, max_side=5, max_channels=3):
    """Event shape of a convolution of ``kind`` in :data:`CONV_KINDS`.

    Returns ``(shape, ndim)`` with ``ndim`` the number of convolved axes.
    """
    if kind == "1d":
        return (draw(lengths(2, max_length)),), 1
    if kind == "channels_1d":
        return (draw(channels(max_channels)), draw(lengths(2, max_length))), 1
    if kind == "2d":
        return (draw(image_sides(max_side)), draw(image_sides(max_side))), 2
    if kind == "channels_2d":
        return (draw(channels(max_channels)), draw(image_sides(max_side)),
                draw(image_sides(max_side))), 2
    raise ValueError(f"unknown convolution kind {kind!r}; expected one of {CONV_KINDS}")


def rng_from(seed):
    return np.random.default_rng(seed)


def magnitudes(rng, shape, low=SPECTRUM_RANGE[0], high=SPECTRUM_RANGE[1]):
    """Log-uniform magnitudes in ``[low, high]``."""
    return np.exp(rng.uniform(np.log(low), np.log(high), size=shape))


def random_signs(rng, shape):
    """Random signs with at least one +1 and one -1 whenever there are two or more."""
    signs = rng.choice([-1.0, 1.0], size=shape)
    flat = signs.reshape(-1)
    if flat.size >= 2:
        i, j = rng.choice(flat.size, size=2, replace=False)
        flat[i], flat[j] = 1.0, -1.0
    return flat.reshape(shape)


def symmetric_spectrum(rng, shape, low=SPECTRUM_RANGE[0], high=SPECTRUM_RANGE[1]):
    """A real DCT-I spectrum with ``|w_hat|`` in ``[low, high]`` and mixed signs."""
    return random_signs(rng, shape) * magnitudes(rng, shape, low, high)


def hermitian_spectrum(rng, n, lead=(), low=SPECTRUM_RANGE[0], high=SPECTRUM_RANGE[1]):
    """A full length-``n`` spectrum (last axis) of a real sequence: ``|W|`` in
    ``[low, high]``, random phases, ``W(n - k) = conj W(k)``, real DC (and Nyquist)."""
    W = magnitudes(rng, lead + (n,), low, high) * np.exp(1j * rng.uniform(-np.pi, np.pi, lead + (n,)))
    for k in range(1, (n + 1) // 2):
        W[..., n - k] = np.conj(W[..., k])
    self_conjugate = [0] + ([n // 2] if n % 2 == 0 else [])
    for k in self_conjugate:
        W[..., k] = np.abs(W[..., k]) * rng.choice([-1.0, 1.0], size=lead)
    return W


def half_spectrum(rng, shape, ndim, low=SPECTRUM_RANGE[0], high=SPECTRUM_RANGE[1]):
    """The rfft-layout half spectrum of a random real kernel with event ``shape``.

    1-D: the first ``n // 2 + 1`` bins of :func:`hermitian_spectrum`. 2-D (``rfft2``
    layout ``(..., H, W // 2 + 1)``): the self-conjugate columns (``k2 = 0`` and, for even
    ``W``, ``k2 = W / 2``) are Hermitian along the first axis; the other columns are free.
    """
    n = shape[-1]
    nh = n // 2 + 1
    if ndim == 1:
        return hermitian_spectrum(rng, n, tuple(shape[:-1]), low, high)[..., :nh]
    lead, H = tuple(shape[:-2]), shape[-2]
    W = magnitudes(rng, lead + (H, nh), low, high) * np.exp(1j * rng.uniform(-np.pi, np.pi, lead + (H, nh)))
    for k2 in [0] + ([n // 2] if n % 2 == 0 else []):
        W[..., :, k2] = hermitian_spectrum(rng, H, lead, low, high)
    return W


def circular_kernel_of_shape(rng, shape, ndim, low=SPECTRUM_RANGE[0], high=SPECTRUM_RANGE[1]):
    """A real spatial kernel with event ``shape`` whose spectrum is :func:`half_spectrum`.

    Returns ``(w, w_half)``.
    """
    w_half = half_spectrum(rng, shape, ndim, low, high)
    return circular_kernel(w_half, shape[-1], ndim), w_half


def data(rng, shape, scale=2.0):
    """Data points: normal with standard deviation ``scale``."""
    return scale * rng.normal(size=shape)


def slog_alpha(rng, shape=()):
    """S-Log scales in ``[0.3, 3]`` (far from the identity limit alpha -> 0)."""
    return magnitudes(rng, shape, 0.3, 3.0)


def scale_factors(rng, shape, low=SPECTRUM_RANGE[0], high=SPECTRUM_RANGE[1]):
    """Elementwise scales with ``|s|`` in ``[low, high]`` and mixed signs."""
    return symmetric_spectrum(rng, shape, low, high)


def shift(rng, shape):
    return 3.0 * rng.normal(size=shape)


def invertible_1x1_params(rng, C, spread=0.5, max_cond=100.0):
    """LU factors of Glow's 1x1 convolution, far from identity and with a non-zero
    log-det (a rotation alone has log-det 0, which would hide log-det mistakes): a random
    rotation's factors, perturbed by normals of standard deviation ``spread``, redrawn
    until the weight's condition number is at most ``max_cond`` (the spectra above are
    bounded the same way: |w_hat| in [0.1, 10])."""
    base = Invertible1x1.random_params(C, random_state=rng)
    while True:
        params = dict(base)
        params["lower"] = base["lower"] + rng.normal(scale=spread, size=(C, C))
        params["upper"] = base["upper"] + rng.normal(scale=spread, size=(C, C))
        params["log_s"] = base["log_s"] + rng.uniform(-1.0, 1.0, size=C)
        L = np.tril(params["lower"], -1) + np.eye(C)
        U = np.triu(params["upper"], 1) + np.diag(params["sign"] * np.exp(params["log_s"]))
        if np.linalg.cond(L @ U) <= max_cond:  # the permutation does not change it
            return params


def actnorm_params(rng, shape):
    """ActNorm ``loc`` and ``log_scale`` of ``shape`` (``(C,)`` or ``(C, 1, 1)``)."""
    return {"loc": 2.0 * rng.normal(size=shape), "log_scale": rng.uniform(-1.5, 1.5, shape)}


def permutation(rng, n):
    """A random permutation of ``n`` entries that moves something when ``n >= 2``."""
    perm = rng.permutation(n)
    if n >= 2 and np.array_equal(perm, np.arange(n)):
        perm = np.roll(perm, 1)
    return perm


def cast(value, dtype):
    """Cast floating (and complex) arrays in ``value`` (an array or a dict of them) to
    ``dtype`` (and its complex counterpart); leave integer arrays alone."""
    if isinstance(value, dict):
        return {k: cast(v, dtype) for k, v in value.items()}
    value = np.asarray(value)
    if np.iscomplexobj(value):
        return value.astype(np.result_type(dtype, np.complex64))
    if np.issubdtype(value.dtype, np.floating):
        return value.astype(dtype)
    return value
