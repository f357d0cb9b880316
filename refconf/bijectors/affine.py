"""Real NVP's affine coupling step (Dinh, Sohl-Dickstein & Bengio 2017, eqs. 6-7)."""

import numpy as onp
from autograd.tracer import getval

from .. import backend
from ..conditioners import ACTIVATIONS, layer_grads, mlp, mlp_backward, mlp_forward, mlp_init
from . import step_kernels as kernels
from .base import HalfCoupling

__all__ = ["AffineCoupling"]


class AffineCoupling(HalfCoupling):
    """Affine coupling: ``y1 = x1``, ``y2 = x2 * exp(s(x1)) + t(x1)``.

    With ``x = [x1, x2]`` (``d1 = floor(D/2)`` base entries, ``d2 = ceil(D/2)`` updated
    entries, or the other way round with ``swap``) one conditioner ``mlp(x1)`` outputs
    ``2 d2`` numbers ``[o_s, t]`` and the log-scale is bounded by Real NVP's tanh
    scaling::

        s(x1) = scale * tanh(o_s(x1))          (|s| <= |scale|, elementwise)

    with ``scale`` a learned vector of length ``d2``.

    Parameters
    ----------
    conditioner : list of dict
        MLP parameters (:func:`refconf.conditioners.mlp_init`) with ``d_base`` inputs
        and ``2 d_update`` outputs.
    scale : ndarray, (d_update,)
        The tanh scaling of the log-scale.
    activation : {"relu", "tanh"}
        Hidden activation of the conditioner.
    swap : bool
        ``x = [update, base]`` instead of ``[base, update]``; ``d_base`` and ``d_update``
        are read off the conditioner's shapes, so a swapped step over odd ``D`` has a
        conditioner with ``ceil(D/2)`` inputs and ``2 floor(D/2)`` outputs.

    Notes
    -----
    The Jacobian is block-triangular ``[[I, 0], [dy2/dx1, diag(exp(s))]]`` (Real NVP
    eq. 6), so ``log|det dy/dx| = sum s(x1)``. Inverse (eq. 8):
    ``x2 = (y2 - t(x1)) * exp(-s(x1))``, one pass. With a zero output layer
    (:meth:`init_params`) ``s = t = 0``: the step is the identity. Cost O(D) plus the
    conditioner.

    Examples
    --------
    >>> import numpy as np
    >>> params = AffineCoupling.init_params(2, 3, hidden=(8,), random_state=0)
    >>> params["conditioner"][-1]["W"] = np.full((8, 6), 0.3)        # move off the identity
    >>> layer = AffineCoupling(**params)
    >>> x = np.random.default_rng(1).normal(size=(4, 5))
    >>> y, log_det = layer.forward(x)
    >>> x_back, log_det_inv = layer.inverse(y)
    >>> np.allclose(x_back, x), np.allclose(log_det_inv, -log_det), np.allclose(y[:, :2], x[:, :2])
    (True, True, True)
    """

    def __init__(self, conditioner, scale, activation="relu", swap=False):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        n_out = onp.shape(getval(conditioner[-1]["W"]))[1]
        if n_out % 2:
            raise ValueError(
                f"AffineCoupling: the conditioner has {n_out} outputs; expected 2 * d_update "
                "(log-scales, then shifts)")
        self.d_base = onp.shape(getval(conditioner[0]["W"]))[0]
        self.d_update = n_out // 2
        if onp.shape(getval(scale)) != (self.d_update,):
            raise ValueError(f"AffineCoupling: scale must have shape ({self.d_update},), got "
                             f"{onp.shape(getval(scale))}")
        self.conditioner, self.scale = conditioner, scale
        self.activation, self.swap = activation, bool(swap)
        self.event_shape = (self.d_base + self.d_update,)
        self.event_ndim = 1

    @staticmethod
    def init_params(d_base, d_update, hidden=(64, 64), random_state=None):
        """Identity-at-initialisation parameters: a conditioner with a zero output layer
        (so ``s = t = 0``) and ``scale = 1``."""
        return {"conditioner": mlp_init(d_base, hidden, 2 * d_update, random_state=random_state),
                "scale": onp.ones(d_update)}

    def log_scale_and_shift(self, base):
        """``(s, t)``, each of shape ``(batch, d_update)``, from the base half."""
        out = mlp(self.conditioner, base, self.activation)
        xp = backend.namespace(out, self.scale)
        return self.scale * xp.tanh(out[..., : self.d_update]), out[..., self.d_update:]

    def _forward(self, x):
        base, x2 = self.split(x)
        s, t = self.log_scale_and_shift(base)
        xp = backend.namespace(s)
        return self._join(base, x2 * xp.exp(s) + t), xp.sum(s, axis=-1)

    def _inverse(self, y):
        base, y2 = self.split(y)
        s, t = self.log_scale_and_shift(base)
        xp = backend.namespace(s)
        return self._join(base, (y2 - t) * xp.exp(-s)), -xp.sum(s, axis=-1)

    def forward_saved(self, x):
        """:meth:`forward` on a batch ``x`` (``B x D``) with the coupling's kernels
        (:mod:`refconf.bijectors.step_kernels`) and the conditioner's
        (:func:`refconf.conditioners.mlp_forward`), keeping what :meth:`backward` reads."""
        xp = backend.compute_namespace(x, self.scale)
        split, join, mlp_out = backend.bind(xp, kernels.split_columns, kernels.join_columns,
                                            mlp_forward)
        start = 0 if self.swap else self.d_base  # the updated half's first column
        base, x2 = split(x, start, self.d_update)
        Ws = [layer["W"] for layer in self.conditioner]
        out, hidden = mlp_out(base, self.activation, Ws,
                              [layer["b"] for layer in self.conditioner])
        tanh = xp.tanh(out[:, : self.d_update])
        s = self.scale * tanh
        e = xp.exp(s)
        y2 = x2 * e + out[:, self.d_update:]
        saved = (xp, start, [base, *hidden], Ws, x2, tanh, e)
        return join(base, y2, start), xp.sum(s, axis=-1), saved

    def backward(self, saved, g_y, g_log_det):
        """``g_x2 = g_y2 exp(s)``, ``g_s = g_y2 x2 exp(s) + g_log_det``, ``g_t = g_y2``,
        ``g_scale = sum_b g_s tanh(o_s)``, ``g_{o_s} = g_s scale (1 - tanh^2)``, then the
        conditioner (:func:`refconf.conditioners.mlp_backward`), whose input cotangent
        adds to the base half's."""
        xp, start, inputs, Ws, x2, tanh, e = saved
        split, join, mlp_back = backend.bind(xp, kernels.split_columns, kernels.join_columns,
                                             mlp_backward)
        g_base, g_y2 = split(g_y, start, self.d_update)
        g_s = g_y2 * x2 * e + xp.reshape(g_log_det, (-1, 1))
        g_out = xp.concat([g_s * self.scale * (1.0 - tanh * tanh), g_y2], axis=1)
        g_x1, g_weights = mlp_back(g_out, inputs, Ws, self.activation)
        grads = {"conditioner": layer_grads(g_weights), "scale": xp.sum(g_s * tanh, axis=0)}
        return join(g_base, g_y2 * e, start, g_x1), grads
