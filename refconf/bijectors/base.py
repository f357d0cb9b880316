"""The bijector contract, composition and inversion.

A bijector maps data to latent in ``forward`` (the paper's f) and back in ``inverse``::

    y, log_det = bijector.forward(x)     # log_det = log|det dy/dx|, one value per sample
    x, log_det = bijector.inverse(y)     # log_det = log|det dx/dy| = -forward's

``log_det`` is summed over the last ``event_ndim`` axes; leading axes are batch axes.
Parameters are passed to the constructor and may be autograd boxes, so a bijector built
inside a function differentiates in its parameters. They may also be arrays of another
array-API library (CuPy on a GPU): a bijector then computes in that library
(:mod:`refconf.backend`), and :meth:`Bijector.to` moves a bijector's parameters there.
"""

import copy

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .. import backend

__all__ = ["Bijector", "Chain", "HalfCoupling", "Inverse", "batch_shape", "over_event", "sum_event",
           "validate_input"]


def validate_input(x, event_ndim, event_shape=None, name="input", finite=True):
    """Check ``x`` at a public boundary: a real floating array with at least
    ``event_ndim`` axes, trailing shape ``event_shape`` (if given) and, with ``finite``,
    finite values.

    Returns ``x`` (converted to an array if it was a list or scalar). Raises ``ValueError``
    saying what was wrong and what was expected.
    """
    value = getval(x)
    if not hasattr(value, "shape"):
        x = value = onp.asarray(value)
    xp = backend.namespace(value)
    xp = onp if backend.is_autograd(xp) else xp
    if not xp.isdtype(value.dtype, "real floating"):
        raise ValueError(
            f"{name}: expected a real floating-point array (float32 or float64), "
            f"got dtype {value.dtype}"
        )
    if value.ndim < event_ndim:
        raise ValueError(
            f"{name}: expected at least {event_ndim} axes (batch axes, then the event), "
            f"got shape {tuple(value.shape)}"
        )
    if event_shape is not None and event_ndim > 0:
        trailing = tuple(value.shape[value.ndim - event_ndim:])
        if trailing != tuple(event_shape):
            raise ValueError(
                f"{name}: expected trailing event shape {tuple(event_shape)}, "
                f"got array of shape {tuple(value.shape)}"
            )
    # one device-to-host boolean on a device array; the count only on failure
    if finite and not bool(xp.all(xp.isfinite(value))):
        finite_values = backend.host_value(xp.isfinite(value))
        bad = int(finite_values.size - onp.count_nonzero(finite_values))
        raise ValueError(f"{name}: {bad} NaN or infinite value(s); expected finite data")
    return x


def batch_shape(x, event_ndim):
    """The leading (batch) part of ``x``'s shape."""
    shape = tuple(np.shape(x))
    return tuple(shape[: len(shape) - event_ndim])


def sum_event(a, event_ndim):
    """``a`` summed over its last ``event_ndim`` axes (a per-element log-det to one value
    per sample)."""
    if not event_ndim:
        return a
    return backend.namespace(a).sum(a, axis=tuple(range(-event_ndim, 0)))


def over_event(xp, g_log_det, event_ndim):
    """A per-sample log-det cotangent (batch shape) broadcast over the event axes: the
    cotangent of each element's log-det term."""
    g_log_det = xp.asarray(g_log_det)
    return xp.reshape(g_log_det, tuple(g_log_det.shape) + (1,) * event_ndim)


class Bijector:
    """Base class: subclasses implement ``_forward`` and ``_inverse``.

    Attributes
    ----------
    event_ndim : int
        Number of trailing axes that form one sample.
    event_shape : tuple or None
        The trailing shape the bijector requires, or ``None`` when any shape works
        (elementwise maps with scalar parameters).
    """

    event_ndim = 1
    event_shape = None

    def forward(self, x, validate=True):
        """Data to latent: ``(y, log|det dy/dx|)``.

        ``validate=False`` skips the finiteness scan (shapes are always checked); a
        composite uses it for its parts, whose inputs it has already checked.
        """
        x = validate_input(x, self.event_ndim, self.event_shape,
                           f"{type(self).__name__}.forward", finite=validate)
        return self._forward(x)

    def inverse(self, y, validate=True):
        """Latent to data: ``(x, log|det dx/dy|)``; ``validate`` as in :meth:`forward`."""
        y = validate_input(y, self.event_ndim, self.event_shape,
                           f"{type(self).__name__}.inverse", finite=validate)
        return self._inverse(y)

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_saved(self, x):
        """The explicit forward pass: ``(y, log_det, saved)``, ``log_det`` per sample (or
        one value for every sample), ``saved`` what :meth:`backward` reads. No input
        checks and no autograd: the reverse pass of a whole flow
        (:func:`refconf.engines.nll_and_grad`) calls it on arrays already checked.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no explicit reverse pass; differentiate its "
            "forward with autograd instead")

    def backward(self, saved, g_y, g_log_det):
        """Reverse-mode pass of :meth:`forward_saved`: from the cotangents ``g_y`` of
        ``y`` and ``g_log_det`` of the per-sample log-det (shape of the batch), returns
        ``(g_x, grads)``, ``grads`` a dict of the parameters' cotangents keyed by the
        constructor's argument names (None for a bijector without parameters)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no explicit reverse pass; differentiate its "
            "forward with autograd instead")

    def inverse_saved(self, y):
        """The explicit pass of :meth:`inverse`: ``(x, log_det, saved)``, as
        :meth:`forward_saved` (what :class:`Inverse` runs as its forward)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no explicit reverse pass of its inverse; "
            "differentiate its inverse with autograd instead")

    def inverse_backward(self, saved, g_x, g_log_det):
        """Reverse-mode pass of :meth:`inverse_saved`: ``(g_y, grads)``, as
        :meth:`backward`."""
        raise NotImplementedError(
            f"{type(self).__name__} has no explicit reverse pass of its inverse; "
            "differentiate its inverse with autograd instead")

    def _inverse(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _constant_log_det(self, x, value):
        """A log-det that is the same for every sample, broadcast to the batch shape."""
        xp = backend.namespace(x, value)
        return value * xp.ones(batch_shape(x, self.event_ndim), dtype=getval(x).dtype)

    def to(self, target):
        """A copy whose array attributes (and those of member bijectors) are moved to
        ``target`` (``"numpy"``, ``"cupy"`` or an array namespace module) with
        :func:`refconf.backend.to_device`; it then computes there.

        Examples
        --------
        >>> import numpy as np
        >>> import array_api_strict as xps
        >>> from refconf import Chain, Scale, Shift
        >>> chain = Chain([Shift(np.array([1.0, 2.0])), Scale(np.array([2.0, 3.0]))])
        >>> y, log_det = chain.to(xps).forward(xps.zeros((1, 2)))
        >>> y
        Array([[2., 6.]], dtype=array_api_strict.float64)
        """
        def move(value):
            if isinstance(value, Bijector):
                return value.to(target)
            return backend.to_device(value, target)

        moved = copy.copy(self)
        for name, value in vars(self).items():
            setattr(moved, name, backend.map_leaves(move, value))
        return moved

    def parameters(self):
        """The bijector's attributes as a pytree, member bijectors' included (what
        :meth:`to` moves and :meth:`namespace` inspects)."""
        return backend.map_leaves(
            lambda v: v.parameters() if isinstance(v, Bijector) else v, dict(vars(self)))

    def namespace(self):
        """The array namespace of the bijector's floating-point parameters
        (:func:`refconf.backend.tree_namespace`); ``autograd.numpy`` for NumPy ones."""
        return backend.tree_namespace(self.parameters())

    def __repr__(self):
        return f"{type(self).__name__}(event_ndim={self.event_ndim})"


class HalfCoupling(Bijector):
    """Base of coupling layers on vectors ``x = [base, update]``.

    Subclasses set ``d_base``, ``d_update`` and ``swap``; with ``swap`` the halves trade
    places, ``x = [update, base]``, so that consecutive layers can alternate which half
    conditions the other.
    """

    d_base = d_update = 0
    swap = False

    def split(self, x):
        """``(base, update)``: the half the conditioner reads and the half it transforms."""
        if self.swap:
            return x[..., self.d_update:], x[..., : self.d_update]
        return x[..., : self.d_base], x[..., self.d_base:]

    def _join(self, base, update):
        halves = [update, base] if self.swap else [base, update]
        return backend.concat(backend.namespace(base, update), halves, axis=-1)


class Chain(Bijector):
    """Composition: ``forward`` applies ``bijectors[0]`` first; log-dets add.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf import Chain, Scale, Shift
    >>> chain = Chain([Shift(np.array([1.0, 2.0])), Scale(np.array([2.0, 3.0]))])
    >>> y, log_det = chain.forward(np.zeros((1, 2)))
    >>> y, np.allclose(log_det, np.log(6.0))
    (array([[2., 6.]]), True)
    """

    def __init__(self, bijectors, keys=None):
        self.bijectors = list(bijectors)
        if not self.bijectors:
            raise ValueError("Chain needs at least one bijector")
        if keys is not None and len(keys) != len(self.bijectors):
            raise ValueError(f"Chain: {len(keys)} keys for {len(self.bijectors)} bijectors; "
                             "expected one key per bijector")
        self.keys = None if keys is None else tuple(keys)
        self.event_ndim = max(b.event_ndim for b in self.bijectors)
        self._mixed_events = [b for b in self.bijectors if b.event_ndim != self.event_ndim]

    def _per_sample(self, log_det, b):
        """Sum a member's log-det over the chain's event axes that are batch axes to it."""
        extra = self.event_ndim - b.event_ndim
        if not extra:
            return log_det
        return backend.namespace(log_det).sum(log_det, axis=tuple(range(-extra, 0)))

    def _forward(self, x):
        total = 0.0
        for b in self.bijectors:
            x, log_det = b.forward(x, validate=False)
            total = total + self._per_sample(log_det, b)
        return x, total

    def _inverse(self, y):
        total = 0.0
        for b in reversed(self.bijectors):
            y, log_det = b.inverse(y, validate=False)
            total = total + self._per_sample(log_det, b)
        return y, total

    def forward_saved(self, x):
        """The members' explicit forward passes in order; ``saved`` is their list."""
        if self._mixed_events:
            self._different_event(self._mixed_events[0])
        total, saved = 0.0, []
        for b in self.bijectors:
            x, log_det, kept = b.forward_saved(x)
            total = total + log_det
            saved.append(kept)
        return x, total, saved

    def backward(self, saved, g_y, g_log_det):
        """The members' reverse passes, last first: every member's log-det adds to the
        chain's, so each gets the same ``g_log_det``. ``grads`` is the list of the
        members' (a dict by ``keys`` when the chain was given keys, members without
        parameters left out; a key of None merges the member's dict into the chain's, for
        a member whose parameters are entries of the chain's own dict).

        Examples
        --------
        >>> import numpy as np
        >>> from refconf import Chain, Reverse, ActNorm
        >>> chain = Chain([ActNorm(np.ones(2), np.log([2.0, 4.0])), Reverse()],
        ...               keys=["actnorm", "mixing"])
        >>> y, log_det, saved = chain.forward_saved(np.array([[3.0, 5.0]]))
        >>> y, float(log_det)
        (array([[1., 1.]]), -2.0794415416798357)
        >>> g_x, grads = chain.backward(saved, np.ones((1, 2)), np.zeros(1))
        >>> g_x, list(grads)
        (array([[0.5 , 0.25]]), ['actnorm'])
        """
        grads = [None] * len(self.bijectors)
        for i in reversed(range(len(self.bijectors))):
            g_y, grads[i] = self.bijectors[i].backward(saved[i], g_y, g_log_det)
        if self.keys is None:
            return g_y, grads
        keyed = {}
        for key, g in zip(self.keys, grads):
            if g is not None:
                keyed.update(g if key is None else {key: g})
        return g_y, keyed

    def _different_event(self, b):
        raise NotImplementedError(
            "Chain's explicit reverse pass needs members of one event_ndim, got "
            f"{b.event_ndim} and {self.event_ndim}; differentiate with autograd instead")

    def __repr__(self):
        return "Chain([" + ", ".join(repr(b) for b in self.bijectors) + "])"


class Inverse(Bijector):
    """The inverse bijector: ``forward`` is ``bijector.inverse`` and vice versa."""

    def __init__(self, bijector):
        self.bijector = bijector
        self.event_ndim = bijector.event_ndim
        self.event_shape = bijector.event_shape

    def _forward(self, x):
        return self.bijector.inverse(x, validate=False)

    def _inverse(self, y):
        return self.bijector.forward(y, validate=False)

    def forward_saved(self, x):
        """The wrapped bijector's :meth:`~Bijector.inverse_saved`."""
        return self.bijector.inverse_saved(x)

    def backward(self, saved, g_y, g_log_det):
        """The wrapped bijector's :meth:`~Bijector.inverse_backward`: the reverse pass of
        the inverse map; ``grads`` are the wrapped bijector's, keyed as its parameters."""
        return self.bijector.inverse_backward(saved, g_y, g_log_det)

    def inverse_saved(self, y):
        return self.bijector.forward_saved(y)

    def inverse_backward(self, saved, g_x, g_log_det):
        return self.bijector.backward(saved, g_x, g_log_det)

    def __repr__(self):
        return f"Inverse({self.bijector!r})"
