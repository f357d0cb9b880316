"""The public checkers (refconf/testing.py) catch real mistakes.

Each test builds a deliberately wrong bijector, adjoint or VJP, of the kinds reported
against other flow libraries (log-det sign and direction, a missing factor, an inverse
that is almost right), and asserts that the checker raises ``AssertionError``; the
correct counterpart passes the same check, so the failure is due to the mistake.
"""

import numpy as np
import pytest
import scipy.fft
from autograd.extend import defvjp, primitive

from refconf import CircularConv, SymmetricConv
from refconf.bijectors.base import Bijector
from refconf.primitives import dct1, irfft
from refconf.reference import dct1_matrix, dft_matrix
from refconf.spectral import circular_conv, circular_deconv, symmetric_conv, symmetric_deconv
from refconf.testing import check_bijector, check_vjp, default_tolerance, dot_test

from . import strategies as S

RNG = np.random.default_rng(2024)
L = 7
W_HAT = S.symmetric_spectrum(RNG, (L,))
X = RNG.normal(size=(3, L))


class Faulty(Bijector):
    """A symmetric convolution with switchable mistakes."""

    def __init__(self, w_hat, mistake=None):
        self.w_hat = w_hat
        self.mistake = mistake
        self.event_shape = (np.size(w_hat),)

    def _log_det(self, x):
        ld = np.sum(np.log(np.abs(self.w_hat)))
        if self.mistake == "sign":
            ld = -ld
        if self.mistake == "missing_term":
            ld = np.sum(np.log(np.abs(self.w_hat[1:])))
        return ld * np.ones(np.shape(x)[:-1])

    def _forward(self, x):
        return symmetric_conv(x, self.w_hat), self._log_det(x)

    def _inverse(self, y):
        w_hat = self.w_hat * (1 + 1e-6) if self.mistake == "inverse" else self.w_hat
        ld = -self._log_det(y)
        if self.mistake == "inverse_log_det_sign":
            ld = -ld
        if self.mistake == "log_det_over_batch":
            ld = np.sum(ld)
        return symmetric_deconv(y, w_hat), ld


def test_the_correct_bijector_passes():
    report = check_bijector(Faulty(W_HAT), X)
    assert max(report.values()) < 1e-12


@pytest.mark.parametrize("mistake, law", [
    ("sign", "slogdet of the dense Jacobian"),
    ("missing_term", "slogdet of the dense Jacobian"),
    ("inverse", r"inverse\(forward\(x\)\) != x"),
    ("inverse_log_det_sign", "inverse log_det != -forward log_det"),
    ("log_det_over_batch", r"inverse log_det has shape \(\)"),
])
def test_check_bijector_catches_each_mistake(mistake, law):
    with pytest.raises(AssertionError, match=law):
        check_bijector(Faulty(W_HAT, mistake), X)


def test_log_of_a_negative_eigenvalue_is_caught():
    """log(w_hat) instead of log|w_hat| (w_hat has mixed signs: the real part of the
    complex log equals log|w_hat|, so the mistake is in what gets dropped)."""
    assert np.any(W_HAT < 0)

    class NoAbs(Faulty):
        def _log_det(self, x):
            with np.errstate(invalid="ignore"):
                return np.nansum(np.log(self.w_hat)) * np.ones(np.shape(x)[:-1])

    with pytest.raises(AssertionError, match="slogdet of the dense Jacobian"):
        check_bijector(NoAbs(W_HAT), X)


def test_half_spectrum_log_det_without_the_interior_weights_is_caught():
    """Summing log|W| over the rfft bins only (forgetting the conjugate bins)."""

    class HalfCounted(CircularConv):
        def _log_det(self):
            return np.sum(np.log(np.abs(self.w_half)))

    w, _ = S.circular_kernel_of_shape(RNG, (6,), 1)
    check_bijector(CircularConv(w), RNG.normal(size=(2, 6)))
    with pytest.raises(AssertionError, match="slogdet of the dense Jacobian"):
        check_bijector(HalfCounted(w), RNG.normal(size=(2, 6)))


def test_orthonormal_forward_with_unnormalised_inverse_is_caught():
    """docs/theory/symmetric-convolution.md: never mix norm="ortho" with the unnormalised pair."""

    class Mixed(Faulty):
        def _forward(self, x):
            Q = lambda a: scipy.fft.dct(a, type=1, norm="ortho")
            return Q(self.w_hat * Q(x)), self._log_det(x)

    with pytest.raises(AssertionError):
        check_bijector(Mixed(W_HAT), X, jacobian=False)


def test_non_finite_output_is_caught():
    class Overflowing(Faulty):
        def _inverse(self, y):
            x, ld = super()._inverse(y)
            return x * np.inf, ld

    with pytest.raises(AssertionError, match="inverse output has NaN or infinite values"):
        check_bijector(Overflowing(W_HAT), X)


def test_float32_tolerance_still_catches_a_one_percent_log_det_error():
    class OffByOnePercent(Faulty):
        def _log_det(self, x):
            return 1.01 * super()._log_det(x)

    w32, x32 = W_HAT.astype(np.float32), X.astype(np.float32)
    assert default_tolerance(np.float32) < 1e-2 * np.abs(np.sum(np.log(np.abs(W_HAT))))
    check_bijector(SymmetricConv(w32), x32)
    with pytest.raises(AssertionError, match="slogdet of the dense Jacobian"):
        check_bijector(OffByOnePercent(w32), x32)


# --- dot test -----------------------------------------------------------------------------


def test_dot_test_catches_the_matrix_used_as_its_own_transpose():
    C = dct1_matrix(L)
    dot_test(dct1, np.zeros(L), adjoint=lambda y: C.T @ y)
    with pytest.raises(AssertionError, match="dot test"):
        dot_test(dct1, np.zeros(L), adjoint=lambda y: C @ y)


def test_dot_test_catches_an_adjoint_that_ignores_imaginary_parts():
    n = 6
    F = dft_matrix(n)[: n // 2 + 1]
    rfft_map = lambda x: F @ x
    dot_test(rfft_map, np.zeros(n), adjoint=lambda y: (np.conj(F).T @ y).real)
    with pytest.raises(AssertionError, match="dot test"):
        dot_test(rfft_map, np.zeros(n), adjoint=lambda y: (np.conj(F).T @ y.real).real)


def test_dot_test_catches_a_wrong_adjoint_of_a_convolution():
    _, w_half = S.circular_kernel_of_shape(RNG, (L,), 1)
    conv = lambda x: circular_conv(x, w_half)
    # the adjoint of a circular convolution is the correlation, conv by conj(W)
    dot_test(conv, np.zeros(L), adjoint=lambda y: circular_conv(y, np.conj(w_half)))
    with pytest.raises(AssertionError, match="dot test"):
        dot_test(conv, np.zeros(L), adjoint=conv)
    with pytest.raises(AssertionError, match="dot test"):
        dot_test(conv, np.zeros(L), adjoint=lambda y: circular_deconv(y, w_half))


# --- VJPs of custom primitives ------------------------------------------------------------


@primitive
def dct1_wrong_vjp(x):
    return dct1(x)


# the VJP of C treated as if C were symmetric: the end weights 2a are forgotten
defvjp(dct1_wrong_vjp, lambda ans, x: lambda g: dct1(g))


@primitive
def irfft_missing_weights(X, n):
    return irfft(X, n)


# forgets that interior bins stand for two conjugate bins (factor c_k = 2)
defvjp(irfft_missing_weights,
       lambda ans, X, n: lambda g: np.fft.ifft(g)[: X.shape[-1]])


def test_check_vjp_catches_a_dct1_vjp_that_ignores_the_end_weights():
    np.random.seed(0)
    x = np.random.normal(size=L)
    check_vjp(dct1, x, order=2)
    with pytest.raises(AssertionError, match="VJP"):
        check_vjp(dct1_wrong_vjp, x)
    with pytest.raises(AssertionError, match="dot test"):
        dot_test(dct1_wrong_vjp, x)


@pytest.mark.parametrize("n", [5, 6])
def test_check_vjp_catches_an_irfft_vjp_without_the_interior_weights(n):
    np.random.seed(n)
    X = np.random.normal(size=n // 2 + 1) + 1j * np.random.normal(size=n // 2 + 1)
    check_vjp(lambda V: irfft(V, n), X, order=2)
    with pytest.raises(AssertionError, match="VJP"):
        check_vjp(lambda V: irfft_missing_weights(V, n), X)
    with pytest.raises(AssertionError, match="dot test"):
        dot_test(lambda V: irfft_missing_weights(V, n), X)
