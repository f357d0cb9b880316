"""A CONF model's negative log-likelihood and its gradient in one explicit pass.

Traced by autograd, a training step of a CONF model records a few hundred nodes (the
parameter leaves, ActNorm, the split and join, the spectrum set-up, the base density),
each costing tens of microseconds of bookkeeping: more than the arithmetic of a small
model. :func:`nll_and_grad` computes the same loss and gradient without autograd: one
forward pass through the model (:class:`refconf.flows.FlowModel`'s layers: ActNorm, the
coupling step of eq. 5, the mixing) that keeps the intermediates, then the reverse pass
written out layer by layer.

The layers (ActNorm, the split and join, the spectrum parameterisation, the mixings,
the base density) are written once, against the array namespace ``xp`` of the inputs,
over a small set of kernels (:class:`refconf.engines.array_kernels.Kernels`: the MLP's
forward and backward, the CONF step's forward and backward, the transforms, ActNorm, and
the layout work: a coupling's halves and the conditioner output's parts, split and
joined). For NumPy arrays they are the numba engine's (:mod:`refconf.engines.numba_engine`,
the ones its autograd primitives wrap, and the compiled kernels of
:mod:`refconf.engines._numba`), bound once; for arrays of another array-API library (CuPy
on a GPU) they are :func:`refconf.engines.array_kernels.array_kernels`' vectorised
expressions of the same formulas, so a model trains on the device with the gradient left
there.

The reverse pass, for ``L = -mean_b log p(x_b)`` with
``log p = log N(z; 0, I) + sum of the layers' log-dets`` and cotangents ``g`` of a
layer's output and ``gl = -1/B`` of each sample's log-det:

* base density: ``g_z = z / B``;
* mixing: ``Reverse`` reverses ``g``, ``Permutation`` scatters it back; the 1x1 layer
  ``y = x M^T`` with ``M = P L U'``, ``U' = triu(upper, 1) + diag(sign exp(log_s))``:
  ``g_x = g M``, ``g_M = g^T x``, ``g_A = P^T g_M`` (``A = L U'``),
  ``g_lower = tril(g_A U'^T, -1)``, ``g_U' = L^T g_A``, ``g_upper = triu(g_U', 1)``,
  ``g_log_s = diag(g_U') sign exp(log_s) + sum_b gl_b``;
* coupling: the CONF step's backward gives the cotangents of ``x2``, the spectra
  ``w``, the scales ``s``, ``alpha`` and ``alpha'``; ``g_t = g_y2``; through the spectrum
  parameterisation ``g_o = g_w`` (raw) or ``g_w w`` (exp), through the rfft
  ``g_o = Re FFT(zero-padded g)`` (circular); ``g_{o_s} = g_s s``; the MLP's backward
  maps the conditioner outputs' cotangent to its weights and adds to ``g_x1``;
  ``g_log_alpha = g_alpha alpha``;
* ActNorm ``y = (x - loc) exp(-log_scale)``: ``g_x = g exp(-log_scale)``,
  ``g_loc = -sum_b g_x``, ``g_log_scale = -sum_b g y - sum_b gl_b``.

Complex cotangents follow autograd's convention (``dl/dRe - i dl/dIm``), as the
engine's kernels do, so the result equals autograd's gradient of the readable model
(``tests/test_engines.py``, to 1e-10).
"""

import functools
import math

import numpy as np

from .. import backend
from ..bijectors.coupling import split_sizes
from ..params import tree_leaves
from . import _numba, numba_engine
from .array_kernels import Kernels, array_kernels

__all__ = ["nll_and_grad"]


def _contiguous(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


#: The NumPy path: the numba engine's kernels, bound once.
_NUMPY_KERNELS = Kernels(
    xp=np, array=_contiguous, host=np.asarray,
    actnorm_forward=_numba.actnorm_forward, actnorm_backward=_numba.actnorm_backward,
    split_columns=_numba.split_columns, join_columns=_numba.join_columns,
    mlp_forward=numba_engine._mlp_forward,
    mlp_backward=numba_engine._mlp_backward,
    step_forward=numba_engine._step_forward, step_backward=numba_engine._step_backward,
    conditioner_outputs=_numba.split_conditioner_output,
    conditioner_cotangent=_numba.join_conditioner_cotangent,
    transforms=lambda kind, L, dtype: numba_engine._transforms(kind, L, np.dtype(dtype)))


@functools.lru_cache(maxsize=8)
def _namespace_kernels(xp):
    return array_kernels(xp)


class _ActNorm:
    """``y = (x - loc) exp(-log_scale)``, per-sample log-det ``-sum log_scale``."""

    def __init__(self, params, dtype, kernels):
        self.xp, self.kernels = kernels.xp, kernels
        self.loc = kernels.array(params["loc"], dtype)
        self.log_scale = kernels.array(params["log_scale"], dtype)

    def forward(self, x):
        self.y, self.scale, log_det = self.kernels.actnorm_forward(x, self.loc,
                                                                   self.log_scale)
        return self.y, log_det

    def backward(self, g, gl_sum):
        g_x, g_loc, g_log_scale = self.kernels.actnorm_backward(g, self.y, self.scale, gl_sum)
        return g_x, {"loc": g_loc, "log_scale": g_log_scale}


class _Reverse:
    # a negative-step slice (a view in NumPy) rather than xp.flip, whose NumPy wrapper
    # costs more than the reversal of a small batch
    def forward(self, x):
        return x[:, ::-1], 0.0

    def backward(self, g, gl_sum):
        return g[:, ::-1], None


class _Permutation:
    """``y = x[:, perm]``."""

    def __init__(self, perm, kernels):
        self.xp = kernels.xp
        perm = np.asarray(perm)
        self.perm, self.inverse_perm = kernels.host(perm), kernels.host(np.argsort(perm))

    def forward(self, x):
        return self.xp.take(x, self.perm, axis=1), 0.0

    def backward(self, g, gl_sum):
        return self.xp.take(g, self.inverse_perm, axis=1), None


class _Invertible1x1:
    """``y = x M^T``, ``M = P L U'`` (:class:`refconf.bijectors.Invertible1x1`)."""

    def __init__(self, fixed, params, dtype, kernels):
        xp = self.xp = kernels.xp
        perm = np.asarray(fixed["perm"])
        self.perm, self.inverse_perm = kernels.host(perm), kernels.host(np.argsort(perm))
        self.log_s = kernels.array(params["log_s"], dtype)
        eye = xp.eye(perm.size, dtype=dtype)
        self.L = xp.tril(kernels.array(params["lower"], dtype), k=-1) + eye
        self.diag = kernels.array(kernels.host(fixed["sign"]), dtype) * xp.exp(self.log_s)
        self.U = xp.triu(kernels.array(params["upper"], dtype), k=1) + eye * self.diag
        self.M = xp.take(eye, self.perm, axis=0) @ (self.L @ self.U)

    def forward(self, x):
        self.x = x
        return x @ self.M.T, self.xp.sum(self.log_s)

    def backward(self, g, gl_sum):
        xp = self.xp
        g_A = xp.take(g.T @ self.x, self.inverse_perm, axis=0)  # P^T g_M
        g_U = self.L.T @ g_A
        grads = {"lower": xp.tril(g_A @ self.U.T, k=-1), "upper": xp.triu(g_U, k=1),
                 "log_s": xp.linalg.diagonal(g_U) * self.diag + gl_sum}
        return g @ self.M, grads


class _Coupling:
    """The mixed CONF step of eq. (5) with its conditioner
    (:class:`refconf.bijectors.ConvCoupling`)."""

    def __init__(self, params, spec, swap, dim, dtype, kernels):
        self.kernels, self.xp = kernels, kernels.xp
        self.kind, self.spectrum, self.activation = spec["kind"], spec["spectrum"], spec["activation"]
        self.m = int(spec["m"])
        d1, d2 = split_sizes(dim)
        self.d_base = d2 if swap else d1
        self.d_update = dim - self.d_base
        self.swap = swap
        layers = params["conditioner"]
        self.Ws = [kernels.array(layer["W"], dtype) for layer in layers]
        self.bs = [kernels.array(layer["b"], dtype) for layer in layers]
        self.alpha = self.xp.exp(kernels.array(params["log_alpha"], dtype))
        self.alpha_prime = self.xp.exp(kernels.array(params["log_alpha_prime"], dtype))
        self.ops = kernels.transforms(self.kind, self.d_update, dtype)
        # the updated half's first column: the first half is updated when swapped
        self.start = 0 if swap else self.d_base

    def _conditioner(self, base):
        """``((w, s, t), hidden)``: the spectra ``(m, B, bins)``, scales ``(m, B, d2)`` and
        shift ``(B, d2)`` from the conditioner (as ``ConvCoupling._conditioner_outputs``),
        and the MLP's hidden activations."""
        xp = self.xp
        out, hidden = self.kernels.mlp_forward(base, self.activation, self.Ws, self.bs)
        o_w, o_s, t = self.kernels.conditioner_outputs(out, self.m, self.d_update)
        if self.kind == "circular":
            o_w = xp.fft.rfft(o_w, axis=-1)
        w = xp.exp(o_w) if self.spectrum == "exp" else 1.0 + o_w
        return (w, xp.exp(o_s), t), hidden

    def forward(self, x, overflow="inf"):
        kernels = self.kernels
        self.base, x2 = kernels.split_columns(x, self.start, self.d_update)
        (self.w, self.s, t), self.hidden = self._conditioner(self.base)
        y2, log_det, self.saved = kernels.step_forward(
            x2, self.w, self.s, t, self.alpha, self.alpha_prime, self.kind, overflow)
        return kernels.join_columns(self.base, y2, self.start), log_det

    def backward(self, g, gl):
        xp, kernels = self.xp, self.kernels
        g_base, g_y2 = kernels.split_columns(g, self.start, self.d_update)
        g_x2, g_w, g_s, g_alpha, g_alpha_prime = kernels.step_backward(
            g_y2, gl, self.w, self.s, self.alpha, self.alpha_prime, self.saved, self.ops)
        if self.spectrum == "exp":
            g_w = g_w * self.w
        if self.kind == "circular":
            g_w = xp.real(xp.fft.fft(g_w, n=self.d_update, axis=-1))  # the rfft's VJP
        g_out = kernels.conditioner_cotangent(g_w, g_s, self.s, g_y2)
        g_x1, g_weights = kernels.mlp_backward(g_out, [self.base] + self.hidden, self.Ws,
                                               self.activation)
        grads = {"conditioner": [{"W": gW, "b": gb} for gW, gb in
                                 zip(g_weights[0::2], g_weights[1::2])],
                 "log_alpha": g_alpha * self.alpha,
                 "log_alpha_prime": g_alpha_prime * self.alpha_prime}
        return kernels.join_columns(g_base, g_x2, self.start, g_x1), grads


def _layers(model, params, dtype, kernels):
    """The model's layers in forward order, as ``(step index, key, layer)``."""
    spec, steps = model.spec, params["steps"]
    layers = []
    for k, step in enumerate(steps):
        if spec["actnorm"]:
            layers.append((k, "actnorm", _ActNorm(step["actnorm"], dtype, kernels)))
        layers.append((k, "coupling", _Coupling(step["coupling"], spec, model._swap(k),
                                                model.dim, dtype, kernels)))
        if spec["mixing"] == "1x1":
            layers.append((k, "mixing", _Invertible1x1(spec["mixing_fixed"][k],
                                                       step["mixing"], dtype, kernels)))
        elif k < len(steps) - 1:
            layers.append((k, "mixing", _Reverse() if spec["mixing"] == "reverse"
                           else _Permutation(spec["mixing_fixed"][k]["perm"], kernels)))
    return layers


def _kernels(params, x):
    """The kernels of the arrays' namespace, and the computing dtype."""
    Ws = [step["coupling"]["conditioner"][0]["W"] for step in params["steps"]]
    if isinstance(x, np.ndarray) and all(isinstance(W, np.ndarray) for W in Ws):
        return _NUMPY_KERNELS, np.result_type(*Ws, x.dtype)
    # device arrays: one namespace for all (a clear error where NumPy and device mix)
    xp = backend.namespace(x, *tree_leaves(params))
    if backend.is_autograd(xp):  # NumPy-convertible leaves (lists, scalars)
        return _NUMPY_KERNELS, np.result_type(*Ws, np.result_type(x))
    return _namespace_kernels(xp), xp.result_type(*Ws, x)


def nll_and_grad(model, params, x):
    """Mean negative log-likelihood of ``x`` under the CONF model and its gradient.

    Parameters
    ----------
    model : refconf.flows.FlowModel
    params : pytree
        The model's parameters (:meth:`~refconf.flows.FlowModel.init_params`): NumPy
        arrays, or arrays of one array-API library (moved with
        :func:`refconf.backend.to_device`).
    x : array, (B, D)
        A batch of data, in the parameters' namespace.

    Returns
    -------
    nll : float or 0-d array
        ``-mean_b log p(x_b)``, as ``-mean(model.build(params).log_prob(x))``: a NumPy
        float, or a 0-d array of the inputs' namespace (no device-to-host copy).
    grads : pytree
        Its gradient, with the structure of ``params`` and arrays of its namespace (the
        1x1 layers' fixed parts are not parameters and get no entry).

    Raises
    ------
    ValueError
        When NumPy arrays are mixed with arrays of another library
        (:func:`refconf.backend.namespace`).

    Examples
    --------
    >>> import numpy as np
    >>> from autograd import grad
    >>> from refconf.flows import conf
    >>> x = np.random.default_rng(0).normal(size=(64, 5))
    >>> model = conf(5, steps=2, hidden=(8,))
    >>> params = model.init_params(x, random_state=0)
    >>> nll, g = nll_and_grad(model, params, x)
    >>> def loss(p):
    ...     return -np.mean(model.build(p).log_prob(x))
    >>> bool(np.isclose(nll, loss(params), rtol=1e-12))
    True
    >>> bool(np.allclose(g["steps"][1]["actnorm"]["loc"],
    ...                  grad(loss)(params)["steps"][1]["actnorm"]["loc"], rtol=1e-10))
    True

    The same pass on the arrays of another library (here ``array_api_strict``, which
    stands in for CuPy), the gradient left there:

    >>> import array_api_strict as xps
    >>> from refconf.backend import to_device, to_numpy
    >>> nll_s, g_s = nll_and_grad(model, to_device(params, xps), to_device(x, xps))
    >>> bool(np.allclose(to_numpy(g_s["steps"][1]["actnorm"]["loc"]),
    ...                  g["steps"][1]["actnorm"]["loc"], rtol=1e-12))
    True
    """
    kernels, dtype = _kernels(params, x)
    xp = kernels.xp
    h = kernels.array(x, dtype)
    B = h.shape[0]
    layers = _layers(model, params, dtype, kernels)
    log_det = xp.zeros(B, dtype=dtype)
    for _, _, layer in layers:
        h, ld = layer.forward(h)
        log_det = log_det + ld
    log_p = -0.5 * xp.vecdot(h, h) - 0.5 * model.dim * math.log(2 * math.pi) + log_det
    nll = -xp.mean(log_p)

    g, gl = h / B, xp.full(B, -1.0 / B, dtype=dtype)
    grads = {"steps": [{} for _ in params["steps"]]}
    for k, key, layer in reversed(layers):
        if key == "coupling":
            g, layer_grads = layer.backward(g, gl)
        else:
            g, layer_grads = layer.backward(g, -1.0)
        if layer_grads is not None:
            grads["steps"][k][key] = layer_grads
    return nll, grads
