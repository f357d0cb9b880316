"""Mixing and normalisation: permutations, Glow's invertible 1x1 convolution, ActNorm."""

import functools

import autograd.numpy as np
import numpy as onp
import scipy.linalg
from autograd.tracer import getval, isbox

from .. import backend
from .base import Bijector

__all__ = [
    "ActNorm",
    "Invertible1x1",
    "Permutation",
    "Reverse",
    "actnorm_backward",
    "actnorm_forward",
]

_NUMBA = "refconf.bijectors._mixing_numba"


def _channel_axis(event_ndim):
    """Features are the last axis of a vector event; channels lead an image event
    ``(C, H, W)``."""
    if event_ndim == 1:
        return -1
    if event_ndim == 3:
        return -3
    raise ValueError(f"expected event_ndim 1 (vectors) or 3 (C, H, W images), got {event_ndim}")


def _take(x, index, axis):
    """``x`` indexed along the negative ``axis`` by ``index`` (an index array or a slice)."""
    return backend.take(backend.namespace(x), x, index, axis)


def _spatial_size(x, event_ndim):
    return int(onp.prod(np.shape(x)[-2:])) if event_ndim == 3 else 1


class Permutation(Bijector):
    """Reorder the features (or channels): ``y = x[..., perm]``; log-det 0.

    Examples
    --------
    >>> import numpy as np
    >>> Permutation([2, 0, 1]).forward(np.array([[10.0, 20.0, 30.0]]))[0]
    array([[30., 10., 20.]])
    """

    def __init__(self, perm, event_ndim=1):
        perm = onp.asarray(backend.host_value(perm))
        if perm.ndim != 1 or not onp.array_equal(onp.sort(perm), onp.arange(perm.size)):
            raise ValueError(f"Permutation: expected a permutation of 0..n-1, got {perm}")
        self.perm = perm
        self.inverse_perm = onp.argsort(perm)
        self.event_ndim = event_ndim
        self.axis = _channel_axis(event_ndim)

    def _check_size(self, x):
        if np.shape(x)[self.axis] != self.perm.size:
            raise ValueError(
                f"Permutation of {self.perm.size} entries applied to an axis of length "
                f"{np.shape(x)[self.axis]}"
            )

    def _forward(self, x):
        self._check_size(x)
        return _take(x, self.perm, self.axis), self._constant_log_det(x, 0.0)

    def forward_saved(self, x):
        return _take(x, self.perm, self.axis), 0.0, None

    def backward(self, saved, g_y, g_log_det):
        """``g_x = g_y[..., inverse_perm]`` (a permutation's transpose is its inverse)."""
        return _take(g_y, self.inverse_perm, self.axis), None

    def inverse_saved(self, y):
        return _take(y, self.inverse_perm, self.axis), 0.0, None

    def inverse_backward(self, saved, g_x, g_log_det):
        """``g_y = g_x[..., perm]``."""
        return _take(g_x, self.perm, self.axis), None

    def _inverse(self, y):
        self._check_size(y)
        return _take(y, self.inverse_perm, self.axis), self._constant_log_det(y, 0.0)

    @classmethod
    def random(cls, n, random_state=None, event_ndim=1):
        """A uniformly random permutation of ``n`` entries."""
        return cls(onp.random.default_rng(random_state).permutation(n), event_ndim)


class Reverse(Bijector):
    """Reverse the order of the features (or channels); log-det 0. Its own inverse."""

    def __init__(self, event_ndim=1):
        self.event_ndim = event_ndim
        self.axis = _channel_axis(event_ndim)

    def _forward(self, x):
        return _take(x, slice(None, None, -1), self.axis), self._constant_log_det(x, 0.0)

    _inverse = _forward

    def forward_saved(self, x):
        # a negative-step slice of the last axis (a view in NumPy) rather than a take,
        # whose NumPy wrapper costs more than the reversal of a small batch
        return (x[..., ::-1] if self.axis == -1 else self._forward(x)[0]), 0.0, None

    def backward(self, saved, g_y, g_log_det):
        """``g_x`` is ``g_y`` reversed (the map is its own transpose)."""
        return self.forward_saved(g_y)[0], None

    # its own inverse
    inverse_saved, inverse_backward = forward_saved, backward


@functools.lru_cache(maxsize=32)
def _strict_triangles(C):
    """Boolean masks of the strictly lower and strictly upper triangles of a ``C x C``
    matrix (read-only)."""
    lower = onp.tri(C, k=-1, dtype=bool)
    lower.flags.writeable = False
    upper = lower.T.copy()
    upper.flags.writeable = False
    return lower, upper


class Invertible1x1(Bijector):
    """Glow's invertible 1x1 convolution with an LU-parameterised weight.

    ``M = P L (U + diag(sign * exp(log_s)))`` with ``P`` a fixed permutation matrix,
    ``L`` unit lower triangular and ``U`` strictly upper triangular. For vector events
    ``y = M x``; for ``(C, H, W)`` events the same ``C x C`` matrix mixes the channels
    of every pixel.

    Parameters
    ----------
    perm : int array, (C,)
        ``P = I[perm]``, fixed (not learned).
    lower, upper : ndarray, (C, C)
        Only the strictly lower / strictly upper parts are used.
    log_s : ndarray, (C,)
    sign : ndarray, (C,) of +-1, fixed.
    event_ndim : {1, 3}

    Notes
    -----
    log-det ``H W sum log_s`` (``H W = 1`` for vectors), O(C) instead of O(C^3).
    Inverse by ``M^{-1}``.

    Examples
    --------
    >>> import numpy as np
    >>> params = Invertible1x1.random_params(4, random_state=0)
    >>> layer = Invertible1x1(**params)
    >>> x = np.random.default_rng(1).normal(size=(2, 4))
    >>> np.allclose(layer.inverse(layer.forward(x)[0])[0], x)
    True
    """

    def __init__(self, perm, lower, upper, log_s, sign, event_ndim=1):
        C = onp.size(perm)
        for name, a, shape in [("lower", lower, (C, C)), ("upper", upper, (C, C)),
                               ("log_s", log_s, (C,)), ("sign", sign, (C,))]:
            if onp.shape(getval(a)) != shape:
                raise ValueError(f"Invertible1x1: {name} must have shape {shape}, got {np.shape(a)}")
        self.perm = onp.asarray(backend.host_value(perm))
        self.lower, self.upper, self.log_s = lower, upper, log_s
        xp = backend.namespace(lower, upper, log_s)
        if backend.is_autograd(xp) and not any(isbox(a) for a in (lower, upper, log_s)):
            xp = onp  # nothing traced: NumPy's own functions, without autograd's wrappers
        # the fixed signs in the parameters' precision (float32 stays float32)
        self.sign = backend.asarray(xp, getval(sign), dtype=getval(log_s).dtype)
        self.event_ndim = event_ndim
        self.axis = _channel_axis(event_ndim)
        if backend.is_autograd(xp):
            eye = onp.eye(C, dtype=onp.result_type(getval(lower), getval(upper), getval(log_s)))
            diagonal = np.diag(self.sign * np.exp(log_s))
        else:
            eye = xp.eye(C, dtype=xp.result_type(lower, upper, log_s))
            diagonal = eye * (self.sign * xp.exp(log_s))
        if xp is onp:  # tril and triu rebuild their masks on every call
            strict_lower, strict_upper = _strict_triangles(C)
            self._L = onp.where(strict_lower, lower, 0.0) + eye
            self._U = onp.where(strict_upper, upper, 0.0) + diagonal
        else:
            self._L = xp.tril(lower, k=-1) + eye
            self._U = xp.triu(upper, k=1) + diagonal
        # P A is A's rows in the order perm
        self.matrix = backend.take(xp, self._L @ self._U, self.perm, axis=-2)

    @staticmethod
    def random_params(C, random_state=None):
        """Glow's initialisation: the LU factors of a random rotation."""
        q, _ = onp.linalg.qr(onp.random.default_rng(random_state).normal(size=(C, C)))
        p, lower, upper = scipy.linalg.lu(q)
        s = onp.diag(upper)
        return {
            "perm": onp.argmax(p, axis=1),  # rows of P = I[perm]
            "lower": lower,
            "upper": onp.triu(upper, 1),
            "log_s": onp.log(onp.abs(s)),
            "sign": onp.sign(s),
        }

    def _apply(self, M, x):
        if np.shape(x)[self.axis] != self.perm.size:
            raise ValueError(
                f"Invertible1x1 of {self.perm.size} channels applied to an axis of length "
                f"{np.shape(x)[self.axis]}"
            )
        if self.event_ndim == 1:
            return x @ M.T
        xp = backend.namespace(x, M)
        if backend.is_autograd(xp):
            return np.einsum("ij,...jhw->...ihw", M, x)
        # the array API has no einsum: the same C x C matrix on every pixel of the
        # (..., C, H W) flattened channels
        shape = tuple(np.shape(x))
        flat = xp.reshape(x, shape[:-3] + (shape[-3], shape[-2] * shape[-1]))
        return xp.reshape(M @ flat, shape)

    def _forward(self, x):
        xp = backend.namespace(x, self.log_s)
        log_det = _spatial_size(x, self.event_ndim) * xp.sum(self.log_s)
        return self._apply(self.matrix, x), self._constant_log_det(x, log_det)

    def _inverse(self, y):
        xp = backend.namespace(y, self.matrix)
        log_det = _spatial_size(y, self.event_ndim) * xp.sum(self.log_s)
        return self._apply(xp.linalg.inv(self.matrix), y), self._constant_log_det(y, -log_det)

    def _rows(self, xp, x):
        """One row per (sample, pixel), one column per channel."""
        if self.event_ndim == 1:
            return x
        return xp.reshape(xp.moveaxis(x, -3, -1), (-1, self.perm.size))

    def forward_saved(self, x):
        xp = backend.compute_namespace(x, self.log_s)
        y = self._apply(self.matrix, x)
        return y, _spatial_size(x, self.event_ndim) * xp.sum(self.log_s), x

    def backward(self, saved, g_y, g_log_det):
        """With ``M = P A``, ``A = L U'``, ``U' = triu(upper, 1) + diag(sign exp(log_s))``
        and ``y = M x`` per pixel: ``g_x = M^T g_y``, ``g_M = sum g_y x^T``,
        ``g_A = P^T g_M``, ``g_lower = tril(g_A U'^T, -1)``, ``g_U' = L^T g_A``,
        ``g_upper = triu(g_U', 1)``, ``g_log_s = diag(g_U') sign exp(log_s) + H W sum_b
        g_log_det``."""
        xp = backend.compute_namespace(g_y, self.matrix)
        g_rows, x_rows = self._rows(xp, g_y), self._rows(xp, saved)
        inverse_perm = backend.asarray(xp, onp.argsort(self.perm))
        g_A = xp.take(g_rows.T @ x_rows, inverse_perm, axis=0)  # P^T g_M
        g_U = self._L.T @ g_A
        diagonal = self.sign * xp.exp(self.log_s)
        grads = {"lower": xp.tril(g_A @ self._U.T, k=-1), "upper": xp.triu(g_U, k=1),
                 "log_s": xp.linalg.diagonal(g_U) * diagonal
                 + _spatial_size(g_y, self.event_ndim) * xp.sum(g_log_det)}
        return self._apply(self.matrix.T, g_y), grads


class ActNorm(Bijector):
    """Activation normalisation (Glow): ``y = (x - loc) * exp(-log_scale)``.

    Per feature for vector events, per channel (parameters of shape ``(C, 1, 1)``) for
    ``(C, H, W)`` events. :meth:`initial_params` gives the data-dependent initialisation
    that makes the first batch zero-mean and unit-variance.

    Notes
    -----
    log-det ``-sum log_scale`` over the event (``-H W sum log_scale`` for images).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 2))
    >>> y, _ = ActNorm(**ActNorm.initial_params(x)).forward(x)
    >>> np.allclose(y.mean(0), 0), np.allclose(y.std(0), 1)
    (True, True)
    """

    def __init__(self, loc, log_scale, event_ndim=1):
        self.loc, self.log_scale = loc, log_scale
        self.event_ndim = event_ndim
        _channel_axis(event_ndim)
        if event_ndim == 1:
            self.event_shape = tuple(np.shape(loc))

    @staticmethod
    def initial_params(x, event_ndim=1, eps=1e-6):
        """Data-dependent initialisation from a batch ``x``: ``loc`` the mean,
        ``log_scale = log(std + eps)``, over the batch (and pixels for images)."""
        x = onp.asarray(backend.host_value(x))
        C = x.shape[_channel_axis(event_ndim)]
        # one row per (sample, pixel), one column per feature or channel
        rows = x.reshape(-1, C) if event_ndim == 1 else onp.moveaxis(x, -3, -1).reshape(-1, C)
        shape = (C,) if event_ndim == 1 else (C, 1, 1)
        return {
            "loc": rows.mean(axis=0).reshape(shape),
            "log_scale": onp.log(rows.std(axis=0) + eps).reshape(shape),
        }

    def _log_det(self, x, xp):
        return -_spatial_size(x, self.event_ndim) * xp.sum(self.log_scale)

    def _forward(self, x):
        xp = backend.namespace(x, self.loc, self.log_scale)
        y = (x - self.loc) * xp.exp(-self.log_scale)
        return y, self._constant_log_det(x, self._log_det(x, xp))

    def _inverse(self, y):
        xp = backend.namespace(y, self.loc, self.log_scale)
        x = y * xp.exp(self.log_scale) + self.loc
        return x, self._constant_log_det(y, -self._log_det(y, xp))

    def _kernel(self, xp, kernel):
        # the compiled kernels take vectors; images use the readable ones
        if self.event_ndim == 1:
            return kernel.bind(xp)
        return functools.partial(kernel.readable, xp)

    def forward_saved(self, x):
        xp = backend.compute_namespace(x, self.loc, self.log_scale)
        y, scale, log_det = self._kernel(xp, actnorm_forward)(x, self.loc, self.log_scale)
        return y, _spatial_size(x, self.event_ndim) * log_det, (xp, y, scale)

    def backward(self, saved, g_y, g_log_det):
        """``g_x = g_y exp(-log_scale)``, ``g_loc = -sum g_x``,
        ``g_log_scale = -sum g_y y - H W sum_b g_log_det`` (sums over the batch and the
        pixels): :func:`actnorm_backward`."""
        xp, y, scale = saved
        gl_sum = _spatial_size(g_y, self.event_ndim) * xp.sum(g_log_det)
        g_x, g_loc, g_log_scale = self._kernel(xp, actnorm_backward)(g_y, y, scale, gl_sum)
        return g_x, {"loc": g_loc, "log_scale": g_log_scale}


@backend.compiled_override(_NUMBA)
def actnorm_forward(xp, x, loc, log_scale):
    """ActNorm ``y = (x - loc) scale`` with ``scale = exp(-log_scale)``; returns
    ``(y, scale, -sum log_scale)`` (the last the log-det per sample and pixel)."""
    scale = xp.exp(-log_scale)
    return (x - loc) * scale, scale, -xp.sum(log_scale)


@backend.compiled_override(_NUMBA)
def actnorm_backward(xp, g, y, scale, gl_sum):
    """ActNorm's VJP from the output cotangent ``g``, the output ``y`` and ``gl_sum``,
    the log-det cotangents summed over the batch (times the pixels)::

        gx = g scale,   gloc = -sum gx,   gls = -sum g y - gl_sum

    (sums over every axis the parameters broadcast along). Returns ``(gx, gloc, gls)``.
    """
    g_x = g * scale
    return (g_x, -backend.sum_to(xp, g_x, tuple(scale.shape)),
            -backend.sum_to(xp, g * y, tuple(scale.shape)) - gl_sum)
