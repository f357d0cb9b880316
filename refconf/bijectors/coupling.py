"""The CONF coupling step: data-adaptive convolutions with S-Log gates (paper eqs. 3-6)."""

import types

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval, isbox

from .. import backend, spectral
from ..conditioners import layer_grads, mlp, mlp_backward, mlp_forward
from . import step_kernels as kernels
from .base import HalfCoupling
from .elementwise import check_alpha, slog, slog_inverse

__all__ = [
    "KERNEL_KINDS",
    "READABLE",
    "SPECTRUM_PARAMETERISATIONS",
    "ConvCoupling",
    "check_step",
    "conf_layer",
    "conf_layer_inverse",
    "conf_step",
    "conf_step_inverse",
    "split_sizes",
    "step_parameters",
]

KERNEL_KINDS = ("symmetric", "circular")
SPECTRUM_PARAMETERISATIONS = ("raw", "exp")


def split_sizes(dim):
    """``(d1, d2) = (floor(D/2), ceil(D/2))``: the base half and the updated half."""
    if dim < 2:
        raise ValueError(f"a coupling step needs at least 2 dimensions, got {dim}")
    return dim // 2, dim - dim // 2


class ConvCoupling(HalfCoupling):
    """Mixed CONF step (eq. 5) of ``m`` combined layers (eq. 4) and a shift.

    With ``x = [x1, x2]`` (``d1 = floor(D/2)``, ``d2 = ceil(D/2)``) the forward map is::

        y1 = x1
        y2 = (F_1 o ... o F_m)(x2) + t(x1)               (eq. 5, F_m applied first)
        F_i(h) = g_{a'_i}( s_i(x1) * f_{a_i}( w_i(x1) * h ) )   (eq. 4)

    where ``*`` is the symmetric (DCT-I, default) or circular (DFT) convolution,
    ``f_a`` the S-Log gate and ``g_a`` its inverse. One conditioner ``mlp(x1)`` outputs
    all ``m`` kernel spectra, ``m`` scales and the shift: ``(2m + 1) d2`` numbers.

    Parameters
    ----------
    conditioner : list of dict
        MLP parameters (:func:`refconf.conditioners.mlp_init`) with ``d1`` inputs and
        ``(2m + 1) d2`` outputs.
    log_alpha, log_alpha_prime : ndarray, (m,)
        Global S-Log scales, kept positive by ``alpha = exp(log_alpha)``.
    kind : {"symmetric", "circular"}
    spectrum : {"raw", "exp"}
        How a conditioner output ``o`` becomes eigenvalues. ``"raw"`` is the paper's
        choice ``w_hat = 1 + o`` (symmetric) or ``W = 1 + rfft(o)`` (circular: the
        spatial kernel is ``delta + o``); ``"exp"`` keeps every eigenvalue away from 0 with
        ``w_hat = exp(o)`` or ``W = exp(rfft(o))`` (a Hermitian half spectrum stays
        Hermitian under exp, with a positive DC bin).
    activation : {"relu", "tanh"}
    swap : bool
        Condition on the second half instead (``x2`` base, ``x1`` updated).
    engine : "numpy" or Engine
        Which implementation of the conditioner and of :func:`conf_step` runs: ``"numpy"``
        (or None), the readable functions, which run on any array namespace
        (:mod:`refconf.backend`; with CuPy parameters the step computes on the GPU), or
        an engine handed down by the model builder (:func:`refconf.engines.get_engine`,
        e.g. the numba engine, which needs NumPy parameters); the map is the same.

    Notes
    -----
    The Jacobian is block-triangular ``[[I, 0], [dy2/dx1, dy2/dx2]]`` (eq. 6), so::

        log|det| = sum_i [ sum log|w_hat_i| - sum log1p(a_i |u_i|)
                           + sum log|s_i| + a'_i sum |v_i| ]

    with ``u_i`` the convolution output and ``v_i = s_i f_{a_i}(u_i)``. At
    initialisation (conditioner output 0, ``a' = a``) the step is the identity. Cost
    O(m D log D) plus the conditioner.

    In the density direction (``forward``) an overflowing expanding gate ``g_{a'}``
    gives ``inf`` (reported by the training loop's non-finite guard); in the sampling
    direction (``inverse``) it raises ``ValueError``.
    """

    def __init__(self, conditioner, log_alpha, log_alpha_prime, kind="symmetric",
                 spectrum="raw", activation="relu", swap=False, engine="numpy"):
        if kind not in KERNEL_KINDS:
            raise ValueError(f"kind must be one of {KERNEL_KINDS}, got {kind!r}")
        if spectrum not in SPECTRUM_PARAMETERISATIONS:
            raise ValueError(
                f"spectrum must be one of {SPECTRUM_PARAMETERISATIONS}, got {spectrum!r}")
        self.conditioner = conditioner
        self.m = int(onp.size(getval(log_alpha)))
        if onp.shape(getval(log_alpha_prime)) != onp.shape(getval(log_alpha)):
            raise ValueError("log_alpha and log_alpha_prime must have the same shape (m,)")
        if type(log_alpha) is onp.ndarray and type(log_alpha_prime) is onp.ndarray:
            xp = onp  # no tracing: NumPy's own exp, without autograd's wrapper
        else:
            xp = backend.namespace(log_alpha, log_alpha_prime)
            if xp is np and not (isbox(log_alpha) or isbox(log_alpha_prime)):
                xp = onp
        self.alpha = xp.exp(log_alpha)
        self.alpha_prime = xp.exp(log_alpha_prime)
        self.kind, self.spectrum, self.activation, self.swap = kind, spectrum, activation, swap
        self.engine = _engine(engine)
        self._check_engine()
        self.d_base = onp.shape(getval(conditioner[0]["W"]))[0]
        n_out = onp.shape(getval(conditioner[-1]["W"]))[1]
        if n_out % (2 * self.m + 1):
            raise ValueError(
                f"the conditioner has {n_out} outputs, not a multiple of 2m + 1 = {2 * self.m + 1}")
        self.d_update = n_out // (2 * self.m + 1)
        self.event_shape = (self.d_base + self.d_update,)
        self.event_ndim = 1

    def _check_engine(self):
        if self.engine.name == "numba" and not backend.is_autograd(
                backend.tree_namespace([self.conditioner, self.alpha, self.alpha_prime])):
            raise ValueError(
                "ConvCoupling: the numba engine runs on NumPy arrays only, but the parameters "
                "are device arrays; use engine='numpy' (the readable functions, which run on "
                "any array namespace) or move the parameters with refconf.backend.to_numpy")

    def to(self, target):
        moved = super().to(target)
        moved._check_engine()
        return moved

    # --- pieces --------------------------------------------------------------------------

    def conditioner_outputs(self, base):
        """Eigenvalues (m, batch, bins), scales (m, batch, d2) and shift (batch, d2)."""
        out = self.engine.mlp(self.conditioner, base, self.activation)
        return step_parameters(out, self.m, self.d_update, self.kind, self.spectrum)

    # --- the map -------------------------------------------------------------------------

    def _forward(self, x):
        base, x2 = self.split(x)
        w, s, t = self.conditioner_outputs(base)
        y2, log_det = self.engine.conf_step(x2, w, s, t, self.alpha, self.alpha_prime,
                                            self.kind, overflow="inf")
        return self._join(base, y2), log_det

    def _inverse(self, y):
        base, y2 = self.split(y)
        w, s, t = self.conditioner_outputs(base)
        x2, log_det = self.engine.conf_step_inverse(y2, w, s, t, self.alpha, self.alpha_prime,
                                                    self.kind)
        return self._join(base, x2), log_det

    # --- the explicit pass ---------------------------------------------------------------

    def forward_saved(self, x):
        """:meth:`forward` on a batch ``x`` (``B x D``), keeping what :meth:`backward`
        reads; the kernels of :mod:`refconf.bijectors.step_kernels` (compiled on NumPy)."""
        xp = backend.compute_namespace(x, self.alpha)
        split, join, outputs, step, mlp_out = backend.bind(
            xp, kernels.split_columns, kernels.join_columns, kernels.conditioner_outputs,
            kernels.step_forward, mlp_forward)
        start = 0 if self.swap else self.d_base  # the updated half's first column
        base, x2 = split(x, start, self.d_update)
        Ws = [layer["W"] for layer in self.conditioner]
        out, hidden = mlp_out(base, self.activation, Ws,
                              [layer["b"] for layer in self.conditioner])
        o_w, o_s, t = outputs(out, self.m, self.d_update)
        if self.kind == "circular":
            o_w = xp.fft.rfft(o_w, axis=-1)
        w = xp.exp(o_w) if self.spectrum == "exp" else 1.0 + o_w
        s = xp.exp(o_s)
        y2, log_det, steps = step(x2, w, s, t, self.alpha, self.alpha_prime, self.kind, "inf")
        saved = (xp, start, [base, *hidden], Ws, w, s, steps)
        return join(base, y2, start), log_det, saved

    def backward(self, saved, g_y, g_log_det):
        """Through eq. (5) (the step's backward,
        :func:`refconf.bijectors.step_kernels.step_backward`), ``g_t = g_y2``, the
        spectrum parameterisation (``g_o = g_w`` raw or ``g_w w`` exp; through the rfft
        ``g_o = Re FFT(zero-padded g)``), ``g_{o_s} = g_s s``, then the conditioner
        (:func:`refconf.conditioners.mlp_backward`), whose input cotangent adds to the
        base half's; ``g_log_alpha = g_alpha alpha``."""
        xp, start, inputs, Ws, w, s, steps = saved
        split, join, cotangent, step_back, transforms, mlp_back = backend.bind(
            xp, kernels.split_columns, kernels.join_columns, kernels.conditioner_cotangent,
            kernels.step_backward, kernels.step_transforms, mlp_backward)
        L = self.d_update
        g_base, g_y2 = split(g_y, start, L)
        g_x2, g_w, g_s, g_alpha, g_alpha_prime = step_back(
            g_y2, g_log_det, w, s, self.alpha, self.alpha_prime, steps,
            transforms(self.kind, L, g_y.dtype))
        if self.spectrum == "exp":
            g_w = g_w * w
        if self.kind == "circular":
            g_w = spectral.rfft_transpose(g_w, L)  # the rfft's VJP
        g_x1, g_weights = mlp_back(cotangent(g_w, g_s, s, g_y2), inputs, Ws, self.activation)
        grads = {"conditioner": layer_grads(g_weights),
                 "log_alpha": g_alpha * self.alpha,
                 "log_alpha_prime": g_alpha_prime * self.alpha_prime}
        return join(g_base, g_x2, start, g_x1), grads


def step_parameters(out, m, d_update, kind="symmetric", spectrum="raw"):
    """The step's parameters from a conditioner output ``out`` of ``(2m + 1) d2`` numbers
    per sample (:class:`ConvCoupling`): ``(w_hat, s, t)``.

    ``out`` holds ``m`` kernel blocks ``o_w``, ``m`` scale blocks ``o_s`` and the shift
    ``t``, each ``d2`` wide. ``w_hat = 1 + o_w`` (``"raw"``) or ``exp(o_w)`` (``"exp"``),
    after an rfft for the circular kind (the spatial kernel ``delta + o_w``); ``s =
    exp(o_s)``.

    Returns
    -------
    w_hat : ndarray, (m, batch, d2) real or (m, batch, d2 // 2 + 1) complex
    s : ndarray, (m, batch, d2)
    t : ndarray, (batch, d2)
    """
    xp = backend.namespace(out)
    out = xp.reshape(out, tuple(np.shape(out)[:-1]) + (2 * m + 1, d_update))
    o_w = xp.moveaxis(out[..., :m, :], -2, 0)
    o_s = xp.moveaxis(out[..., m: 2 * m, :], -2, 0)
    if kind == "circular":
        o_w = spectral.circular_spectrum(o_w)
    w = xp.exp(o_w) if spectrum == "exp" else 1.0 + o_w
    return w, xp.exp(o_s), out[..., -1, :]


def _engine(engine):
    """The engine a coupling step computes with: an object with ``name``, ``mlp``,
    ``conf_step`` and ``conf_step_inverse`` (a :class:`refconf.engines.Engine`), or the
    readable functions for ``"numpy"`` and None."""
    if engine is None or engine is READABLE or (isinstance(engine, str) and engine == "numpy"):
        return READABLE
    if isinstance(engine, str) or getattr(engine, "conf_step_inverse", None) is None:
        raise ValueError(
            f"unknown engine {engine!r} for ConvCoupling: expected 'numpy' or an Engine "
            "from refconf.engines.get_engine (the model builder resolves engine names)")
    return engine


# --- the combined layer and step on explicit conditioner outputs ------------------------


def _conv(h, w_hat, kind):
    if kind == "symmetric":
        return spectral.symmetric_conv(h, w_hat)
    return spectral.circular_conv(h, w_hat)


def _deconv(h, w_hat, kind):
    if kind == "symmetric":
        return spectral.symmetric_deconv(h, w_hat)
    return spectral.circular_deconv(h, w_hat)


def _conv_log_det(w_hat, d2, kind):
    if kind == "symmetric":
        return spectral.symmetric_log_abs_det(w_hat)
    return spectral.circular_log_abs_det(w_hat, d2)


def _check_kind(kind):
    if kind not in KERNEL_KINDS:
        raise ValueError(f"kind must be one of {KERNEL_KINDS}, got {kind!r}")


def _check_layer(h, w_hat, s, kind, what):
    shape = onp.shape(h)
    if len(shape) < 1:
        raise ValueError(f"{what}: expected the update half with shape (..., d2), got {shape}")
    bins = shape[-1] if kind == "symmetric" else shape[-1] // 2 + 1
    if onp.shape(w_hat) != shape[:-1] + (bins,):
        layout = "d2" if kind == "symmetric" else "d2 // 2 + 1 (rfft half spectrum)"
        raise ValueError(f"{what}: w_hat must have shape (..., {layout}) = "
                         f"{shape[:-1] + (bins,)}, got {onp.shape(w_hat)}")
    if onp.shape(s) != shape:
        raise ValueError(f"{what}: s must have the shape of the update half {shape}, "
                         f"got {onp.shape(s)}")


def conf_layer(x2, w_hat, s, alpha, alpha_prime, kind="symmetric", overflow="raise"):
    """Combined layer of eq. (4): ``y2 = g_{a'}( s * f_a( w *_s x2 ) )``.

    Parameters
    ----------
    x2 : ndarray, (B, d2)
        The half being updated.
    w_hat : ndarray, (B, d2) real or (B, d2 // 2 + 1) complex
        Kernel eigenvalues per sample: the DCT-I spectrum (``kind="symmetric"``) or the
        rfft half spectrum of a real kernel (``kind="circular"``).
    s : ndarray, (B, d2)
        Elementwise scales (non-zero).
    alpha, alpha_prime : float, > 0
        Scales of the contracting gate ``f_a`` and the expanding gate ``g_{a'}``.
    kind : {"symmetric", "circular"}
    overflow : {"raise", "inf"}
        What the expanding gate does where it would overflow (:func:`slog_inverse`).

    Returns
    -------
    y2 : ndarray, (B, d2)
    log_det : ndarray, (B,)
        ``log|det dy2/dx2|``.

    Notes
    -----
    With ``u = w * x2``, ``v = s f_a(u)``::

        log_det = sum log|w_hat| - sum log1p(a|u|) + sum log|s| + a' sum|v|

    (the circular sum counts interior half-spectrum bins twice). Inverse:
    :func:`conf_layer_inverse`. Cost O(d2 log d2) per sample.

    Examples
    --------
    >>> import numpy as np
    >>> x2 = np.random.default_rng(0).normal(size=(2, 5))
    >>> y2, log_det = conf_layer(x2, np.ones((2, 5)), np.ones((2, 5)), 0.7, 0.7)
    >>> np.allclose(y2, x2), np.allclose(log_det, 0)      # identity at w_hat = s = 1, a' = a
    (True, True)
    """
    _check_kind(kind)
    _check_layer(x2, w_hat, s, kind, "conf_layer")
    check_alpha(alpha, "conf_layer: alpha")
    check_alpha(alpha_prime, "conf_layer: alpha_prime")
    u = _conv(x2, w_hat, kind)
    q, log_df = slog(u, alpha)
    v = s * q
    y2, log_dg = slog_inverse(v, alpha_prime, "conf_layer: the expanding gate g_{a'}",
                              overflow=overflow)
    xp = backend.namespace(y2, s)
    log_det = _conv_log_det(w_hat, np.shape(x2)[-1], kind) + xp.sum(
        log_df + xp.log(xp.abs(s)) + log_dg, axis=-1)
    return y2, log_det


def conf_layer_inverse(y2, w_hat, s, alpha, alpha_prime, kind="symmetric"):
    """Inverse of :func:`conf_layer`: ``x2 = w^{-1} *_s g_a( f_{a'}(y2) / s )``.

    Returns ``(x2, log|det dx2/dy2|)``, the log-det minus :func:`conf_layer`'s at ``x2``.
    """
    _check_kind(kind)
    _check_layer(y2, w_hat, s, kind, "conf_layer_inverse")
    check_alpha(alpha, "conf_layer_inverse: alpha")
    check_alpha(alpha_prime, "conf_layer_inverse: alpha_prime")
    v, log_df_prime = slog(y2, alpha_prime)
    u, log_dg = slog_inverse(v / s, alpha, "conf_layer_inverse: the expanding gate g_a")
    x2 = _deconv(u, w_hat, kind)
    xp = backend.namespace(x2, s)
    log_det = -_conv_log_det(w_hat, np.shape(y2)[-1], kind) + xp.sum(
        log_df_prime - xp.log(xp.abs(s)) + log_dg, axis=-1)
    return x2, log_det


def _check_step(h, w_hat, s, t, alpha, alpha_prime, what):
    m = onp.size(getval(alpha))
    if onp.shape(alpha) != (m,) or onp.shape(alpha_prime) != (m,):
        raise ValueError(f"{what}: alpha and alpha_prime must both have shape (m,), got "
                         f"{onp.shape(alpha)} and {onp.shape(alpha_prime)}")
    if onp.shape(w_hat)[:1] != (m,) or onp.shape(s)[:1] != (m,):
        raise ValueError(f"{what}: w_hat and s need a leading axis of the m = {m} layers, "
                         f"got shapes {onp.shape(w_hat)} and {onp.shape(s)}")
    if onp.shape(t) != onp.shape(h):
        raise ValueError(f"{what}: t must have the shape of the update half {onp.shape(h)}, "
                         f"got {onp.shape(t)}")


def check_step(h, w_hat, s, t, alpha, alpha_prime, kind, what):
    """The argument checks of :func:`conf_step` (``what`` names the caller in the
    message), on values: the kind, the shapes of the step and of its first layer (every
    layer has the first's), and the gates' scales. Raises ``ValueError``."""
    _check_kind(kind)
    _check_step(h, w_hat, s, t, alpha, alpha_prime, what)
    if onp.size(alpha):
        _check_layer(h, w_hat[0], s[0], kind, what)
    check_alpha(alpha, f"{what}: alpha")
    check_alpha(alpha_prime, f"{what}: alpha_prime")


def conf_step(x2, w_hat, s, t, alpha, alpha_prime, kind="symmetric", overflow="raise"):
    """Mixed CONF step of eq. (5) on the updated half: ``y2 = (F_1 o ... o F_m)(x2) + t``.

    ``F_i`` is :func:`conf_layer` with ``w_hat[i], s[i], alpha[i], alpha_prime[i]``;
    ``F_m`` is applied first.

    Parameters
    ----------
    x2 : ndarray, (B, d2)
    w_hat : ndarray, (m, B, d2) real or (m, B, d2 // 2 + 1) complex
    s : ndarray, (m, B, d2)
    t : ndarray, (B, d2)
    alpha, alpha_prime : ndarray, (m,), > 0
    kind : {"symmetric", "circular"}
    overflow : {"raise", "inf"}
        As in :func:`conf_layer`.

    Returns
    -------
    y2 : ndarray, (B, d2)
    log_det : ndarray, (B,)
        ``log|det dy2/dx2|``, the sum of the layers' log-dets (the shift adds 0); it is the
        whole step's log-det, the Jacobian being block-triangular (eq. 6).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x2, w, s, t = (rng.normal(size=(2, 5)), 1 + 0.3 * rng.normal(size=(3, 2, 5)),
    ...                np.exp(rng.normal(size=(3, 2, 5))), rng.normal(size=(2, 5)))
    >>> a = np.array([0.5, 1.0, 2.0])
    >>> y2, log_det = conf_step(x2, w, s, t, a, a[::-1])
    >>> x2_back, log_det_inv = conf_step_inverse(y2, w, s, t, a, a[::-1])
    >>> np.allclose(x2_back, x2), np.allclose(log_det_inv, -log_det)
    (True, True)
    """
    _check_step(x2, w_hat, s, t, alpha, alpha_prime, "conf_step")
    h, log_det = x2, 0.0
    for i in reversed(range(onp.size(getval(alpha)))):
        h, log_det_i = conf_layer(h, w_hat[i, ...], s[i, ...], alpha[i], alpha_prime[i], kind,
                                  overflow)
        log_det = log_det + log_det_i
    return h + t, log_det


def conf_step_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind="symmetric"):
    """Inverse of :func:`conf_step`: remove ``t``, then invert ``F_1``, ..., ``F_m`` in
    that order. Returns ``(x2, log|det dx2/dy2|)``."""
    _check_step(y2, w_hat, s, t, alpha, alpha_prime, "conf_step_inverse")
    h, log_det = y2 - t, 0.0
    for i in range(onp.size(getval(alpha))):
        h, log_det_i = conf_layer_inverse(h, w_hat[i, ...], s[i, ...], alpha[i], alpha_prime[i],
                                          kind)
        log_det = log_det + log_det_i
    return h, log_det


#: The readable implementation of a coupling step (``engine="numpy"``).
READABLE = types.SimpleNamespace(name="numpy", mlp=mlp, conf_step=conf_step,
                                 conf_step_inverse=conf_step_inverse)
