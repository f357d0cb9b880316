"""Compiled overrides of :mod:`refconf.bijectors.mixing`'s kernels, on NumPy arrays.

ActNorm's explicit forward and backward as one pass over the batch each (the readable
kernels, :func:`refconf.bijectors.mixing.actnorm_forward` and ``actnorm_backward``, give
the same values with several NumPy calls); compiled once and cached on disk.
"""

import numpy as np
from numba import njit, prange

__all__ = ["actnorm_backward", "actnorm_forward"]


@njit(cache=True, nogil=True, error_model="numpy")
def actnorm_forward(x, loc, log_scale):
    """ActNorm ``y[b, j] = (x[b, j] - loc[j]) scale[j]``, ``scale = exp(-log_scale)``.
    Returns ``(y, scale, -sum_j log_scale[j])`` (the last the per-sample log-det)."""
    B, D = x.shape
    scale = np.exp(-log_scale)
    y = np.empty((B, D), dtype=x.dtype)
    for b in prange(B):
        for j in range(D):
            y[b, j] = (x[b, j] - loc[j]) * scale[j]
    return y, scale, -np.sum(log_scale)


@njit(cache=True, nogil=True, error_model="numpy")
def actnorm_backward(g, y, scale, gl_sum):
    """ActNorm's VJP from the output cotangent ``g``, the output ``y`` and the sum
    ``gl_sum`` of the log-det's cotangents over the batch::

        gx[b, j] = g[b, j] scale[j]
        gloc[j]  = -sum_b gx[b, j]
        gls[j]   = -sum_b g[b, j] y[b, j] - gl_sum

    Returns ``(gx, gloc, gls)``.
    """
    B, D = g.shape
    gx = np.empty((B, D), dtype=g.dtype)
    gloc = np.zeros(D, dtype=g.dtype)
    gls = np.zeros(D, dtype=g.dtype)
    for b in range(B):
        for j in range(D):
            gx[b, j] = g[b, j] * scale[j]
            gloc[j] -= gx[b, j]
            gls[j] -= g[b, j] * y[b, j]
    gls -= gl_sum
    return gx, gloc, gls

