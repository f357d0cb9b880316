"""Self-checks of the reference tier (refconf/reference.py), the oracle of every other test.

Each oracle is checked against something independent of refconf: numpy's FFT, scipy's
DCT, explicit loops, or an algebraic identity (separability, even extensions).
"""

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.fft
from hypothesis import given

from refconf.reference import (
    circulant_matrix,
    circular_conv2_direct,
    circular_conv_direct,
    dct1_matrix,
    dense_jacobian,
    dft_matrix,
    log_abs_det_dense,
    symmetric_conv2_direct,
    symmetric_conv_direct,
    symmetric_extension,
)

from . import strategies as S


@pytest.mark.parametrize("N", [1, 2, 3, 8, 9])
def test_dft_matrix_is_numpy_fft(N):
    rng = np.random.default_rng(N)
    x = rng.normal(size=N) + 1j * rng.normal(size=N)
    np.testing.assert_allclose(dft_matrix(N) @ x, np.fft.fft(x), atol=1e-12)


@pytest.mark.parametrize("L", [2, 3, 4, 9, 16])
def test_dct1_matrix_is_scipy_dct_type1(L):
    np.testing.assert_allclose(dct1_matrix(L), scipy.fft.dct(np.eye(L), type=1, axis=0),
                               atol=1e-12)


def test_dct1_matrix_small_case_by_hand():
    # L = 3 (N = 2): rows k = 0, 1, 2 of x0 + (-1)^k x2 + 2 x1 cos(pi k / 2)
    np.testing.assert_allclose(dct1_matrix(3), [[1, 2, 1], [1, 0, -1], [1, -2, 1]], atol=1e-15)


@given(seed=S.seeds(), N=S.lengths(1, 12))
def test_circulant_matrix_is_the_direct_circular_sum_and_numpy_fft(seed, N):
    rng = S.rng_from(seed)
    x, w = rng.normal(size=(3, N)), rng.normal(size=N)
    A = circulant_matrix(w)
    for n in range(N):
        for m in range(N):
            assert A[n, m] == w[(n - m) % N]
    direct = circular_conv_direct(x, w)
    np.testing.assert_allclose(x @ A.T, direct, atol=1e-12)
    np.testing.assert_allclose(np.fft.ifft(np.fft.fft(w) * np.fft.fft(x)).real, direct, atol=1e-12)
    # the DFT diagonalises the circulant matrix with eigenvalues fft(w)
    F = dft_matrix(N)
    np.testing.assert_allclose(F @ A @ np.linalg.inv(F), np.diag(np.fft.fft(w)), atol=1e-10)


@given(seed=S.seeds(), H=S.lengths(1, 5), W=S.lengths(1, 5))
def test_circular_conv2_direct_is_numpy_fft2(seed, H, W):
    rng = S.rng_from(seed)
    x, w = rng.normal(size=(2, H, W)), rng.normal(size=(H, W))
    expected = np.fft.ifft2(np.fft.fft2(w) * np.fft.fft2(x)).real
    np.testing.assert_allclose(circular_conv2_direct(x, w), expected, atol=1e-12)


def test_symmetric_extension_written_out():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(symmetric_extension(x), [1, 2, 3, 4, 5, 4, 3, 2])
    np.testing.assert_array_equal(symmetric_extension(np.array([7.0, 8.0])), [7, 8])
    y = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(symmetric_extension(y, axis=0), [[0, 1], [2, 3], [4, 5], [2, 3]])


@given(seed=S.seeds(), L=S.lengths(2, 12))
def test_symmetric_conv_direct_is_even_and_diagonalised_by_dct1(seed, L):
    """The circular convolution of two even extensions is even (so cropping loses
    nothing), and the DCT-I matrix diagonalises it: C (w *_s x) = (C w) * (C x)."""
    rng = S.rng_from(seed)
    x, w = rng.normal(size=L), rng.normal(size=L)
    full = circular_conv_direct(symmetric_extension(x), symmetric_extension(w))
    y = symmetric_conv_direct(x, w)
    np.testing.assert_allclose(full, symmetric_extension(y), atol=1e-12)
    C = dct1_matrix(L)
    np.testing.assert_allclose(C @ y, (C @ w) * (C @ x), atol=1e-10)


@given(seed=S.seeds(), H=S.lengths(2, 5), W=S.lengths(2, 5))
def test_symmetric_conv2_direct_of_separable_signals_factorises(seed, H, W):
    rng = S.rng_from(seed)
    a, c = rng.normal(size=(2, H))
    b, d = rng.normal(size=(2, W))
    got = symmetric_conv2_direct(np.outer(c, d), np.outer(a, b))
    expected = np.outer(symmetric_conv_direct(c, a), symmetric_conv_direct(d, b))
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_dense_jacobian_and_log_abs_det_of_known_maps():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    x = rng.normal(size=(2, 3))
    J = dense_jacobian(lambda v: anp.reshape(anp.dot(A, anp.reshape(v, 6)), (2, 3)), x)
    np.testing.assert_allclose(J, A, atol=1e-14)
    np.testing.assert_allclose(log_abs_det_dense(lambda v: anp.dot(A, v), x.ravel()),
                               np.linalg.slogdet(A)[1], atol=1e-12)
    # a non-linear elementwise map: log|det| = sum log|f'(x)|
    v = rng.normal(size=5)
    np.testing.assert_allclose(log_abs_det_dense(lambda u: anp.sinh(2 * u), v),
                               np.sum(np.log(2 * np.cosh(2 * v))), atol=1e-12)
