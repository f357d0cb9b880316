"""Reference tier: textbook oracles, slow on purpose.

Every function here is written straight from its definition (explicit matrices, direct
sums, dense Jacobians) at O(N^2) or O(N^3) cost, so that it is obviously right. The
readable and fast tiers are tested against these; nothing in the library calls them on
a hot path.
"""

import autograd
import numpy as np

__all__ = [
    "dct1_matrix",
    "dft_matrix",
    "circulant_matrix",
    "circular_conv_direct",
    "circular_conv2_direct",
    "symmetric_extension",
    "symmetric_conv_direct",
    "symmetric_conv2_direct",
    "dense_jacobian",
    "log_abs_det_dense",
]


def dct1_matrix(L):
    """The ``L x L`` DCT-I matrix of eq. (2), entry by entry. O(L^2).

    ``C[k, n] = 2 a_n cos(pi k n / N)`` with ``N = L - 1``, ``a_0 = a_N = 1/2`` and
    ``a_n = 1`` otherwise, so ``(C x)(k) = x(0) + (-1)^k x(N) + 2 sum x(n) cos(pi k n/N)``.

    Examples
    --------
    >>> import numpy as np
    >>> np.allclose(dct1_matrix(3), [[1, 2, 1], [1, 0, -1], [1, -2, 1]])
    True
    """
    if L < 2:
        raise ValueError(f"the DCT-I matrix needs L >= 2, got {L}")
    N = L - 1
    k = np.arange(L)[:, None]
    n = np.arange(L)[None, :]
    weight = np.where((n == 0) | (n == N), 1.0, 2.0)
    return weight * np.cos(np.pi * k * n / N)


def dft_matrix(N):
    """The ``N x N`` DFT matrix ``F[k, n] = exp(-2 pi i k n / N)``. O(N^2)."""
    k = np.arange(N)[:, None]
    n = np.arange(N)[None, :]
    return np.exp(-2j * np.pi * k * n / N)


def circulant_matrix(w):
    """Circulant matrix of the real kernel ``w``: ``A[n, m] = w((n - m) mod N)``, so that
    ``A @ x`` is the circular convolution ``w (*) x``. O(N^2)."""
    w = np.asarray(w)
    N = w.shape[-1]
    idx = (np.arange(N)[:, None] - np.arange(N)[None, :]) % N
    return w[idx]


def circular_conv_direct(x, w):
    """Circular convolution by the direct sum ``y(n) = sum_m x(m) w((n - m) mod N)``,
    over the last axis, broadcasting leading axes. O(N^2)."""
    x, w = np.broadcast_arrays(np.asarray(x), np.asarray(w))
    N = x.shape[-1]
    y = np.zeros(x.shape)
    for n in range(N):
        for m in range(N):
            y[..., n] += x[..., m] * w[..., (n - m) % N]
    return y


def circular_conv2_direct(x, w):
    """2-D circular convolution on an ``H x W`` torus by the direct double sum. O((HW)^2)."""
    x, w = np.broadcast_arrays(np.asarray(x), np.asarray(w))
    H, W = x.shape[-2:]
    y = np.zeros(x.shape)
    for n1 in range(H):
        for n2 in range(W):
            for m1 in range(H):
                for m2 in range(W):
                    y[..., n1, n2] += x[..., m1, m2] * w[..., (n1 - m1) % H, (n2 - m2) % W]
    return y


def symmetric_extension(x, axis=-1):
    """Whole-sample even extension along ``axis``, written out element by element:
    ``[x0, ..., xN, x(N-1), ..., x1]`` of length ``2N``."""
    x = np.moveaxis(np.asarray(x), axis, -1)
    N = x.shape[-1] - 1
    ext = np.stack([x[..., n if n <= N else 2 * N - n] for n in range(2 * N)], axis=-1)
    return np.moveaxis(ext, -1, axis)


def symmetric_conv_direct(x, w):
    """Symmetric convolution ``w *_s x``: the first ``L`` samples of the ``2N``-point direct
    circular sum of both whole-sample extensions. ``w`` is the spatial kernel (``L``
    samples). O(N^2)."""
    L = np.shape(x)[-1]
    return circular_conv_direct(symmetric_extension(x), symmetric_extension(w))[..., :L]


def symmetric_conv2_direct(x, w):
    """2-D symmetric convolution: extend both axes, direct 2-D circular sum, crop."""
    H, W = np.shape(x)[-2:]
    ext = lambda a: symmetric_extension(symmetric_extension(a, -1), -2)
    return circular_conv2_direct(ext(x), ext(w))[..., :H, :W]


def dense_jacobian(fun, x):
    """Dense Jacobian of ``fun`` at one sample ``x`` (any event shape), flattened to
    ``(size, size)`` by ``autograd.jacobian``. O(size) reverse passes."""
    x = np.asarray(x)
    J = autograd.jacobian(fun)(x)
    return np.reshape(J, (np.size(fun(x)), x.size))


def log_abs_det_dense(fun, x):
    """``log|det J|`` of ``fun`` at one sample by :func:`dense_jacobian` and
    ``numpy.linalg.slogdet``. O(size^3)."""
    return np.linalg.slogdet(dense_jacobian(fun, x))[1]
