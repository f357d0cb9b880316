"""The optimiser of :func:`refconf.train.fit`: bias-corrected Adam and global-norm clipping."""

import numpy as np
from numba import njit

__all__ = ["adam_step", "clip_by_global_norm"]


def adam_step(x, g, m, v, step, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """One bias-corrected Adam update (Kingma & Ba 2015, Algorithm 1).

    .. math::

        m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g, \\quad
        v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g^2,

        x_t = x_{t-1} - \\eta \\, \\hat m_t / (\\sqrt{\\hat v_t} + \\epsilon), \\quad
        \\hat m_t = m_t / (1 - \\beta_1^t), \\quad \\hat v_t = v_t / (1 - \\beta_2^t).

    Parameters
    ----------
    x, g, m, v : ndarray, shape (n,)
        Parameters, gradient, first and second moment estimates.
    step : int
        ``t``, the 1-based number of this update.
    learning_rate : float
        ``eta``.

    Returns
    -------
    x, m, v : ndarray
        New arrays; the inputs are not modified.

    Examples
    --------
    The first step moves every coordinate by about ``learning_rate`` against its
    gradient's sign, whatever the gradient's scale:

    >>> import numpy as np
    >>> x, m, v = adam_step(np.zeros(2), np.array([300.0, -0.01]), np.zeros(2), np.zeros(2),
    ...                     step=1, learning_rate=0.1)
    >>> np.round(x, 6)
    array([-0.1,  0.1])
    """
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - beta1**step)
    v_hat = v / (1.0 - beta2**step)
    return x - learning_rate * m_hat / (np.sqrt(v_hat) + eps), m, v


@njit(cache=True, error_model="numpy")
def _adam_kernel(x, g, m, v, c_m, c_v, beta1, beta2, bias1, bias2, learning_rate, eps):
    for i in range(x.size):
        m[i] = beta1 * m[i] + c_m * g[i]
        v[i] = beta2 * v[i] + c_v * g[i] * g[i]
        x[i] = x[i] - learning_rate * (m[i] / bias1) / (np.sqrt(v[i] / bias2) + eps)


def _adam_step_inplace(x, g, m, v, step, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """:func:`adam_step` updating ``x``, ``m`` and ``v`` in place, in one compiled pass.

    The same operations in the same order and precision (every constant in the arrays'
    dtype, as NumPy casts a Python float), so the result equals :func:`adam_step`'s bit
    for bit (``tests/test_train.py``); what it saves is NumPy's dozen passes over the
    parameter vector and their temporaries (several times faster for a few ten thousand
    parameters).
    """
    dtype = x.dtype.type
    _adam_kernel(x, g, m, v, dtype(1.0 - beta1), dtype(1.0 - beta2), dtype(beta1),
                 dtype(beta2), dtype(1.0 - beta1**step), dtype(1.0 - beta2**step),
                 dtype(learning_rate), dtype(eps))


def clip_by_global_norm(g, clip_norm):
    """Rescale ``g`` to norm ``clip_norm`` if its Euclidean norm exceeds it.

    ``g <- g * min(1, clip_norm / ||g||_2)``; the direction is kept.

    Returns
    -------
    g : ndarray
        The clipped gradient (``g`` itself when no clipping was needed or
        ``clip_norm`` is None).
    norm : float
        ``||g||_2`` before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> clipped, norm = clip_by_global_norm(np.array([3.0, 4.0]), clip_norm=1.0)
    >>> clipped, norm
    (array([0.6, 0.8]), 5.0)
    """
    norm = float(np.linalg.norm(g))
    if clip_norm is None or norm <= clip_norm:
        return g, norm
    return g * (clip_norm / norm), norm
