"""Squeeze (space-to-depth): each 2 x 2 block of pixels becomes four channels.

Multi-scale image flows (RealNVP, Glow) trade spatial size for channels between scales,
so that a 1x1 mixing and a coupling over channels reach pixels that were neighbours.
"""

import autograd.numpy as np

from .. import backend
from .base import Bijector

__all__ = ["Squeeze", "depth_to_space", "space_to_depth"]

_NUMBA = "refconf.bijectors._squeeze_numba"


def _permute(xp, x, axes):
    return np.transpose(x, axes) if backend.is_autograd(xp) else xp.permute_dims(x, axes)


@backend.compiled_override(_NUMBA)
def space_to_depth(xp, x, factor):
    """``y[n, (c f + i) f + j, h, w] = x[n, c, f h + i, f w + j]`` for ``x`` of shape
    ``(N, C, H, W)`` (``H``, ``W`` multiples of ``f``); ``y`` has shape
    ``(N, f^2 C, H / f, W / f)``. A permutation of the entries.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> space_to_depth.readable(np, x, 2)[0, :, 0, 0]      # the top-left 2 x 2 block
    array([0., 1., 4., 5.])
    """
    N, C, H, W = x.shape
    reshape = np.reshape if backend.is_autograd(xp) else xp.reshape
    blocks = reshape(x, (N, C, H // factor, factor, W // factor, factor))
    y = _permute(xp, blocks, (0, 1, 3, 5, 2, 4))
    return reshape(y, (N, C * factor * factor, H // factor, W // factor))


@backend.compiled_override(_NUMBA)
def depth_to_space(xp, y, factor):
    """The inverse of :func:`space_to_depth` (and its transpose: the map is a
    permutation), from ``(N, f^2 C, H, W)`` to ``(N, C, f H, f W)``."""
    N, D, H, W = y.shape
    C = D // (factor * factor)
    reshape = np.reshape if backend.is_autograd(xp) else xp.reshape
    blocks = _permute(xp, reshape(y, (N, C, factor, factor, H, W)), (0, 1, 4, 2, 5, 3))
    return reshape(blocks, (N, C, H * factor, W * factor))


class Squeeze(Bijector):
    """Space-to-depth of ``(C, H, W)`` images: ``(C, H, W) -> (4 C, H / 2, W / 2)``.

    ``y[(2 c + i) 2 + j, h, w] = x[c, 2 h + i, 2 w + j]``: each channel's 2 x 2 blocks
    become four channels (RealNVP's squeeze, Dinh et al. 2017, section 3.6). A
    permutation of the entries, so ``log|det| = 0``; the inverse is depth-to-space and
    the reverse pass moves the cotangent back the same way (a permutation's transpose is
    its inverse).

    Parameters
    ----------
    factor : int, >= 2
        The block side (2 in RealNVP and Glow).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
    >>> y, log_det = Squeeze().forward(x)
    >>> y.shape, log_det.shape
    ((2, 12, 2, 2), (2,))
    >>> bool(np.array_equal(Squeeze().inverse(y)[0], x))
    True
    """

    event_ndim = 3

    def __init__(self, factor=2):
        if int(factor) != factor or factor < 2:
            raise ValueError(f"Squeeze: factor must be an integer >= 2, got {factor!r}")
        self.factor = int(factor)

    def _check(self, x, what):
        H, W = np.shape(x)[-2:]
        if H % self.factor or W % self.factor:
            raise ValueError(f"Squeeze.{what}: the image is {H} x {W}, expected both sides "
                             f"multiples of the factor {self.factor}")

    def _apply(self, kernel, x):
        """``kernel`` on ``x`` with its batch axes flattened into one."""
        xp = backend.namespace(x)
        shape = tuple(np.shape(x))
        reshape = np.reshape if backend.is_autograd(xp) else xp.reshape
        out = kernel(xp, reshape(x, (-1,) + shape[-3:]), self.factor)
        return reshape(out, shape[:-3] + tuple(out.shape[1:]))

    def _forward(self, x):
        self._check(x, "forward")
        return self._apply(space_to_depth.readable, x), self._constant_log_det(x, 0.0)

    def _inverse(self, y):
        if np.shape(y)[-3] % (self.factor * self.factor):
            raise ValueError(f"Squeeze.inverse: {np.shape(y)[-3]} channels, expected a "
                             f"multiple of factor^2 = {self.factor ** 2}")
        return self._apply(depth_to_space.readable, y), self._constant_log_det(y, 0.0)

    def forward_saved(self, x):
        xp = backend.compute_namespace(x)
        return self._explicit(space_to_depth, xp, x), 0.0, None

    def backward(self, saved, g_y, g_log_det):
        """``g_x = depth_to_space(g_y)``; no parameters."""
        xp = backend.compute_namespace(g_y)
        return self._explicit(depth_to_space, xp, g_y), None

    def inverse_saved(self, y):
        xp = backend.compute_namespace(y)
        return self._explicit(depth_to_space, xp, y), 0.0, None

    def inverse_backward(self, saved, g_x, g_log_det):
        """``g_y = space_to_depth(g_x)``."""
        xp = backend.compute_namespace(g_x)
        return self._explicit(space_to_depth, xp, g_x), None

    def _explicit(self, kernel, xp, x):
        shape = tuple(x.shape)
        out = kernel(xp, xp.reshape(x, (-1,) + shape[-3:]), self.factor)
        return xp.reshape(out, shape[:-3] + tuple(out.shape[1:]))
