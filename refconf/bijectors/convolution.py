"""Invertible convolutions: symmetric (DCT-I) and circular (DFT), 1-D and 2-D."""

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .. import backend, spectral
from .base import Bijector

__all__ = ["CircularConv", "SymmetricConv"]


def _convolved_ndim(ndim, shape, name):
    if ndim not in (1, 2):
        raise ValueError(f"{name}: ndim must be 1 or 2 convolved axes, got {ndim!r}")
    if len(shape) < ndim or len(shape) > ndim + 1:
        raise ValueError(
            f"{name}: expected a kernel of shape (L,) or (C, L) for ndim=1, (H, W) or "
            f"(C, H, W) for ndim=2; got shape {tuple(shape)} with ndim={ndim}"
        )


def _finite(a, name):
    value = getval(a)
    xp = backend.namespace(value)
    if not bool(xp.all(xp.isfinite(value))):
        raise ValueError(f"{name}: the kernel has NaN or infinite entries")


class SymmetricConv(Bijector):
    """Symmetric convolution parameterised by its DCT-I spectrum (paper eq. 3).

    forward ``y = idct1(w_hat * dct1(x))``, inverse ``x = idct1(dct1(y) / w_hat)``.

    Parameters
    ----------
    w_hat : ndarray, real
        The eigenvalues; its shape is the event shape: ``(L,)``, ``(C, L)`` (depthwise,
        one kernel per channel), ``(H, W)`` or ``(C, H, W)``.
    ndim : {1, 2}
        Number of convolved trailing axes.

    Notes
    -----
    log-det ``sum log|w_hat|`` (real eigenvalues, one per sample of the event). Identity
    at ``w_hat = 1``. Invertible iff no eigenvalue is 0; the inverse raises
    ``ValueError`` on a (near-)zero eigenvalue. Cost O(N log N).

    Examples
    --------
    >>> import numpy as np
    >>> conv = SymmetricConv(np.array([2.0, -1.0, 0.5, 4.0]))
    >>> x = np.random.default_rng(0).normal(size=(3, 4))
    >>> y, ld = conv.forward(x)
    >>> np.allclose(conv.inverse(y)[0], x), np.allclose(ld, np.log(4.0))
    (True, True)
    """

    def __init__(self, w_hat, ndim=1):
        _convolved_ndim(ndim, np.shape(w_hat), "SymmetricConv")
        _finite(w_hat, "SymmetricConv")
        self.w_hat = w_hat
        self.ndim = ndim
        self.event_shape = tuple(np.shape(w_hat))
        self.event_ndim = len(self.event_shape)

    @classmethod
    def from_kernel(cls, w, ndim=1):
        """Build from the spatial kernel ``w`` (``w_hat = dct1(w)``)."""
        return cls(spectral.symmetric_spectrum(w, ndim), ndim)

    def _log_det(self):
        return spectral.symmetric_log_abs_det(self.w_hat, self.event_ndim)

    def _forward(self, x):
        y = spectral.symmetric_conv(x, self.w_hat, self.ndim)
        return y, self._constant_log_det(x, self._log_det())

    def _inverse(self, y):
        x = spectral.symmetric_deconv(y, self.w_hat, self.ndim)
        return x, self._constant_log_det(y, -self._log_det())

    def forward_saved(self, x):
        return (*self._forward(x), x)

    def backward(self, saved, g_y, g_log_det):
        """:func:`refconf.spectral.symmetric_conv_vjp`, ``w_hat``'s summed over the batch,
        plus ``sum_b g_log_det / w_hat`` from the log-det."""
        g_x, g_w = spectral.symmetric_conv_vjp(g_y, saved, self.w_hat, self.ndim)
        return g_x, {"w_hat": self._g_w_hat(saved, g_w, g_log_det, 1.0)}

    def inverse_saved(self, y):
        x, log_det = self._inverse(y)
        return x, log_det, x

    def inverse_backward(self, saved, g_x, g_log_det):
        """:func:`refconf.spectral.symmetric_deconv_vjp`; the log-det adds
        ``-sum_b g_log_det / w_hat``."""
        g_y, g_w = spectral.symmetric_deconv_vjp(g_x, saved, self.w_hat, self.ndim)
        return g_y, {"w_hat": self._g_w_hat(saved, g_w, g_log_det, -1.0)}

    def _g_w_hat(self, x, g_w, g_log_det, sign):
        xp = backend.compute_namespace(x, self.w_hat)
        return (backend.sum_to(xp, g_w, self.event_shape)
                + sign * xp.sum(g_log_det) / self.w_hat)


class CircularConv(Bijector):
    """Circular convolution by a real spatial kernel: ``y(n) = sum_m x(m) w((n-m) mod N)``.

    Parameters
    ----------
    w : ndarray, real
        The kernel, with the event's shape: ``(N,)``, ``(C, N)``, ``(H, W)`` or
        ``(C, H, W)``.
    ndim : {1, 2}

    Notes
    -----
    The Jacobian is circulant with eigenvalues ``W(k)`` (the DFT of ``w``); log-det
    ``sum_k log|W(k)|`` from the half spectrum with interior bins counted twice.
    Inverse ``x = irfft(rfft(y) / W)``. Cost O(N log N).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.reference import circulant_matrix
    >>> w = np.array([1.0, 0.5, -0.25, 0.1, 0.2])
    >>> _, ld = CircularConv(w).forward(np.zeros((1, 5)))
    >>> np.allclose(ld, np.linalg.slogdet(circulant_matrix(w))[1])
    True
    """

    def __init__(self, w, ndim=1):
        _convolved_ndim(ndim, np.shape(w), "CircularConv")
        _finite(w, "CircularConv")
        self.w = w
        self.ndim = ndim
        self.event_shape = tuple(np.shape(w))
        self.event_ndim = len(self.event_shape)
        self.w_half = spectral.circular_spectrum(w, ndim)

    @classmethod
    def from_half_spectrum(cls, w_half, n, ndim=1):
        """Build from a half spectrum (rfft layout; ``n`` the last axis's length).

        The half spectrum must be that of a real kernel: imaginary parts of the
        self-conjugate bins (DC, and Nyquist for even ``n``; in 2-D the matching column
        conjugate pairs) must vanish. A free complex vector is not Hermitian; it is
        rejected with ``ValueError`` rather than silently made real.
        """
        if np.shape(w_half)[-1] != n // 2 + 1:
            raise ValueError(
                f"a length-{n} signal has {n // 2 + 1} half-spectrum bins, "
                f"got {np.shape(w_half)[-1]}"
            )
        spatial = spectral.circular_kernel(w_half, n, ndim)
        value = onp.asarray(backend.host_value(w_half))
        projected = onp.asarray(backend.host_value(spectral.circular_spectrum(spatial, ndim)))
        # round-off of the irfft/rfft round trip scales with the precision of w_half
        tol = 1e4 * onp.finfo(onp.result_type(value.dtype, onp.float32)).eps
        if not onp.allclose(projected, value, rtol=tol, atol=tol * onp.abs(value).max()):
            raise ValueError(
                "from_half_spectrum: not the spectrum of a real kernel (the self-conjugate "
                "bins, DC and Nyquist, must have zero imaginary part)"
            )
        return cls(spatial, ndim)

    def _log_det(self):
        n = self.event_shape[-1]
        return spectral.circular_log_abs_det(self.w_half, n, self.ndim, self.event_ndim)

    def _forward(self, x):
        y = spectral.circular_conv(x, self.w_half, self.ndim)
        return y, self._constant_log_det(x, self._log_det())

    def _inverse(self, y):
        x = spectral.circular_deconv(y, self.w_half, self.ndim)
        return x, self._constant_log_det(y, -self._log_det())

    def forward_saved(self, x):
        return (*self._forward(x), x)

    def backward(self, saved, g_y, g_log_det):
        """:func:`refconf.spectral.circular_conv_vjp` gives the spectrum's cotangent
        ``g_W`` (summed over the batch); the log-det adds ``sum_b g_log_det c / W``; the
        kernel's is ``rfftn^T g_W`` (:func:`refconf.spectral.rfft_transpose`)."""
        g_x, g_W = spectral.circular_conv_vjp(g_y, saved, self.w_half, self.ndim)
        return g_x, {"w": self._g_w(saved, g_W, g_log_det, 1.0)}

    def inverse_saved(self, y):
        x, log_det = self._inverse(y)
        return x, log_det, x

    def inverse_backward(self, saved, g_x, g_log_det):
        """:func:`refconf.spectral.circular_deconv_vjp`; the log-det adds
        ``-sum_b g_log_det c / W``."""
        g_y, g_W = spectral.circular_deconv_vjp(g_x, saved, self.w_half, self.ndim)
        return g_y, {"w": self._g_w(saved, g_W, g_log_det, -1.0)}

    def _g_w(self, x, g_W, g_log_det, sign):
        xp = backend.compute_namespace(x, self.w)
        n = self.event_shape[-1]
        c = backend.asarray(xp, spectral.hermitian_weights(n), dtype=x.dtype)
        g_W = (backend.sum_to(xp, g_W, tuple(self.w_half.shape))
               + sign * xp.sum(g_log_det) * c / self.w_half)
        return spectral.rfft_transpose(g_W, n, self.ndim)
