"""Conditioner networks as pure functions ``f(params, x1) -> outputs``.

A conditioner reads the unchanged half ``x1`` of a coupling step and outputs every
data-adaptive quantity of that step (kernel spectra, scales, shift). Parameters are a
plain list of ``{"W": (n_in, n_out), "b": (n_out,)}`` dicts, so autograd differentiates
them like any other pytree; arrays of another array-API library (CuPy) compute in that
library (:mod:`refconf.backend`).

:func:`mlp_forward` and :func:`mlp_backward` are the same network and its reverse pass
written out, for the explicit gradient of a whole model
(:func:`refconf.engines.nll_and_grad`); on NumPy arrays their compiled overrides in
:mod:`refconf._conditioners_numba` run instead.
"""

import itertools

import numpy as onp

from . import backend

__all__ = ["ACTIVATIONS", "layer_grads", "mlp", "mlp_backward", "mlp_forward", "mlp_init"]

ACTIVATIONS = {
    "relu": lambda a: backend.namespace(a).maximum(a, 0.0),
    "tanh": lambda a: backend.namespace(a).tanh(a),
}


def mlp_init(n_in, hidden, n_out, random_state=None, zero_output=True):
    """Parameters of an MLP ``n_in -> hidden... -> n_out``.

    Hidden layers use Glorot-uniform weights and zero biases. With ``zero_output`` the
    last layer is all zeros, so the network outputs 0 for every input: the coupling step
    maps 0 to the identity (``w_hat = 1``, ``s = 1``, ``t = 0``, ``docs/theory/conf-step.md``).

    Examples
    --------
    >>> import numpy as np
    >>> params = mlp_init(3, (8, 8), 5, random_state=0)
    >>> [p["W"].shape for p in params]
    [(3, 8), (8, 8), (8, 5)]
    >>> bool(np.all(mlp(params, np.ones((2, 3))) == 0))
    True
    """
    rng = onp.random.default_rng(random_state)
    sizes = [n_in, *hidden, n_out]
    params = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        if last and zero_output:
            W = onp.zeros((a, b))
        else:
            limit = onp.sqrt(6.0 / (a + b))
            W = rng.uniform(-limit, limit, size=(a, b))
        params.append({"W": W, "b": onp.zeros(b)})
    return params


def mlp(params, x, activation="relu"):
    """Apply the MLP: ``h <- act(h W + b)`` on hidden layers, linear output layer.

    Parameters
    ----------
    params : list of dict
    x : ndarray, (batch, n_in)
    activation : {"relu", "tanh"}

    Returns
    -------
    ndarray, (batch, n_out)
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    h = x
    for layer in params[:-1]:
        h = act(h @ layer["W"] + layer["b"])
    return h @ params[-1]["W"] + params[-1]["b"]


@backend.compiled_override("refconf._conditioners_numba")
def mlp_forward(xp, x, activation, Ws, bs):
    """Output and hidden activations of :func:`mlp`, ``h_l = act(h_{l-1} W_l + b_l)``,
    for a batch ``x`` (``B x n_in``) and the layers' weights ``Ws`` and biases ``bs``.

    Returns ``(out, [h_1, ..., h_{L-1}])``, what :func:`mlp_backward` reads.
    """
    hidden, h = [], x
    for W, b in zip(Ws[:-1], bs[:-1]):
        h = _activate(xp, h @ W + b, activation)
        hidden.append(h)
    return h @ Ws[-1] + bs[-1], hidden


def layer_grads(g_weights):
    """:func:`mlp_backward`'s ``[gW_1, gb_1, ...]`` as the parameters' list of
    ``{"W", "b"}`` dicts."""
    return [{"W": gW, "b": gb} for gW, gb in zip(g_weights[0::2], g_weights[1::2])]


def _activate(xp, a, activation):
    return xp.tanh(a) if activation == "tanh" else xp.where(a > 0, a, xp.zeros_like(a))


@backend.compiled_override("refconf._conditioners_numba")
def mlp_backward(xp, g, inputs, Ws, activation):
    """Reverse pass of :func:`mlp_forward` from the output cotangent ``g = ga_L``::

        gW_l = h_{l-1}^T ga_l,   gb_l = sum_b ga_l,   gh_{l-1} = ga_l W_l^T,
        ga_{l-1} = gh_{l-1} (1 - h_{l-1}^2)   (tanh)   or   gh_{l-1} [h_{l-1} > 0]   (relu)

    with ``inputs = [x, h_1, ..., h_{L-1}]``; returns ``(gx, [gW_1, gb_1, ...])``.

    Examples
    --------
    >>> import numpy as np
    >>> from autograd import grad
    >>> params = mlp_init(3, (4,), 2, random_state=0, zero_output=False)
    >>> x = np.random.default_rng(1).normal(size=(5, 3))
    >>> Ws, bs = [p["W"] for p in params], [p["b"] for p in params]
    >>> out, hidden = mlp_forward.readable(np, x, "tanh", Ws, bs)
    >>> gx, _ = mlp_backward.readable(np, np.ones_like(out), [x] + hidden, Ws, "tanh")
    >>> bool(np.allclose(gx, grad(lambda x: mlp(params, x, "tanh").sum())(x)))
    True
    """
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
