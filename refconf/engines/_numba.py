"""Compiled kernels of the numba engine: the fused elementwise passes of the S-Log gates,
a CONF layer's VJP, and the layout work of the explicit training pass.

Each kernel is a loop over the batch (one sample per row, ``prange``) of the formulas in
its docstring, compiled once and cached on disk (``cache=True``): one pass over memory
where NumPy would make a dozen, and one call where a training step on a batch of a few
thousand values would otherwise pay for many. The backward kernels evaluate no
transcendental function (the forward pass hands its intermediates over); the forward
gates leave their two, ``log1p`` and ``expm1``, to NumPy and do everything between them
in one pass (:func:`slog_pair_between`). A layer's whole VJP with dense transforms is one
kernel that makes its two products by BLAS from compiled code
(:func:`matrix_layer_vjp`). The kernels know nothing of autograd;
:mod:`refconf.engines.numba_engine` and :mod:`refconf.engines.model_pass` call them.

What is not here, and why (measured by ``validation/bench_engines.py``): the forward
transforms are dense matrix products (NumPy's BLAS calls, as fast as the same products
made from compiled code and several times faster than compiled loops over the sums) or
FFTs; ``log1p``, ``expm1`` and the tanh activation are NumPy's vectorised transcendental
loops, 2-11x faster than compiled calls to the scalar libm (numba has no vectorised math
library on this platform).

The kernels are compiled serial: ``prange`` is ``range`` unless a kernel is recompiled
with ``parallel=True``, which ``bench_engines.py --parallel`` measures. On two idle cores
that makes the gate VJPs 1.3-1.9x faster, a negligible share of a training step; on a
shared machine whose other core is busy, each parallel call can wait a scheduler tick
(about 8 ms measured, against 25 us serial).
"""

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "activation_vjp",
    "actnorm_backward",
    "actnorm_forward",
    "add_bias",
    "join_conditioner_cotangent",
    "log_det_sums",
    "matrix_layer_vjp",
    "scaled_abs",
    "slog_gates_inverse_vjp",
    "slog_gates_vjp",
    "slog_pair_between",
    "split_conditioner_output",
]


@njit(cache=True, nogil=True, error_model="numpy")
def scaled_abs(x, a):
    """``a |x|``: the argument of a contracting gate's ``log1p`` (eq. 4)."""
    B, L = x.shape
    out = np.empty((B, L), dtype=x.dtype)
    for b in prange(B):
        for j in range(L):
            out[b, j] = a * abs(x[b, j])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def slog_pair_between(x, t, c, a_in, a_out, divide, log_det):
    """The elementwise work between the two transcendental passes of a pair of S-Log
    gates (eq. 4), ``y = g_{a_out}(c f_{a_in}(x))`` (``c / f_{a_in}(x)`` if ``divide``)::

        t = log1p(a_in |x|)        (given: NumPy's vectorised log1p)
        q = sign(x) t / a_in       = f_{a_in}(x)
        p = c q                    (q / c if divide)
        r = a_out |p|              (then y = expm1(r) sign(p) / a_out: NumPy's expm1)
        log_det[b] += sum_j (r - t)

    The forward step's gates are ``g_{a'}(s f_a(u))``, the inverse step's
    ``g_a(f_{a'}(h) / s)``. ``log_det`` (``(B,)``) is updated in place. Returns
    ``(q, sign(p) / a_out, r, max r)`` (a NaN ``r`` may or may not reach the maximum;
    the callers' finiteness checks report it).
    """
    B, L = x.shape
    q = np.empty_like(x)
    sign_p = np.empty_like(x)
    r = np.empty_like(x)
    inv_a_out = 1.0 / a_out
    worst = -np.inf
    for b in prange(B):
        acc = 0.0
        for j in range(L):
            q_bj = math.copysign(t[b, j], x[b, j]) / a_in
            p_bj = q_bj / c[b, j] if divide else c[b, j] * q_bj
            r_bj = a_out * abs(p_bj)
            q[b, j] = q_bj
            sign_p[b, j] = math.copysign(inv_a_out, p_bj)
            r[b, j] = r_bj
            acc += r_bj - t[b, j]
            worst = max(worst, r_bj)
        log_det[b] += acc
    return q, sign_p, r, worst


@njit(cache=True, nogil=True, error_model="numpy")
def slog_gates_vjp(gy, gl, u, q, y, s, alpha, alpha_prime):
    """VJP of the gates of eq. (4) after the convolution::

        q = f_a(u) = sign(u) log1p(a|u|) / a
        v = s q
        y = g_{a'}(v) = sign(v) expm1(a'|v|) / a'
        log_det[b] = sum_j [-log1p(a|u|) + log|s| + a'|v|]

    for cotangents ``gy`` of ``y`` and ``gl`` of ``log_det``, from the forward's ``u``,
    ``q`` and ``y`` (no transcendental function is evaluated).

    With ``v = s q``, ``E = exp(a'|v|) = 1 + a'|y|`` and ``d = 1 + a|u|``, elementwise::

        gv  = gy E + gl a' sign(v)
        gs  = gv q + gl / s
        gu  = (gv s - gl a sign(u)) / d
        ga  = gv s (u / d - q) / a - gl |u| / d       (summed over the row)
        ga' = gy (v E - y) / a' + gl |v|              (summed over the row)

    Returns ``(gu, gs, ga, ga')`` with ``ga`` and ``ga'`` summed over the batch.
    Divisions are multiplications by reciprocals computed once (a last-digit
    difference from the formulas as written).
    """
    B, L = u.shape
    gu = np.empty_like(u)
    gs = np.empty_like(u)
    ga = 0.0
    gap = 0.0
    inv_a = 1.0 / alpha
    inv_ap = 1.0 / alpha_prime
    for b in prange(B):
        acc_a = 0.0
        acc_ap = 0.0
        g_log = gl[b]
        for j in range(L):
            au = abs(u[b, j])
            inv_d = 1.0 / (1.0 + alpha * au)
            v = s[b, j] * q[b, j]
            E = 1.0 + alpha_prime * abs(y[b, j])
            gv = gy[b, j] * E + g_log * alpha_prime * np.sign(v)
            gs[b, j] = gv * q[b, j] + g_log / s[b, j]
            gq = gv * s[b, j]
            gu[b, j] = (gq - g_log * alpha * np.sign(u[b, j])) * inv_d
            acc_a += gq * (u[b, j] * inv_d - q[b, j]) * inv_a - g_log * au * inv_d
            acc_ap += gy[b, j] * (v * E - y[b, j]) * inv_ap + g_log * abs(v)
        ga += acc_a
        gap += acc_ap
    return gu, gs, ga, gap


@njit(cache=True, nogil=True, error_model="numpy")
def slog_gates_inverse_vjp(gu, gl, y, v, u, s, alpha, alpha_prime):
    """VJP of the inverse gates::

        v = f_{a'}(y),   r = v / s,   u = g_a(r)
        log_det[b] = sum_j [-log1p(a'|y|) - log|s| + a|r|]

    for cotangents ``gu`` of ``u`` and ``gl`` of ``log_det``, from the forward's ``y``,
    ``v`` and ``u``.

    With ``r = v / s``, ``E = exp(a|r|) = 1 + a|u|`` and ``d = 1 + a'|y|``, elementwise::

        gr  = gu E + gl a sign(r)
        gs  = -(gr r + gl) / s
        gy  = (gr / s - gl a' sign(y)) / d
        ga  = gu (r E - u) / a + gl |r|                  (summed over the row)
        ga' = (gr / s) (y / d - v) / a' - gl |y| / d      (summed over the row)

    Returns ``(gy, gs, ga, ga')`` (``ga``, ``ga'`` summed over the batch; divisions by
    reciprocals, as :func:`slog_gates_vjp`).
    """
    B, L = y.shape
    gy = np.empty_like(y)
    gs = np.empty_like(y)
    ga = 0.0
    gap = 0.0
    inv_a = 1.0 / alpha
    inv_ap = 1.0 / alpha_prime
    for b in prange(B):
        acc_a = 0.0
        acc_ap = 0.0
        g_log = gl[b]
        for j in range(L):
            ay = abs(y[b, j])
            inv_d = 1.0 / (1.0 + alpha_prime * ay)
            inv_s = 1.0 / s[b, j]
            r = v[b, j] * inv_s
            E = 1.0 + alpha * abs(u[b, j])
            gr = gu[b, j] * E + g_log * alpha * np.sign(r)
            gs[b, j] = -(gr * r + g_log) * inv_s
            gv = gr * inv_s
            gy[b, j] = (gv - g_log * alpha_prime * np.sign(y[b, j])) * inv_d
            acc_a += gu[b, j] * (r * E - u[b, j]) * inv_a + g_log * abs(r)
            acc_ap += gv * (y[b, j] * inv_d - v[b, j]) * inv_ap - g_log * ay * inv_d
        ga += acc_a
        gap += acc_ap
    return gy, gs, ga, gap


@njit(cache=True, nogil=True, error_model="numpy")
def matrix_layer_vjp(gy, gl, u, U, q, y, w, s, c, alpha, alpha_prime, F, G, g_w, g_s):
    """VJP of one CONF layer with dense transforms: the gates' (:func:`slog_gates_vjp`),
    then the convolution's (``U = h F^T``, ``u = Re (w * U) G^T``:
    :class:`refconf.engines.numba_engine._MatrixTransforms`), then the spectrum's
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
def split_conditioner_output(out, m, L):
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
def join_conditioner_cotangent(g_ow, g_s, s, g_t):
    """The cotangent of the conditioner output from those of its parts (the inverse
    layout of :func:`split_conditioner_output`), the scales' through ``s = exp(o_s)``::

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
def activation_vjp(gh, h, tanh):
    """Cotangent of a hidden layer's pre-activation from that of its output ``h``, and
    the bias gradient (its column sums)::

        ga[b, j] = gh[b, j] (1 - h[b, j]^2)     (tanh)
        ga[b, j] = gh[b, j] [h[b, j] > 0]       (relu)
        gb[j]    = sum_b ga[b, j]

    Returns ``(ga, gb)``.
    """
    B, H = h.shape
    ga = np.empty_like(h)
    for b in prange(B):
        for j in range(H):
            if tanh:
                ga[b, j] = gh[b, j] * (1.0 - h[b, j] * h[b, j])
            else:
                ga[b, j] = gh[b, j] if h[b, j] > 0.0 else 0.0
    gb = np.zeros(H, dtype=h.dtype)
    for b in range(B):
        for j in range(H):
            gb[j] += ga[b, j]
    return ga, gb


@njit(cache=True, nogil=True, error_model="numpy")
def add_bias(h, b):
    """``h[i, j] += b[j]`` in place: a layer's bias, 2-3x faster than NumPy's
    broadcasting add for rows of a few dozen entries (one inner-loop call per row)."""
    B, H = h.shape
    for i in prange(B):
        for j in range(H):
            h[i, j] += b[j]


@njit(cache=True, nogil=True, error_model="numpy")
def actnorm_forward(x, loc, log_scale):
    """ActNorm ``y[b, j] = (x[b, j] - loc[j]) scale[j]``, ``scale = exp(-log_scale)``.
    Returns ``(y, scale, -sum_j log_scale[j])`` (the last the per-sample log-det)."""
    B, D = x.shape
    scale = np.exp(-log_scale)
    y = np.empty((B, D), dtype=x.dtype)
    for b in prange(B):
        for j in range(D):
            y[b, j] = (x[b, j] - loc[j]) * scale[j]
    return y, scale, -np.sum(log_scale)


@njit(cache=True, nogil=True, error_model="numpy")
def actnorm_backward(g, y, scale, gl_sum):
    """ActNorm's VJP from the output cotangent ``g``, the output ``y`` and the sum
    ``gl_sum`` of the log-det's cotangents over the batch::

        gx[b, j] = g[b, j] scale[j]
        gloc[j]  = -sum_b gx[b, j]
        gls[j]   = -sum_b g[b, j] y[b, j] - gl_sum

    Returns ``(gx, gloc, gls)``.
    """
    B, D = g.shape
    gx = np.empty((B, D), dtype=g.dtype)
    gloc = np.zeros(D, dtype=g.dtype)
    gls = np.zeros(D, dtype=g.dtype)
    for b in range(B):
        for j in range(D):
            gx[b, j] = g[b, j] * scale[j]
            gloc[j] -= gx[b, j]
            gls[j] -= g[b, j] * y[b, j]
    gls -= gl_sum
    return gx, gloc, gls


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
