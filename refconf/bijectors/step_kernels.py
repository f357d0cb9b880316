"""The CONF step's kernels for the explicit reverse pass, in any array namespace.

:meth:`refconf.bijectors.coupling.ConvCoupling.forward_saved` and
:meth:`~refconf.bijectors.coupling.ConvCoupling.backward` are written over these: the
coupling's halves split and joined, the conditioner output's parts, and the step of
eq. (5) with the intermediates its reverse pass reads. Each is the readable definition,
in the namespace ``xp`` of its arrays; on NumPy arrays the compiled override of the same
name in :mod:`refconf.bijectors._step_kernels_numba` runs instead
(:func:`refconf.backend.compiled_override`), and the tier-equality tests compare the two.
The formulas are those of ``docs/theory/gradients.md``.
"""

from .. import backend, transforms
from .elementwise import slog, slog_gates_vjp, slog_inverse

__all__ = ["FORWARD_GATE", "conditioner_cotangent", "conditioner_outputs", "join_columns",
           "split_columns", "step_backward", "step_forward", "step_transforms"]

#: What an overflowing expanding gate of the forward step reports.
FORWARD_GATE = "conf_layer: the expanding gate g_{a'}"

_NUMBA = "refconf.bijectors._step_kernels_numba"


@backend.compiled_override(_NUMBA)
def split_columns(xp, x, start, L):
    """``(rest, part)``: the columns ``start .. start + L - 1`` of ``x`` (``B x D``) and the
    others, in order (a coupling's halves); views where the rest is one block."""
    part, D = x[:, start: start + L], x.shape[1]
    if start == 0 or start + L == D:
        return (x[:, L:] if start == 0 else x[:, :start]), part
    return xp.concat([x[:, :start], x[:, start + L:]], axis=1), part


@backend.compiled_override(_NUMBA)
def join_columns(xp, rest, part, start, add=None):
    """The reverse of :func:`split_columns`, with ``add`` (if given) added to the other
    columns: ``out[:, start: start + L] = part``, ``out[:, others] = rest (+ add)``."""
    if add is not None:
        rest = rest + add
    return xp.concat([rest[:, :start], part, rest[:, start:]], axis=1)


@backend.compiled_override(_NUMBA)
def conditioner_outputs(xp, out, m, L):
    """A coupling's conditioner output ``out`` (``B x (2m + 1) L``) split into its parts::

        o_w[i, b, j] = out[b, i L + j]            (the spectra's, i < m)
        o_s[i, b, j] = out[b, (m + i) L + j]      (the scales')
        t[b, j]      = out[b, 2 m L + j]          (the shift)

    Returns ``(o_w, o_s, t)`` (views)."""
    out = xp.reshape(out, (out.shape[0], 2 * m + 1, L))
    return (xp.permute_dims(out[:, :m, :], (1, 0, 2)),
            xp.permute_dims(out[:, m: 2 * m, :], (1, 0, 2)), out[:, 2 * m, :])


@backend.compiled_override(_NUMBA)
def conditioner_cotangent(xp, g_ow, g_s, s, g_t):
    """The cotangent of the conditioner output from those of its parts (the layout of
    :func:`conditioner_outputs` reversed), the scales' through ``s = exp(o_s)``::

        g_out[b, i L + j]         = g_ow[i, b, j]
        g_out[b, (m + i) L + j]   = g_s[i, b, j] s[i, b, j]
        g_out[b, 2 m L + j]       = g_t[b, j]

    Returns ``g_out`` (``B x (2m + 1) L``).
    """
    B, L = g_t.shape
    return xp.reshape(xp.concat([xp.permute_dims(g_ow, (1, 0, 2)),
                                 xp.permute_dims(g_s * s, (1, 0, 2)),
                                 xp.reshape(g_t, (B, 1, L))], axis=1), (B, -1))


@backend.compiled_override(_NUMBA)
def step_transforms(xp, kind, L, dtype):
    """The convolution transforms of a step on signals of length ``L``
    (:func:`refconf.transforms.transforms`)."""
    return transforms.transforms(xp, kind, L, dtype)


def log_det_constant(xp, ops, w_hat, s):
    """``sum_i [sum_k c_k log|w_i[k]| + sum_j log|s_i[j]|]`` per sample: the log-det of
    the step's convolutions and scales (eq. 3; ``c_k`` the transform's bin weights)."""
    # products with the weights and ones: sums over short last axes are several times
    # slower
    ones = xp.ones(s.shape[-1], dtype=s.dtype)
    return xp.sum(xp.log(xp.abs(w_hat)) @ ops.weights + xp.log(xp.abs(s)) @ ones, axis=0)


@backend.compiled_override(_NUMBA)
def step_forward(xp, x2, w_hat, s, t, alpha, alpha_prime, kind, overflow):
    """Values of eq. (5), ``F_m`` first, for ``x2`` (``B x L``), spectra ``w_hat``
    (``m x B x nb``), scales ``s`` (``m x B x L``), shift ``t`` and the gates' scales
    ``alpha``, ``alpha'`` (``m``). Returns ``(y2, log_det, saved)`` with ``saved`` the
    per-layer ``(u, U, q, layer output)`` :func:`step_backward` reads, ``F_1``'s first
    (``u`` the convolution's output, ``U`` its input's spectrum, ``q = f_a(u)``)."""
    ops = step_transforms.readable(xp, kind, x2.shape[-1], x2.dtype)
    log_det = log_det_constant(xp, ops, w_hat, s)
    h, saved = x2, []
    for i in reversed(range(alpha.shape[0])):
        u, U = ops.conv(h, w_hat[i, ...])
        q, log_df = slog(u, alpha[i])
        h, log_dg = slog_inverse(s[i, ...] * q, alpha_prime[i], FORWARD_GATE, overflow)
        log_det = log_det + xp.sum(log_dg + log_df, axis=-1)
        saved.append((u, U, q, h))
    return h + t, log_det, saved[::-1]


@backend.compiled_override(_NUMBA)
def step_backward(xp, gy, gl, w_hat, s, alpha, alpha_prime, saved, ops):
    """Cotangents ``(gx2, gw, gs, galpha, galpha')`` of :func:`step_forward`'s inputs
    from those of ``y2`` (``gy``; it is also ``t``'s) and of ``log_det`` (``gl``), ``F_1``
    first: per layer the gates' VJP (:func:`refconf.bijectors.elementwise.slog_gates_vjp`)
    then the convolution's (``ops.conv_vjp``); the spectrum's log-det adds ``gl c / w``
    to ``gw`` (``d log|w| = c / w`` in autograd's complex convention)."""
    g_w, g_s, g_alpha, g_alpha_prime = [], [], [], []
    gh = gy
    for i, (u, U, q, y) in enumerate(saved):
        gu, gs, ga, gap = slog_gates_vjp.readable(xp, gh, gl, u, q, y, s[i, ...], alpha[i],
                                                  alpha_prime[i])
        gh, gw = ops.conv_vjp(gu, w_hat[i, ...], U)
        g_w.append(gw)
        g_s.append(gs)
        g_alpha.append(ga)
        g_alpha_prime.append(gap)
    g_w = xp.stack(g_w) + gl[:, None] * ops.weights / w_hat
    return gh, g_w, xp.stack(g_s), xp.stack(g_alpha), xp.stack(g_alpha_prime)
