"""Symmetric (DCT-I) and circular (DFT) convolutions of refconf/spectral.py against the
reference tier: direct sums, circulant and DCT-I matrices, dense Jacobians
(``docs/theory/circular-convolution.md``, ``docs/theory/symmetric-convolution.md``)."""

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.fft
from hypothesis import given
from hypothesis import strategies as st

from refconf.primitives import dct1, dct1_2d, idct1
from refconf.reference import (
    circulant_matrix,
    circular_conv2_direct,
    circular_conv_direct,
    dct1_matrix,
    dense_jacobian,
    symmetric_conv2_direct,
    symmetric_conv_direct,
)
from refconf.spectral import (
    circular_conv,
    circular_deconv,
    circular_kernel,
    circular_log_abs_det,
    circular_spectrum,
    symmetric_conv,
    symmetric_deconv,
    symmetric_log_abs_det,
    symmetric_spectrum,
)
from refconf.testing import check_vjp

from . import strategies as S


def _rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(1.0, np.max(np.abs(b)))


def symmetric_jacobian_1d(w_hat):
    """``C^{-1} diag(w_hat) C`` from the eq. (2) matrix."""
    C = dct1_matrix(np.size(w_hat))
    return np.linalg.solve(C, np.diag(w_hat) @ C)


def symmetric_jacobian_2d(w_hat):
    """``(C_H (x) C_W)^{-1} diag(vec W_hat) (C_H (x) C_W)`` acting on row-major images."""
    H, W = np.shape(w_hat)
    C = np.kron(dct1_matrix(H), dct1_matrix(W))
    return np.linalg.solve(C, np.diag(np.ravel(w_hat)) @ C)


def circular_jacobian_2d(w):
    """The doubly block-circulant matrix of a 2-D kernel, column by column from the
    direct double sum."""
    H, W = np.shape(w)
    basis = np.eye(H * W).reshape(H * W, H, W)
    return circular_conv2_direct(basis, w).reshape(H * W, H * W).T


# --- symmetric convolution ----------------------------------------------------------------


@given(seed=S.seeds(), L=S.lengths(2, 17), batch=S.batch_shapes())
def test_symmetric_conv_is_the_direct_sum_1d(seed, L, batch):
    rng = S.rng_from(seed)
    x, w = rng.normal(size=batch + (L,)), rng.normal(size=L)
    expected = symmetric_conv_direct(x, w)
    assert _rel_err(symmetric_conv(x, symmetric_spectrum(w)), expected) < 1e-12
    # the same through a spectrum drawn first: w = idct1(w_hat)
    w_hat = S.symmetric_spectrum(rng, (L,))
    assert _rel_err(symmetric_conv(x, w_hat), symmetric_conv_direct(x, idct1(w_hat))) < 1e-12


@given(seed=S.seeds(), H=S.image_sides(5), W=S.image_sides(5))
def test_symmetric_conv_is_the_direct_sum_2d(seed, H, W):
    rng = S.rng_from(seed)
    x, w = rng.normal(size=(2, H, W)), rng.normal(size=(H, W))
    w_hat = symmetric_spectrum(w, ndim=2)
    np.testing.assert_allclose(w_hat, scipy.fft.dctn(w, type=1), atol=1e-12)
    assert _rel_err(symmetric_conv(x, w_hat, ndim=2), symmetric_conv2_direct(x, w)) < 1e-12


@given(seed=S.seeds(), L=S.lengths(2, 17))
def test_convolution_multiplication_property_has_no_scale_factor(seed, L):
    """dct1(w *_s x) == dct1(w) * dct1(x), on the direct sum (eq. 2, no 1/(2N))."""
    rng = S.rng_from(seed)
    x, w = rng.normal(size=L), rng.normal(size=L)
    assert _rel_err(dct1(symmetric_conv_direct(x, w)), dct1(w) * dct1(x)) < 1e-11


@given(seed=S.seeds(), shape_ndim=st.one_of(*(S.conv_event_shapes(k) for k in S.CONV_KINDS)),
       batch=S.batch_shapes())
def test_symmetric_deconv_inverts_symmetric_conv(seed, shape_ndim, batch):
    shape, ndim = shape_ndim
    rng = S.rng_from(seed)
    w_hat, x = S.symmetric_spectrum(rng, shape), rng.normal(size=batch + shape)
    y = symmetric_conv(x, w_hat, ndim)
    assert _rel_err(symmetric_deconv(y, w_hat, ndim), x) < 1e-12
    assert _rel_err(symmetric_conv(symmetric_deconv(x, w_hat, ndim), w_hat, ndim), x) < 1e-12


@given(seed=S.seeds(), L=S.lengths(2, 17))
def test_symmetric_log_det_is_slogdet_of_the_dense_jacobian_1d(seed, L):
    rng = S.rng_from(seed)
    w_hat, x = S.symmetric_spectrum(rng, (L,)), rng.normal(size=L)
    J = dense_jacobian(lambda v: symmetric_conv(v, w_hat), x)
    np.testing.assert_allclose(J, symmetric_jacobian_1d(w_hat), atol=1e-10)
    # w_hat has mixed signs, so log|w_hat| (not log w_hat) is what must match
    np.testing.assert_allclose(symmetric_log_abs_det(w_hat), np.linalg.slogdet(J)[1],
                               rtol=1e-10, atol=1e-10)
    # from L = 3 on, the Jacobian is not symmetric, unlike the orthonormal variant below
    if L >= 3:
        assert np.max(np.abs(J - J.T)) > 1e-3


@given(seed=S.seeds(), H=S.image_sides(5), W=S.image_sides(5))
def test_symmetric_log_det_2d_with_a_non_separable_spectrum(seed, H, W):
    rng = S.rng_from(seed)
    w_hat = S.symmetric_spectrum(rng, (H, W))
    assert np.linalg.matrix_rank(w_hat) >= 2  # not an outer product a (x) b
    x = rng.normal(size=(H, W))
    J = dense_jacobian(lambda v: symmetric_conv(v, w_hat, ndim=2), x)
    np.testing.assert_allclose(J, symmetric_jacobian_2d(w_hat), atol=1e-10)
    np.testing.assert_allclose(symmetric_log_abs_det(w_hat, 2), np.linalg.slogdet(J)[1],
                               rtol=1e-10, atol=1e-10)


def test_symmetric_conv_eigenvectors_are_the_dct1_basis():
    """J C^{-1} e_k = w_hat(k) C^{-1} e_k: the real eigenvalues are the DCT-I bins."""
    rng = np.random.default_rng(5)
    L = 9
    w_hat = S.symmetric_spectrum(rng, (L,))
    V = np.linalg.inv(dct1_matrix(L))
    for k in range(L):
        np.testing.assert_allclose(symmetric_conv(V[:, k], w_hat), w_hat[k] * V[:, k],
                                   atol=1e-12)


def test_orthonormal_dct1_gives_the_same_log_det_but_a_different_map():
    """Q^T diag(w_hat) Q (scipy's norm="ortho") is a valid flow with the same log-det,
    but it is not the symmetric convolution C^{-1} diag(w_hat) C."""
    L = 8
    rng = np.random.default_rng(11)
    w_hat = S.symmetric_spectrum(rng, (L,))
    Q = scipy.fft.dct(np.eye(L), type=1, norm="ortho", axis=0)
    np.testing.assert_allclose(Q.T @ Q, np.eye(L), atol=1e-12)
    np.testing.assert_allclose(Q, Q.T, atol=1e-12)
    M = Q.T @ np.diag(w_hat) @ Q
    J = symmetric_jacobian_1d(w_hat)
    np.testing.assert_allclose(np.linalg.slogdet(M)[1], symmetric_log_abs_det(w_hat), atol=1e-10)
    np.testing.assert_allclose(np.linalg.slogdet(J)[1], symmetric_log_abs_det(w_hat), atol=1e-10)
    x = rng.normal(size=L)
    assert np.max(np.abs(M @ x - symmetric_conv(x, w_hat))) > 1e-2
    np.testing.assert_allclose(J @ x, symmetric_conv(x, w_hat), atol=1e-12)
    # M is symmetric, the symmetric convolution's Jacobian is not
    np.testing.assert_allclose(M, M.T, atol=1e-12)
    assert np.max(np.abs(J - J.T)) > 1e-2


def test_length_one_is_a_scalar_multiply():
    x = np.array([[2.0], [-3.0]])
    np.testing.assert_allclose(symmetric_conv(x, np.array([-1.5])), -1.5 * x)
    np.testing.assert_allclose(symmetric_deconv(x, np.array([-1.5])), x / -1.5)
    np.testing.assert_allclose(symmetric_log_abs_det(np.array([-1.5])), np.log(1.5))
    np.testing.assert_allclose(symmetric_spectrum(np.array([0.7])), [0.7])
    # a 1 x W image is a 1-D convolution along W
    rng = np.random.default_rng(0)
    w_hat, img = S.symmetric_spectrum(rng, (1, 5)), rng.normal(size=(3, 1, 5))
    np.testing.assert_allclose(symmetric_conv(img, w_hat, ndim=2),
                               symmetric_conv(img, w_hat[0]), atol=1e-12)


# --- circular convolution -----------------------------------------------------------------


@given(seed=S.seeds(), N=S.lengths(1, 17), batch=S.batch_shapes())
def test_circular_conv_is_the_direct_sum_and_the_circulant_matrix(seed, N, batch):
    rng = S.rng_from(seed)
    x, w = rng.normal(size=batch + (N,)), rng.normal(size=N)
    y = circular_conv(x, circular_spectrum(w))
    assert _rel_err(y, circular_conv_direct(x, w)) < 1e-12
    assert _rel_err(y, x @ circulant_matrix(w).T) < 1e-12


@given(seed=S.seeds(), H=S.lengths(1, 5), W=S.lengths(1, 5))
def test_circular_conv_2d_is_the_direct_double_sum(seed, H, W):
    rng = S.rng_from(seed)
    x, w = rng.normal(size=(2, H, W)), rng.normal(size=(H, W))
    w_half = circular_spectrum(w, ndim=2)
    np.testing.assert_allclose(w_half, np.fft.rfft2(w), atol=1e-12)
    assert _rel_err(circular_conv(x, w_half, ndim=2), circular_conv2_direct(x, w)) < 1e-12


@given(seed=S.seeds(), shape_ndim=st.one_of(*(S.conv_event_shapes(k) for k in S.CONV_KINDS)),
       batch=S.batch_shapes())
def test_circular_deconv_inverts_circular_conv(seed, shape_ndim, batch):
    shape, ndim = shape_ndim
    rng = S.rng_from(seed)
    w, w_half = S.circular_kernel_of_shape(rng, shape, ndim)
    np.testing.assert_allclose(circular_spectrum(w, ndim), w_half, atol=1e-12)
    x = rng.normal(size=batch + shape)
    y = circular_conv(x, w_half, ndim)
    assert _rel_err(circular_deconv(y, w_half, ndim), x) < 1e-12


@given(seed=S.seeds(), N=S.lengths(1, 17))
def test_circular_log_det_is_slogdet_of_the_circulant_matrix(seed, N):
    """Half-spectrum formula, odd and even N: log|W(0)| + [N even] log|W(N/2)|
    + 2 sum over interior bins, equal to the sum over the full spectrum."""
    rng = S.rng_from(seed)
    w, w_half = S.circular_kernel_of_shape(rng, (N,), 1)
    expected = np.linalg.slogdet(circulant_matrix(w))[1]
    np.testing.assert_allclose(circular_log_abs_det(w_half, N), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.sum(np.log(np.abs(np.fft.fft(w)))), expected, atol=1e-10)
    J = dense_jacobian(lambda v: circular_conv(v, w_half), rng.normal(size=N))
    np.testing.assert_allclose(J, circulant_matrix(w), atol=1e-12)


@pytest.mark.parametrize("N", [4, 5])
def test_half_spectrum_log_det_counts_interior_bins_twice(N):
    """Written out for one odd and one even length."""
    w_half = np.array([2.0, 3.0 + 1.0j, 0.5 - 2.0j]) if N == 5 else np.array([2.0, 3.0 + 1.0j, -0.5])
    if N == 5:
        expected = np.log(2.0) + 2 * np.log(np.abs(3.0 + 1.0j)) + 2 * np.log(np.abs(0.5 - 2.0j))
    else:
        expected = np.log(2.0) + 2 * np.log(np.abs(3.0 + 1.0j)) + np.log(0.5)
    np.testing.assert_allclose(circular_log_abs_det(w_half, N), expected, rtol=1e-14)
    np.testing.assert_allclose(
        np.linalg.slogdet(circulant_matrix(circular_kernel(w_half, N)))[1], expected, rtol=1e-12)


@given(seed=S.seeds(), H=S.lengths(1, 5), W=S.lengths(1, 6))
def test_circular_log_det_2d_with_a_non_separable_spectrum(seed, H, W):
    rng = S.rng_from(seed)
    w, w_half = S.circular_kernel_of_shape(rng, (H, W), 2)
    A = circular_jacobian_2d(w)
    J = dense_jacobian(lambda v: circular_conv(v, w_half, ndim=2), rng.normal(size=(H, W)))
    np.testing.assert_allclose(J, A, atol=1e-10)
    expected = np.linalg.slogdet(A)[1]
    np.testing.assert_allclose(circular_log_abs_det(w_half, W, ndim=2), expected,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.sum(np.log(np.abs(np.fft.fft2(w)))), expected, atol=1e-10)


def test_spectra_of_drawn_2d_kernels_are_not_separable():
    rng = np.random.default_rng(2)
    w, _ = S.circular_kernel_of_shape(rng, (4, 6), 2)
    assert np.linalg.matrix_rank(np.fft.fft2(w), tol=1e-8) >= 2


def test_circular_kernel_inverts_circular_spectrum_and_drops_self_conjugate_imaginary_parts():
    rng = np.random.default_rng(4)
    for n in (5, 6):
        w = rng.normal(size=(2, n))
        np.testing.assert_allclose(circular_kernel(circular_spectrum(w), n), w, atol=1e-12)
        W = circular_spectrum(w)
        W_bad = W.copy()
        W_bad[..., 0] += 0.3j
        if n % 2 == 0:
            W_bad[..., -1] -= 0.7j
        np.testing.assert_allclose(circular_kernel(W_bad, n), w, atol=1e-12)
        x = rng.normal(size=(2, n))
        np.testing.assert_allclose(circular_conv(x, W_bad), circular_conv(x, W), atol=1e-12)


# --- broadcasting -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
def test_depthwise_and_per_sample_kernels_match_a_loop(kind):
    """One spectrum for a batch, (C, L) depthwise kernels, and (B, L) per-sample kernels
    (data-adaptive, as a conditioner produces them)."""
    rng = np.random.default_rng(8)
    B, C, L = 3, 2, 7
    if kind == "symmetric":
        spectra = S.symmetric_spectrum(rng, (B, C, L))
        conv, deconv = symmetric_conv, symmetric_deconv
        log_det = lambda s: symmetric_log_abs_det(s)
    else:
        spectra = S.half_spectrum(rng, (B, C, L), 1)
        conv, deconv = circular_conv, circular_deconv
        log_det = lambda s: circular_log_abs_det(s, L)
    x = rng.normal(size=(B, C, L))
    # one kernel per channel, shared by the batch
    y = conv(x, spectra[0])
    for b in range(B):
        for c in range(C):
            np.testing.assert_allclose(y[b, c], conv(x[b, c], spectra[0, c]), atol=1e-12)
    # one kernel per sample (shape (B, L)) on (B, L) data
    x1 = x[:, 0]
    y1 = conv(x1, spectra[:, 0])
    for b in range(B):
        np.testing.assert_allclose(y1[b], conv(x1[b], spectra[b, 0]), atol=1e-12)
    np.testing.assert_allclose(deconv(y1, spectra[:, 0]), x1, atol=1e-12)
    ld = log_det(spectra[:, 0])
    assert ld.shape == (B,)
    for b in range(B):
        np.testing.assert_allclose(ld[b], log_det(spectra[b, 0]), atol=1e-12)
    # a batch of per-sample, per-channel kernels
    np.testing.assert_allclose(deconv(conv(x, spectra), spectra), x, atol=1e-12)


def test_multi_channel_2d_log_det_sums_channels():
    rng = np.random.default_rng(9)
    shape = (2, 3, 4)
    w_hat = S.symmetric_spectrum(rng, shape)
    per_channel = [symmetric_log_abs_det(w_hat[c], 2) for c in range(2)]
    np.testing.assert_allclose(symmetric_log_abs_det(w_hat, 3), sum(per_channel), atol=1e-12)
    _, w_half = S.circular_kernel_of_shape(rng, shape, 2)
    per_channel = [circular_log_abs_det(w_half[c], 4, ndim=2) for c in range(2)]
    np.testing.assert_allclose(circular_log_abs_det(w_half, 4, ndim=2, event_ndim=3),
                               sum(per_channel), atol=1e-12)
    assert circular_log_abs_det(w_half, 4, ndim=2).shape == (2,)


# --- gradients with respect to the spectrum ----------------------------------------------


@pytest.mark.parametrize("L", [2, 5, 8])
def test_symmetric_gradients_in_spectrum_and_data(L):
    np.random.seed(L)
    rng = np.random.default_rng(L)
    w_hat, x = S.symmetric_spectrum(rng, (L,)), rng.normal(size=(2, L))
    check_vjp(lambda s: symmetric_conv(x, s), w_hat, order=2)
    check_vjp(lambda s: symmetric_deconv(x, s), w_hat, order=2)
    check_vjp(lambda s: symmetric_log_abs_det(s), w_hat, order=2)
    check_vjp(lambda v: anp.tanh(symmetric_conv(v, w_hat)), x, order=2)
    W_hat, image = S.symmetric_spectrum(rng, (3, L)), rng.normal(size=(3, L))
    check_vjp(lambda s: symmetric_conv(image, s, ndim=2), W_hat, order=2)


@pytest.mark.parametrize("n", [2, 5, 8])
def test_circular_gradients_in_the_complex_half_spectrum(n):
    np.random.seed(n)
    rng = np.random.default_rng(n)
    _, w_half = S.circular_kernel_of_shape(rng, (n,), 1)
    x = rng.normal(size=(2, n))
    check_vjp(lambda s: circular_conv(x, s), w_half, order=2)
    check_vjp(lambda s: circular_deconv(x, s), w_half, order=2)
    check_vjp(lambda s: circular_log_abs_det(s, n), w_half, order=2)
    w = rng.normal(size=(3, n))
    check_vjp(lambda k: circular_conv(x[0], circular_spectrum(k)), w[0], order=2)
    check_vjp(lambda k: circular_conv(x, circular_spectrum(k, ndim=2), ndim=2), w[:2], order=2)


def test_gradient_of_the_symmetric_log_det_is_one_over_w_hat():
    import autograd

    w_hat = S.symmetric_spectrum(np.random.default_rng(1), (6,))
    np.testing.assert_allclose(autograd.grad(symmetric_log_abs_det)(w_hat), 1 / w_hat, rtol=1e-14)


def test_dct1_2d_diagonalises_the_2d_symmetric_convolution():
    rng = np.random.default_rng(3)
    w_hat, x = S.symmetric_spectrum(rng, (4, 5)), rng.normal(size=(4, 5))
    np.testing.assert_allclose(dct1_2d(symmetric_conv(x, w_hat, ndim=2)), w_hat * dct1_2d(x),
                               atol=1e-10)
