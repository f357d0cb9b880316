"""The transform primitives (refconf/primitives.py) against the reference tier.

Values: DCT-I and its inverse against the eq. (2) matrix and scipy, along any axis and in
2-D; the rfft-of-extension forms against the native DCT-I; an mpmath evaluation of eq. (2)
at 50 digits. Gradients: every primitive's hand-written VJP against finite differences
(``autograd.test_util.check_grads``, second order, reverse mode) and against its adjoint
(dot test), for odd and even lengths.
"""

import autograd.numpy as anp
import mpmath
import numpy as np
import pytest
import scipy.fft
from autograd import make_vjp
from hypothesis import given
from hypothesis import strategies as st

from refconf.primitives import (
    dct1,
    dct1_2d,
    dct1_via_rfft,
    idct1,
    idct1_2d,
    idct1_via_irfft,
    irfft,
    rfft,
    whole_sample_extension,
)
from refconf.reference import dct1_matrix, dft_matrix, symmetric_extension
from refconf.spectral import circular_conv, symmetric_conv
from refconf.testing import check_vjp, dot_test

from . import strategies as S

LENGTHS = [2, 3, 4, 5, 8, 9, 16, 17, 33]


def _rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(1.0, np.max(np.abs(b)))


def _apply_along(matrix, x, axis):
    """``matrix @ x`` along ``axis``, written with einsum (no transform involved)."""
    return np.moveaxis(np.einsum("kn,...n->...k", matrix, np.moveaxis(x, axis, -1)), -1, axis)


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_dct1_and_idct1_match_the_eq2_matrix_along_any_axis(L, axis):
    rng = np.random.default_rng(L)
    shape = [3, 4, 2]
    shape[axis] = L
    x = rng.normal(size=shape)
    C = dct1_matrix(L)
    assert _rel_err(dct1(x, axis=axis), _apply_along(C, x, axis)) < 1e-12
    assert _rel_err(idct1(x, axis=axis), _apply_along(np.linalg.inv(C), x, axis)) < 1e-12
    assert _rel_err(idct1(dct1(x, axis=axis), axis=axis), x) < 1e-12


@pytest.mark.parametrize("L", LENGTHS)
def test_dct1_matrix_inverse_is_dct1_over_2N(L):
    """The identity idct1 relies on: C^{-1} = C / (2N)."""
    C = dct1_matrix(L)
    np.testing.assert_allclose(C @ C / (2 * (L - 1)), np.eye(L), atol=1e-12)


def test_dct1_of_a_small_sequence_in_50_digit_arithmetic():
    """Eq. (2) summed term by term with mpmath at 50 significant digits."""
    mpmath.mp.dps = 50
    L = 7
    N = L - 1
    x = np.random.default_rng(7).normal(size=L)
    xm = [mpmath.mpf(float(v)) for v in x]
    exact = [
        xm[0] + (-1) ** k * xm[N]
        + 2 * mpmath.fsum(xm[n] * mpmath.cos(mpmath.pi * k * n / N) for n in range(1, N))
        for k in range(L)
    ]
    exact = np.array([float(v) for v in exact])
    np.testing.assert_allclose(dct1(x), exact, rtol=0, atol=1e-14 * np.max(np.abs(exact)))
    np.testing.assert_allclose(idct1(exact), x, rtol=0, atol=1e-14 * np.max(np.abs(x)))


@given(seed=S.seeds(), H=S.lengths(2, 9), W=S.lengths(2, 9), batch=S.batch_shapes())
def test_2d_forms_match_scipy_dctn_and_the_kronecker_matrix(seed, H, W, batch):
    x = np.random.default_rng(seed).normal(size=batch + (H, W))
    X = dct1_2d(x)
    assert _rel_err(X, scipy.fft.dctn(x, type=1, axes=(-2, -1))) < 1e-12
    kron = np.kron(dct1_matrix(H), dct1_matrix(W))
    assert _rel_err(X.reshape(batch + (H * W,)), x.reshape(batch + (H * W,)) @ kron.T) < 1e-12
    assert _rel_err(idct1_2d(X), x) < 1e-12


@given(seed=S.seeds(), L=S.lengths(2, 40), batch=S.batch_shapes())
def test_rfft_of_the_whole_sample_extension_is_dct1(seed, L, batch):
    x = np.random.default_rng(seed).normal(size=batch + (L,))
    np.testing.assert_array_equal(whole_sample_extension(x), symmetric_extension(x))
    X = dct1(x)
    spectrum = np.fft.rfft(whole_sample_extension(x))
    # the L bins of the 2N-point DFT of an even sequence are real
    assert np.max(np.abs(spectrum.imag)) <= 1e-12 * max(1.0, np.max(np.abs(X)))
    assert _rel_err(dct1_via_rfft(x), X) < 1e-12
    assert _rel_err(idct1_via_irfft(X), x) < 1e-12
    assert _rel_err(idct1_via_irfft(x), idct1(x)) < 1e-12


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8])
def test_rfft_and_irfft_match_the_dft_matrix(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(2, n))
    F = dft_matrix(n)
    half = n // 2 + 1
    assert _rel_err(rfft(x), (x @ F.T)[:, :half]) < 1e-12
    assert _rel_err(irfft(rfft(x), n), x) < 1e-12
    # irfft is the inverse DFT of the Hermitian completion of the half spectrum
    X = (x @ F.T)
    assert _rel_err(irfft(X[:, :half], n), (X @ np.conj(F)).real / n) < 1e-12


# --- gradients ----------------------------------------------------------------------------


@pytest.mark.parametrize("L", [2, 3, 8, 9])
@pytest.mark.parametrize("axis", [-1, 0])
def test_dct1_and_idct1_vjps_second_order(L, axis):
    np.random.seed(L)
    x = np.random.normal(size=(L, L + 1) if axis == 0 else (3, L))
    check_vjp(lambda v: dct1(v, axis=axis), x, order=2)
    check_vjp(lambda v: idct1(v, axis=axis), x, order=2)
    # a non-linear function of the transforms, so that the second order is not trivial
    check_vjp(lambda v: anp.sin(dct1(v, axis=axis)) * idct1(v**2, axis=axis), x, order=2)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 9])
@pytest.mark.parametrize("axis", [-1, 0])
def test_rfft_vjp_second_order_odd_and_even(n, axis):
    np.random.seed(n)
    x = np.random.normal(size=(n, 3) if axis == 0 else (2, n))
    check_vjp(lambda v: rfft(v, axis=axis), x, order=2)
    check_vjp(lambda v: anp.abs(rfft(v, axis=axis)) ** 2, x, order=2)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 9])
@pytest.mark.parametrize("axis", [-1, 0])
def test_irfft_vjp_second_order_complex_input(n, axis):
    np.random.seed(n + 100)
    shape = (n // 2 + 1, 3) if axis == 0 else (2, n // 2 + 1)
    X = np.random.normal(size=shape) + 1j * np.random.normal(size=shape)
    check_vjp(lambda V: irfft(V, n, axis=axis), X, order=2)
    check_vjp(lambda V: irfft(V, n, axis=axis) ** 3, X, order=2)


def test_2d_transform_vjps_second_order():
    np.random.seed(3)
    x = np.random.normal(size=(2, 5, 4))
    check_vjp(dct1_2d, x, order=2)
    check_vjp(idct1_2d, x, order=2)
    check_vjp(lambda v: anp.cos(dct1_2d(v)), x, order=2)


def test_check_grads_runs_several_random_directions():
    """check_grads draws one direction per call: repeat to cover more of the space."""
    for seed in range(5):
        np.random.seed(seed)
        check_vjp(dct1, np.random.normal(size=6), order=1)
        check_vjp(lambda V: irfft(V, 6), np.random.normal(size=4) + 1j, order=1)


# --- adjoints -----------------------------------------------------------------------------


@pytest.mark.parametrize("L", [2, 3, 8, 9])
def test_dot_tests_of_dct1_and_idct1(L):
    C = dct1_matrix(L)
    x = np.zeros((2, L))
    for fun, matrix in [(dct1, C), (idct1, np.linalg.inv(C))]:
        dot_test(fun, x)                                          # the VJP
        dot_test(fun, x, adjoint=lambda y, M=matrix: y @ M)       # the reference transpose
    dot_test(lambda v: dct1(v, axis=0), np.zeros((L, 3)))


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_dot_tests_of_rfft_and_irfft(n):
    half = n // 2 + 1
    F = dft_matrix(n)[:half]
    dot_test(rfft, np.zeros((2, n)))
    # adjoint under Re<u, v>: x -> Re(F^H y)
    dot_test(rfft, np.zeros((2, n)), adjoint=lambda y: (y @ np.conj(F)).real)
    dot_test(lambda X: irfft(X, n), np.zeros((2, half), dtype=complex))
    dot_test(lambda X: irfft(X, n, axis=0), np.zeros((half, 3), dtype=complex))


@given(seed=S.seeds(), L=S.lengths(2, 12), kind=st.sampled_from(["symmetric", "circular"]))
def test_dot_tests_of_the_convolutions_as_linear_maps_in_x(seed, L, kind):
    from refconf.reference import circulant_matrix

    rng = S.rng_from(seed)
    if kind == "symmetric":
        w_hat = S.symmetric_spectrum(rng, (L,))
        linear = lambda x: symmetric_conv(x, w_hat)
        C = dct1_matrix(L)
        J = np.linalg.solve(C, np.diag(w_hat) @ C)
    else:
        w, w_half = S.circular_kernel_of_shape(rng, (L,), 1)
        linear = lambda x: circular_conv(x, w_half)
        J = circulant_matrix(w)
    x = np.zeros((2, L))
    dot_test(linear, x, random_state=seed % 1000)
    dot_test(linear, x, adjoint=lambda y: y @ J, random_state=seed % 1000)


def test_vjp_of_dct1_is_the_transpose_not_the_matrix():
    """C is not symmetric: the VJP must apply C^T, which differs from C."""
    L = 6
    C = dct1_matrix(L)
    assert np.max(np.abs(C - C.T)) > 0.5
    g = np.random.default_rng(0).normal(size=L)
    vjp, _ = make_vjp(dct1)(np.zeros(L))
    np.testing.assert_allclose(vjp(g), C.T @ g, atol=1e-12)
    assert np.max(np.abs(vjp(g) - C @ g)) > 0.1
