"""The functions a port implements, one *kind* per signature, and refconf's own
evaluation of each (which produces the golden outputs).

Every kind takes named numpy arrays and returns named arrays. Shapes follow one rule:
the first axis of a data input is the batch axis ``B``, and a ``log_det`` output has one
value per sample, shape ``(B,)``, summed over every other axis (the event).
"""

from dataclasses import dataclass

import numpy as np
from autograd import make_vjp
from autograd import numpy as anp

from .. import primitives, spectral
from ..bijectors.elementwise import slog, slog_inverse
from ..flows import FlowModel
from .layer import conf_layer, conf_step, conf_step_inverse

__all__ = ["KINDS", "PARAM_PREFIX", "Kind", "flatten_params", "unflatten_params"]

PARAM_PREFIX = "param/"


@dataclass(frozen=True)
class Kind:
    """A function signature of the kit.

    Attributes
    ----------
    name : str
    inputs, outputs : tuple of str
        Array names, in call and return order. ``"param/*"`` stands for every flat
        parameter key of a model case.
    level : int
        0 primitives, 1 convolutions, 2 coupling layers, 3 whole models; a failure at a
        level usually explains failures above it.
    transform : {"dct1", "circular", None}
        The transform inside, and ``axes`` the number of trailing axes it runs over (used
        to name DCT-I scale factors in diagnoses).
    sign : int
        +1 for a forward (data -> latent) map, -1 for an inverse one.
    signature : str
        One line of documentation, written into the manifest.
    function : callable
        ``function(**inputs, **attributes) -> dict of outputs``.
    """

    name: str
    inputs: tuple
    outputs: tuple
    level: int
    transform: object
    axes: int
    sign: int
    signature: str
    function: object


def _per_sample(value, batch):
    return np.broadcast_to(np.asarray(value, dtype=float), (batch,)).copy()


def _symmetric(x, w_hat, ndim, inverse):
    conv = spectral.symmetric_deconv if inverse else spectral.symmetric_conv
    y = conv(x, w_hat, ndim)
    log_det = spectral.symmetric_log_abs_det(np.broadcast_to(w_hat, x.shape), x.ndim - 1)
    return y, _per_sample(-log_det if inverse else log_det, len(x))


def _circular(x, w_half, ndim, inverse):
    conv = spectral.circular_deconv if inverse else spectral.circular_conv
    y = conv(x, w_half, ndim)
    half = x.shape[:-1] + (x.shape[-1] // 2 + 1,)
    log_det = spectral.circular_log_abs_det(np.broadcast_to(w_half, half), x.shape[-1], ndim,
                                            event_ndim=x.ndim - 1)
    return y, _per_sample(-log_det if inverse else log_det, len(x))


def _vjp(function, x, g):
    return make_vjp(function)(x)[0](g)


def _event_sum(a):
    return np.sum(a, axis=tuple(range(1, np.ndim(a))))


def _slog(x, alpha):
    y, log_d = slog(x, alpha)
    return {"y": y, "log_det": _event_sum(log_d)}


def _slog_inverse(y, alpha):
    x, log_d = slog_inverse(y, alpha, "slog_inverse")
    return {"x": x, "log_det": _event_sum(log_d)}


def _coupling_step(x, w, s, t, alpha, alpha_prime, kind):
    d1 = x.shape[-1] - t.shape[-1]
    y2, log_det = conf_step(x[:, d1:], w, s, t, alpha, alpha_prime, kind)
    return {"y": np.concatenate([x[:, :d1], y2], axis=-1), "log_det": log_det}


def _symmetric_conv_grad(x, w_hat, g):
    def loss(w):  # w_hat has the shape of x: one spectrum per sample
        return anp.sum(g * spectral.symmetric_conv(x, w)) + anp.sum(
            spectral.symmetric_log_abs_det(w))

    return {"grad_w_hat": make_vjp(loss)(w_hat)[0](1.0)}


def flatten_params(params, prefix=PARAM_PREFIX):
    """Flat ``{"param/steps/0/coupling/conditioner/0/W": array, ...}`` of a parameter
    pytree: dict keys and list indices joined by ``/``, in the tree's order."""
    if isinstance(params, dict):
        items = params.items()
    elif isinstance(params, (list, tuple)):
        items = enumerate(params)
    else:
        return {prefix[:-1]: np.asarray(params, dtype=float)}
    flat = {}
    for key, child in items:
        flat.update(flatten_params(child, f"{prefix}{key}/"))
    return flat


def unflatten_params(flat, prefix=PARAM_PREFIX):
    """Inverse of :func:`flatten_params` (keys without ``prefix`` are ignored): a path
    segment of digits is a list index, any other a dict key."""
    root = {}
    for key, value in flat.items():
        if not key.startswith(prefix):
            continue
        *path, last = key[len(prefix):].split("/")
        node = root
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value

    def listify(node):
        if not isinstance(node, dict):
            return node
        if node and all(k.isdigit() for k in node) and sorted(map(int, node)) == list(
                range(len(node))):
            return [listify(node[str(i)]) for i in range(len(node))]
        return {k: listify(v) for k, v in node.items()}

    return listify(root)


def _model_log_prob(x, spec, **params):
    flow = FlowModel(spec).build(unflatten_params(params))
    z, log_det = flow.forward(x)
    return {"z": z, "log_det": log_det, "log_prob": flow.base.log_prob(z) + log_det}


def _model_sample(z, spec, **params):
    flow = FlowModel(spec).build(unflatten_params(params))
    return {"x": flow.chain.inverse(z)[0]}


def _kinds():
    dct = primitives
    S, C = "symmetric", "circular"
    specs = [
        # name, inputs, outputs, level, transform, axes, sign, signature, function
        ("dct1", ("x",), ("X",), 0, "dct1", 1, 1,
         "X = DCT-I of x over the last axis (eq. 2, unnormalised)",
         lambda x: {"X": dct.dct1(x)}),
        ("idct1", ("X",), ("x",), 0, "dct1", 1, -1,
         "x = inverse DCT-I of X over the last axis = dct1(X) / (2N)",
         lambda X: {"x": dct.idct1(X)}),
        ("dct1_2d", ("x",), ("X",), 0, "dct1", 2, 1,
         "X = separable DCT-I over the last two axes",
         lambda x: {"X": dct.dct1_2d(x)}),
        ("idct1_2d", ("X",), ("x",), 0, "dct1", 2, -1,
         "x = inverse separable DCT-I over the last two axes",
         lambda X: {"x": dct.idct1_2d(X)}),
        ("dct1_vjp", ("x", "g"), ("vjp",), 0, "dct1", 1, 1,
         "vjp = C^T g for X = dct1(x) = C x (last axis) = 2a * dct1(g / 2a)",
         lambda x, g: {"vjp": _vjp(dct.dct1, x, g)}),
        ("idct1_vjp", ("X", "g"), ("vjp",), 0, "dct1", 1, -1,
         "vjp = C^T g / (2N) for x = idct1(X)",
         lambda X, g: {"vjp": _vjp(dct.idct1, X, g)}),
        ("rfft_vjp", ("x", "g"), ("vjp",), 0, "circular", 1, 1,
         "vjp (real) of X = rfft(x) for the complex cotangent g (convention in manifest)",
         lambda x, g: {"vjp": _vjp(dct.rfft, x, g)}),
        ("irfft_vjp", ("X", "g"), ("vjp",), 0, "circular", 1, -1,
         "vjp (complex) of x = irfft(X, n = g.shape[-1]) for the real cotangent g",
         lambda X, g: {"vjp": _vjp(lambda a: dct.irfft(a, g.shape[-1]), X, g)}),
        ("slog", ("x", "alpha"), ("y", "log_det"), 0, None, 0, 1,
         "y = sign(x) log1p(alpha|x|) / alpha; log_det = -sum log1p(alpha|x|) per sample",
         _slog),
        ("slog_inverse", ("y", "alpha"), ("x", "log_det"), 0, None, 0, -1,
         "x = sign(y) expm1(alpha|y|) / alpha; log_det = alpha sum|y| per sample",
         _slog_inverse),
        ("symmetric_conv", ("x", "w_hat"), ("y", "log_det"), 1, "dct1", 1, 1,
         "y = idct1(w_hat * dct1(x)) over the last axis; log_det = sum log|w_hat|",
         lambda x, w_hat: dict(zip(("y", "log_det"), _symmetric(x, w_hat, 1, False)))),
        ("symmetric_deconv", ("y", "w_hat"), ("x", "log_det"), 1, "dct1", 1, -1,
         "x = idct1(dct1(y) / w_hat) over the last axis; log_det = -sum log|w_hat|",
         lambda y, w_hat: dict(zip(("x", "log_det"), _symmetric(y, w_hat, 1, True)))),
        ("symmetric_conv_2d", ("x", "w_hat"), ("y", "log_det"), 1, "dct1", 2, 1,
         "y = idct1_2d(w_hat * dct1_2d(x)); log_det = sum log|w_hat|",
         lambda x, w_hat: dict(zip(("y", "log_det"), _symmetric(x, w_hat, 2, False)))),
        ("symmetric_deconv_2d", ("y", "w_hat"), ("x", "log_det"), 1, "dct1", 2, -1,
         "x = idct1_2d(dct1_2d(y) / w_hat); log_det = -sum log|w_hat|",
         lambda y, w_hat: dict(zip(("x", "log_det"), _symmetric(y, w_hat, 2, True)))),
        ("symmetric_conv_grad", ("x", "w_hat", "g"), ("grad_w_hat",), 1, "dct1", 1, 1,
         ("grad_w_hat = d/dw_hat [sum(g * y) + sum(log_det)] for (y, log_det) = "
         "symmetric_conv(x, w_hat), w_hat (B, L) per sample; the log-det term adds 1 / w_hat"),
         _symmetric_conv_grad),
        ("circular_conv_kernel", ("x", "w"), ("y", "log_det"), 1, "circular", 1, 1,
         "y(n) = sum_m x(m) w((n - m) mod N); log_det = sum_k log|W(k)| over all N bins",
         lambda x, w: dict(zip(("y", "log_det"),
                               _circular(x, spectral.circular_spectrum(w), 1, False)))),
        ("circular_conv_kernel_2d", ("x", "w"), ("y", "log_det"), 1, "circular", 2, 1,
         "2-D circular convolution on the H x W torus by the real kernel w",
         lambda x, w: dict(zip(("y", "log_det"),
                               _circular(x, spectral.circular_spectrum(w, 2), 2, False)))),
        ("circular_conv", ("x", "w_half"), ("y", "log_det"), 1, "circular", 1, 1,
         "y = irfft(w_half * rfft(x), n); log_det from the half spectrum, interior bins x2",
         lambda x, w_half: dict(zip(("y", "log_det"), _circular(x, w_half, 1, False)))),
        ("circular_deconv", ("y", "w_half"), ("x", "log_det"), 1, "circular", 1, -1,
         "x = irfft(rfft(y) / w_half, n); log_det = minus circular_conv's",
         lambda y, w_half: dict(zip(("x", "log_det"), _circular(y, w_half, 1, True)))),
        ("circular_conv_2d", ("x", "w_half"), ("y", "log_det"), 1, "circular", 2, 1,
         "y = irfft2(w_half * rfft2(x)); w_half in rfft2 layout (H, W // 2 + 1)",
         lambda x, w_half: dict(zip(("y", "log_det"), _circular(x, w_half, 2, False)))),
        ("conf_layer", ("x2", "w_hat", "s", "alpha", "alpha_prime"), ("y2", "log_det"),
         2, "dct1", 1, 1,
         "eq. 4: y2 = g_{alpha'}(s * f_alpha(w *_s x2)), symmetric convolution",
         lambda x2, w_hat, s, alpha, alpha_prime: dict(zip(
             ("y2", "log_det"), conf_layer(x2, w_hat, s, alpha, alpha_prime, S)))),
        ("conf_layer_circular", ("x2", "w_half", "s", "alpha", "alpha_prime"),
         ("y2", "log_det"), 2, "circular", 1, 1,
         "eq. 4 with a circular convolution given by its half spectrum",
         lambda x2, w_half, s, alpha, alpha_prime: dict(zip(
             ("y2", "log_det"), conf_layer(x2, w_half, s, alpha, alpha_prime, C)))),
        ("conf_step", ("x2", "w_hat", "s", "t", "alpha", "alpha_prime"), ("y2", "log_det"),
         2, "dct1", 1, 1,
         "eq. 5: y2 = (F_1 o ... o F_m)(x2) + t, F_m first; F_i = conf_layer of row i",
         lambda x2, w_hat, s, t, alpha, alpha_prime: dict(zip(
             ("y2", "log_det"), conf_step(x2, w_hat, s, t, alpha, alpha_prime, S)))),
        ("conf_step_circular", ("x2", "w_half", "s", "t", "alpha", "alpha_prime"),
         ("y2", "log_det"), 2, "circular", 1, 1,
         "eq. 5 with circular convolutions",
         lambda x2, w_half, s, t, alpha, alpha_prime: dict(zip(
             ("y2", "log_det"), conf_step(x2, w_half, s, t, alpha, alpha_prime, C)))),
        ("conf_step_inverse", ("y2", "w_hat", "s", "t", "alpha", "alpha_prime"),
         ("x2", "log_det"), 2, "dct1", 1, -1,
         "inverse of eq. 5: x2 = F_m^-1(... F_1^-1(y2 - t)); log_det = log|det dx2/dy2|",
         lambda y2, w_hat, s, t, alpha, alpha_prime: dict(zip(
             ("x2", "log_det"), conf_step_inverse(y2, w_hat, s, t, alpha, alpha_prime, S)))),
        ("conf_step_inverse_circular", ("y2", "w_half", "s", "t", "alpha", "alpha_prime"),
         ("x2", "log_det"), 2, "circular", 1, -1,
         "inverse of eq. 5 with circular convolutions",
         lambda y2, w_half, s, t, alpha, alpha_prime: dict(zip(
             ("x2", "log_det"), conf_step_inverse(y2, w_half, s, t, alpha, alpha_prime, C)))),
        ("conf_coupling_step", ("x", "w_hat", "s", "t", "alpha", "alpha_prime"),
         ("y", "log_det"), 2, "dct1", 1, 1,
         ("y = [x1, conf_step(x2)] with x1 = x[:, :D - d2] kept and x2 = x[:, D - d2:] "
         "updated (d2 = t.shape[-1])"),
         lambda x, w_hat, s, t, alpha, alpha_prime: _coupling_step(
             x, w_hat, s, t, alpha, alpha_prime, S)),
        ("conf_coupling_step_circular", ("x", "w_half", "s", "t", "alpha", "alpha_prime"),
         ("y", "log_det"), 2, "circular", 1, 1,
         "conf_coupling_step with circular convolutions",
         lambda x, w_half, s, t, alpha, alpha_prime: _coupling_step(
             x, w_half, s, t, alpha, alpha_prime, C)),
        ("conf_model_log_prob", ("x", "param/*"), ("z", "log_det", "log_prob"), 3, None, 0, 1,
         ("whole CONF model: z = forward(x), log_det = log|det dz/dx|, "
          "log_prob = log N(z; 0, I) + log_det (spec in the case's attributes)"),
         _model_log_prob),
        ("conf_model_sample", ("z", "param/*"), ("x",), 3, None, 0, -1,
         "whole CONF model: x = inverse(z), one sample per row of z",
         _model_sample),
    ]
    return {s[0]: Kind(*s) for s in specs}


KINDS = _kinds()
