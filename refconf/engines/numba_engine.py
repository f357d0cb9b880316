"""The numba engine: the conditioner MLP and the CONF step as autograd primitives.

Each public function here has the readable tier's signature and meaning
(:func:`refconf.conditioners.mlp`, :func:`refconf.bijectors.coupling.conf_step`,
:func:`~refconf.bijectors.coupling.conf_step_inverse`) and is one autograd primitive
whose VJP is written out, so a training step records a handful of autograd nodes per
coupling step instead of hundreds. The kernels they wrap are the compiled overrides that
sit beside the readable kernels they replace (:mod:`refconf._conditioners_numba`,
:mod:`refconf.bijectors._elementwise_numba`, :mod:`refconf.bijectors._step_kernels_numba`,
whose docstrings give the measurements behind the split between compiled loops, BLAS
products and NumPy's vectorised transcendental functions); the transforms are
:func:`refconf.bijectors._step_kernels_numba.step_transforms` (dense matrices for short
signals, FFTs from :data:`refconf.transforms.FFT_MIN_LENGTH` on).

Intermediates
-------------
The step primitives return ``(y2, log_det)`` as one tuple, like autograd's ``eigh``.
When traced, a forward call hands the intermediates its VJP needs (the gates' inputs
and outputs, the spectra, the MLP's hidden activations) to the VJP maker, which autograd
calls right after it (:class:`_Handoff`): the backward evaluates no transcendental
function and repeats no forward work.
"""

import threading

import autograd.numpy as anp
import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import getval, isbox

from .. import _conditioners_numba as compiled_mlp
from ..bijectors import _elementwise_numba as compiled_gates
from ..bijectors import _step_kernels_numba as compiled_step
from ..bijectors.coupling import check_step
from ..conditioners import ACTIVATIONS
from ..spectral import check_invertible

__all__ = ["conf_step", "conf_step_inverse", "mlp"]



# --- the CONF step -----------------------------------------------------------------------


def _layout(h, w_hat, s, t, alpha, alpha_prime, kind):
    """The arguments as the kernels take them: C-contiguous, of one real dtype (complex
    for a circular spectrum), the batch axes flattened into one. Returns
    ``(arrays, batch_shape)``."""
    dtype = np.result_type(h, np.real(w_hat), s, t, alpha, alpha_prime)
    spectrum_dtype = np.result_type(dtype, np.complex64) if kind == "circular" else dtype
    lead, d2, m = np.shape(h)[:-1], np.shape(h)[-1], np.size(alpha)
    n = int(np.prod(lead))

    def rows(a, shape, dt=dtype):
        return np.ascontiguousarray(np.reshape(a, shape), dtype=dt)

    arrays = (rows(h, (n, d2)), rows(w_hat, (m, n, np.shape(w_hat)[-1]), spectrum_dtype),
              rows(s, (m, n, d2)), rows(t, (n, d2)), rows(alpha, (m,)),
              rows(alpha_prime, (m,)))
    return arrays, lead


def _like(grads, args):
    """Each gradient in its argument's shape and dtype (the real part for a real
    argument)."""
    return tuple(np.reshape(np.asarray(g if np.iscomplexobj(a) else np.real(g),
                                       dtype=np.result_type(a)), np.shape(a))
                 for g, a in zip(grads, args))


_INVERSE_GATE = "conf_layer_inverse: the expanding gate g_a"


class _Handoff(threading.local):
    """Intermediates of a traced forward call, handed to its VJP maker.

    autograd calls a primitive's VJP maker right after the forward call, with that
    call's output ``ans``. A traced forward leaves ``(ans, saved)`` here; the maker takes
    ``saved`` if ``ans`` is the same object, and otherwise recomputes it, so a stale or
    missing entry costs time, never correctness.
    """

    def put(self, ans, saved):
        self.item = (ans, saved)

    def take(self, ans):
        item, self.item = getattr(self, "item", None), None
        return item[1] if item is not None and item[0] is ans else None


_handoff = _Handoff()


def _traced(*args):
    return any(isbox(a) for a in args)


def _first_order(values):
    """The VJPs here are NumPy and compiled code, not autograd-traceable: refuse to be
    differentiated again (a traced argument or cotangent) rather than return a wrong
    higher derivative."""
    if any(isbox(v) for v in (values if isinstance(values, tuple) else (values,))):
        raise NotImplementedError(
            "engine='numba' gives first derivatives only; use engine='numpy' for "
            "higher-order derivatives")


@primitive
def _conf_step(x2, w_hat, s, t, alpha, alpha_prime, kind, overflow, traced):
    """``(y2, log_det)`` of :func:`conf_step`; ``traced`` hands the intermediates to the
    VJP."""
    arrays, lead = _layout(x2, w_hat, s, t, alpha, alpha_prime, kind)
    y2, log_det, saved = compiled_step.step_forward(*arrays, kind, overflow)
    ans = (y2.reshape(lead + y2.shape[-1:]), log_det.reshape(lead))
    if traced:
        _handoff.put(ans, (arrays, saved))
    return ans


def _step_vjp_maker(recompute, backward, shift_cotangent):
    """The VJP maker of a step primitive (:func:`_conf_step`, :func:`_conf_step_inverse`)
    in all its array arguments.

    ``recompute(arrays, kind)`` gives the intermediates when the forward call's hand-off
    is missing; ``backward`` is the analytic backward pass (:func:`refconf.bijectors._step_kernels_numba.step_backward`,
    :func:`_step_inverse_backward`); ``shift_cotangent(g_out, g_in)`` the cotangent of
    the shift ``t``.
    """
    def make(argnums, ans, args, kwargs):
        _first_order(args)
        kind = args[6]
        kept = _handoff.take(ans)
        if kept is None:
            arrays = _layout(*args[:6], kind)[0]
            kept = arrays, recompute(arrays, kind)
        (h, w_hat, s, _, alpha, alpha_prime), saved = kept
        ops = compiled_step.step_transforms(kind, h.shape[-1], h.dtype)

        def vjp(g):
            _first_order(g)
            g_out, gl = (np.ascontiguousarray(np.reshape(part, shape), dtype=h.dtype)
                         for part, shape in zip(g, (h.shape, h.shape[:1])))
            g_in, g_w, g_s, g_alpha, g_alpha_prime = backward(
                g_out, gl, w_hat, s, alpha, alpha_prime, saved, ops)
            grads = _like((g_in, g_w, g_s, shift_cotangent(g_out, g_in), g_alpha,
                           g_alpha_prime), args[:6])
            return tuple(grads[i] for i in argnums)

        return vjp

    return make


_conf_step_vjp = _step_vjp_maker(
    lambda arrays, kind: compiled_step.step_forward(*arrays, kind, "inf")[2],
    compiled_step.step_backward,
    lambda g_out, g_in: g_out)
defvjp_argnums(_conf_step, _conf_step_vjp)


def conf_step(x2, w_hat, s, t, alpha, alpha_prime, kind="symmetric", overflow="raise"):
    """Mixed CONF step of eq. (5), ``y2 = (F_1 o ... o F_m)(x2) + t``, as one primitive.

    Same arguments, returns and errors as :func:`refconf.bijectors.coupling.conf_step`;
    one autograd node. Its VJP (in every array argument, first order) is the analytic
    backward of the layers: the gates' (compiled,
    :func:`refconf.bijectors._elementwise_numba.slog_gates_vjp`), the convolution's (the transposed
    transforms) and ``c / w_hat`` for the spectrum's log-det.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.bijectors import coupling
    >>> rng = np.random.default_rng(0)
    >>> x2, w, s, t = (rng.normal(size=(2, 5)), 1 + 0.3 * rng.normal(size=(3, 2, 5)),
    ...                np.exp(rng.normal(size=(3, 2, 5))), rng.normal(size=(2, 5)))
    >>> a = np.array([0.5, 1.0, 2.0])
    >>> fast = conf_step(x2, w, s, t, a, a[::-1])
    >>> readable = coupling.conf_step(x2, w, s, t, a, a[::-1])
    >>> all(np.allclose(p, q, rtol=1e-12) for p, q in zip(fast, readable))
    True
    """
    if overflow not in ("raise", "inf"):
        raise ValueError(f"overflow must be 'raise' or 'inf', got {overflow!r}")
    args = (x2, w_hat, s, t, alpha, alpha_prime)
    check_step(*(getval(a) for a in args), kind, "conf_step")
    y2, log_det = _conf_step(*args, kind, overflow, _traced(*args))
    return y2, log_det


def _step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind):
    """Values of the inverse step, ``F_1`` undone first; returns ``(x2, log_det, saved)``
    with ``saved`` the per-layer ``(gate input, v, u, U)`` the VJP reads. Each layer is
    :func:`refconf.bijectors._elementwise_numba.slog_pair` (``g_a(f_{a'}(h) / s)``) and a deconvolution."""
    check_invertible(w_hat, 1, "conf_step_inverse: the kernel spectrum")
    ops = compiled_step.step_transforms(kind, y2.shape[-1], y2.dtype)
    log_det = -compiled_step.log_det_constant(ops, w_hat, s)
    h, saved = y2 - t, []
    for i in range(alpha.size):
        v, u = compiled_gates.slog_pair(h, s[i], alpha_prime[i], alpha[i], True, log_det,
                                        _INVERSE_GATE, "raise")
        h_next, U = ops.deconv(u, w_hat[i])
        saved.append((h, v, u, U))
        h = h_next
    return h, log_det, saved


@primitive
def _conf_step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind, traced):
    """``(x2, log_det)`` of :func:`conf_step_inverse`."""
    arrays, lead = _layout(y2, w_hat, s, t, alpha, alpha_prime, kind)
    x2, log_det, saved = _step_inverse(*arrays, kind)
    ans = (x2.reshape(lead + x2.shape[-1:]), log_det.reshape(lead))
    if traced:
        _handoff.put(ans, (arrays, saved))
    return ans


def _step_inverse_backward(gx, gl, w_hat, s, alpha, alpha_prime, saved, ops):
    """Cotangents of :func:`_step_inverse`'s inputs ``(y2, w_hat, s, alpha, alpha')``
    (that of ``t`` is minus that of ``y2``): backward through the layers in reverse (the
    inverse of ``F_m``, applied last, first), with
    :func:`refconf.bijectors._elementwise_numba.slog_gates_inverse_vjp`."""
    g_w, g_s = np.empty_like(w_hat), np.empty_like(s)
    g_alpha, g_alpha_prime = np.empty_like(alpha), np.empty_like(alpha_prime)
    gh = gx
    for i in reversed(range(alpha.size)):
        h, v, u, U = saved[i]
        gu, g_w[i] = ops.deconv_vjp(gh, w_hat[i], U)
        gh, g_s[i], ga, gap = compiled_gates.slog_gates_inverse_vjp(gu, gl, h, v, u, s[i],
                                                                  alpha[i], alpha_prime[i])
        g_alpha[i], g_alpha_prime[i] = ga, gap
    g_w -= gl[:, None] * ops.weights / w_hat
    return gh, g_w, g_s, g_alpha, g_alpha_prime


_conf_step_inverse_vjp = _step_vjp_maker(
    lambda arrays, kind: _step_inverse(*arrays, kind)[2], _step_inverse_backward,
    lambda g_out, g_in: -g_in)
defvjp_argnums(_conf_step_inverse, _conf_step_inverse_vjp)


def conf_step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind="symmetric"):
    """Inverse of :func:`conf_step` as one primitive; as
    :func:`refconf.bijectors.coupling.conf_step_inverse` (the same errors: a near-zero
    eigenvalue or an overflowing gate ``g_a`` raises ``ValueError``). One autograd node;
    its VJP (first order) uses :func:`refconf.bijectors._elementwise_numba.slog_gates_inverse_vjp`."""
    args = (y2, w_hat, s, t, alpha, alpha_prime)
    check_step(*(getval(a) for a in args), kind, "conf_step_inverse")
    x2, log_det = _conf_step_inverse(*args, kind, _traced(*args))
    return x2, log_det


# --- the conditioner MLP -----------------------------------------------------------------


@primitive
def _mlp(x, activation, traced, *weights):
    """The MLP output; ``weights`` is ``W_1, b_1, ..., W_L, b_L``, ``traced`` hands the
    hidden activations to the VJP."""
    out, hidden = compiled_mlp.mlp_forward(x, activation, weights[0::2], weights[1::2])
    if traced:
        _handoff.put(out, hidden)
    return out


def _mlp_vjp(argnums, ans, args, kwargs):
    """Backpropagation through the MLP::

        gW_l = h_{l-1}^T ga_l,   gb_l = sum_b ga_l,   gh_{l-1} = ga_l W_l^T,
        ga_{l-1} = gh_{l-1} * act'(h_{l-1})

    from ``ga_L = g`` (``h_0 = x``), with ``act'`` from the activations themselves
    (:func:`refconf._conditioners_numba.activation_vjp`).
    """
    _first_order(args)
    x, activation, Ws = args[0], args[1], args[3::2]
    hidden = _handoff.take(ans)
    if hidden is None:
        hidden = compiled_mlp.mlp_forward(x, activation, Ws, args[4::2])[1]
    inputs = [x] + hidden

    def vjp(g):
        _first_order(g)
        g_x, g_weights = compiled_mlp.mlp_backward(np.ascontiguousarray(g), inputs, Ws, activation,
                                       input_grad=0 in argnums)
        grads = [g_x, None, None, *g_weights]
        return tuple(grads[i] for i in argnums)

    return vjp


defvjp_argnums(_mlp, _mlp_vjp)


def mlp(params, x, activation="relu"):
    """The conditioner MLP of :func:`refconf.conditioners.mlp` as one autograd primitive.

    Same parameters and output: hidden layers ``act(h W + b)``, a linear output layer.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf import conditioners
    >>> params = conditioners.mlp_init(3, (8, 8), 5, random_state=0, zero_output=False)
    >>> x = np.random.default_rng(0).normal(size=(4, 3))
    >>> np.allclose(mlp(params, x, "tanh"), conditioners.mlp(params, x, "tanh"), rtol=1e-12)
    True
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    weights = [p for layer in params for p in (layer["W"], layer["b"])]
    lead, n_in = np.shape(x)[:-1], np.shape(x)[-1]
    flat = x if len(lead) == 1 else anp.reshape(x, (-1, n_in))
    out = _mlp(flat, activation, _traced(flat, *weights), *weights)
    return out if len(lead) == 1 else anp.reshape(out, lead + (-1,))
