"""The optimiser of :func:`refconf.train.fit`: bias-corrected Adam and global-norm clipping."""

import numpy as np

from ..backend import compiled_override

__all__ = ["adam_step", "adam_step_inplace", "clip_by_global_norm"]


def adam_step(x, g, m, v, step, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8, sqrt=np.sqrt):
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
    sqrt : callable
        The square root of the arrays' namespace (NumPy's by default).

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
    return x - learning_rate * m_hat / (sqrt(v_hat) + eps), m, v


@compiled_override("refconf.train._optimiser_numba")
def adam_step_inplace(xp, x, g, m, v, step, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """:func:`adam_step` updating ``x``, ``m`` and ``v`` (arrays of the namespace ``xp``)
    in place.

    On NumPy arrays the compiled override (``refconf/train/_optimiser_numba.py``) does it
    in one pass with the same operations in the same order and precision (every constant
    in the arrays' dtype, as NumPy casts a Python float), so the result equals
    :func:`adam_step`'s bit for bit (``tests/test_train.py``); what it saves is NumPy's
    dozen passes over the parameter vector and their temporaries. Other namespaces (CuPy)
    run this readable version and never import numba.
    """
    new_x, new_m, new_v = adam_step(x, g, m, v, step, learning_rate, beta1, beta2, eps,
                                    sqrt=xp.sqrt)
    x[...], m[...], v[...] = new_x, new_m, new_v


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
