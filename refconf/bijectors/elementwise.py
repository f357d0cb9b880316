"""Elementwise bijectors: S-Log gate, scale, shift and logit (the Lemma-1 recipe is in
:mod:`refconf.bijectors.regularizer`)."""

import contextlib
import math

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .. import backend
from .base import Bijector, over_event, sum_event

# its former home: the old import path keeps working
from .regularizer import ElementwiseFromRegularizer  # noqa: F401

__all__ = ["Logit", "SLog", "Scale", "Shift",
           "expanding_gate_guard", "slog", "slog_gates_vjp", "slog_inverse", "slog_inverse_vjp",
           "slog_vjp"]


def _log_abs(p, xp):
    """``log|p|``; a Python scalar stays a Python scalar (so it keeps the data's dtype in
    every namespace)."""
    return math.log(abs(p)) if isinstance(p, (int, float)) else xp.log(xp.abs(p))


def _event_sum_of_parameter(p, x, event_ndim):
    """Sum of a parameter broadcast over one event of ``x`` (the log-det of an
    elementwise map with per-element constant Jacobian ``p``)."""
    xp = backend.namespace(p, x)
    event = tuple(np.shape(x)[np.ndim(x) - event_ndim:])
    full = xp.broadcast_to(p, event) if np.ndim(p) else p * xp.ones(event)
    return xp.sum(full)


def _check_fits(p, x, event_ndim, name):
    """Raise ``ValueError`` unless the parameter ``p`` broadcasts over one event of ``x``."""
    event = tuple(np.shape(x)[np.ndim(x) - event_ndim:])
    shape = tuple(onp.shape(getval(p)))
    try:
        fits = onp.broadcast_shapes(shape, event) == event
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: a parameter of shape {shape} does not broadcast over the event shape "
            f"{event} of an input of shape {tuple(np.shape(x))}; expected the event to end "
            f"in {shape}"
        )


def check_alpha(alpha, name):
    """Raise ``ValueError`` unless every S-Log scale ``alpha`` is finite and positive."""
    value = onp.asarray(backend.host_value(alpha))
    if not onp.all(onp.isfinite(value)) or onp.any(value <= 0):
        raise ValueError(
            f"{name} must be finite and > 0 (for alpha <= 0 the S-Log gate is not a "
            f"bijection of R), got {value}"
        )


def slog(x, alpha):
    """S-Log gate ``f_a(x) = sign(x) log1p(a|x|) / a`` and its log-derivative.

    Returns ``(y, log f_a'(x))`` elementwise with ``log f_a'(x) = -log1p(a|x|)``.
    """
    xp = backend.namespace(x, alpha)
    t = xp.log1p(alpha * xp.abs(x))
    return xp.sign(x) * t / alpha, -t


def slog_inverse(y, alpha, what="S-Log inverse", overflow="raise"):
    """Expanding gate ``g_a(y) = sign(y) expm1(a|y|) / a`` and ``log g_a'(y) = a|y|``.

    Where ``a|y|`` would overflow the dtype (about 709 in float64), ``overflow="raise"``
    raises ``ValueError``; ``overflow="inf"`` returns signed infinities without a
    floating-point warning, for callers that report non-finite results themselves.
    """
    xp = backend.namespace(y, alpha)
    t = alpha * xp.abs(y)
    # |g_a(y)| < exp(a|y|) / a: a small alpha overflows the output before exp overflows
    if backend.is_autograd(xp):
        limit = onp.log(onp.finfo(onp.result_type(getval(y))).max)
        log_bound = getval(t) + onp.maximum(0.0, -onp.log(getval(alpha)))
        worst = onp.max(log_bound) if onp.size(log_bound) else 0.0
    else:
        limit = math.log(float(xp.finfo(y.dtype).max))
        if isinstance(alpha, (int, float)):
            log_bound = t + max(0.0, -math.log(alpha))
        else:
            log_bound = t - xp.minimum(xp.log(alpha), 0.0)
        # one device-to-host scalar per gate
        worst = float(xp.max(log_bound)) if math.prod(log_bound.shape) else 0.0
    with expanding_gate_guard(worst, limit, what, overflow):
        return xp.sign(y) * xp.expm1(t) / alpha, t


def expanding_gate_guard(worst, limit, what, overflow):
    """The context to evaluate the expanding gate ``g_a`` in, from ``worst``, the largest
    ``a|y| + max(0, -log a)`` (a bound on ``log|g_a(y)|``), and ``limit = log(max
    float)`` of the dtype.

    Below the limit (or for a NaN ``worst``, left to the caller's finiteness checks) a
    null context; at or above it, for ``overflow="inf"``, one that silences the overflow
    warning (the gate returns signed infinities); for ``overflow="raise"`` it raises
    ``ValueError``.
    """
    if not worst >= limit:
        return contextlib.nullcontext()
    if overflow == "inf":
        return onp.errstate(over="ignore")
    raise ValueError(
        f"{what}: alpha*|y| + max(0, -log alpha) reaches {worst:.4g}, beyond "
        f"log(max float) = {limit:.4g}; expm1(alpha*|y|) / alpha would overflow. "
        "Expected alpha*|y| below that limit."
    )


@backend.compiled_override("refconf.bijectors._elementwise_numba")
def slog_gates_vjp(xp, gy, gl, u, q, y, s, alpha, alpha_prime):
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

    (on NumPy arrays the compiled
    :func:`refconf.bijectors._elementwise_numba.slog_gates_vjp` runs instead). Returns ``(gu, gs, ga, ga')`` with ``ga``, ``ga'`` 0-d.
    """
    gl = gl[:, None]
    v = s * q
    gv, gap = slog_inverse_vjp(xp, gy, gl, v, y, alpha_prime)
    gq = gv * s
    gs = gv * q + gl / s
    gu, ga = slog_vjp(xp, gq, gl, u, q, alpha)
    return gu, gs, xp.sum(ga), xp.sum(gap)


def slog_vjp(xp, gq, gl, u, q, alpha):
    """VJP of the contracting gate ``q = f_a(u)`` with its log-det terms
    ``-log1p(a|u|)``, elementwise (``gl`` broadcast over the elements)::

        gu = (gq - gl a sign(u)) / d,   ga = gq (u / d - q) / a - gl |u| / d

    with ``d = 1 + a|u|``. Returns ``(gu, ga)``, ``ga`` per element (the caller sums it
    to ``alpha``'s shape).
    """
    au = xp.abs(u)
    d = 1.0 + alpha * au
    return (gq - gl * alpha * xp.sign(u)) / d, gq * (u / d - q) / alpha - gl * au / d


def slog_inverse_vjp(xp, gy, gl, v, y, alpha):
    """VJP of the expanding gate ``y = g_a(v)`` with its log-det terms ``a|v|``,
    elementwise::

        gv = gy E + gl a sign(v),   ga = gy (v E - y) / a + gl |v|

    with ``E = 1 + a|y|`` (``g_a'(v) = E``). Returns ``(gv, ga)``, ``ga`` per element.
    """
    E = 1.0 + alpha * xp.abs(y)
    return gy * E + gl * alpha * xp.sign(v), gy * (v * E - y) / alpha + gl * xp.abs(v)


def _event_size(x, p, event_ndim):
    """How many entries of one event of ``x`` each entry of the parameter ``p`` covers."""
    event = onp.shape(x)[onp.ndim(x) - event_ndim:]
    return math.prod(event) // max(math.prod(onp.shape(getval(p))), 1)


class SLog(Bijector):
    """S-Log gate (paper section 3.2): forward ``f_a``, a contracting elementwise map.

    ``f_a(x) = sign(x) log1p(a|x|) / a``, inverse ``g_a(y) = sign(y) expm1(a|y|) / a``.

    Parameters
    ----------
    alpha : float or ndarray, > 0
        Scalar, or one value per element of the event (broadcastable).
    event_ndim : int

    Notes
    -----
    forward log-det ``-sum log1p(a|x|) = -a sum|f_a(x)|``; inverse log-det ``a sum|y|``.
    It is the Lemma-1 bijector of the regulariser ``gamma(y) = a|y|``, and tends to the
    identity as ``a -> 0``. Cost O(N).

    Examples
    --------
    >>> import numpy as np
    >>> gate = SLog(2.0)
    >>> y, ld = gate.forward(np.array([[1.5, -3.0]]))
    >>> x, ld_inv = gate.inverse(y)
    >>> np.allclose(x, [[1.5, -3.0]]), np.allclose(ld, -ld_inv)
    (True, True)
    """

    def __init__(self, alpha, event_ndim=1):
        check_alpha(alpha, "SLog alpha")
        self.alpha = alpha
        self.event_ndim = event_ndim

    def _forward(self, x):
        _check_fits(self.alpha, x, self.event_ndim, "SLog.forward")
        y, log_d = slog(x, self.alpha)
        return y, sum_event(log_d, self.event_ndim)

    def _inverse(self, y):
        _check_fits(self.alpha, y, self.event_ndim, "SLog.inverse")
        x, log_d = slog_inverse(y, self.alpha, "SLog.inverse")
        return x, sum_event(log_d, self.event_ndim)

    def forward_saved(self, x):
        y, log_det = self._forward(x)
        return y, log_det, (x, y)

    def backward(self, saved, g_y, g_log_det):
        """The contracting gate's VJP (:func:`slog_vjp`); ``alpha``'s summed to its
        shape."""
        return self._backward(slog_vjp, saved, g_y, g_log_det)

    def inverse_saved(self, y):
        x, log_det = self._inverse(y)
        return x, log_det, (y, x)

    def inverse_backward(self, saved, g_x, g_log_det):
        """The expanding gate's VJP (:func:`slog_inverse_vjp`)."""
        return self._backward(slog_inverse_vjp, saved, g_x, g_log_det)

    def _backward(self, vjp, saved, g, g_log_det):
        a, b = saved
        xp = backend.compute_namespace(a, self.alpha)
        g_in, g_alpha = vjp(xp, g, over_event(xp, g_log_det, self.event_ndim), a, b,
                            self.alpha)
        return g_in, {"alpha": backend.sum_to(xp, g_alpha, onp.shape(getval(self.alpha)))}


class Scale(Bijector):
    """Elementwise scale ``y = s * x``; log-det ``sum log|s|`` over the event.

    Examples
    --------
    >>> import numpy as np
    >>> y, ld = Scale(np.array([2.0, -0.5])).forward(np.ones((3, 2)))
    >>> ld
    array([0., 0., 0.])
    """

    def __init__(self, s, event_ndim=None):
        value = onp.asarray(backend.host_value(s))
        if not onp.all(onp.isfinite(value)) or onp.any(value == 0):
            raise ValueError(f"Scale s must be finite and non-zero everywhere, got {value}")
        self.s = s
        self.event_ndim = max(onp.ndim(value), 1) if event_ndim is None else event_ndim

    def _forward(self, x):
        _check_fits(self.s, x, self.event_ndim, "Scale.forward")
        log_abs_s = _log_abs(self.s, backend.namespace(self.s, x))
        log_det = _event_sum_of_parameter(log_abs_s, x, self.event_ndim)
        return self.s * x, self._constant_log_det(x, log_det)

    def _inverse(self, y):
        _check_fits(self.s, y, self.event_ndim, "Scale.inverse")
        log_abs_s = _log_abs(self.s, backend.namespace(self.s, y))
        log_det = _event_sum_of_parameter(log_abs_s, y, self.event_ndim)
        return y / self.s, self._constant_log_det(y, -log_det)

    def forward_saved(self, x):
        y, log_det = self._forward(x)
        return y, log_det, x

    def backward(self, saved, g_y, g_log_det):
        """``g_x = s g_y``, ``g_s = sum g_y x + n sum_b g_log_det / s`` (``n`` the event
        entries each entry of ``s`` covers)."""
        return self.s * g_y, {"s": self._g_s(saved, g_y * saved, g_log_det, 1.0)}

    def inverse_saved(self, y):
        x, log_det = self._inverse(y)
        return x, log_det, x

    def inverse_backward(self, saved, g_x, g_log_det):
        """For ``x = y / s``: ``g_y = g_x / s``, ``g_s = -sum g_x x / s - n sum_b
        g_log_det / s``."""
        return g_x / self.s, {"s": self._g_s(saved, -g_x * saved / self.s, g_log_det, -1.0)}

    def _g_s(self, x, terms, g_log_det, sign):
        xp = backend.compute_namespace(x, self.s)
        n = _event_size(x, self.s, self.event_ndim)
        return (backend.sum_to(xp, terms, onp.shape(getval(self.s)))
                + sign * n * xp.sum(g_log_det) / self.s)


class Shift(Bijector):
    """Elementwise shift ``y = x + t``; log-det 0."""

    def __init__(self, t, event_ndim=None):
        self.t = t
        self.event_ndim = max(onp.ndim(getval(t)), 1) if event_ndim is None else event_ndim

    def _forward(self, x):
        _check_fits(self.t, x, self.event_ndim, "Shift.forward")
        return x + self.t, self._constant_log_det(x, 0.0)

    def _inverse(self, y):
        _check_fits(self.t, y, self.event_ndim, "Shift.inverse")
        return y - self.t, self._constant_log_det(y, 0.0)

    def forward_saved(self, x):
        return x + self.t, 0.0, None

    def backward(self, saved, g_y, g_log_det):
        """``g_x = g_y``, ``g_t = sum g_y`` (over the axes ``t`` is broadcast along)."""
        return g_y, {"t": self._g_t(g_y)}

    def inverse_saved(self, y):
        return y - self.t, 0.0, None

    def inverse_backward(self, saved, g_x, g_log_det):
        """``g_y = g_x``, ``g_t = -sum g_x``."""
        return g_x, {"t": -self._g_t(g_x)}

    def _g_t(self, g):
        return backend.sum_to(backend.compute_namespace(g, self.t), g,
                              onp.shape(getval(self.t)))


class Logit(Bijector):
    """Logit preprocessing of data in (0, 1) (the MAF convention for images).

    ``y = logit(p)`` with ``p = lam + (1 - 2 lam) x``, so ``x`` in [0, 1] maps to a
    bounded-away-from-infinity range and the data become unbounded, as a Gaussian base
    needs.

    Notes
    -----
    forward log-det ``sum [log(1 - 2 lam) - log p - log(1 - p)]``; inverse
    ``x = (sigmoid(y) - lam) / (1 - 2 lam)``. Putting it first in a chain makes the
    flow's log-density refer to the original (0, 1) scale.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.25, 1.0]])
    >>> y, ld = Logit(0.05).forward(x)
    >>> np.allclose(Logit(0.05).inverse(y)[0], x)
    True
    """

    def __init__(self, lam=1e-6, event_ndim=1):
        if not 0.0 < lam < 0.5:
            raise ValueError(f"Logit lam must lie in (0, 0.5), got {lam!r}")
        self.lam = float(lam)
        self.event_ndim = event_ndim

    def _log_scale(self, xp):
        """``log(1 - 2 lam)`` as a float64 scalar of ``xp`` (float32 data give float64
        log-dets in every namespace, as NumPy's float64 scalars do)."""
        value = onp.log1p(-2.0 * self.lam)
        return value if backend.is_autograd(xp) else backend.asarray(xp, value)

    def _forward(self, x):
        xp = backend.namespace(x)
        value = getval(x)
        if bool(xp.any((value < 0.0) | (value > 1.0))):
            value = backend.host_value(value)
            raise ValueError(
                f"Logit.forward: data must lie in [0, 1], got values in "
                f"[{value.min():.4g}, {value.max():.4g}]")
        return self.forward_saved(x)[:2]

    def forward_saved(self, x):
        xp = backend.namespace(x)
        p = self.lam + (1.0 - 2.0 * self.lam) * x
        log_d = self._log_scale(xp) - xp.log(p) - xp.log1p(-p)
        return xp.log(p) - xp.log1p(-p), sum_event(log_d, self.event_ndim), p

    def backward(self, saved, g_y, g_log_det):
        """With ``k = 1 - 2 lam``: ``g_x = k [g_y (1/p + 1/(1-p)) + g_log_det (1/(1-p) -
        1/p)]``; no parameters."""
        p, k = saved, 1.0 - 2.0 * self.lam
        gl = over_event(backend.compute_namespace(p), g_log_det, self.event_ndim)
        return k * (g_y * (1.0 / p + 1.0 / (1.0 - p)) + gl * (1.0 / (1.0 - p) - 1.0 / p)), None

    def _inverse(self, y):
        return self.inverse_saved(y)[:2]

    def inverse_saved(self, y):
        xp = backend.namespace(y)
        p = 1.0 / (1.0 + xp.exp(-y))
        log_d = xp.log(p) + xp.log1p(-p) - self._log_scale(xp)
        x = (p - self.lam) / (1.0 - 2.0 * self.lam)
        return x, sum_event(log_d, self.event_ndim), p

    def inverse_backward(self, saved, g_x, g_log_det):
        """``p = sigmoid(y)``, ``dp/dy = p (1 - p)``: ``g_y = g_x p (1 - p) / k +
        g_log_det (1 - 2p)``."""
        p = saved
        gl = over_event(backend.compute_namespace(p), g_log_det, self.event_ndim)
        return g_x * p * (1.0 - p) / (1.0 - 2.0 * self.lam) + gl * (1.0 - 2.0 * p), None
