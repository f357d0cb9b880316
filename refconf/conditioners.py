"""Conditioner networks as pure functions ``f(params, x1) -> outputs``.

A conditioner reads the unchanged half ``x1`` of a coupling step and outputs every
data-adaptive quantity of that step (kernel spectra, scales, shift). Parameters are a
plain list of ``{"W": (n_in, n_out), "b": (n_out,)}`` dicts, so autograd differentiates
them like any other pytree; arrays of another array-API library (CuPy) compute in that
library (:mod:`refconf.backend`).
"""

import numpy as onp

from . import backend

__all__ = ["ACTIVATIONS", "mlp_init", "mlp"]

ACTIVATIONS = {
    "relu": lambda a: backend.namespace(a).maximum(a, 0.0),
    "tanh": lambda a: backend.namespace(a).tanh(a),
}


def mlp_init(n_in, hidden, n_out, random_state=None, zero_output=True):
    """Parameters of an MLP ``n_in -> hidden... -> n_out``.

    Hidden layers use Glorot-uniform weights and zero biases. With ``zero_output`` the
    last layer is all zeros, so the network outputs 0 for every input: the coupling step
    maps 0 to the identity (``w_hat = 1``, ``s = 1``, ``t = 0``, MATH.md section 4).

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
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
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
