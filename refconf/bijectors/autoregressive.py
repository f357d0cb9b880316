"""MADE (Germain et al. 2015) as the affine autoregressive bijector of MAF
(Papamakarios, Pavlakou & Murray 2017)."""

import itertools

import numpy as onp
from autograd.tracer import getval

from .. import backend
from ..conditioners import ACTIVATIONS, layer_grads, mlp, mlp_backward, mlp_forward, mlp_init
from .base import Bijector

__all__ = ["MaskedAutoregressive", "made_degrees", "made_masks"]


def _check_order(order):
    order = onp.asarray(order)
    if order.ndim != 1 or order.size < 2 or not onp.array_equal(
            onp.sort(order), onp.arange(order.size)):
        raise ValueError(
            f"order must be a permutation of 0..D-1 with D >= 2 (the position of each "
            f"coordinate in the autoregressive order), got {order}")
    return order.astype(int)


def made_degrees(order, hidden):
    """Degrees of MADE's units (Germain et al. 2015, section 4).

    Parameters
    ----------
    order : int array, (D,)
        ``order[i]`` is the coordinate that comes ``i``-th: it gets degree ``i + 1``.
    hidden : sequence of int
        Widths of the hidden layers.

    Returns
    -------
    list of int arrays
        ``[input degrees (D,), hidden layer 1 degrees, ...]``. Hidden unit ``k`` of every
        layer gets degree ``k mod (D - 1) + 1`` (the deterministic "sequential"
        assignment of the MAF code, instead of Germain et al.'s random draw), so every
        degree ``1..D-1`` is used when the layer has at least ``D - 1`` units.

    Examples
    --------
    >>> [d.tolist() for d in made_degrees([2, 0, 1], hidden=(4,))]
    [[2, 3, 1], [1, 2, 1, 2]]
    """
    order = _check_order(order)
    D = order.size
    inputs = onp.empty(D, dtype=int)
    inputs[order] = onp.arange(1, D + 1)
    return [inputs] + [onp.arange(int(h)) % (D - 1) + 1 for h in hidden]


def made_masks(order, hidden):
    """MADE's connectivity masks, one ``(n_in, n_out)`` 0/1 array per layer.

    A hidden unit of degree ``m`` may see units of the previous layer of degree
    ``<= m``; output ``d`` (of each of the ``n_outputs_per_input`` output blocks) may see
    the last hidden layer's units of degree ``< degree(d)``. Every path from input ``j``
    to output ``i`` then has ``degree(j) < degree(i)``: output ``i`` depends only on the
    coordinates before ``i`` in ``order`` (Germain et al. 2015, eqs. 12-13).

    Returns
    -------
    list of ndarray
        Masks for the hidden layers and, last, ``(hidden[-1], 2 D)`` for the two output
        blocks ``[mu, alpha]``.
    """
    degrees = made_degrees(order, hidden)
    masks = [(later[None, :] >= earlier[:, None]).astype(float)
             for earlier, later in itertools.pairwise(degrees)]
    out = (degrees[0][None, :] > degrees[-1][:, None]).astype(float)
    return masks + [onp.concatenate([out, out], axis=1)]


class MaskedAutoregressive(Bijector):
    """MAF's affine autoregressive layer: ``z_i = (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i))``.

    ``mu`` and ``alpha`` are the two output blocks of one MADE (a masked MLP) of ``x``;
    ``x_<i`` are the coordinates before ``i`` in ``order``.

    Parameters
    ----------
    made : list of dict
        Unmasked MLP parameters (:func:`refconf.conditioners.mlp_init`) with ``D`` inputs,
        at least one hidden layer and ``2 D`` outputs ``[mu, alpha]``; the masks of
        :func:`made_masks` are applied on every call, so masked weights are never used.
    order : int array, (D,)
        ``order[i]`` is the ``i``-th coordinate of the autoregressive order.
    activation : {"relu", "tanh"}

    Notes
    -----
    The Jacobian ``dz/dx``, rows and columns taken in ``order``, is lower triangular with
    diagonal ``exp(-alpha)``, so ``log|det dz/dx| = -sum_i alpha_i`` (MAF eq. 5). Forward
    (density) is one MADE pass; the inverse ``x_i = z_i exp(alpha_i) + mu_i`` needs ``D``
    sequential passes, each fixing one more coordinate. Cost O(D H + H^2) forward,
    D times that inverse. At a zero output layer (:meth:`init_params`) the layer is the
    identity. ``alpha`` is unbounded, as in MAF.

    Examples
    --------
    >>> import numpy as np
    >>> made = MaskedAutoregressive.init_params(3, hidden=(8,), random_state=0)
    >>> made[-1]["W"] = np.random.default_rng(0).normal(size=(8, 6))
    >>> layer = MaskedAutoregressive(made, order=[2, 0, 1])
    >>> x = np.random.default_rng(1).normal(size=(4, 3))
    >>> z, log_det = layer.forward(x)
    >>> np.allclose(layer.inverse(z)[0], x)
    True
    >>> bool(np.all(z[:, 2] == x[:, 2]))         # the first coordinate in the order: mu = alpha = 0
    True
    """

    def __init__(self, made, order, activation="relu"):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.order = _check_order(order)
        D = self.order.size
        shapes = [onp.shape(getval(layer["W"])) for layer in made]
        if len(made) < 2 or shapes[0][0] != D or shapes[-1][1] != 2 * D:
            raise ValueError(
                f"MaskedAutoregressive: expected an MLP with {D} inputs, at least one hidden "
                f"layer and {2 * D} outputs (mu, alpha); got layers of shapes {shapes}")
        # masks in the weights' namespace and dtype, so float32 parameters stay float32
        xp = backend.tree_namespace(made)
        self.masks = [backend.asarray(xp, mask, dtype=getval(layer["W"]).dtype) for mask, layer
                      in zip(made_masks(self.order, [s[1] for s in shapes[:-1]]), made)]
        self.made, self.activation = made, activation
        self._fixed = onp.arange(D)[None, :] == self.order[:, None]  # pass k sets order[k]
        self.event_shape = (D,)
        self.event_ndim = 1

    @staticmethod
    def init_params(dim, hidden=(64, 64), random_state=None):
        """Identity-at-initialisation MADE parameters (zero output layer)."""
        return mlp_init(dim, hidden, 2 * dim, random_state=random_state)

    def mu_alpha(self, x):
        """The MADE's outputs ``(mu, alpha)``, each ``(batch, D)``; entry ``i`` depends
        only on the coordinates before ``i`` in the order."""
        masked = [{"W": layer["W"] * mask, "b": layer["b"]}
                  for layer, mask in zip(self.made, self.masks)]
        out = mlp(masked, x, self.activation)
        D = self.order.size
        return out[..., :D], out[..., D:]

    def _forward(self, x):
        mu, alpha = self.mu_alpha(x)
        xp = backend.namespace(x, alpha)
        return (x - mu) * xp.exp(-alpha), -xp.sum(alpha, axis=-1)

    def forward_saved(self, x):
        """:meth:`forward` on a batch ``x`` (``B x D``) through the masked weights with
        :func:`refconf.conditioners.mlp_forward`, keeping what :meth:`backward` reads."""
        xp = backend.compute_namespace(x, self.masks[0])
        Ws = [layer["W"] * mask for layer, mask in zip(self.made, self.masks)]
        out, hidden = mlp_forward(xp, x, self.activation, Ws,
                                  [layer["b"] for layer in self.made])
        D = self.order.size
        e = xp.exp(-out[:, D:])
        z = (x - out[:, :D]) * e
        return z, -xp.sum(out[:, D:], axis=-1), (xp, [x, *hidden], Ws, z, e)

    def backward(self, saved, g_z, g_log_det):
        """``g_mu = -g_z exp(-alpha)``, ``g_alpha = -g_z z - g_log_det``, through the MADE
        (:func:`refconf.conditioners.mlp_backward`, the weights' cotangents masked), plus
        the direct ``g_z exp(-alpha)``."""
        xp, inputs, Ws, z, e = saved
        g_out = xp.concat([-g_z * e, -g_z * z - xp.reshape(g_log_det, (-1, 1))], axis=1)
        g_x, g_weights = mlp_backward(xp, g_out, inputs, Ws, self.activation)
        grads = layer_grads(g_weights)
        for layer, mask in zip(grads, self.masks):
            layer["W"] = layer["W"] * mask
        return g_z * e + g_x, {"made": grads}

    def _inverse(self, z):
        # Pass k fixes coordinate order[k] from the exact ones before it; the others keep
        # their finite z, so no pass feeds an overflowed guess (inf * masked 0 = NaN) to
        # the MADE. mu and alpha of the last pass read only the first D - 1: exact too.
        x = z
        xp = backend.namespace(z)
        with onp.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below
            for k in range(self.order.size):
                mu, alpha = self.mu_alpha(x)
                # z exp(alpha) as sign(z) exp(alpha + log|z|): finite whenever the product is
                # (a float32 z of 1e-39 from alpha = 90 has exp(alpha) = inf)
                scaled = xp.sign(z) * xp.exp(alpha + xp.log(xp.abs(z)))
                x = xp.where(self._fixed[k, ...], scaled + mu, x)
        if not bool(xp.all(xp.isfinite(getval(x)))):
            raise ValueError(
                "MaskedAutoregressive.inverse: overflow (exp(alpha) * z is not finite); the "
                "sample is beyond the floating-point range")
        return x, xp.sum(alpha, axis=-1)
