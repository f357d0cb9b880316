"""The numba engine: the conditioner MLP and the CONF step as autograd primitives.

Each public function here has the readable tier's signature and meaning
(:func:`refconf.conditioners.mlp`, :func:`refconf.bijectors.coupling.conf_step`,
:func:`~refconf.bijectors.coupling.conf_step_inverse`) and is one autograd primitive
whose VJP is written out, so a training step records a handful of autograd nodes per
coupling step instead of hundreds. The backward passes' elementwise loops are compiled
(:mod:`refconf.engines._numba`); products are BLAS, transcendental functions NumPy's
vectorised loops (see that module for the measurements behind the split).

Transforms
----------
Signals shorter than :data:`FFT_MIN_LENGTH` are transformed by dense matrix products
(:class:`_MatrixTransforms`: the DCT-I of eq. 2, or the half DFT, one BLAS call per
transform for the whole batch); longer ones by SciPy's DCT-I / NumPy's rfft
(:mod:`refconf.primitives`), whose transposes (the VJPs) are the readable tier's.

Intermediates
-------------
The step primitives return ``(y2, log_det)`` as one tuple, like autograd's ``eigh``.
When traced, a forward call hands the intermediates its VJP needs (the gates' inputs
and outputs, the spectra, the MLP's hidden activations) to the VJP maker, which autograd
calls right after it (:class:`_Handoff`): the backward evaluates no transcendental
function and repeats no forward work.
"""

import functools
import math
import threading

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import getval, isbox

from ..bijectors.coupling import _check_kind, _check_layer, _check_step
from ..bijectors.elementwise import check_alpha, expanding_gate_guard
from ..conditioners import ACTIVATIONS
from ..primitives import dct1, dct1_vjp, idct1, idct1_vjp, irfft_vjp, rfft_vjp
from ..reference import dct1_matrix, dft_matrix
from ..spectral import _hermitian_weights, check_invertible
from . import _numba

__all__ = ["FFT_MIN_LENGTH", "conf_step", "conf_step_inverse", "mlp"]

#: Signal length, per kind, from which the step transforms by FFT instead of by a dense
#: matrix product: the break-even points measured for batches of 512 to 4096
#: (``validation/bench_engines.py --crossover``). SciPy's DCT-I is slow at lengths with a
#: large prime factor, so the symmetric matrix path pays off up to longer signals.
FFT_MIN_LENGTH = {"symmetric": 256, "circular": 64}


# --- transforms --------------------------------------------------------------------------


class _MatrixTransforms:
    """Convolution and deconvolution by the dense transform matrices (short signals).

    With ``F`` (``nb x L``) the forward transform and ``G`` (``L x nb``) its inverse, one
    sample per row and BLAS products::

        U = h F^T                  U[b, k] = sum_n F[k, n] h[b, n]    (eq. 2, or the DFT)
        u = Re (w * U) G^T         the inverse transform of the product

    The symmetric kind has ``F = C`` of eq. (2) and ``G = C / (2N)`` (real, ``nb = L``);
    the circular kind ``F[k, n] = exp(-2 pi i k n / L)`` and
    ``G[n, k] = c_k exp(2 pi i k n / L) / L`` (``c_k`` = 1 at the self-conjugate bins, 2
    inside; ``nb = L // 2 + 1``), so that ``Re G (W * F h) = irfft(W * rfft(h))``.

    The VJPs follow autograd's complex convention (cotangent ``dl/dRe - i dl/dIm``), in
    which products carry no conjugate: for ``u = Re (w * U) G^T`` the cotangents are
    ``gP = gu G``, ``gw = gP * U`` and ``gh = Re (gP * w) F``.
    """

    def __init__(self, kind, L, dtype):
        if kind == "symmetric":
            # L = 1 is a scalar multiply (MATH.md section 2): the 1 x 1 "transform" is 1
            F = dct1_matrix(L) if L > 1 else np.ones((1, 1))
            G = F / (2 * (L - 1)) if L > 1 else F
            weights = np.ones(L)
        else:
            F = dft_matrix(L)[: L // 2 + 1]
            weights = _hermitian_weights(L)
            G = weights * np.conj(F.T) / L
        # the input's precision (complex for the circular kind)
        self.weights = weights.astype(dtype)
        self._complex = kind == "circular"
        dtype = np.result_type(dtype, np.complex64) if kind == "circular" else dtype
        self.F, self.G = np.ascontiguousarray(F, dtype=dtype), np.ascontiguousarray(G, dtype=dtype)
        self.FT, self.GT = np.ascontiguousarray(self.F.T), np.ascontiguousarray(self.G.T)

    xp = np

    def _real(self, a):
        return _real(a) if self._complex else a

    def conv(self, h, w):
        U = h @ self.FT
        return self._real((w * U) @ self.GT), U

    def conv_vjp(self, gu, w, U):
        gP = gu @ self.G
        return self._real((gP * w) @ self.F), gP * U

    def deconv(self, u, w):
        U = u @ self.FT
        return self._real((U / w) @ self.GT), U

    def deconv_vjp(self, gh, w, U):
        gU = (gh @ self.G) / w
        return self._real(gU @ self.F), -gU * U / w


class _CompiledMatrixTransforms(_MatrixTransforms):
    """:class:`_MatrixTransforms` with a whole layer's VJP (the gates' and the
    convolution's) in one compiled kernel, :func:`refconf.engines._numba.matrix_layer_vjp`:
    one call where NumPy makes a dozen on arrays of a few thousand values. (The forward
    convolution stays NumPy's: three BLAS-bound calls, measured as fast as a compiled
    kernel making the same products.)"""

    def layer_vjp(self, gy, gl, u, U, q, y, w, s, alpha, alpha_prime, g_w, g_s):
        """``(gh, ga, ga')`` of one layer of the step, writing ``g_w`` and ``g_s``
        (:func:`refconf.engines._numba.matrix_layer_vjp`)."""
        return _numba.matrix_layer_vjp(gy, gl, u, U, q, y, w, s, self.weights, alpha,
                                       alpha_prime, self.F, self.G, g_w, g_s)


def _real(a):
    """The real part, C-contiguous (as the compiled kernels take it)."""
    return np.ascontiguousarray(a.real) if np.iscomplexobj(a) else a


class _FFTTransforms:
    """The same four maps by FFT (long signals): ``T`` the DCT-I or rfft, ``T^-1`` its
    inverse, and their transposes from the readable tier's VJPs."""

    xp = np

    def __init__(self, kind, L, dtype):
        if kind == "symmetric":
            self.weights = np.ones(L, dtype=dtype)
            self.T, self.T_inv = dct1, idct1
            self.T_transpose = lambda g: dct1_vjp(g, g)(g)
            self.T_inv_transpose = lambda g: idct1_vjp(g, g)(g)
        else:
            self.weights = _hermitian_weights(L).astype(dtype)
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
        gates' compiled VJP (:func:`refconf.engines._numba.slog_gates_vjp`), the
        transposed transforms, and the spectrum's log-det term
        (:func:`refconf.engines._numba.matrix_layer_vjp` gives the formulas)."""
        gu, g_s[...], ga, gap = _numba.slog_gates_vjp(gy, gl, u, q, y, s, alpha, alpha_prime)
        gh, g_w[...] = self.conv_vjp(gu, w, U)
        g_w += gl[:, None] * self.weights / w  # d log|w| = c / w in autograd's convention
        return gh, ga, gap


@functools.lru_cache(maxsize=64)
def _transforms(kind, L, dtype):
    """The transforms for signals of length ``L``: FFT from :data:`FFT_MIN_LENGTH` on,
    dense matrices below (built once per kind, length and dtype)."""
    if L >= FFT_MIN_LENGTH[kind]:
        return _FFTTransforms(kind, L, dtype)
    return _CompiledMatrixTransforms(kind, L, dtype)


# --- the CONF step -----------------------------------------------------------------------


def _validate(h, w_hat, s, t, alpha, alpha_prime, kind, what):
    """The readable tier's argument checks, on the values (every layer has the shapes of
    the first, ``w_hat`` and ``s`` being arrays)."""
    _check_kind(kind)
    _check_step(h, w_hat, s, t, alpha, alpha_prime, what)
    if np.size(alpha):
        _check_layer(h, w_hat[0], s[0], kind, what)
    check_alpha(alpha, f"{what}: alpha")
    check_alpha(alpha_prime, f"{what}: alpha_prime")


def _layout(h, w_hat, s, t, alpha, alpha_prime, kind):
    """The arguments as the kernels take them: C-contiguous, of one real dtype (complex
    for a circular spectrum), the batch axes flattened into one. Returns
    ``(arrays, batch_shape)``."""
    dtype = np.result_type(h, np.real(w_hat), s, t, alpha, alpha_prime)
    spectrum_dtype = np.result_type(dtype, np.complex64) if kind == "circular" else dtype
    lead, d2, m = np.shape(h)[:-1], np.shape(h)[-1], np.size(alpha)
    n = int(np.prod(lead))

    def rows(a, shape, dt=dtype):
        return np.ascontiguousarray(np.reshape(a, shape), dtype=dt)

    arrays = (rows(h, (n, d2)), rows(w_hat, (m, n, np.shape(w_hat)[-1]), spectrum_dtype),
              rows(s, (m, n, d2)), rows(t, (n, d2)), rows(alpha, (m,)),
              rows(alpha_prime, (m,)))
    return arrays, lead


def _like(grads, args):
    """Each gradient in its argument's shape and dtype (the real part for a real
    argument)."""
    return tuple(np.reshape(np.asarray(g if np.iscomplexobj(a) else np.real(g),
                                       dtype=np.result_type(a)), np.shape(a))
                 for g, a in zip(grads, args))


_GATE = {"conf_step": "conf_layer: the expanding gate g_{a'}",
         "conf_step_inverse": "conf_layer_inverse: the expanding gate g_a"}


class _Handoff(threading.local):
    """Intermediates of a traced forward call, handed to its VJP maker.

    autograd calls a primitive's VJP maker right after the forward call, with that
    call's output ``ans``. A traced forward leaves ``(ans, saved)`` here; the maker takes
    ``saved`` if ``ans`` is the same object, and otherwise recomputes it, so a stale or
    missing entry costs time, never correctness.
    """

    def put(self, ans, saved):
        self.item = (ans, saved)

    def take(self, ans):
        item, self.item = getattr(self, "item", None), None
        return item[1] if item is not None and item[0] is ans else None


_handoff = _Handoff()


def _traced(*args):
    return any(isbox(a) for a in args)


def _first_order(values):
    """The VJPs here are NumPy and compiled code, not autograd-traceable: refuse to be
    differentiated again (a traced argument or cotangent) rather than return a wrong
    higher derivative."""
    if any(isbox(v) for v in (values if isinstance(values, tuple) else (values,))):
        raise NotImplementedError(
            "engine='numba' gives first derivatives only; use engine='numpy' for "
            "higher-order derivatives")


def _log_det_constant(ops, w_hat, s):
    """``sum_i [sum_k c_k log|w_i[k]| + sum_j log|s_i[j]|]`` per sample, in ``ops.xp``:
    the log-det of the step's convolutions and scales (eq. 3; ``c_k`` the transform's
    bin weights)."""
    xp = ops.xp
    if xp is np:
        return _numba.log_det_sums(np.log(np.abs(w_hat)), ops.weights, np.log(np.abs(s)))
    # products with the weights and ones: sums over short last axes are several times
    # slower
    ones = xp.ones(s.shape[-1], dtype=s.dtype)
    return xp.sum(xp.log(xp.abs(w_hat)) @ ops.weights + xp.log(xp.abs(s)) @ ones, axis=0)


@functools.lru_cache(maxsize=8)
def _log_max(dtype):
    return math.log(np.finfo(dtype).max)


def _slog_pair(x, c, a_in, a_out, divide, log_det, what, overflow):
    """A contracting gate, a scale and an expanding gate (eq. 4),
    ``y = g_{a_out}(c f_{a_in}(x))`` (``c / f_{a_in}(x)`` if ``divide``), adding the
    three log-derivatives (but ``log|c|``) to ``log_det`` in place; returns
    ``(f_{a_in}(x), y)``.

    NumPy's vectorised ``log1p`` and ``expm1`` around compiled passes
    (:func:`refconf.engines._numba.scaled_abs`,
    :func:`~refconf.engines._numba.slog_pair_between`): five calls instead of the
    readable gates' twenty-odd, with the same overflow guard
    (:func:`~refconf.bijectors.elementwise.expanding_gate_guard`). The sign and the
    ``1 / a_out`` are one factor (a last-digit difference from dividing by ``a_out``).
    """
    t = _numba.scaled_abs(x, a_in)
    np.log1p(t, out=t)
    q, sign_p, r, worst = _numba.slog_pair_between(x, t, c, a_in, a_out, divide, log_det)
    with expanding_gate_guard(worst + max(0.0, -math.log(a_out)), _log_max(x.dtype), what,
                              overflow):
        np.expm1(r, out=r)
    r *= sign_p
    return q, r


def _step_forward(x2, w_hat, s, t, alpha, alpha_prime, kind, overflow):
    """Values of eq. (5), ``F_m`` first; returns ``(y2, log_det, saved)`` with ``saved``
    the per-layer ``(u, U, q, layer output)`` the VJP reads, ``F_1``'s first.
    :func:`_step_values` with this engine's transforms (:func:`_transforms`) and gates
    (:func:`_slog_pair`)."""
    return _step_values(x2, w_hat, s, t, alpha, alpha_prime,
                        _transforms(kind, x2.shape[-1], x2.dtype), _forward_gates, overflow)


def _forward_gates(u, s, alpha, alpha_prime, log_det, overflow):
    """``(q, y, log_det)``: ``q = f_a(u)``, ``y = g_{a'}(s q)``, their log-derivatives
    added to ``log_det`` (in place)."""
    q, y = _slog_pair(u, s, alpha, alpha_prime, False, log_det, _GATE["conf_step"],
                      overflow)
    return q, y, log_det


def _step_values(x2, w_hat, s, t, alpha, alpha_prime, ops, gates, overflow):
    """:func:`_step_forward` with the transforms ``ops`` and the gate pair ``gates``
    given, in the namespace ``ops.xp`` (NumPy here, any array-API library in
    :mod:`refconf.engines.array_kernels`).

    ``gates(u, s_i, alpha_i, alpha'_i, log_det, overflow) -> (q, y, log_det)`` computes
    ``q = f_a(u)`` and ``y = g_{a'}(s_i q)`` and adds their log-derivatives to
    ``log_det``.
    """
    log_det = _log_det_constant(ops, w_hat, s)
    h, saved = x2, []
    for i in reversed(range(alpha.shape[0])):
        u, U = ops.conv(h, w_hat[i, ...])
        q, h, log_det = gates(u, s[i, ...], alpha[i], alpha_prime[i], log_det, overflow)
        saved.append((u, U, q, h))
    return h + t, log_det, saved[::-1]


@primitive
def _conf_step(x2, w_hat, s, t, alpha, alpha_prime, kind, overflow, traced):
    """``(y2, log_det)`` of :func:`conf_step`; ``traced`` hands the intermediates to the
    VJP."""
    arrays, lead = _layout(x2, w_hat, s, t, alpha, alpha_prime, kind)
    y2, log_det, saved = _step_forward(*arrays, kind, overflow)
    ans = (y2.reshape(lead + y2.shape[-1:]), log_det.reshape(lead))
    if traced:
        _handoff.put(ans, (arrays, saved))
    return ans


def _step_vjp_maker(recompute, backward, shift_cotangent):
    """The VJP maker of a step primitive (:func:`_conf_step`, :func:`_conf_step_inverse`)
    in all its array arguments.

    ``recompute(arrays, kind)`` gives the intermediates when the forward call's hand-off
    is missing; ``backward`` is the analytic backward pass (:func:`_step_backward`,
    :func:`_step_inverse_backward`); ``shift_cotangent(g_out, g_in)`` the cotangent of
    the shift ``t``.
    """
    def make(argnums, ans, args, kwargs):
        _first_order(args)
        kind = args[6]
        kept = _handoff.take(ans)
        if kept is None:
            arrays = _layout(*args[:6], kind)[0]
            kept = arrays, recompute(arrays, kind)
        (h, w_hat, s, _, alpha, alpha_prime), saved = kept
        ops = _transforms(kind, h.shape[-1], h.dtype)

        def vjp(g):
            _first_order(g)
            g_out, gl = (np.ascontiguousarray(np.reshape(part, shape), dtype=h.dtype)
                         for part, shape in zip(g, (h.shape, h.shape[:1])))
            g_in, g_w, g_s, g_alpha, g_alpha_prime = backward(
                g_out, gl, w_hat, s, alpha, alpha_prime, saved, ops)
            grads = _like((g_in, g_w, g_s, shift_cotangent(g_out, g_in), g_alpha,
                           g_alpha_prime), args[:6])
            return tuple(grads[i] for i in argnums)

        return vjp

    return make


def _step_backward(gy, gl, w_hat, s, alpha, alpha_prime, saved, ops):
    """Cotangents of :func:`_step_forward`'s inputs ``(x2, w_hat, s, alpha, alpha')``
    (that of ``t`` is ``gy``) from those of ``y2`` and ``log_det``: one backward pass
    through the layers, ``F_1`` first, each layer's VJP given by the transforms
    (:meth:`_CompiledMatrixTransforms.layer_vjp`, :meth:`_FFTTransforms.layer_vjp`)."""
    g_w, g_s = np.empty_like(w_hat), np.empty_like(s)
    g_alpha, g_alpha_prime = np.empty_like(alpha), np.empty_like(alpha_prime)
    gh = gy
    for i, (u, U, q, y) in enumerate(saved):
        gh, g_alpha[i], g_alpha_prime[i] = ops.layer_vjp(
            gh, gl, u, U, q, y, w_hat[i], s[i], alpha[i], alpha_prime[i], g_w[i], g_s[i])
    return gh, g_w, g_s, g_alpha, g_alpha_prime


_conf_step_vjp = _step_vjp_maker(
    lambda arrays, kind: _step_forward(*arrays, kind, "inf")[2], _step_backward,
    lambda g_out, g_in: g_out)
defvjp_argnums(_conf_step, _conf_step_vjp)


def conf_step(x2, w_hat, s, t, alpha, alpha_prime, kind="symmetric", overflow="raise"):
    """Mixed CONF step of eq. (5), ``y2 = (F_1 o ... o F_m)(x2) + t``, as one primitive.

    Same arguments, returns and errors as :func:`refconf.bijectors.coupling.conf_step`;
    one autograd node. Its VJP (in every array argument, first order) is the analytic
    backward of the layers: the gates' (compiled,
    :func:`refconf.engines._numba.slog_gates_vjp`), the convolution's (the transposed
    transforms) and ``c / w_hat`` for the spectrum's log-det.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.bijectors import coupling
    >>> rng = np.random.default_rng(0)
    >>> x2, w, s, t = (rng.normal(size=(2, 5)), 1 + 0.3 * rng.normal(size=(3, 2, 5)),
    ...                np.exp(rng.normal(size=(3, 2, 5))), rng.normal(size=(2, 5)))
    >>> a = np.array([0.5, 1.0, 2.0])
    >>> fast = conf_step(x2, w, s, t, a, a[::-1])
    >>> readable = coupling.conf_step(x2, w, s, t, a, a[::-1])
    >>> all(np.allclose(p, q, rtol=1e-12) for p, q in zip(fast, readable))
    True
    """
    if overflow not in ("raise", "inf"):
        raise ValueError(f"overflow must be 'raise' or 'inf', got {overflow!r}")
    args = (x2, w_hat, s, t, alpha, alpha_prime)
    _validate(*(getval(a) for a in args), kind, "conf_step")
    y2, log_det = _conf_step(*args, kind, overflow, _traced(*args))
    return y2, log_det


def _step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind):
    """Values of the inverse step, ``F_1`` undone first; returns ``(x2, log_det, saved)``
    with ``saved`` the per-layer ``(gate input, v, u, U)`` the VJP reads. Each layer is
    :func:`_slog_pair` (``g_a(f_{a'}(h) / s)``) and a deconvolution."""
    check_invertible(w_hat, 1, "conf_step_inverse: the kernel spectrum")
    ops = _transforms(kind, y2.shape[-1], y2.dtype)
    log_det = -_log_det_constant(ops, w_hat, s)
    h, saved = y2 - t, []
    for i in range(alpha.size):
        v, u = _slog_pair(h, s[i], alpha_prime[i], alpha[i], True, log_det,
                          _GATE["conf_step_inverse"], "raise")
        h_next, U = ops.deconv(u, w_hat[i])
        saved.append((h, v, u, U))
        h = h_next
    return h, log_det, saved


@primitive
def _conf_step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind, traced):
    """``(x2, log_det)`` of :func:`conf_step_inverse`."""
    arrays, lead = _layout(y2, w_hat, s, t, alpha, alpha_prime, kind)
    x2, log_det, saved = _step_inverse(*arrays, kind)
    ans = (x2.reshape(lead + x2.shape[-1:]), log_det.reshape(lead))
    if traced:
        _handoff.put(ans, (arrays, saved))
    return ans


def _step_inverse_backward(gx, gl, w_hat, s, alpha, alpha_prime, saved, ops):
    """Cotangents of :func:`_step_inverse`'s inputs ``(y2, w_hat, s, alpha, alpha')``
    (that of ``t`` is minus that of ``y2``): backward through the layers in reverse (the
    inverse of ``F_m``, applied last, first), with
    :func:`refconf.engines._numba.slog_gates_inverse_vjp`."""
    g_w, g_s = np.empty_like(w_hat), np.empty_like(s)
    g_alpha, g_alpha_prime = np.empty_like(alpha), np.empty_like(alpha_prime)
    gh = gx
    for i in reversed(range(alpha.size)):
        h, v, u, U = saved[i]
        gu, g_w[i] = ops.deconv_vjp(gh, w_hat[i], U)
        gh, g_s[i], ga, gap = _numba.slog_gates_inverse_vjp(gu, gl, h, v, u, s[i],
                                                           alpha[i], alpha_prime[i])
        g_alpha[i], g_alpha_prime[i] = ga, gap
    g_w -= gl[:, None] * ops.weights / w_hat
    return gh, g_w, g_s, g_alpha, g_alpha_prime


_conf_step_inverse_vjp = _step_vjp_maker(
    lambda arrays, kind: _step_inverse(*arrays, kind)[2], _step_inverse_backward,
    lambda g_out, g_in: -g_in)
defvjp_argnums(_conf_step_inverse, _conf_step_inverse_vjp)


def conf_step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind="symmetric"):
    """Inverse of :func:`conf_step` as one primitive; as
    :func:`refconf.bijectors.coupling.conf_step_inverse` (the same errors: a near-zero
    eigenvalue or an overflowing gate ``g_a`` raises ``ValueError``). One autograd node;
    its VJP (first order) uses :func:`refconf.engines._numba.slog_gates_inverse_vjp`."""
    args = (y2, w_hat, s, t, alpha, alpha_prime)
    _validate(*(getval(a) for a in args), kind, "conf_step_inverse")
    x2, log_det = _conf_step_inverse(*args, kind, _traced(*args))
    return x2, log_det


# --- the conditioner MLP -----------------------------------------------------------------


def _activate(a, activation):
    """``act(a)`` in place. The activation is NumPy's: its vectorised tanh is several
    times faster than a compiled loop over libm's scalar tanh on AVX-512 CPUs."""
    if activation == "tanh":
        np.tanh(a, out=a)
    else:
        np.maximum(a, 0.0, out=a)


def _mlp_forward(x, activation, Ws, bs):
    """Output and hidden activations ``h_l = act(h_{l-1} W_l + b_l)`` (BLAS products)."""
    hidden, h = [], x
    for W, b in zip(Ws[:-1], bs[:-1]):
        h = h @ W
        _numba.add_bias(h, b)
        _activate(h, activation)
        hidden.append(h)
    out = h @ Ws[-1]
    _numba.add_bias(out, bs[-1])
    return out, hidden


@primitive
def _mlp(x, activation, traced, *weights):
    """The MLP output; ``weights`` is ``W_1, b_1, ..., W_L, b_L``, ``traced`` hands the
    hidden activations to the VJP."""
    out, hidden = _mlp_forward(x, activation, weights[0::2], weights[1::2])
    if traced:
        _handoff.put(out, hidden)
    return out


def _mlp_vjp(argnums, ans, args, kwargs):
    """Backpropagation through the MLP::

        gW_l = h_{l-1}^T ga_l,   gb_l = sum_b ga_l,   gh_{l-1} = ga_l W_l^T,
        ga_{l-1} = gh_{l-1} * act'(h_{l-1})

    from ``ga_L = g`` (``h_0 = x``), with ``act'`` from the activations themselves
    (:func:`refconf.engines._numba.activation_vjp`).
    """
    _first_order(args)
    x, activation, Ws = args[0], args[1], args[3::2]
    hidden = _handoff.take(ans)
    if hidden is None:
        hidden = _mlp_forward(x, activation, Ws, args[4::2])[1]
    inputs = [x] + hidden

    def vjp(g):
        _first_order(g)
        g_x, g_weights = _mlp_backward(np.ascontiguousarray(g), inputs, Ws, activation,
                                       input_grad=0 in argnums)
        grads = [g_x, None, None, *g_weights]
        return tuple(grads[i] for i in argnums)

    return vjp


def _mlp_backward(g, inputs, Ws, activation, input_grad=True):
    """Backpropagation of :func:`_mlp_forward` from the output cotangent ``g``, with
    ``inputs = [x, h_1, ..., h_{L-1}]``; returns ``(gx, [gW_1, gb_1, ..., gW_L, gb_L])``
    (``gx`` None unless ``input_grad``)."""
    grads = [None] * (2 * len(Ws))
    ga, gb = g, np.ones(len(g), dtype=g.dtype) @ g  # faster than g.sum(axis=0)
    for layer in reversed(range(len(Ws))):
        grads[2 * layer] = inputs[layer].T @ ga
        grads[2 * layer + 1] = gb
        if layer == 0:
            return (ga @ Ws[0].T if input_grad else None), grads
        ga, gb = _numba.activation_vjp(ga @ Ws[layer].T, inputs[layer], activation == "tanh")


defvjp_argnums(_mlp, _mlp_vjp)


def mlp(params, x, activation="relu"):
    """The conditioner MLP of :func:`refconf.conditioners.mlp` as one autograd primitive.

    Same parameters and output: hidden layers ``act(h W + b)``, a linear output layer.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf import conditioners
    >>> params = conditioners.mlp_init(3, (8, 8), 5, random_state=0, zero_output=False)
    >>> x = np.random.default_rng(0).normal(size=(4, 3))
    >>> np.allclose(mlp(params, x, "tanh"), conditioners.mlp(params, x, "tanh"), rtol=1e-12)
    True
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    weights = [p for layer in params for p in (layer["W"], layer["b"])]
    lead, n_in = np.shape(x)[:-1], np.shape(x)[-1]
    flat = x if len(lead) == 1 else anp.reshape(x, (-1, n_in))
    out = _mlp(flat, activation, _traced(flat, *weights), *weights)
    return out if len(lead) == 1 else anp.reshape(out, lead + (-1,))
