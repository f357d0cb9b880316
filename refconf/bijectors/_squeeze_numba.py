"""Compiled overrides of :mod:`refconf.bijectors.squeeze`'s kernels, on NumPy arrays.

One pass that writes the output in order, where NumPy's transpose-and-copy of a
six-axis view makes strided reads; the formulas are the readable kernels'
(:func:`refconf.bijectors.squeeze.space_to_depth`, ``depth_to_space``).
"""

import numpy as np
from numba import njit, prange

__all__ = ["depth_to_space", "space_to_depth"]


@njit(cache=True, nogil=True)
def space_to_depth(x, factor):
    """``y[n, (c f + i) f + j, h, w] = x[n, c, f h + i, f w + j]``."""
    N, C, H, W = x.shape
    h_out, w_out = H // factor, W // factor
    y = np.empty((N, C * factor * factor, h_out, w_out), dtype=x.dtype)
    for n in prange(N):
        for c in range(C):
            for i in range(factor):
                for j in range(factor):
                    d = (c * factor + i) * factor + j
                    for h in range(h_out):
                        for w in range(w_out):
                            y[n, d, h, w] = x[n, c, factor * h + i, factor * w + j]
    return y


@njit(cache=True, nogil=True)
def depth_to_space(y, factor):
    """``x[n, c, f h + i, f w + j] = y[n, (c f + i) f + j, h, w]``."""
    N, D, H, W = y.shape
    C = D // (factor * factor)
    x = np.empty((N, C, H * factor, W * factor), dtype=y.dtype)
    for n in prange(N):
        for c in range(C):
            for i in range(factor):
                for j in range(factor):
                    d = (c * factor + i) * factor + j
                    for h in range(H):
                        for w in range(W):
                            x[n, c, factor * h + i, factor * w + j] = y[n, d, h, w]
    return x
