"""The explicit-pass kernels in any array-API namespace (CuPy on a GPU, array_api_strict).

:func:`refconf.engines.model_pass.nll_and_grad` runs one set of layers over a small set
of kernels (:class:`Kernels`): the conditioner MLP's forward and backward, the CONF
step's forward and backward (eq. 5) and the step's transforms. On NumPy they are the
numba engine's (:mod:`refconf.engines.numba_engine`, compiled gate VJPs of
:mod:`refconf.engines._numba`); :func:`array_kernels` gives the same kernels as
vectorised expressions of the standard array API, for arrays of any other library:

* the MLP's backpropagation, the activation's derivative read from the activations;
* the gates' VJPs, the formulas of :func:`refconf.engines._numba.slog_gates_vjp`
  evaluated elementwise over the whole batch (:func:`slog_gates_vjp`);
* the transforms as dense matrix products (short signals) or FFTs (long signals, from
  :data:`~refconf.engines.numba_engine.FFT_MIN_LENGTH` on), with their transposes
  (:class:`MatrixTransforms`, :class:`FFTTransforms`).

The forward gates are the readable tier's :func:`~refconf.bijectors.elementwise.slog`
and :func:`~refconf.bijectors.elementwise.slog_inverse`, which run in any namespace.
Complex cotangents follow autograd's convention (``dl/dRe - i dl/dIm``), so products
carry no conjugate, as in the numba engine.
"""

import dataclasses
import functools
from collections.abc import Callable
from types import ModuleType

import numpy as np

from .. import backend
from ..bijectors.elementwise import slog, slog_inverse
from ..primitives import dct1_via_rfft, idct1_via_irfft
from ..spectral import _hermitian_weights
from .numba_engine import _GATE, FFT_MIN_LENGTH, _MatrixTransforms, _step_values

__all__ = ["FFTTransforms", "Kernels", "MatrixTransforms", "array_kernels", "slog_gates_vjp"]


@dataclasses.dataclass(frozen=True)
class Kernels:
    """What the explicit pass needs from an array library, bound once per namespace.

    Attributes
    ----------
    xp : module
        The namespace the layers compute in (``numpy`` itself on the NumPy path).
    array : callable
        ``array(a, dtype)``: a parameter as an array of ``xp`` of that dtype
        (C-contiguous on the NumPy path, where compiled kernels read it).
    host : callable
        ``host(a)``: a NumPy array of structure (a permutation, signs) as an array of
        ``xp``.
    actnorm_forward : callable
        ``actnorm_forward(x, loc, log_scale) -> (y, scale, -sum log_scale)`` with
        ``scale = exp(-log_scale)``, ``y = (x - loc) scale``.
    actnorm_backward : callable
        ``actnorm_backward(g, y, scale, gl_sum)
        -> (g scale, -sum_b g scale, -sum_b g y - gl_sum)``.
    split_columns : callable
        ``split_columns(x, start, L) -> (rest, part)``: the columns ``start`` to
        ``start + L - 1`` and the others (a coupling's halves).
    join_columns : callable
        ``join_columns(rest, part, start, add=None) -> out``: the reverse, ``rest + add``
        in the other columns when ``add`` is given.
    mlp_forward : callable
        ``mlp_forward(x, activation, Ws, bs) -> (out, hidden)``, ``h_l = act(h_{l-1} W_l + b_l)``.
    mlp_backward : callable
        ``mlp_backward(g, [x, h_1, ...], Ws, activation) -> (gx, [gW_1, gb_1, ...])``.
    step_forward : callable
        ``step_forward(x2, w, s, t, alpha, alpha', kind, overflow) -> (y2, log_det, saved)``
        (eq. 5, ``F_m`` first; ``saved`` the per-layer ``(u, U, q, gate output)``,
        ``F_1``'s first).
    step_backward : callable
        ``step_backward(gy, gl, w, s, alpha, alpha', saved, ops)
        -> (gx2, gw, gs, galpha, galpha')``.
    conditioner_outputs : callable
        ``conditioner_outputs(out, m, L) -> (o_w, o_s, t)``: a coupling's conditioner
        output (``B x (2m + 1) L``) as the spectra's and the scales' parts (``m x B x L``)
        and the shift (``B x L``).
    conditioner_cotangent : callable
        ``conditioner_cotangent(g_ow, g_s, s, g_t) -> g_out``: the reverse, with the
        scales' cotangent taken through ``s = exp(o_s)``.
    transforms : callable
        ``transforms(kind, L, dtype) -> ops`` with ``ops.weights``, ``ops.conv`` and
        ``ops.conv_vjp``.
    """

    xp: ModuleType
    array: Callable
    host: Callable
    actnorm_forward: Callable
    actnorm_backward: Callable
    split_columns: Callable
    join_columns: Callable
    mlp_forward: Callable
    mlp_backward: Callable
    step_forward: Callable
    step_backward: Callable
    conditioner_outputs: Callable
    conditioner_cotangent: Callable
    transforms: Callable


def _real(xp, a):
    """The real part of a complex array; a real array as it is."""
    return xp.real(a) if xp.isdtype(a.dtype, "complex floating") else a


# --- transforms --------------------------------------------------------------------------


class MatrixTransforms(_MatrixTransforms):
    """The convolution of a CONF layer by dense transform matrices, and its VJP: the numba
    engine's (:class:`refconf.engines.numba_engine._MatrixTransforms`, whose docstring
    gives the formulas), with the matrices moved to ``xp``."""

    def __init__(self, xp, kind, L, dtype):
        super().__init__(kind, L, np.float32 if dtype == xp.float32 else np.float64)
        self.xp = xp
        self.weights = backend.asarray(xp, self.weights, dtype=dtype)
        self.F, self.G, self.FT, self.GT = (backend.asarray(xp, a)
                                            for a in (self.F, self.G, self.FT, self.GT))

    def _real(self, a):
        return _real(self.xp, a)


class FFTTransforms:
    """The same convolution and VJP by FFTs: ``u = Re T^-1 (w * T h)`` with ``T`` the
    DCT-I (by the rfft of the whole-sample extension, :func:`~refconf.primitives.dct1_via_rfft`)
    or the rfft, and the transposes::

        symmetric:  T^T g = 2a * T(g / 2a),   (T^-1)^T g = T^T g / (2N)
        circular:   T^T g = Re FFT(g zero-padded to L),   (T^-1)^T g = c * conj(rfft(g)) / L

    (``2a`` the DCT-I end weights, 1 at both ends and 2 inside, ``N = L - 1``; ``c`` the
    half spectrum's bin multiplicities). For a cotangent ``gu``: ``gP = (T^-1)^T gu``,
    ``gw = gP * U``, ``gh = Re T^T (gP * w)``.
    """

    def __init__(self, xp, kind, L, dtype):
        self.xp, self.kind, self.L = xp, kind, L
        if kind == "symmetric":
            ends = np.full(L, 2.0)
            ends[0] = ends[-1] = 1.0
            self.ends = backend.asarray(xp, ends, dtype=dtype)
            self.weights = backend.asarray(xp, np.ones(L), dtype=dtype)
        else:
            self.weights = backend.asarray(xp, _hermitian_weights(L), dtype=dtype)

    def _T(self, h):
        if self.kind == "symmetric":
            return dct1_via_rfft(h, self.xp)
        return self.xp.fft.rfft(h, axis=-1)

    def _T_inv(self, P):
        if self.kind == "symmetric":
            return idct1_via_irfft(P, self.xp)
        return self.xp.fft.irfft(P, n=self.L, axis=-1)

    def _T_transpose(self, g):
        xp = self.xp
        if self.kind == "symmetric":
            return self.ends * dct1_via_rfft(_real(xp, g) / self.ends, xp)
        return xp.real(xp.fft.fft(g, n=self.L, axis=-1))

    def _T_inv_transpose(self, g):
        if self.kind == "symmetric":
            return self._T_transpose(g) / (2 * (self.L - 1))
        return self.weights * self.xp.conj(self.xp.fft.rfft(g, axis=-1)) / self.L

    def conv(self, h, w):
        """``(u, U)``: the layer's convolution and the input's spectrum."""
        U = self._T(h)
        return _real(self.xp, self._T_inv(w * U)), U

    def conv_vjp(self, gu, w, U):
        """``(gh, gw)`` from the cotangent ``gu`` of the convolution's output."""
        gP = self._T_inv_transpose(gu)
        return _real(self.xp, self._T_transpose(gP * w)), gP * U


# --- the gates and the CONF step ---------------------------------------------------------


def slog_gates_vjp(gy, gl, u, q, y, s, alpha, alpha_prime, xp):
    """VJP of the gates of eq. (4) after the convolution, vectorised over the batch::

        q = f_a(u) = sign(u) log1p(a|u|) / a,   v = s q,
        y = g_{a'}(v) = sign(v) expm1(a'|v|) / a',
        log_det[b] = sum_j [-log1p(a|u|) + log|s| + a'|v|]

    for cotangents ``gy`` of ``y`` (``B x L``) and ``gl`` of ``log_det`` (``B``). With
    ``E = 1 + a'|y|`` and ``d = 1 + a|u|``::

        gv  = gy E + gl a' sign(v)
        gs  = gv q + gl / s
        gu  = (gv s - gl a sign(u)) / d
        ga  = sum [gv s (u / d - q) / a - gl |u| / d]
        ga' = sum [gy (v E - y) / a' + gl |v|]

    (the formulas of :func:`refconf.engines._numba.slog_gates_vjp`, summed over the whole
    batch). Returns ``(gu, gs, ga, ga')`` with ``ga``, ``ga'`` 0-d.
    """
    gl = gl[:, None]
    au = xp.abs(u)
    d = 1.0 + alpha * au
    v = s * q
    E = 1.0 + alpha_prime * xp.abs(y)
    gv = gy * E + gl * alpha_prime * xp.sign(v)
    gq = gv * s
    gs = gv * q + gl / s
    gu = (gq - gl * alpha * xp.sign(u)) / d
    ga = xp.sum(gq * (u / d - q) / alpha - gl * au / d)
    gap = xp.sum(gy * (v * E - y) / alpha_prime + gl * xp.abs(v))
    return gu, gs, ga, gap


def _readable_gates(u, s, alpha, alpha_prime, log_det, overflow):
    """``(q, y, log_det)`` with ``q = f_a(u)`` and ``y = g_{a'}(s q)``, their
    log-derivatives added to ``log_det``: the readable tier's
    :func:`~refconf.bijectors.elementwise.slog` and
    :func:`~refconf.bijectors.elementwise.slog_inverse`, with its overflow guard, in the
    arrays' namespace."""
    q, log_df = slog(u, alpha)
    y, log_dg = slog_inverse(s * q, alpha_prime, _GATE["conf_step"], overflow)
    return q, y, log_det + backend.namespace(u).sum(log_dg + log_df, axis=-1)


def _step_backward(gy, gl, w_hat, s, alpha, alpha_prime, saved, ops):
    """Cotangents ``(gx2, gw, gs, galpha, galpha')`` of the step's inputs
    (:func:`refconf.engines.numba_engine._step_values`)
    from those of ``y2`` and ``log_det``, ``F_1`` first; the spectrum's log-det adds
    ``gl c / w`` to ``gw`` (``d log|w| = c / w`` in autograd's complex convention)."""
    xp = ops.xp
    g_w, g_s, g_alpha, g_alpha_prime = [], [], [], []
    gh = gy
    for i, (u, U, q, y) in enumerate(saved):
        gu, gs, ga, gap = slog_gates_vjp(gh, gl, u, q, y, s[i, ...], alpha[i],
                                         alpha_prime[i], xp)
        gh, gw = ops.conv_vjp(gu, w_hat[i, ...], U)
        g_w.append(gw)
        g_s.append(gs)
        g_alpha.append(ga)
        g_alpha_prime.append(gap)
    g_w = xp.stack(g_w) + gl[:, None] * ops.weights / w_hat
    return gh, g_w, xp.stack(g_s), xp.stack(g_alpha), xp.stack(g_alpha_prime)


def _conditioner_outputs(xp, out, m, L):
    """``(o_w, o_s, t)`` of a conditioner output, as views (see :class:`Kernels`)."""
    out = xp.reshape(out, (out.shape[0], 2 * m + 1, L))
    return (xp.permute_dims(out[:, :m, :], (1, 0, 2)),
            xp.permute_dims(out[:, m: 2 * m, :], (1, 0, 2)), out[:, 2 * m, :])


def _conditioner_cotangent(xp, g_ow, g_s, s, g_t):
    """The conditioner output's cotangent from its parts' (see :class:`Kernels`)."""
    B, L = g_t.shape
    return xp.reshape(xp.concat([xp.permute_dims(g_ow, (1, 0, 2)),
                                 xp.permute_dims(g_s * s, (1, 0, 2)),
                                 xp.reshape(g_t, (B, 1, L))], axis=1), (B, -1))


# --- ActNorm ----------------------------------------------------------------------------


def _actnorm_forward(x, loc, log_scale):
    """``(y, scale, log-det)`` of ActNorm (as
    :func:`refconf.engines._numba.actnorm_forward`)."""
    xp = backend.namespace(x)
    scale = xp.exp(-log_scale)
    return (x - loc) * scale, scale, -xp.sum(log_scale)


def _actnorm_backward(g, y, scale, gl_sum):
    """``(gx, gloc, gls)`` of ``y = (x - loc) scale`` (as
    :func:`refconf.engines._numba.actnorm_backward`)."""
    xp = backend.namespace(g)
    g_x = g * scale
    return g_x, -xp.sum(g_x, axis=0), -xp.sum(g * y, axis=0) - gl_sum


# --- a coupling's halves -----------------------------------------------------------------


def _split_columns(xp, x, start, L):
    """``(rest, part)`` (see :class:`Kernels`), as views where the rest is one block."""
    part, D = x[:, start: start + L], x.shape[1]
    if start == 0 or start + L == D:
        return (x[:, L:] if start == 0 else x[:, :start]), part
    return xp.concat([x[:, :start], x[:, start + L:]], axis=1), part


def _join_columns(xp, rest, part, start, add=None):
    """The reverse of :func:`_split_columns` (see :class:`Kernels`)."""
    if add is not None:
        rest = rest + add
    return xp.concat([rest[:, :start], part, rest[:, start:]], axis=1)


# --- the conditioner MLP -----------------------------------------------------------------


def _activate(xp, a, activation):
    return xp.tanh(a) if activation == "tanh" else xp.where(a > 0, a, xp.zeros_like(a))


def _mlp_forward(xp, x, activation, Ws, bs):
    """Output and hidden activations ``h_l = act(h_{l-1} W_l + b_l)``."""
    hidden, h = [], x
    for W, b in zip(Ws[:-1], bs[:-1]):
        h = _activate(xp, h @ W + b, activation)
        hidden.append(h)
    return h @ Ws[-1] + bs[-1], hidden


def _mlp_backward(xp, g, inputs, Ws, activation):
    """Backpropagation of :func:`_mlp_forward` from the output cotangent ``g = ga_L``::

        gW_l = h_{l-1}^T ga_l,   gb_l = sum_b ga_l,   gh_{l-1} = ga_l W_l^T,
        ga_{l-1} = gh_{l-1} (1 - h_{l-1}^2)   (tanh)   or   gh_{l-1} [h_{l-1} > 0]   (relu)

    with ``inputs = [x, h_1, ..., h_{L-1}]``; returns ``(gx, [gW_1, gb_1, ...])``."""
    grads = [None] * (2 * len(Ws))
    ga = g
    for layer in reversed(range(len(Ws))):
        grads[2 * layer] = inputs[layer].T @ ga
        grads[2 * layer + 1] = xp.sum(ga, axis=0)
        gh = ga @ Ws[layer].T
        if layer == 0:
            return gh, grads
        h = inputs[layer]
        ga = gh * (1.0 - h * h) if activation == "tanh" else xp.where(h > 0, gh, xp.zeros_like(gh))


# --- binding -----------------------------------------------------------------------------


def array_kernels(xp, fft_min_length=None):
    """The :class:`Kernels` of the array-API namespace ``xp``.

    Parameters
    ----------
    xp : module
        An array-API namespace (``array_api_compat.cupy``, ``array_api_strict``).
    fft_min_length : dict, optional
        Signal length per kind from which the step transforms by FFT
        (:class:`FFTTransforms`) instead of dense matrices (:class:`MatrixTransforms`);
        default :data:`refconf.engines.numba_engine.FFT_MIN_LENGTH`. A symmetric signal
        of length 1 (a scalar multiply) always takes the matrix path.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> kernels = array_kernels(xps)
    >>> ops = kernels.transforms("circular", 5, xps.float64)
    >>> u, U = ops.conv(xps.ones((2, 5)), xps.ones((3,), dtype=xps.complex128))
    >>> bool(xps.all(xps.abs(u - 1.0) < 1e-12))
    True
    """
    thresholds = dict(FFT_MIN_LENGTH if fft_min_length is None else fft_min_length)

    @functools.lru_cache(maxsize=64)
    def transforms(kind, L, dtype):
        if L >= max(thresholds[kind], 2):
            return FFTTransforms(xp, kind, L, dtype)
        return MatrixTransforms(xp, kind, L, dtype)

    def array(a, dtype):
        a = backend.asarray(xp, a)
        return a if a.dtype == dtype else xp.astype(a, dtype)

    return Kernels(
        xp=xp, array=array, host=lambda a: backend.asarray(xp, a),
        actnorm_forward=_actnorm_forward, actnorm_backward=_actnorm_backward,
        split_columns=functools.partial(_split_columns, xp),
        join_columns=functools.partial(_join_columns, xp),
        mlp_forward=functools.partial(_mlp_forward, xp),
        mlp_backward=functools.partial(_mlp_backward, xp),
        step_forward=lambda x2, w, s, t, a, ap, kind, overflow: _step_values(
            x2, w, s, t, a, ap, transforms(kind, x2.shape[-1], x2.dtype), _readable_gates,
            overflow),
        step_backward=_step_backward,
        conditioner_outputs=functools.partial(_conditioner_outputs, xp),
        conditioner_cotangent=functools.partial(_conditioner_cotangent, xp),
        transforms=transforms)
