"""Compiled kernels of the numba engine: the fused elementwise backward passes.

Each kernel is a loop over the batch (one sample per row, ``prange``) of the formulas in
its docstring, compiled once and cached on disk (``cache=True``): one pass over memory
where NumPy would make a dozen, and no transcendental function (the forward pass hands
its intermediates over). They know nothing of autograd;
:mod:`refconf.engines.numba_engine` registers them as the VJPs of its primitives.

What is not here, and why (measured by ``validation/bench_engines.py``): the transforms
are dense matrix products (BLAS) or FFTs, several times faster than compiled loops over
the same sums; the forward S-Log gates and the tanh activation are NumPy's vectorised
transcendental loops, 3-10x faster than compiled calls to the scalar libm (numba has no
vectorised math library on this platform).

The kernels are compiled serial: ``prange`` is ``range`` unless a kernel is recompiled
with ``parallel=True``, which ``bench_engines.py --parallel`` measures. On two idle cores
that makes the gate VJPs 1.3-1.9x faster, a negligible share of a training step; on a
shared machine whose other core is busy, each parallel call can wait a scheduler tick
(about 8 ms measured, against 25 us serial).
"""

import numpy as np
from numba import njit, prange

__all__ = ["activation_vjp", "slog_gates_inverse_vjp", "slog_gates_vjp"]


@njit(cache=True, error_model="numpy")
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

    Returns ``(gu, gs, ga, ga')`` with ``ga``, ``ga'`` per row, shape ``(B,)``.
    """
    B, L = u.shape
    gu = np.empty_like(u)
    gs = np.empty_like(u)
    ga = np.empty(B, dtype=u.dtype)
    gap = np.empty(B, dtype=u.dtype)
    for b in prange(B):
        acc_a = 0.0
        acc_ap = 0.0
        g_log = gl[b]
        for j in range(L):
            au = abs(u[b, j])
            d = 1.0 + alpha * au
            v = s[b, j] * q[b, j]
            E = 1.0 + alpha_prime * abs(y[b, j])
            gv = gy[b, j] * E + g_log * alpha_prime * np.sign(v)
            gs[b, j] = gv * q[b, j] + g_log / s[b, j]
            gq = gv * s[b, j]
            gu[b, j] = (gq - g_log * alpha * np.sign(u[b, j])) / d
            acc_a += gq * (u[b, j] / d - q[b, j]) / alpha - g_log * au / d
            acc_ap += gy[b, j] * (v * E - y[b, j]) / alpha_prime + g_log * abs(v)
        ga[b] = acc_a
        gap[b] = acc_ap
    return gu, gs, ga, gap


@njit(cache=True, error_model="numpy")
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

    Returns ``(gy, gs, ga, ga')``.
    """
    B, L = y.shape
    gy = np.empty_like(y)
    gs = np.empty_like(y)
    ga = np.empty(B, dtype=y.dtype)
    gap = np.empty(B, dtype=y.dtype)
    for b in prange(B):
        acc_a = 0.0
        acc_ap = 0.0
        g_log = gl[b]
        for j in range(L):
            ay = abs(y[b, j])
            d = 1.0 + alpha_prime * ay
            r = v[b, j] / s[b, j]
            E = 1.0 + alpha * abs(u[b, j])
            gr = gu[b, j] * E + g_log * alpha * np.sign(r)
            gs[b, j] = -(gr * r + g_log) / s[b, j]
            gv = gr / s[b, j]
            gy[b, j] = (gv - g_log * alpha_prime * np.sign(y[b, j])) / d
            acc_a += gu[b, j] * (r * E - u[b, j]) / alpha + g_log * abs(r)
            acc_ap += gv * (y[b, j] / d - v[b, j]) / alpha_prime - g_log * ay / d
        ga[b] = acc_a
        gap[b] = acc_ap
    return gy, gs, ga, gap


@njit(cache=True, error_model="numpy")
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
