"""A CONF layer's convolution by its diagonalising transform, with the VJP, in any namespace.

The combined layer of eq. (4) convolves ``h`` (``B x L``, one sample per row) by a
per-sample spectrum ``w``: ``u = Re T^-1 (w * T h)``, ``T`` the DCT-I of eq. (2)
(``kind="symmetric"``) or the rfft (``"circular"``). Two equal ways to compute it:

* :class:`MatrixTransforms`, dense products ``U = h F^T`` and ``u = Re (w * U) G^T`` (one
  BLAS call per transform for the whole batch: the faster way for short signals);
* :class:`FFTTransforms`, the fast transforms (for long ones).

:func:`transforms` picks one by the signal length (:data:`FFT_MIN_LENGTH`). Both give the
layer's convolution, deconvolution and their VJPs in the array namespace ``xp`` they are
built for (NumPy, CuPy, any array-API library). Complex cotangents follow autograd's
convention (``dl/dRe - i dl/dIm``), in which products carry no conjugate. On NumPy arrays
the compiled CONF step (:mod:`refconf.bijectors._coupling_numba`) subclasses these with a
fused layer VJP. The maps are those of :mod:`refconf.spectral`; the theory page
``docs/theory/gradients.md`` derives the transposes.
"""

import functools

import numpy as np

from . import backend
from .primitives import dct1_via_rfft, idct1_via_irfft
from .reference import dct1_matrix, dft_matrix
from .spectral import dct1_transpose, hermitian_weights, irfft_transpose, rfft_transpose

__all__ = ["FFT_MIN_LENGTH", "FFTTransforms", "MatrixTransforms", "transforms"]

#: Signal length, per kind, from which a layer transforms by FFT instead of by a dense
#: matrix product: the break-even points measured for batches of 512 to 4096
#: (``validation/bench_engines.py --crossover``). SciPy's DCT-I is slow at lengths with a
#: large prime factor, so the symmetric matrix path pays off up to longer signals.
FFT_MIN_LENGTH = {"symmetric": 256, "circular": 64}


def _real(xp, a):
    """The real part of a complex array; a real array as it is."""
    return xp.real(a) if xp.isdtype(a.dtype, "complex floating") else a


def _host_dtype(xp, dtype):
    """The NumPy dtype of the real dtype ``dtype`` of ``xp``."""
    return np.dtype(np.float32) if dtype == xp.float32 else np.dtype(np.float64)


class MatrixTransforms:
    """Convolution and deconvolution by the dense transform matrices (short signals).

    With ``F`` (``nb x L``) the forward transform and ``G`` (``L x nb``) its inverse, one
    sample per row::

        U = h F^T                  U[b, k] = sum_n F[k, n] h[b, n]    (eq. 2, or the DFT)
        u = Re (w * U) G^T         the inverse transform of the product

    The symmetric kind has ``F = C`` of eq. (2) and ``G = C / (2N)`` (real, ``nb = L``;
    ``L = 1`` is a scalar multiply, ``F = G = 1``); the circular kind
    ``F[k, n] = exp(-2 pi i k n / L)`` and ``G[n, k] = c_k exp(2 pi i k n / L) / L``
    (``c_k`` = 1 at the self-conjugate bins, 2 inside; ``nb = L // 2 + 1``), so that
    ``Re G (W * F h) = irfft(W * rfft(h))``. ``weights`` are the bins' multiplicities
    ``c`` (ones for the symmetric kind): ``log|det| = sum_k c_k log|w_k|``.

    VJPs, for ``u = Re (w * U) G^T``: ``gP = gu G``, ``gw = gP * U``,
    ``gh = Re (gP * w) F``; for the deconvolution ``h = Re (U / w) G^T``:
    ``gU = (gh G) / w``, ``gu = Re gU F``, ``gw = -gU * U / w``.
    """

    def __init__(self, xp, kind, L, dtype):
        self.xp = xp
        host = _host_dtype(xp, dtype)
        if kind == "symmetric":
            F = dct1_matrix(L) if L > 1 else np.ones((1, 1))
            G = F / (2 * (L - 1)) if L > 1 else F
            weights = np.ones(L)
        else:
            F = dft_matrix(L)[: L // 2 + 1]
            weights = hermitian_weights(L)
            G = weights * np.conj(F.T) / L
        self.weights = backend.asarray(xp, weights.astype(host))
        self._complex = kind == "circular"
        matrix_dtype = np.result_type(host, np.complex64) if self._complex else host
        F, G = (np.ascontiguousarray(a, dtype=matrix_dtype) for a in (F, G))
        self.F, self.G, self.FT, self.GT = (backend.asarray(xp, np.ascontiguousarray(a))
                                            for a in (F, G, F.T, G.T))

    def _real(self, a):
        return _real(self.xp, a) if self._complex else a

    def conv(self, h, w):
        """``(u, U)``: the layer's convolution and the input's spectrum."""
        U = h @ self.FT
        return self._real((w * U) @ self.GT), U

    def conv_vjp(self, gu, w, U):
        """``(gh, gw)`` from the cotangent ``gu`` of the convolution's output."""
        gP = gu @ self.G
        return self._real((gP * w) @ self.F), gP * U

    def deconv(self, u, w):
        """``(h, U)``: the deconvolution and the input's spectrum."""
        U = u @ self.FT
        return self._real((U / w) @ self.GT), U

    def deconv_vjp(self, gh, w, U):
        """``(gu, gw)`` from the cotangent ``gh`` of the deconvolution's output."""
        gU = (gh @ self.G) / w
        return self._real(gU @ self.F), -gU * U / w


class FFTTransforms:
    """The same maps by FFTs: ``u = Re T^-1 (w * T h)`` with ``T`` the DCT-I (the rfft of
    the whole-sample extension, :func:`~refconf.primitives.dct1_via_rfft`) or the rfft,
    and the transposes::

        symmetric:  T^T g = 2a * T(g / 2a),   (T^-1)^T g = T^T g / (2N)
        circular:   T^T g = Re FFT(g zero-padded to L),   (T^-1)^T g = c * conj(rfft(g)) / L

    (``2a`` the DCT-I end weights, 1 at both ends and 2 inside, ``N = L - 1``; ``c`` the
    half spectrum's bin multiplicities), from :mod:`refconf.spectral`. For a cotangent ``gu``: ``gP = (T^-1)^T gu``,
    ``gw = gP * U``, ``gh = Re T^T (gP * w)``.
    """

    def __init__(self, xp, kind, L, dtype):
        self.xp, self.kind, self.L = xp, kind, L
        host = _host_dtype(xp, dtype)
        if kind == "symmetric":
            self.weights = backend.asarray(xp, np.ones(L, dtype=host))
        else:
            self.weights = backend.asarray(xp, hermitian_weights(L).astype(host))

    def T(self, h):
        """The forward transform of the last axis."""
        if self.kind == "symmetric":
            return dct1_via_rfft(h, self.xp)
        return self.xp.fft.rfft(h, axis=-1)

    def T_inv(self, P):
        """Its inverse."""
        if self.kind == "symmetric":
            return idct1_via_irfft(P, self.xp)
        return self.xp.fft.irfft(P, n=self.L, axis=-1)

    def T_transpose(self, g):
        """The transpose of :meth:`T` (its VJP): :func:`refconf.spectral.dct1_transpose`
        or :func:`~refconf.spectral.rfft_transpose`."""
        if self.kind == "symmetric":
            return dct1_transpose(_real(self.xp, g))
        return rfft_transpose(g, self.L)

    def T_inv_transpose(self, g):
        """The transpose of :meth:`T_inv`: ``T^T / (2N)`` (symmetric) or
        :func:`refconf.spectral.irfft_transpose`."""
        if self.kind == "symmetric":
            return self.T_transpose(g) / (2 * (self.L - 1))
        return irfft_transpose(g, weights=self.weights)

    def conv(self, h, w):
        """``(u, U)``: the layer's convolution and the input's spectrum."""
        U = self.T(h)
        return _real(self.xp, self.T_inv(w * U)), U

    def conv_vjp(self, gu, w, U):
        """``(gh, gw)`` from the cotangent ``gu`` of the convolution's output."""
        gP = self.T_inv_transpose(gu)
        return _real(self.xp, self.T_transpose(gP * w)), gP * U

    def deconv(self, u, w):
        """``(h, U)``: the deconvolution and the input's spectrum."""
        U = self.T(u)
        return _real(self.xp, self.T_inv(U / w)), U

    def deconv_vjp(self, gh, w, U):
        """``(gu, gw)`` from the cotangent ``gh`` of the deconvolution's output."""
        gU = self.T_inv_transpose(gh) / w
        return _real(self.xp, self.T_transpose(gU)), -gU * U / w


@functools.lru_cache(maxsize=64)
def transforms(xp, kind, L, dtype):
    """The transforms of ``xp`` for signals of length ``L``: :class:`FFTTransforms` from
    :data:`FFT_MIN_LENGTH` on, dense
    :class:`MatrixTransforms` below (and always for a symmetric signal of length 1, a
    scalar multiply); built once per namespace, kind, length and dtype.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> ops = transforms(xps, "circular", 5, xps.float64)
    >>> u, U = ops.conv(xps.ones((2, 5)), xps.ones((3,), dtype=xps.complex128))
    >>> bool(xps.all(xps.abs(u - 1.0) < 1e-12))
    True
    """
    if L >= max(FFT_MIN_LENGTH[kind], 2):
        return FFTTransforms(xp, kind, L, dtype)
    return MatrixTransforms(xp, kind, L, dtype)
