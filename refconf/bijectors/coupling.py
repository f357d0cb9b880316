"""The CONF coupling step: data-adaptive convolutions with S-Log gates (paper eqs. 3-6)."""

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .. import spectral
from ..conditioners import mlp
from ..primitives import rfft
from .base import Bijector
from .elementwise import slog, slog_inverse

__all__ = ["ConvCoupling", "KERNEL_KINDS", "SPECTRUM_PARAMETERISATIONS", "split_sizes"]

KERNEL_KINDS = ("symmetric", "circular")
SPECTRUM_PARAMETERISATIONS = ("raw", "exp")


def split_sizes(dim):
    """``(d1, d2) = (floor(D/2), ceil(D/2))``: the base half and the updated half."""
    if dim < 2:
        raise ValueError(f"a coupling step needs at least 2 dimensions, got {dim}")
    return dim // 2, dim - dim // 2


class ConvCoupling(Bijector):
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
                 spectrum="raw", activation="relu", swap=False, log_bound=None):
        if kind not in KERNEL_KINDS:
            raise ValueError(f"kind must be one of {KERNEL_KINDS}, got {kind!r}")
        if spectrum not in SPECTRUM_PARAMETERISATIONS:
            raise ValueError(
                f"spectrum must be one of {SPECTRUM_PARAMETERISATIONS}, got {spectrum!r}")
        self.conditioner = conditioner
        self.m = int(onp.size(getval(log_alpha)))
        if onp.shape(getval(log_alpha_prime)) != onp.shape(getval(log_alpha)):
            raise ValueError("log_alpha and log_alpha_prime must have the same shape (m,)")
        self.alpha = np.exp(log_alpha)
        self.alpha_prime = np.exp(log_alpha_prime)
        self.kind, self.spectrum, self.activation, self.swap = kind, spectrum, activation, swap
        if log_bound is not None and not log_bound > 0:
            raise ValueError(f"log_bound must be positive or None, got {log_bound!r}")
        self.log_bound = log_bound
        self.d_base = onp.shape(getval(conditioner[0]["W"]))[0]
        n_out = onp.shape(getval(conditioner[-1]["W"]))[1]
        if n_out % (2 * self.m + 1):
            raise ValueError(
                f"the conditioner has {n_out} outputs, not a multiple of 2m + 1 = {2 * self.m + 1}")
        self.d_update = n_out // (2 * self.m + 1)
        self.event_shape = (self.d_base + self.d_update,)
        self.event_ndim = 1

    # --- pieces --------------------------------------------------------------------------

    def _split(self, x):
        """``(base, update)``: ``x = [base, update]``, or ``[update, base]`` when swapped."""
        if self.swap:
            return x[..., self.d_update:], x[..., : self.d_update]
        return x[..., : self.d_base], x[..., self.d_base:]

    def _join(self, base, update):
        return np.concatenate([update, base] if self.swap else [base, update], axis=-1)

    def _conditioner_outputs(self, base):
        """Eigenvalues (m, batch, bins), scales (m, batch, d2) and shift (batch, d2)."""
        out = mlp(self.conditioner, base, self.activation)
        out = np.reshape(out, np.shape(base)[:-1] + (2 * self.m + 1, self.d_update))
        o_w = np.moveaxis(out[..., : self.m, :], -2, 0)
        o_s = np.moveaxis(out[..., self.m: 2 * self.m, :], -2, 0)
        if self.kind == "circular":
            o_w = rfft(o_w, axis=-1)
        w = np.exp(o_w) if self.spectrum == "exp" else 1.0 + o_w
        return w, np.exp(self._soft_bound(o_s)), out[..., -1, :]

    def _soft_bound(self, o):
        """``B tanh(o / B)``: slope 1 at 0, values in (-B, B); the identity if no bound."""
        if self.log_bound is None:
            return o
        return self.log_bound * np.tanh(o / self.log_bound)

    def _conv(self, h, w):
        if self.kind == "symmetric":
            return spectral.symmetric_conv(h, w)
        return spectral.circular_conv(h, w)

    def _deconv(self, h, w):
        if self.kind == "symmetric":
            return spectral.symmetric_deconv(h, w)
        return spectral.circular_deconv(h, w)

    def _conv_log_det(self, w):
        if self.kind == "symmetric":
            return spectral.symmetric_log_abs_det(w)
        return spectral.circular_log_abs_det(w, self.d_update)

    # --- the map -------------------------------------------------------------------------

    def _forward(self, x):
        base, h = self._split(x)
        w, s, t = self._conditioner_outputs(base)
        log_det = 0.0
        for i in reversed(range(self.m)):
            u = self._conv(h, w[i])
            q, log_df = slog(u, self.alpha[i])
            h, log_dg = slog_inverse(s[i] * q, self.alpha_prime[i], overflow="inf")
            log_det = (log_det + self._conv_log_det(w[i])
                       + np.sum(log_df + np.log(s[i]) + log_dg, axis=-1))
        return self._join(base, h + t), log_det

    def _inverse(self, y):
        base, h = self._split(y)
        w, s, t = self._conditioner_outputs(base)
        h = h - t
        log_det = 0.0
        for i in range(self.m):
            v, log_df_prime = slog(h, self.alpha_prime[i])
            q = v / s[i]
            u, log_dg = slog_inverse(q, self.alpha[i], what="ConvCoupling.inverse")
            h = self._deconv(u, w[i])
            log_det = (log_det - self._conv_log_det(w[i])
                       + np.sum(log_df_prime - np.log(s[i]) + log_dg, axis=-1))
        return self._join(base, h), log_det
