"""Multi-scale flows on flattened images: one level, its factor-out, and the bookkeeping.

A multi-scale flow (Real NVP, Glow) runs a few steps on the image, then lets half of the
channels leave to the base density ("factor-out") and continues on the other half at a
coarser scale. Here a model maps vectors of length ``D = C H W`` (images flattened
channel-major) to latent vectors of the same length, and every level is a bijector on
those vectors: the first ``offset`` entries are latents that earlier levels factored out
and pass through unchanged; the rest is the level's image. Because the flattening is
channel-major, factoring out the first ``k`` channels of a level's output is nothing but
the next level starting at ``offset + k H' W'``: the factored-out latents are kept in the
output vector, so ``inverse(forward(x))`` is exact and nothing is resampled.
"""

import autograd.numpy as np
import numpy as onp

from .base import Bijector

__all__ = ["MultiScaleLevel"]


class MultiScaleLevel(Bijector):
    """One level of a multi-scale image flow, on vectors of length ``dim``.

    ``forward(x) = [x[:offset], flatten(chain(reshape(x[offset:], shape)))]``; the log-det
    is the chain's. Of the chain's output (shape ``out_shape``), the first
    ``factor_out`` channels leave: the next level starts at :attr:`next_offset` with the
    remaining channels (:attr:`next_shape`).

    Parameters
    ----------
    dim : int
        Length of the whole (flattened) image.
    offset : int
        Entries already factored out by earlier levels.
    shape : tuple (C, H, W)
        The level's input image; ``offset + C H W == dim``.
    chain : Bijector
        A map of ``(C, H, W)`` images (``event_ndim = 3``), e.g. a squeeze and steps.
    out_shape : tuple (C', H', W')
        The chain's output shape (``C' H' W' = C H W``).
    factor_out : int
        Channels of the output that leave to the base density (0 for the last level).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.bijectors.squeeze import Squeeze
    >>> level = MultiScaleLevel(16, 0, (1, 4, 4), Squeeze(), (4, 2, 2), factor_out=2)
    >>> level.next_offset, level.next_shape
    (8, (2, 2, 2))
    >>> x = np.arange(16.0)[None]
    >>> bool(np.array_equal(level.inverse(level.forward(x)[0])[0], x))
    True
    """

    event_ndim = 1

    def __init__(self, dim, offset, shape, chain, out_shape, factor_out=0):
        shape, out_shape = tuple(int(n) for n in shape), tuple(int(n) for n in out_shape)
        size = int(onp.prod(shape))
        if len(shape) != 3 or offset < 0 or offset + size != dim:
            raise ValueError(f"MultiScaleLevel: offset {offset} + image {shape} must cover the "
                             f"vector of length {dim}")
        if int(onp.prod(out_shape)) != size:
            raise ValueError(f"MultiScaleLevel: output shape {out_shape} does not hold the "
                             f"{size} entries of {shape}")
        if not 0 <= factor_out < out_shape[0]:
            raise ValueError(f"MultiScaleLevel: factor_out must be in [0, {out_shape[0]}), "
                             f"got {factor_out}")
        self.dim, self.offset, self.shape, self.out_shape = int(dim), int(offset), shape, out_shape
        self.chain, self.factor_out = chain, int(factor_out)
        self.event_shape = (self.dim,)

    @property
    def next_offset(self):
        """Where the next level's image starts: this level's offset plus the factored-out
        channels' entries."""
        return self.offset + self.factor_out * self.out_shape[1] * self.out_shape[2]

    @property
    def next_shape(self):
        """The next level's input image: the channels that stay."""
        return (self.out_shape[0] - self.factor_out,) + self.out_shape[1:]

    def _through(self, x, image_shape, apply):
        batch = tuple(np.shape(x)[:-1])
        kept = x[..., : self.offset]
        image = np.reshape(x[..., self.offset:], batch + image_shape)
        out, log_det = apply(image)
        out = np.reshape(out, batch + (-1,))
        return np.concatenate([kept, out], axis=-1), log_det

    def _forward(self, x):
        return self._through(x, self.shape, lambda h: self.chain.forward(h, validate=False))

    def _inverse(self, y):
        return self._through(y, self.out_shape, lambda h: self.chain.inverse(h, validate=False))

    def forward_saved(self, x):
        B = x.shape[0]
        image = onp.reshape(x[:, self.offset:], (B,) + self.shape)
        out, log_det, saved = self.chain.forward_saved(image)
        y = onp.concatenate([x[:, : self.offset], onp.reshape(out, (B, -1))], axis=1)
        return y, log_det, saved

    def backward(self, saved, g_y, g_log_det):
        """The kept entries' cotangent passes; the image's goes through the chain's
        reverse pass. ``grads`` are the chain's."""
        B = g_y.shape[0]
        g_out = onp.reshape(g_y[:, self.offset:], (B,) + self.out_shape)
        g_image, grads = self.chain.backward(saved, g_out, g_log_det)
        g_x = onp.concatenate([g_y[:, : self.offset], onp.reshape(g_image, (B, -1))], axis=1)
        return g_x, grads
