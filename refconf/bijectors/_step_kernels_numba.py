"""Compiled overrides of :mod:`refconf.bijectors.step_kernels`, on NumPy arrays.

Each function computes what the readable kernel of the same name does (its docstring
gives the formulas), faster: the layout work and the log-det sums as compiled loops over
the batch (one sample per row, ``prange``, cached on disk), the gates by the compiled
S-Log kernels (:mod:`refconf.bijectors._elementwise_numba`), and a layer's whole VJP with
dense transforms as one compiled kernel that makes its two products by BLAS from
compiled code (:func:`matrix_layer_vjp`). What is not compiled, and why (measured by
``validation/bench_engines.py``): the forward transforms are dense matrix products
(NumPy's BLAS calls, as fast as the same products made from compiled code and several
times faster than compiled loops over the sums) or FFTs.
"""

import functools

import numpy as np
from numba import njit, prange

from ..primitives import dct1, dct1_vjp, idct1, idct1_vjp, irfft_vjp, rfft_vjp
from ..spectral import hermitian_weights
from ..transforms import FFT_MIN_LENGTH, MatrixTransforms
from ._elementwise_numba import slog_gates_vjp, slog_pair
from .step_kernels import FORWARD_GATE

__all__ = ["CompiledMatrixTransforms", "NumpyFFTTransforms", "conditioner_cotangent",
           "conditioner_outputs", "join_columns", "log_det_constant", "log_det_sums",
           "matrix_layer_vjp", "split_columns", "step_backward", "step_forward",
           "step_transforms"]


@njit(cache=True, nogil=True, error_model="numpy")
def matrix_layer_vjp(gy, gl, u, U, q, y, w, s, c, alpha, alpha_prime, F, G, g_w, g_s):
    """VJP of one CONF layer with dense transforms: the gates' (:func:`slog_gates_vjp`),
    then the convolution's (``U = h F^T``, ``u = Re (w * U) G^T``:
    :class:`refconf.transforms.MatrixTransforms`), then the spectrum's
    log-det term::

        gP  = gu G
        gh  = Re (gP * w) F
        g_w = gP * U + gl c / w      (d log|w| = c / w in autograd's complex convention)

    for cotangents ``gy`` of the layer's output and ``gl`` of the log-det, from the
    forward's ``u``, ``U``, ``q`` and ``y``. Writes ``g_w`` and ``g_s``; returns
    ``(gh, ga, ga')`` (the alpha cotangents summed over the batch).
    """
    gu, gs, ga, gap = slog_gates_vjp(gy, gl, u, q, y, s, alpha, alpha_prime)
    gP = np.dot(gu.astype(G.dtype), G)
    gh = np.ascontiguousarray(np.dot(gP * w, F).real)
    B, nb = U.shape
    L = gs.shape[1]
    # loops, not slice assignments: ``g_s[...] = gs`` alone takes seconds to compile
    for b in prange(B):
        for j in range(L):
            g_s[b, j] = gs[b, j]
        for k in range(nb):
            g_w[b, k] = gP[b, k] * U[b, k] + gl[b] * c[k] / w[b, k]
    return gh, ga, gap


@njit(cache=True, nogil=True, error_model="numpy")
def log_det_sums(log_w, c, log_s):
    """The log-det of a step's convolutions and scales (eq. 3), per sample::

        out[b] = sum_i [sum_k c_k log_w[i, b, k] + sum_j log_s[i, b, j]]

    from ``log_w = log|w|`` (``m x B x nb``) and ``log_s = log|s|`` (``m x B x L``)."""
    m, B, nb = log_w.shape
    L = log_s.shape[2]
    out = np.zeros(B, dtype=log_s.dtype)
    for b in prange(B):
        acc = 0.0
        for i in range(m):
            for k in range(nb):
                acc += c[k] * log_w[i, b, k]
            for j in range(L):
                acc += log_s[i, b, j]
        out[b] = acc
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def conditioner_outputs(out, m, L):
    """A coupling's conditioner output ``out`` (``B x (2m + 1) L``) split into its parts,
    each C-contiguous::

        o_w[i, b, j] = out[b, i L + j]            (the spectra's, i < m)
        o_s[i, b, j] = out[b, (m + i) L + j]      (the scales')
        t[b, j]      = out[b, 2 m L + j]          (the shift)

    Returns ``(o_w, o_s, t)``.
    """
    B = out.shape[0]
    o_w = np.empty((m, B, L), dtype=out.dtype)
    o_s = np.empty((m, B, L), dtype=out.dtype)
    t = np.empty((B, L), dtype=out.dtype)
    for b in prange(B):
        for i in range(m):
            for j in range(L):
                o_w[i, b, j] = out[b, i * L + j]
                o_s[i, b, j] = out[b, (m + i) * L + j]
        for j in range(L):
            t[b, j] = out[b, 2 * m * L + j]
    return o_w, o_s, t


@njit(cache=True, nogil=True, error_model="numpy")
def conditioner_cotangent(g_ow, g_s, s, g_t):
    """The cotangent of the conditioner output from those of its parts (the inverse
    layout of :func:`conditioner_outputs`), the scales' through ``s = exp(o_s)``::

        g_out[b, i L + j]         = g_ow[i, b, j]
        g_out[b, (m + i) L + j]   = g_s[i, b, j] s[i, b, j]
        g_out[b, 2 m L + j]       = g_t[b, j]
    """
    m, B, L = g_s.shape
    g_out = np.empty((B, (2 * m + 1) * L), dtype=g_t.dtype)
    for b in prange(B):
        for i in range(m):
            for j in range(L):
                g_out[b, i * L + j] = g_ow[i, b, j]
                g_out[b, (m + i) * L + j] = g_s[i, b, j] * s[i, b, j]
        for j in range(L):
            g_out[b, 2 * m * L + j] = g_t[b, j]
    return g_out


@njit(cache=True, nogil=True, error_model="numpy")
def split_columns(x, start, L):
    """``(rest, part)``: the columns ``start .. start + L - 1`` of ``x`` and the others
    (in order), each C-contiguous: a coupling's halves."""
    B, D = x.shape
    part = np.empty((B, L), dtype=x.dtype)
    rest = np.empty((B, D - L), dtype=x.dtype)
    for b in prange(B):
        for j in range(start):
            rest[b, j] = x[b, j]
        for j in range(L):
            part[b, j] = x[b, start + j]
        for j in range(start + L, D):
            rest[b, j - L] = x[b, j]
    return rest, part


@njit(cache=True, nogil=True, error_model="numpy")
def join_columns(rest, part, start, add=None):
    """The inverse of :func:`split_columns`, with ``add`` (if given) added to the other
    columns::

        out[:, start: start + L] = part,   out[:, others] = rest (+ add)
    """
    B, L = part.shape
    D = L + rest.shape[1]
    out = np.empty((B, D), dtype=part.dtype)
    for b in prange(B):
        for j in range(start):
            out[b, j] = rest[b, j]
        for j in range(L):
            out[b, start + j] = part[b, j]
        for j in range(start + L, D):
            out[b, j] = rest[b, j - L]
    if add is not None:
        for b in prange(B):
            for j in range(start):
                out[b, j] += add[b, j]
            for j in range(start + L, D):
                out[b, j] += add[b, j - L]
    return out


class CompiledMatrixTransforms(MatrixTransforms):
    """:class:`refconf.transforms.MatrixTransforms` on NumPy arrays, with a whole layer's
    VJP (the gates' and the convolution's) in one compiled kernel,
    :func:`matrix_layer_vjp`: one call where NumPy makes a dozen on arrays of a few
    thousand values. (The forward convolution stays NumPy's: three BLAS-bound calls,
    measured as fast as a compiled kernel making the same products.)"""

    def __init__(self, kind, L, dtype):
        super().__init__(np, kind, L, dtype)

    def _real(self, a):
        return _real(a) if self._complex else a

    def layer_vjp(self, gy, gl, u, U, q, y, w, s, alpha, alpha_prime, g_w, g_s):
        """``(gh, ga, ga')`` of one layer of the step, writing ``g_w`` and ``g_s``
        (:func:`matrix_layer_vjp`)."""
        return matrix_layer_vjp(gy, gl, u, U, q, y, w, s, self.weights, alpha,
                                alpha_prime, self.F, self.G, g_w, g_s)


def _real(a):
    """The real part, C-contiguous (as the compiled kernels take it)."""
    return np.ascontiguousarray(a.real) if np.iscomplexobj(a) else a


class NumpyFFTTransforms:
    """:class:`refconf.transforms.FFTTransforms` on NumPy arrays: SciPy's DCT-I (faster
    than the rfft of the extension) or NumPy's rfft, their transposes from the autograd
    primitives' VJPs (:mod:`refconf.primitives`), and a layer's VJP from the compiled
    gates'."""

    xp = np

    def __init__(self, kind, L, dtype):
        if kind == "symmetric":
            self.weights = np.ones(L, dtype=dtype)
            self.T, self.T_inv = dct1, idct1
            self.T_transpose = lambda g: dct1_vjp(g, g)(g)
            self.T_inv_transpose = lambda g: idct1_vjp(g, g)(g)
        else:
            self.weights = hermitian_weights(L).astype(dtype)
            self.T = np.fft.rfft
            self.T_inv = lambda P: np.fft.irfft(P, n=L)
            self.T_transpose = lambda g: np.asarray(rfft_vjp(None, np.empty((1, L)))(g))
            self.T_inv_transpose = lambda g: irfft_vjp(None, np.empty((1, L // 2 + 1)), L)(g)

    def conv(self, h, w):
        U = self.T(h)
        return _real(self.T_inv(w * U)), U

    def conv_vjp(self, gu, w, U):
        gP = self.T_inv_transpose(gu)
        return _real(self.T_transpose(gP * w)), gP * U

    def deconv(self, u, w):
        U = self.T(u)
        return _real(self.T_inv(U / w)), U

    def deconv_vjp(self, gh, w, U):
        gU = self.T_inv_transpose(gh) / w
        return _real(self.T_transpose(gU)), -gU * U / w

    def layer_vjp(self, gy, gl, u, U, q, y, w, s, alpha, alpha_prime, g_w, g_s):
        """``(gh, ga, ga')`` of one layer of the step, writing ``g_w`` and ``g_s``: the
        gates' compiled VJP, the transposed transforms, and the spectrum's log-det term
        (:func:`matrix_layer_vjp` gives the formulas)."""
        gu, g_s[...], ga, gap = slog_gates_vjp(gy, gl, u, q, y, s, alpha, alpha_prime)
        gh, g_w[...] = self.conv_vjp(gu, w, U)
        g_w += gl[:, None] * self.weights / w  # d log|w| = c / w in autograd's convention
        return gh, ga, gap


@functools.lru_cache(maxsize=64)
def step_transforms(kind, L, dtype):
    """The transforms for signals of length ``L``: FFT from
    :data:`refconf.transforms.FFT_MIN_LENGTH` on, dense matrices below (built once per
    kind, length and dtype)."""
    dtype = np.dtype(dtype)
    if L >= FFT_MIN_LENGTH[kind]:
        return NumpyFFTTransforms(kind, L, dtype)
    return CompiledMatrixTransforms(kind, L, dtype)


def log_det_constant(ops, w_hat, s):
    """:func:`refconf.bijectors.step_kernels.log_det_constant` by :func:`log_det_sums`."""
    return log_det_sums(np.log(np.abs(w_hat)), ops.weights, np.log(np.abs(s)))


def step_forward(x2, w_hat, s, t, alpha, alpha_prime, kind, overflow):
    """:func:`refconf.bijectors.step_kernels.step_forward` with the compiled gate pair
    (:func:`refconf.bijectors._elementwise_numba.slog_pair`), which adds the gates'
    log-derivatives to ``log_det`` in place."""
    ops = step_transforms(kind, x2.shape[-1], x2.dtype)
    log_det = log_det_constant(ops, w_hat, s)
    h, saved = x2, []
    for i in reversed(range(alpha.shape[0])):
        u, U = ops.conv(h, w_hat[i, ...])
        q, h = slog_pair(u, s[i, ...], alpha[i], alpha_prime[i], False, log_det,
                         FORWARD_GATE, overflow)
        saved.append((u, U, q, h))
    return h + t, log_det, saved[::-1]


def step_backward(gy, gl, w_hat, s, alpha, alpha_prime, saved, ops):
    """:func:`refconf.bijectors.step_kernels.step_backward`, each layer's VJP one call of
    the transforms' fused ``layer_vjp``."""
    g_w, g_s = np.empty_like(w_hat), np.empty_like(s)
    g_alpha, g_alpha_prime = np.empty_like(alpha), np.empty_like(alpha_prime)
    gh = gy
    for i, (u, U, q, y) in enumerate(saved):
        gh, g_alpha[i], g_alpha_prime[i] = ops.layer_vjp(
            gh, gl, u, U, q, y, w_hat[i], s[i], alpha[i], alpha_prime[i], g_w[i], g_s[i])
    return gh, g_w, g_s, g_alpha, g_alpha_prime
