"""Compiled override of :func:`refconf.train.optimiser.adam_step_inplace` (NumPy arrays)."""

import numpy as np
from numba import njit

__all__ = ["adam_step_inplace"]


@njit(cache=True, error_model="numpy")
def _adam_kernel(x, g, m, v, c_m, c_v, beta1, beta2, bias1, bias2, learning_rate, eps):
    for i in range(x.size):
        m[i] = beta1 * m[i] + c_m * g[i]
        v[i] = beta2 * v[i] + c_v * g[i] * g[i]
        x[i] = x[i] - learning_rate * (m[i] / bias1) / (np.sqrt(v[i] / bias2) + eps)


def adam_step_inplace(x, g, m, v, step, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """One pass of the bias-corrected Adam update; the constants in the arrays' dtype."""
    dtype = x.dtype.type
    _adam_kernel(x, g, m, v, dtype(1.0 - beta1), dtype(1.0 - beta2), dtype(beta1),
                 dtype(beta2), dtype(1.0 - beta1**step), dtype(1.0 - beta2**step),
                 dtype(learning_rate), dtype(eps))
