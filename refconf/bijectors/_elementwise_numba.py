"""Compiled overrides of the S-Log gates' kernels (:mod:`refconf.bijectors.elementwise`),
on NumPy arrays.

Each kernel is a loop over the batch (one sample per row, ``prange``) of the formulas in
its docstring, compiled once and cached on disk (``cache=True``): one pass over memory
where NumPy would make a dozen. The backward kernels evaluate no transcendental function
(the forward pass hands its intermediates over); the forward gates leave their two,
``log1p`` and ``expm1``, to NumPy's vectorised loops (2-11x faster than compiled calls to
the scalar libm, which is all numba has on this platform) and do everything between them
in one pass (:func:`slog_pair_between`).

The kernels are compiled serial: ``prange`` is ``range`` unless a kernel is recompiled
with ``parallel=True``, which ``validation/bench_engines.py --parallel`` measures. On two
idle cores that makes the gate VJPs 1.3-1.9x faster, a negligible share of a training
step; on a shared machine whose other core is busy, each parallel call can wait a
scheduler tick (about 8 ms measured, against 25 us serial).
"""

import functools
import math

import numpy as np
from numba import njit, prange

from .elementwise import expanding_gate_guard

__all__ = ["scaled_abs", "slog_gates_inverse_vjp", "slog_gates_vjp", "slog_pair",
           "slog_pair_between"]


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


@functools.lru_cache(maxsize=8)
def _log_max(dtype):
    return math.log(np.finfo(dtype).max)


def slog_pair(x, c, a_in, a_out, divide, log_det, what, overflow):
    """A contracting gate, a scale and an expanding gate (eq. 4),
    ``y = g_{a_out}(c f_{a_in}(x))`` (``c / f_{a_in}(x)`` if ``divide``), adding the
    three log-derivatives (but ``log|c|``) to ``log_det`` in place; returns
    ``(f_{a_in}(x), y)``.

    NumPy's vectorised ``log1p`` and ``expm1`` around compiled passes
    (:func:`scaled_abs`,
    :func:`slog_pair_between`): five calls instead of the
    readable gates' twenty-odd, with the same overflow guard
    (:func:`refconf.bijectors.elementwise.expanding_gate_guard`). The sign and the
    ``1 / a_out`` are one factor (a last-digit difference from dividing by ``a_out``).
    """
    t = scaled_abs(x, a_in)
    np.log1p(t, out=t)
    q, sign_p, r, worst = slog_pair_between(x, t, c, a_in, a_out, divide, log_det)
    with expanding_gate_guard(worst + max(0.0, -math.log(a_out)), _log_max(x.dtype), what,
                              overflow):
        np.expm1(r, out=r)
    r *= sign_p
    return q, r

