"""The 2-D CONF coupling step on ``(C, H, W)`` images (paper eqs. 4-5 with 2-D convolutions).

The channels are split in two halves; a convolutional conditioner
(:func:`refconf.conditioners.conv_net`) reads one and outputs, for every channel of the
other, ``m`` 2-D kernel spectra, ``m`` scale maps and a shift map. Each combined layer
convolves every updated channel with its own data-adaptive kernel (symmetric DCT-I or
circular DFT, over both image axes), gates it with S-Log, scales it and expands it
again (``docs/theory/image-flows.md``).
"""

import autograd.numpy as np
import numpy as onp
from autograd import make_vjp
from autograd.tracer import getval

from .. import spectral
from ..conditioners import ACTIVATIONS, conv_net
from .base import Bijector
from .coupling import KERNEL_KINDS, SPECTRUM_PARAMETERISATIONS
from .elementwise import slog, slog_inverse

__all__ = ["AffineCoupling2D", "ChannelCoupling", "ConvCoupling2D", "channel_split",
           "conf_step_2d", "conf_step_2d_inverse"]

_EVENT = (-3, -2, -1)


def channel_split(C, swap=False):
    """``(base, update)`` channel slices of a ``C``-channel image: the first ``C // 2``
    channels condition the other ``C - C // 2``; with ``swap`` the last ``C // 2``
    condition the first ``C - C // 2``."""
    if C < 2:
        raise ValueError(f"a channel coupling needs at least 2 channels, got C={C}; "
                         "squeeze the image first (refconf.bijectors.squeeze.Squeeze)")
    c_base = C // 2
    if swap:
        return slice(C - c_base, C), slice(0, C - c_base)
    return slice(0, c_base), slice(c_base, C)


def _conv(h, w, kind):
    if kind == "symmetric":
        return spectral.symmetric_conv(h, w, 2)
    return spectral.circular_conv(h, w, 2)


def _deconv(h, w, kind):
    if kind == "symmetric":
        return spectral.symmetric_deconv(h, w, 2)
    return spectral.circular_deconv(h, w, 2)


def _conv_log_det(w, kind, width):
    """``sum log|w_hat|`` over channels and both frequency axes, per sample."""
    if kind == "symmetric":
        return spectral.symmetric_log_abs_det(w, 3)
    return spectral.circular_log_abs_det(w, width, 2, 3)


def conf_step_2d(x2, w_hat, s, t, alpha, alpha_prime, kind="symmetric", overflow="raise"):
    """The 2-D CONF step (eq. 5 with the combined layers of eq. 4 over the image plane) on
    explicit conditioner outputs: ``y2 = (F_1 o ... o F_m)(x2) + t``, ``F_m`` first, with
    ``F_i(h)[c] = g_{a'_i}(s_i[c] * f_{a_i}(w_i[c] *_2 h[c]))``.

    Parameters
    ----------
    x2 : ndarray, (B, c2, H, W)
    w_hat : ndarray, (m, B, c2, H, W) real (DCT-I spectra) or (m, B, c2, H, W // 2 + 1)
        complex (rfft2 half spectra of real kernels)
    s : ndarray, (m, B, c2, H, W), non-zero
    t : ndarray, (B, c2, H, W)
    alpha, alpha_prime : ndarray, (m,), > 0
    kind : {"symmetric", "circular"}
    overflow : {"raise", "inf"}
        What an overflowing expanding gate does (:func:`~refconf.bijectors.elementwise.slog_inverse`).

    Returns
    -------
    y2 : ndarray, (B, c2, H, W)
    log_det : ndarray, (B,)
        ``sum_i [sum log|w_hat_i| - sum log1p(a_i|u_i|) + sum log|s_i| + a'_i sum|v_i|]``.
    """
    h, log_det = x2, 0.0
    for i in reversed(range(np.shape(alpha)[0])):
        u = _conv(h, w_hat[i], kind)
        q, log_df = slog(u, alpha[i])
        h, log_dg = slog_inverse(s[i] * q, alpha_prime[i],
                                 "conf_step_2d: the expanding gate g_{a'}", overflow)
        log_det = log_det + _conv_log_det(w_hat[i], kind, np.shape(x2)[-1]) + np.sum(
            log_df + np.log(np.abs(s[i])) + log_dg, axis=_EVENT)
    return h + t, log_det


def conf_step_2d_inverse(y2, w_hat, s, t, alpha, alpha_prime, kind="symmetric"):
    """Inverse of :func:`conf_step_2d`: remove ``t``, invert ``F_1``, ..., ``F_m`` in that
    order. Returns ``(x2, log|det dx2/dy2|)``."""
    h, log_det = y2 - t, 0.0
    for i in range(np.shape(alpha)[0]):
        v, log_df = slog(h, alpha_prime[i])
        u, log_dg = slog_inverse(v / s[i], alpha[i], "conf_step_2d_inverse: the gate g_a")
        h = _deconv(u, w_hat[i], kind)
        log_det = log_det - _conv_log_det(w_hat[i], kind, np.shape(y2)[-1]) + np.sum(
            log_df - np.log(np.abs(s[i])) + log_dg, axis=_EVENT)
    return h, log_det


class ChannelCoupling(Bijector):
    """Base of coupling steps on ``(C, H, W)`` images split over channels
    (:func:`channel_split`), whose explicit reverse pass is autograd's VJP of the readable
    forward map: subclasses set ``event_shape``, ``base``, ``update`` and implement
    ``_map(x)`` (the forward map of a batch), ``_params()`` (the parameters keyed like
    the constructor's arguments) and ``_rebuilt(params)`` (the same step on other
    parameters)."""

    event_ndim = 3

    def _setup(self, shape, conditioner, swap, n_out_per_channel, name):
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"{name}: shape must be (C, H, W), got {shape!r}")
        self.event_shape = tuple(int(n) for n in shape)
        self.base, self.update = channel_split(self.event_shape[0], swap)
        c1 = self.base.stop - self.base.start
        c2 = self.update.stop - self.update.start
        n_in, n_out = onp.shape(getval(conditioner[0]["W"]))[1], onp.shape(
            getval(conditioner[-1]["W"]))[0]
        if n_in % c1 or n_out != n_out_per_channel * c2:
            raise ValueError(
                f"{name}: the conditioner maps {n_in} patch inputs to {n_out} channels; "
                f"expected a multiple of the {c1} base channels in and "
                f"{n_out_per_channel} x {c2} channels out")
        self.conditioner, self.swap = conditioner, swap

    def _halves(self, x):
        """``x`` flattened to one batch axis and split: ``(x1, x2, batch shape)``."""
        batch = tuple(np.shape(x)[:-3])
        x = np.reshape(x, (-1,) + self.event_shape)
        return x[:, self.base], x[:, self.update], batch

    def _join(self, x1, y2, batch):
        halves = [x1, y2] if self.base.start == 0 else [y2, x1]
        y = np.concatenate(halves, axis=1)
        return np.reshape(y, batch + self.event_shape)

    def _forward(self, x):
        return self._map(x)

    def _packed(self, args):
        """``[y, log_det]`` per sample as one ``B x (C H W + 1)`` array, of the input and
        the parameters (what :meth:`forward_saved` records)."""
        x, params = args
        y, log_det = self._rebuilt(params)._map(x)
        return np.concatenate([np.reshape(y, (np.shape(y)[0], -1)), log_det[:, None]], axis=1)

    def forward_saved(self, x):
        """The forward map of a batch ``x`` (``B x C x H x W``) with autograd's VJP of it
        in the input and the parameters kept for :meth:`backward`."""
        vjp, packed = make_vjp(self._packed)((x, self._params()))
        y = onp.reshape(packed[:, :-1], onp.shape(x))
        return y, packed[:, -1], (vjp, onp.shape(x))

    def backward(self, saved, g_y, g_log_det):
        """``(g_x, grads)`` from the recorded VJP; ``grads`` keyed like the constructor's
        parameter arguments."""
        vjp, shape = saved
        g_log_det = onp.broadcast_to(g_log_det, shape[:1])
        g_x, grads = vjp(onp.concatenate([onp.reshape(g_y, (shape[0], -1)),
                                          g_log_det[:, None]], axis=1))
        return g_x, grads


class ConvCoupling2D(ChannelCoupling):
    """Mixed 2-D CONF step of ``m`` combined layers and a shift on ``(C, H, W)`` images.

    With the channels split ``x = [x1, x2]`` (:func:`channel_split`)::

        y1 = x1
        y2 = (F_1 o ... o F_m)(x2) + t(x1)                          (eq. 5)
        F_i(h)[c] = g_{a'_i}( s_i[c] * f_{a_i}( w_i[c] *_2 h[c] ) )  (eq. 4, per channel c)

    where ``*_2`` is the 2-D symmetric (DCT-I) or circular (DFT) convolution over the
    ``H x W`` plane, ``w_i[c]`` a kernel per sample and channel, ``s_i[c]`` and ``t[c]``
    maps of the image's size. One convolutional conditioner ``conv_net(x1)`` outputs all
    of them: ``(2m + 1) c2`` channels (spectra first, then log-scales, then the shift).

    Parameters
    ----------
    conditioner : list of dict
        :func:`refconf.conditioners.conv_init` parameters, ``c1`` input channels and
        ``(2m + 1) c2`` output channels.
    log_alpha, log_alpha_prime : ndarray, (m,)
        S-Log scales ``a = exp(log_alpha)``, ``a' = exp(log_alpha_prime)``.
    shape : tuple (C, H, W)
        The event shape.
    kind : {"symmetric", "circular"}
    spectrum : {"raw", "exp"}
        As in :class:`~refconf.bijectors.coupling.ConvCoupling`: a conditioner output ``o``
        (an ``H x W`` map) gives ``w_hat = 1 + o`` (symmetric; circular: the spectrum of
        the kernel ``delta + o``, ``1 + rfft2(o)``) or ``exp(o)`` (``exp(rfft2(o))``).
    activation : {"relu", "tanh"}
    swap : bool
        Which half conditions (:func:`channel_split`).

    Notes
    -----
    The Jacobian is block-triangular, so ``log|det| = sum_i [sum log|w_hat_i| - sum
    log1p(a_i|u_i|) + sum log|s_i| + a'_i sum|v_i|]`` over the updated channels and pixels
    (the circular sum weights the half-spectrum bins, :func:`refconf.spectral.circular_log_abs_det`).
    Identity at a zero conditioner output with ``a' = a``. Cost O(m C H W log(H W)) plus
    the conditioner's O(C k^2 H W c_hidden).

    The explicit reverse pass (:meth:`forward_saved`, :meth:`backward`) is autograd's VJP
    of the readable forward map, recorded in :meth:`forward_saved`: exact, but with
    autograd's bookkeeping (no compiled kernel yet). Runs on NumPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.conditioners import conv_init
    >>> layer = ConvCoupling2D(conv_init(1, (4,), 5 * 2, random_state=0, zero_output=False),
    ...                        np.zeros(2), np.full(2, 0.3), shape=(3, 4, 5))
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    >>> y, log_det = layer.forward(x)
    >>> bool(np.allclose(layer.inverse(y)[0], x)), log_det.shape
    (True, (2,))
    """

    def __init__(self, conditioner, log_alpha, log_alpha_prime, shape, kind="symmetric",
                 spectrum="raw", activation="tanh", swap=False):
        if kind not in KERNEL_KINDS:
            raise ValueError(f"kind must be one of {KERNEL_KINDS}, got {kind!r}")
        if spectrum not in SPECTRUM_PARAMETERISATIONS:
            raise ValueError(
                f"spectrum must be one of {SPECTRUM_PARAMETERISATIONS}, got {spectrum!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.m = int(onp.size(getval(log_alpha)))
        if self.m < 1 or onp.shape(getval(log_alpha_prime)) != (self.m,):
            raise ValueError("log_alpha and log_alpha_prime must have the same shape (m,), m >= 1")
        self._setup(shape, conditioner, swap, 2 * self.m + 1, "ConvCoupling2D")
        self.log_alpha, self.log_alpha_prime = log_alpha, log_alpha_prime
        self.kind, self.spectrum, self.activation = kind, spectrum, activation

    def _outputs(self, x1):
        """Spectra ``(m, B, c2, H, bins)``, scales ``(m, B, c2, H, W)``, shift ``(B, c2, H, W)``."""
        B, _, H, W = np.shape(x1)
        c2 = self.update.stop - self.update.start
        out = np.reshape(conv_net(self.conditioner, x1, self.activation),
                         (B, 2 * self.m + 1, c2, H, W))
        o_w = np.moveaxis(out[:, : self.m], 1, 0)
        o_s = np.moveaxis(out[:, self.m: 2 * self.m], 1, 0)
        if self.kind == "circular":
            o_w = spectral.circular_spectrum(o_w, 2)
        w = np.exp(o_w) if self.spectrum == "exp" else 1.0 + o_w
        return w, np.exp(o_s), out[:, 2 * self.m]

    def _map(self, x, overflow="inf"):
        x1, x2, batch = self._halves(x)
        w, s, t = self._outputs(x1)
        y2, log_det = conf_step_2d(x2, w, s, t, np.exp(self.log_alpha),
                                   np.exp(self.log_alpha_prime), self.kind, overflow)
        return self._join(x1, y2, batch), np.reshape(log_det, batch)

    def _inverse(self, y):
        y1, y2, batch = self._halves(y)
        w, s, t = self._outputs(y1)
        x2, log_det = conf_step_2d_inverse(y2, w, s, t, np.exp(self.log_alpha),
                                           np.exp(self.log_alpha_prime), self.kind)
        return self._join(y1, x2, batch), np.reshape(log_det, batch)

    # --- the explicit pass (ChannelCoupling's) --------------------------------------------

    def _params(self):
        return {"conditioner": self.conditioner, "log_alpha": self.log_alpha,
                "log_alpha_prime": self.log_alpha_prime}

    def _rebuilt(self, params):
        return ConvCoupling2D(params["conditioner"], params["log_alpha"],
                              params["log_alpha_prime"], self.event_shape, self.kind,
                              self.spectrum, self.activation, self.swap)


class AffineCoupling2D(ChannelCoupling):
    """Affine coupling on ``(C, H, W)`` images (Real NVP, Glow) with the convolutional
    conditioner, for multi-scale baselines in the same framework::

        y1 = x1,   y2 = x2 * exp(log_s(x1)) + t(x1),   log_s = tanh(o_s)

    ``conv_net(x1)`` outputs ``2 c2`` channels, ``o_s`` then ``t``; the ``tanh`` bounds
    each log-scale to (-1, 1) (Real NVP bounds its scales with tanh as well).
    ``log|det| = sum log_s`` over the updated channels and pixels. Identity at a zero
    conditioner output.

    Parameters
    ----------
    conditioner : list of dict
        :func:`refconf.conditioners.conv_init` parameters, ``c1`` in, ``2 c2`` out.
    shape : tuple (C, H, W)
    activation : {"relu", "tanh"}
    swap : bool

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.conditioners import conv_init
    >>> layer = AffineCoupling2D(conv_init(1, (4,), 4, random_state=0, zero_output=False),
    ...                          (3, 4, 4))
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
    >>> bool(np.allclose(layer.inverse(layer.forward(x)[0])[0], x))
    True
    """

    def __init__(self, conditioner, shape, activation="relu", swap=False):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self._setup(shape, conditioner, swap, 2, "AffineCoupling2D")
        self.activation = activation

    def _scale_shift(self, x1):
        c2 = self.update.stop - self.update.start
        out = conv_net(self.conditioner, x1, self.activation)
        return np.tanh(out[:, :c2]), out[:, c2:]

    def _map(self, x):
        x1, x2, batch = self._halves(x)
        log_s, t = self._scale_shift(x1)
        log_det = np.reshape(np.sum(log_s, axis=_EVENT), batch)
        return self._join(x1, x2 * np.exp(log_s) + t, batch), log_det

    def _inverse(self, y):
        y1, y2, batch = self._halves(y)
        log_s, t = self._scale_shift(y1)
        log_det = np.reshape(-np.sum(log_s, axis=_EVENT), batch)
        return self._join(y1, (y2 - t) * np.exp(-log_s), batch), log_det

    def _params(self):
        return {"conditioner": self.conditioner}

    def _rebuilt(self, params):
        return AffineCoupling2D(params["conditioner"], self.event_shape, self.activation,
                                self.swap)
