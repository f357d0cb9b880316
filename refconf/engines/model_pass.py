"""A CONF model's negative log-likelihood and its gradient in one explicit pass.

Traced by autograd, a training step of a CONF model records a few hundred nodes (the
parameter leaves, ActNorm, the split and join, the spectrum set-up, the base density),
each costing tens of microseconds of bookkeeping: more than the arithmetic of a small
model. :func:`nll_and_grad` computes the same loss and gradient without autograd: one
forward pass through the model (:class:`refconf.flows.FlowModel`'s layers: ActNorm, the
coupling step of eq. 5, the mixing) that keeps the intermediates, then the reverse pass
written out layer by layer. The MLP and the CONF step use the numba engine's forward and
backward kernels (:mod:`refconf.engines.numba_engine`), the ones its autograd primitives
wrap; the rest is a few lines per layer, below.

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

import numpy as np

from ..bijectors.coupling import split_sizes
from . import numba_engine as kernels

__all__ = ["nll_and_grad"]


def _contiguous(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


class _ActNorm:
    """``y = (x - loc) exp(-log_scale)``, per-sample log-det ``-sum log_scale``."""

    def __init__(self, params, dtype):
        self.loc = _contiguous(params["loc"], dtype)
        self.log_scale = _contiguous(params["log_scale"], dtype)

    def forward(self, x):
        self.scale = np.exp(-self.log_scale)
        self.y = (x - self.loc) * self.scale
        return self.y, -np.sum(self.log_scale)

    def backward(self, g, gl_sum):
        g_x = g * self.scale
        grads = {"loc": -g_x.sum(axis=0),
                 "log_scale": -np.einsum("bj,bj->j", g, self.y) - gl_sum}
        return g_x, grads


class _Reverse:
    def forward(self, x):
        return x[:, ::-1], 0.0

    def backward(self, g, gl_sum):
        return g[:, ::-1], None


class _Permutation:
    """``y = x[:, perm]``."""

    def __init__(self, perm):
        self.perm = np.asarray(perm)
        self.inverse_perm = np.argsort(self.perm)

    def forward(self, x):
        return x[:, self.perm], 0.0

    def backward(self, g, gl_sum):
        return g[:, self.inverse_perm], None


class _Invertible1x1:
    """``y = x M^T``, ``M = P L U'`` (:class:`refconf.bijectors.Invertible1x1`)."""

    def __init__(self, fixed, params, dtype):
        self.perm = np.asarray(fixed["perm"])
        self.sign = np.asarray(fixed["sign"], dtype=dtype)
        self.log_s = _contiguous(params["log_s"], dtype)
        C = self.perm.size
        self.L = np.tril(_contiguous(params["lower"], dtype), -1) + np.eye(C, dtype=dtype)
        self.diag = self.sign * np.exp(self.log_s)
        self.U = np.triu(_contiguous(params["upper"], dtype), 1) + np.diag(self.diag)
        self.M = np.eye(C, dtype=dtype)[self.perm] @ (self.L @ self.U)

    def forward(self, x):
        self.x = x
        return x @ self.M.T, np.sum(self.log_s)

    def backward(self, g, gl_sum):
        g_A = np.empty_like(self.M)
        g_A[self.perm] = g.T @ self.x
        g_U = self.L.T @ g_A
        grads = {"lower": np.tril(g_A @ self.U.T, -1), "upper": np.triu(g_U, 1),
                 "log_s": np.diagonal(g_U) * self.diag + gl_sum}
        return g @ self.M, grads


class _Coupling:
    """The mixed CONF step of eq. (5) with its conditioner
    (:class:`refconf.bijectors.ConvCoupling`)."""

    def __init__(self, params, spec, swap, dim, dtype):
        self.kind, self.spectrum, self.activation = spec["kind"], spec["spectrum"], spec["activation"]
        self.m = int(spec["m"])
        d1, d2 = split_sizes(dim)
        self.d_base = d2 if swap else d1
        self.d_update = dim - self.d_base
        self.swap = swap
        layers = params["conditioner"]
        self.Ws = [_contiguous(layer["W"], dtype) for layer in layers]
        self.bs = [_contiguous(layer["b"], dtype) for layer in layers]
        self.alpha = np.exp(_contiguous(params["log_alpha"], dtype))
        self.alpha_prime = np.exp(_contiguous(params["log_alpha_prime"], dtype))
        self.ops = kernels._transforms(self.kind, self.d_update, np.dtype(dtype))

    def _split(self, x):
        if self.swap:
            return x[:, self.d_update:], x[:, : self.d_update]
        return x[:, : self.d_base], x[:, self.d_base:]

    def _join(self, base, update):
        return np.concatenate([update, base] if self.swap else [base, update], axis=1)

    def _conditioner(self, base):
        """``((w, s, t), hidden)``: the spectra ``(m, B, bins)``, scales ``(m, B, d2)`` and
        shift ``(B, d2)`` from the conditioner (as ``ConvCoupling._conditioner_outputs``),
        and the MLP's hidden activations."""
        m = self.m
        out, hidden = kernels._mlp_forward(base, self.activation, self.Ws, self.bs)
        out = out.reshape(base.shape[0], 2 * m + 1, self.d_update)
        o_w = out[:, :m].transpose(1, 0, 2)
        if self.kind == "circular":
            o_w = np.fft.rfft(o_w, axis=-1)
        w = np.ascontiguousarray(np.exp(o_w) if self.spectrum == "exp" else 1.0 + o_w)
        s = np.ascontiguousarray(np.exp(out[:, m: 2 * m].transpose(1, 0, 2)))
        return (w, s, out[:, 2 * m]), hidden

    def forward(self, x, overflow="inf"):
        base, x2 = self._split(x)
        self.base = np.ascontiguousarray(base)
        (self.w, self.s, t), self.hidden = self._conditioner(self.base)
        y2, log_det, self.saved = kernels._step_forward(
            np.ascontiguousarray(x2), self.w, self.s, t, self.alpha, self.alpha_prime,
            self.kind, overflow)
        return self._join(base, y2), log_det

    def backward(self, g, gl):
        g_base, g_y2 = self._split(g)
        B, m, du = g.shape[0], self.m, self.d_update
        g_x2, g_w, g_s, g_alpha, g_alpha_prime = kernels._step_backward(
            np.ascontiguousarray(g_y2), gl, self.w, self.s, self.alpha, self.alpha_prime,
            self.saved, self.ops)
        if self.spectrum == "exp":
            g_w = g_w * self.w
        if self.kind == "circular":
            g_w = np.fft.fft(g_w, n=du, axis=-1).real  # the rfft's VJP
        g_out = np.empty((B, 2 * m + 1, du), dtype=g.dtype)
        g_out[:, :m] = g_w.transpose(1, 0, 2)
        g_out[:, m: 2 * m] = (g_s * self.s).transpose(1, 0, 2)
        g_out[:, 2 * m] = g_y2
        g_x1, g_weights = kernels._mlp_backward(g_out.reshape(B, -1),
                                                [self.base] + self.hidden, self.Ws,
                                                self.activation)
        grads = {"conditioner": [{"W": gW, "b": gb} for gW, gb in
                                 zip(g_weights[0::2], g_weights[1::2])],
                 "log_alpha": g_alpha * self.alpha,
                 "log_alpha_prime": g_alpha_prime * self.alpha_prime}
        return self._join(g_base + g_x1, g_x2), grads


def _layers(model, params, dtype):
    """The model's layers in forward order, as ``(step index, key, layer)``."""
    spec, steps = model.spec, params["steps"]
    layers = []
    for k, step in enumerate(steps):
        if spec["actnorm"]:
            layers.append((k, "actnorm", _ActNorm(step["actnorm"], dtype)))
        layers.append((k, "coupling", _Coupling(step["coupling"], spec, model._swap(k),
                                                model.dim, dtype)))
        if spec["mixing"] == "1x1":
            layers.append((k, "mixing", _Invertible1x1(spec["mixing_fixed"][k],
                                                       step["mixing"], dtype)))
        elif k < len(steps) - 1:
            layers.append((k, "mixing", _Reverse() if spec["mixing"] == "reverse"
                           else _Permutation(spec["mixing_fixed"][k]["perm"])))
    return layers


def _dtype(params):
    return np.result_type(*(step["coupling"]["conditioner"][0]["W"] for step in params["steps"]))


def nll_and_grad(model, params, x):
    """Mean negative log-likelihood of ``x`` under the CONF model and its gradient.

    Parameters
    ----------
    model : refconf.flows.FlowModel
    params : pytree
        The model's parameters (:meth:`~refconf.flows.FlowModel.init_params`).
    x : ndarray, (B, D)
        A batch of data.

    Returns
    -------
    nll : float
        ``-mean_b log p(x_b)``, as ``-mean(model.build(params).log_prob(x))``.
    grads : pytree
        Its gradient, with the structure of ``params`` (the 1x1 layers' fixed parts are
        not parameters and get no entry).

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
    """
    dtype = np.result_type(_dtype(params), x.dtype)
    h = _contiguous(x, dtype)
    B = h.shape[0]
    layers = _layers(model, params, dtype)
    log_det = np.zeros(B, dtype=dtype)
    for _, _, layer in layers:
        h, ld = layer.forward(h)
        log_det += ld
    log_p = -0.5 * np.einsum("bj,bj->b", h, h) - 0.5 * model.dim * np.log(2 * np.pi) + log_det
    nll = -np.mean(log_p)

    g, gl = h / B, np.full(B, -1.0 / B, dtype=dtype)
    grads = {"steps": [{} for _ in params["steps"]]}
    for k, key, layer in reversed(layers):
        if key == "coupling":
            g, layer_grads = layer.backward(g, gl)
        else:
            g, layer_grads = layer.backward(g, -1.0)
        if layer_grads is not None:
            grads["steps"][k][key] = layer_grads
    return nll, grads

