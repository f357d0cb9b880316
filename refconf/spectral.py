"""Symmetric (DCT-I) and circular (DFT) convolutions, their inverses and log-determinants.

The readable tier: every map is diagonalised by a fast transform, so convolution,
deconvolution and the log-determinant each cost O(N log N). On NumPy arrays every
function is plain ``autograd.numpy`` over the primitives and differentiates in every
argument; on arrays of another array-API library (CuPy, :mod:`refconf.backend`) the same
maps run in that library, the DCT-I as the rfft of the whole-sample extension
(:func:`refconf.primitives.dct1_via_rfft`), without gradients.

Shapes
------
The transform runs over the last ``ndim`` axes (1 for sequences, 2 for images). Spectra
broadcast against the data, so one spectrum of shape ``(L,)`` serves a batch, a spectrum
of shape ``(C, L)`` is a depthwise multi-channel kernel, and a spectrum of shape
``(B, L)`` gives every sample its own (data-adaptive) kernel.

Circular kernels are real, so their spectra are Hermitian and only the half spectrum is
kept (``rfft`` layout: ``floor(n/2) + 1`` bins on the last axis, all bins on the axis
before it in 2-D). Symmetric spectra are real.
"""

import math

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from . import backend
from .primitives import dct1, dct1_via_rfft, idct1, idct1_via_irfft, irfft, rfft

__all__ = [
    "check_invertible",
    "circular_conv",
    "circular_conv_vjp",
    "circular_deconv",
    "circular_deconv_vjp",
    "circular_kernel",
    "circular_log_abs_det",
    "circular_spectrum",
    "dct1_transpose",
    "hermitian_weights",
    "irfft_transpose",
    "rfft_transpose",
    "symmetric_conv",
    "symmetric_conv_vjp",
    "symmetric_deconv",
    "symmetric_deconv_vjp",
    "symmetric_log_abs_det",
    "symmetric_spectrum",
]


def _check_ndim(ndim):
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 (sequences) or 2 (images), got {ndim!r}")


def _dct1n(x, ndim, xp, inverse=False):
    """DCT-I over the last ``ndim`` axes; an axis of length 1 is left alone (L = 1 is a
    scalar multiply, ``docs/theory/symmetric-convolution.md``)."""
    if backend.is_autograd(xp):
        transform = idct1 if inverse else dct1
        for axis in range(-ndim, 0):
            if np.shape(x)[axis] > 1:
                x = transform(x, axis=axis)
        return x
    # FFT-only libraries transform the last axis; the axis before it is swapped in
    transform = idct1_via_irfft if inverse else dct1_via_rfft
    for axis in range(-ndim, 0):
        if x.shape[axis] > 1:
            x = xp.moveaxis(transform(xp.moveaxis(x, axis, -1), xp), -1, axis)
    return x


def _check_event(x, spectrum, ndim, expected, what):
    got = tuple(np.shape(spectrum)[-ndim:])
    if np.ndim(x) < ndim or tuple(np.shape(x)[-ndim:]) != expected:
        raise ValueError(
            f"{what}: the input's last {ndim} axes have shape {tuple(np.shape(x)[-ndim:])}, "
            f"expected {expected} to match the spectrum of shape {got}"
        )


def check_invertible(spectrum, ndim, what="spectrum"):
    """Raise ``ValueError`` if any eigenvalue is zero, non-finite, or so small relative to
    the largest of its event (``|w| <= eps * max|w|``) that dividing by it is meaningless.

    On a device array the check is one reduction and one device-to-host boolean; the
    details of a failure are read back only to write the message."""
    value = getval(spectrum)
    xp = backend.namespace(value)
    xp = onp if backend.is_autograd(xp) else xp
    w = xp.abs(value)
    axes = tuple(range(-ndim, 0))
    eps = float(xp.finfo(w.dtype if xp.isdtype(w.dtype, "real floating") else xp.float64).eps)
    # NaN fails every comparison and an infinity sets its event's scale to inf: both
    # fail the test below, so one reduction covers finiteness too
    good = xp.isfinite(w) & (w > eps * xp.max(w, axis=axes, keepdims=True))
    if bool(xp.all(good)):
        return
    w = backend.host_value(w)
    if not onp.all(onp.isfinite(w)):
        raise ValueError(f"{what} has non-finite eigenvalues; cannot invert")
    bad = w <= eps * onp.max(w, axis=axes, keepdims=True)
    raise ValueError(
        f"{what} has {int(onp.sum(bad))} zero or near-zero eigenvalue(s) "
        f"(smallest |w| = {w.min():.3g}, largest = {w.max():.3g}); the convolution is "
        "not invertible. Expected every |eigenvalue| > eps * max |eigenvalue|."
    )


# --- symmetric convolution (DCT-I) -------------------------------------------------------


def symmetric_spectrum(w, ndim=1):
    """Eigenvalues ``w_hat = dct1(w)`` of the symmetric convolution by the spatial kernel
    ``w`` (``L`` samples per axis), over the last ``ndim`` axes."""
    _check_ndim(ndim)
    return _dct1n(w, ndim, backend.namespace(w))


def symmetric_conv(x, w_hat, ndim=1):
    """Symmetric convolution ``y = w *_s x = idct1(w_hat * dct1(x))`` (paper eq. 3).

    Parameters
    ----------
    x : ndarray, shape ``(..., L)`` or ``(..., H, W)``
    w_hat : ndarray, real, broadcastable to ``x``
        The spectrum (eigenvalues) of the kernel, ``w_hat = dct1(w)``.
    ndim : {1, 2}
        Number of trailing axes convolved.

    Notes
    -----
    ``y`` is the first ``L`` samples of the ``2N``-point circular convolution of the
    whole-sample even extensions of ``x`` and ``w``; by the convolution-multiplication
    property ``dct1(w *_s x) = dct1(w) * dct1(x)`` with no extra scale factor. The
    Jacobian is ``C^{-1} diag(w_hat) C`` with real eigenvalues ``w_hat``. Cost
    O(N log N). In 2-D the separable DCT-I diagonalises any (non-separable) spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.reference import symmetric_conv_direct
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.normal(size=5), rng.normal(size=5)
    >>> np.allclose(symmetric_conv(x, symmetric_spectrum(w)), symmetric_conv_direct(x, w))
    True
    """
    _check_ndim(ndim)
    _check_event(x, w_hat, ndim, tuple(np.shape(w_hat)[-ndim:]), "symmetric_conv")
    xp = backend.namespace(x, w_hat)
    return _dct1n(w_hat * _dct1n(x, ndim, xp), ndim, xp, inverse=True)


def symmetric_deconv(y, w_hat, ndim=1):
    """Inverse of :func:`symmetric_conv`: ``x = idct1(dct1(y) / w_hat)``.

    Raises ``ValueError`` when an eigenvalue is zero or near zero (:func:`check_invertible`).
    Cost O(N log N).
    """
    _check_ndim(ndim)
    _check_event(y, w_hat, ndim, tuple(np.shape(w_hat)[-ndim:]), "symmetric_deconv")
    xp = backend.namespace(y, w_hat)
    check_invertible(w_hat, ndim, "symmetric_deconv: the kernel spectrum")
    return _dct1n(_dct1n(y, ndim, xp) / w_hat, ndim, xp, inverse=True)


def symmetric_log_abs_det(w_hat, event_ndim=1):
    """``log|det J| = sum_k log|w_hat(k)|`` over the last ``event_ndim`` axes.

    The eigenvalues of a symmetric convolution are the (real) DCT-I bins, one per sample:
    ``L`` terms in 1-D, ``H W`` in 2-D. Cost O(N).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.reference import dct1_matrix
    >>> w_hat = np.array([2.0, -0.5, 3.0, 0.25])
    >>> C = dct1_matrix(4)
    >>> J = np.linalg.solve(C, np.diag(w_hat) @ C)
    >>> bool(np.isclose(symmetric_log_abs_det(w_hat), np.linalg.slogdet(J)[1]))
    True
    """
    xp = backend.namespace(w_hat)
    return xp.sum(xp.log(xp.abs(w_hat)), axis=tuple(range(-event_ndim, 0)))


def _end_weights(shape, ndim, xp, dtype):
    """The DCT-I end weights ``2a`` (1 at both ends, 2 inside; 1 on an axis of length 1)
    over the last ``ndim`` axes of ``shape``, as an array of ``xp`` of ``dtype``."""
    weights = onp.ones(())
    for L in shape[len(shape) - ndim:]:
        axis = onp.full(L, 2.0)
        axis[0] = axis[-1] = 1.0
        weights = onp.multiply.outer(weights, axis)
    return backend.asarray(xp, weights, dtype=dtype)


def dct1_transpose(g, ndim=1, inverse=False):
    """The transpose of the DCT-I ``C`` (or, with ``inverse``, of ``C^{-1}``) over the
    last ``ndim`` axes (its VJP): ``C^T = D C D^{-1}`` with ``D`` the end weights ``2a``
    of eq. (2), so ``C^T g = D C (g / D)`` and ``(C^{-1})^T g = D C^{-1} (g / D)``."""
    xp = backend.namespace(g)
    D = _end_weights(tuple(np.shape(g)), ndim, xp, g.dtype)
    return D * _dct1n(g / D, ndim, xp, inverse)


def symmetric_conv_vjp(g, x, w_hat, ndim=1):
    """VJP of :func:`symmetric_conv` at ``x``: ``(g_x, g_w)`` from the cotangent ``g`` of
    ``y = C^{-1}(w * C x)``. With ``P = (C^{-1})^T g`` (:func:`dct1_transpose`)::

        g_x = C^T (w * P),   g_w = P * C x

    ``g_w`` per sample, summed over the batch by a caller whose spectrum is shared.
    """
    xp = backend.namespace(g, x, w_hat)
    P = dct1_transpose(g, ndim, inverse=True)
    return dct1_transpose(w_hat * P, ndim), P * _dct1n(x, ndim, xp)


def symmetric_deconv_vjp(g, x, w_hat, ndim=1):
    """VJP of :func:`symmetric_deconv` from the cotangent ``g`` of its output ``x``:
    ``P = (C^{-1})^T g / w``, ``g_y = C^T P``, ``g_w = -P * C x``."""
    xp = backend.namespace(g, x, w_hat)
    P = dct1_transpose(g, ndim, inverse=True) / w_hat
    return dct1_transpose(P, ndim), -P * _dct1n(x, ndim, xp)


# --- circular convolution (DFT) ----------------------------------------------------------


def _rfftn(x, ndim, xp):
    if not backend.is_autograd(xp):
        return xp.fft.rfftn(x, axes=tuple(range(-ndim, 0)))
    X = rfft(x, axis=-1)
    return np.fft.fft(X, axis=-2) if ndim == 2 else X


def _irfftn(X, n, ndim, xp):
    if not backend.is_autograd(xp):
        return xp.fft.irfftn(X, s=tuple(X.shape[-ndim:-1]) + (n,), axes=tuple(range(-ndim, 0)))
    if ndim == 2:
        X = np.fft.ifft(X, axis=-2)
    return irfft(X, n, axis=-1)


def _half_bins(n):
    return n // 2 + 1


def circular_spectrum(w, ndim=1):
    """Half spectrum of the real spatial kernel ``w`` over the last ``ndim`` axes
    (``rfft`` in 1-D, ``rfft2`` layout in 2-D): ``W(k) = sum_n w(n) exp(-2 pi i k n / N)``."""
    _check_ndim(ndim)
    return _rfftn(w, ndim, backend.namespace(w))


def circular_kernel(w_half, n, ndim=1):
    """Real spatial kernel of a half spectrum (inverse of :func:`circular_spectrum`);
    ``n`` is the length of the last axis. Self-conjugate bins' imaginary parts are
    dropped, as for any real kernel."""
    _check_ndim(ndim)
    return _irfftn(w_half, n, ndim, backend.namespace(w_half))


def _check_half(x, w_half, ndim, what):
    shape = tuple(np.shape(x)[-ndim:])
    expected = shape[:-1] + (_half_bins(shape[-1]),)
    got = tuple(np.shape(w_half)[-ndim:])
    if got != expected:
        raise ValueError(
            f"{what}: a real input with last {ndim} axes {shape} needs a half spectrum with "
            f"trailing shape {expected} (floor(n/2) + 1 bins on the last axis), got {got}"
        )


def circular_conv(x, w_half, ndim=1):
    """Circular convolution ``y = w (*) x = irfft(W * rfft(x))`` on a ring (or torus).

    Parameters
    ----------
    x : ndarray, real, shape ``(..., N)`` or ``(..., H, W)``
    w_half : ndarray, complex
        Half spectrum of a real kernel (:func:`circular_spectrum`), broadcastable to the
        half spectrum of ``x``.
    ndim : {1, 2}

    Notes
    -----
    ``y(n) = sum_m x(m) w((n - m) mod N)``; the Jacobian is the circulant matrix of
    ``w``, diagonalised by the DFT with eigenvalues ``W(k)``. Imaginary parts of the
    self-conjugate bins (DC, and Nyquist for even ``N``) are ignored, as for any real
    kernel. Cost O(N log N).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.reference import circular_conv_direct
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.normal(size=6), rng.normal(size=6)
    >>> np.allclose(circular_conv(x, circular_spectrum(w)), circular_conv_direct(x, w))
    True
    """
    _check_ndim(ndim)
    _check_half(x, w_half, ndim, "circular_conv")
    xp = backend.namespace(x, w_half)
    return _irfftn(w_half * _rfftn(x, ndim, xp), np.shape(x)[-1], ndim, xp)


def circular_deconv(y, w_half, ndim=1):
    """Inverse of :func:`circular_conv`: ``x = irfft(rfft(y) / W)``. Cost O(N log N).

    Raises ``ValueError`` when an eigenvalue is zero or near zero."""
    _check_ndim(ndim)
    _check_half(y, w_half, ndim, "circular_deconv")
    xp = backend.namespace(y, w_half)
    check_invertible(w_half, ndim, "circular_deconv: the kernel spectrum")
    return _irfftn(_rfftn(y, ndim, xp) / w_half, np.shape(y)[-1], ndim, xp)


def circular_conv_vjp(g, x, w_half, ndim=1):
    """VJP of :func:`circular_conv` at ``x``: ``(g_x, g_W)`` from the cotangent ``g`` of
    ``y = irfftn(W * rfftn(x))``. With ``P = irfftn^T g`` (:func:`irfft_transpose`)::

        g_x = rfftn^T (W * P),   g_W = P * rfftn(x)

    in autograd's complex convention (no conjugate); ``g_W`` per sample, summed over the
    batch by a caller whose spectrum is shared. ``J^T`` is the convolution by the
    reversed kernel, whose spectrum is ``conj(W)``.
    """
    xp = backend.namespace(g, x, w_half)
    P = irfft_transpose(g, ndim)
    return rfft_transpose(w_half * P, np.shape(g)[-1], ndim), P * _rfftn(x, ndim, xp)


def circular_deconv_vjp(g, x, w_half, ndim=1):
    """VJP of :func:`circular_deconv` from the cotangent ``g`` of its output ``x``:
    ``P = irfftn^T g``, ``g_y = rfftn^T (P / W)``, ``g_W = -P * rfftn(x) / W``."""
    xp = backend.namespace(g, x, w_half)
    P = irfft_transpose(g, ndim) / w_half
    return rfft_transpose(P, np.shape(g)[-1], ndim), -P * _rfftn(x, ndim, xp)


def rfft_transpose(h, n, ndim=1):
    """The transpose of the real FFT over the last ``ndim`` axes (its VJP, in autograd's
    complex convention): ``rfftn^T h = Re fftn(h zero-padded to n on the last axis)``,
    the DFT matrix being symmetric."""
    xp = backend.namespace(h)
    H = xp.fft.fft(h, n=n, axis=-1)
    if ndim == 2:
        H = xp.fft.fft(H, axis=-2)
    return xp.real(H)


def irfft_transpose(g, ndim=1, weights=None):
    """The transpose of the inverse real FFT over the last ``ndim`` axes:
    ``irfftn^T g = c * conj(rfftn(g)) / N``, ``c`` the half spectrum's bin multiplicities
    on the last axis (:func:`hermitian_weights`; ``weights``, if given, in ``g``'s
    dtype) and ``N`` the number of samples of the ``ndim`` axes."""
    xp = backend.namespace(g)
    n = np.shape(g)[-1]
    if weights is None:
        weights = backend.asarray(xp, hermitian_weights(n), dtype=g.dtype)
    G = xp.fft.rfft(g, axis=-1)
    if ndim == 2:
        G = xp.fft.fft(G, axis=-2)
    return weights * xp.conj(G) / math.prod(np.shape(g)[-ndim:])


def hermitian_weights(n):
    """Multiplicity of each half-spectrum bin in the full spectrum: 1 for DC (and Nyquist
    when ``n`` is even), 2 for the interior bins, whose conjugates are dropped."""
    c = onp.full(_half_bins(n), 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return c


def circular_log_abs_det(w_half, n, ndim=1, event_ndim=None):
    """``log|det J| = sum_k log|W(k)|`` over the full spectrum, from the half spectrum.

    Parameters
    ----------
    w_half : ndarray, complex, rfft layout
    n : int
        Length of the last signal axis (its parity decides whether a Nyquist bin exists).
    ndim : {1, 2}
    event_ndim : int, optional
        Trailing axes summed over (default ``ndim``; more for multi-channel events).

    Notes
    -----
    1-D: ``log|W(0)| + [n even] log|W(n/2)| + 2 sum_{interior} log|W(k)|``. 2-D: the same
    weights on the last axis, every bin of the axis before it (the conjugate of
    ``W(k1, k2)`` is ``W(-k1, -k2)``, which the rfft2 layout drops unless ``k2`` is
    self-conjugate). Cost O(N).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.reference import circulant_matrix
    >>> w = np.random.default_rng(1).normal(size=6)
    >>> bool(np.isclose(circular_log_abs_det(circular_spectrum(w), 6),
    ...                 np.linalg.slogdet(circulant_matrix(w))[1]))
    True
    """
    _check_ndim(ndim)
    if np.shape(w_half)[-1] != _half_bins(n):
        raise ValueError(
            f"circular_log_abs_det: a signal of length {n} has {_half_bins(n)} half-spectrum "
            f"bins, got {np.shape(w_half)[-1]}"
        )
    event_ndim = ndim if event_ndim is None else event_ndim
    xp = backend.namespace(w_half)
    terms = backend.asarray(xp, hermitian_weights(n)) * xp.log(xp.abs(w_half))
    return xp.sum(terms, axis=tuple(range(-event_ndim, 0)))
