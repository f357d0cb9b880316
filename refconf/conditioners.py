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

import autograd.numpy as anp
import numpy as onp

from . import backend

__all__ = [
    "ACTIVATIONS",
    "conv2d_same",
    "conv_init",
    "conv_net",
    "layer_grads",
    "mlp",
    "mlp_backward",
    "mlp_forward",
    "mlp_init",
]

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


# --- the convolutional conditioner of image coupling steps -------------------------------


def conv_init(c_in, hidden, c_out, kernel=3, random_state=None, zero_output=True):
    """Parameters of a convolutional network ``c_in -> hidden... -> c_out`` channels.

    Each layer is ``{"W": (c_out, c_in k^2), "b": (c_out,)}`` with ``k = kernel`` (odd):
    ``W[o, (c k + i) k + j]`` weighs input channel ``c`` at offset ``(i - k//2, j - k//2)``.
    Hidden layers are Glorot-uniform (fan-in ``c_in k^2``); with ``zero_output`` the last
    layer is zero, so the network outputs 0 and a coupling step built on it starts at the
    identity (``docs/theory/image-flows.md``).

    Examples
    --------
    >>> import numpy as np
    >>> params = conv_init(2, (8,), 5, random_state=0)
    >>> [p["W"].shape for p in params]
    [(8, 18), (5, 72)]
    >>> bool(np.all(conv_net(params, np.ones((1, 2, 4, 3))) == 0))
    True
    """
    if int(kernel) != kernel or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"conv_init: kernel must be an odd positive integer, got {kernel!r}")
    rng = onp.random.default_rng(random_state)
    sizes = [c_in, *hidden, c_out]
    params = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        fan_in = a * kernel * kernel
        if i == len(sizes) - 2 and zero_output:
            W = onp.zeros((b, fan_in))
        else:
            limit = onp.sqrt(6.0 / (fan_in + b * kernel * kernel))
            W = rng.uniform(-limit, limit, size=(b, fan_in))
        params.append({"W": W, "b": onp.zeros(b)})
    return params


def conv2d_same(x, W, b):
    """Zero-padded ("same") 2-D convolution of ``x`` (``B x C x H x W``) by im2col::

        out[n, o, h, w] = b[o] + sum_{c, i, j} W[o, (c k + i) k + j] x[n, c, h + i - k//2, w + j - k//2]

    (zero outside the image). The patches are ``k^2`` shifted views of the padded input;
    the sum is one matrix product (BLAS). Written in ``autograd.numpy``, so autograd
    differentiates it in ``x``, ``W`` and ``b``. Cost O(B C k^2 H W c_out).
    """
    C = anp.shape(x)[1]
    k = round((anp.shape(W)[1] // C) ** 0.5)
    H, Wd = anp.shape(x)[2:]
    p = k // 2
    padded = anp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), "constant")
    patches = anp.stack([padded[:, :, i:i + H, j:j + Wd] for i in range(k) for j in range(k)],
                        axis=2)
    patches = anp.reshape(patches, (anp.shape(x)[0], C * k * k, H, Wd))
    out = anp.tensordot(W, patches, axes=([1], [1]))  # (c_out, B, H, W)
    return anp.transpose(out, (1, 0, 2, 3)) + anp.reshape(b, (-1, 1, 1))


def conv_net(params, x, activation="relu"):
    """The convolutional network of :func:`conv_init` on ``x`` (``B x C x H x W``):
    ``h <- act(conv(h))`` on hidden layers (:func:`conv2d_same`), a linear last layer.
    Output ``B x c_out x H x W``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    h = x
    for layer in params[:-1]:
        h = act(conv2d_same(h, layer["W"], layer["b"]))
    return conv2d_same(h, params[-1]["W"], params[-1]["b"])
