"""Bad input at every public boundary raises ValueError with a message that says what
was wrong (``docs/architecture.md``, "Bad input"). Each ``match`` names the problem,
so a generic error from deep inside numpy would not pass."""

import autograd.numpy as anp
import numpy as np
import pytest

from refconf import (
    ActNorm,
    Chain,
    CircularConv,
    ElementwiseFromRegularizer,
    Inverse,
    Invertible1x1,
    Permutation,
    Reverse,
    Scale,
    Shift,
    SLog,
    SymmetricConv,
)
from refconf.bijectors import Logit
from refconf.primitives import dct1, dct1_2d, dct1_via_rfft, idct1, idct1_via_irfft
from refconf.reference import dct1_matrix
from refconf.spectral import (
    circular_conv,
    circular_deconv,
    circular_log_abs_det,
    circular_spectrum,
    symmetric_conv,
    symmetric_deconv,
    symmetric_spectrum,
)

from . import strategies as S

RNG = np.random.default_rng(0)
W_HAT = S.symmetric_spectrum(RNG, (5,))
W_CIRC, W_HALF = S.circular_kernel_of_shape(RNG, (6,), 1)


def _bijectors():
    """One instance of every public bijector, with the event shape it expects."""
    params = S.invertible_1x1_params(RNG, 5)
    return {
        "SymmetricConv": (SymmetricConv(W_HAT), (5,)),
        "SymmetricConv2d": (SymmetricConv(S.symmetric_spectrum(RNG, (3, 4)), ndim=2), (3, 4)),
        "CircularConv": (CircularConv(W_CIRC), (6,)),
        "CircularConvHalf": (CircularConv.from_half_spectrum(W_HALF, 6), (6,)),
        "SLog": (SLog(1.5), (5,)),
        "SLogPerElement": (SLog(S.slog_alpha(RNG, (5,))), (5,)),
        "Scale": (Scale(S.scale_factors(RNG, (5,))), (5,)),
        "Shift": (Shift(RNG.normal(size=5)), (5,)),
        "Logit": (Logit(0.05), (5,)),
        "ElementwiseFromRegularizer": (ElementwiseFromRegularizer(lambda y: 0.5 * anp.abs(y)), (2,)),
        "Permutation": (Permutation(S.permutation(RNG, 5)), (5,)),
        "Reverse": (Reverse(), (5,)),
        "Invertible1x1": (Invertible1x1(**params), (5,)),
        "ActNorm": (ActNorm(**S.actnorm_params(RNG, (5,))), (5,)),
        "Chain": (Chain([SymmetricConv(W_HAT), SLog(0.5)]), (5,)),
        "Inverse": (Inverse(SymmetricConv(W_HAT)), (5,)),
    }


BIJECTORS = _bijectors()


@pytest.mark.parametrize("name", sorted(BIJECTORS))
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_integer_nan_and_inf_data_are_rejected(name, direction):
    bijector, event = BIJECTORS[name]
    method = getattr(bijector, direction)
    with pytest.raises(ValueError, match="expected a real floating-point array.*int"):
        method(np.ones((2,) + event, dtype=np.int64))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones((2,) + event)
        x[1, ...] = 0.5
        x.reshape(-1)[-1] = bad
        with pytest.raises(ValueError, match="1 NaN or infinite value"):
            method(x)


WRONG_SHAPE = (r"expected trailing event shape \(5,\)|applied to an axis of length 6"
               r"|shape \(5,\) does not broadcast over the event shape \(6,\)")


@pytest.mark.parametrize("name", sorted(set(BIJECTORS) - {"SLog", "Logit", "Reverse",
                                                          "SymmetricConv2d",
                                                          "CircularConv", "CircularConvHalf",
                                                          "ElementwiseFromRegularizer"}))
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_wrong_event_shapes_are_rejected(name, direction):
    """Every bijector with a fixed event size (5 here) names the size it expected (the
    excluded ones act on any event size, or have their own test below)."""
    bijector, event = BIJECTORS[name]
    assert event == (5,)
    with pytest.raises(ValueError, match=WRONG_SHAPE):
        getattr(bijector, direction)(np.ones((2, 6)))


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_wrong_image_and_ring_sizes_are_rejected(direction):
    conv, _ = BIJECTORS["SymmetricConv2d"]
    with pytest.raises(ValueError, match=r"expected trailing event shape \(3, 4\).*\(2, 3, 5\)"):
        getattr(conv, direction)(np.ones((2, 3, 5)))
    for name in ("CircularConv", "CircularConvHalf"):
        conv, _ = BIJECTORS[name]
        with pytest.raises(ValueError, match=r"expected trailing event shape \(6,\)"):
            getattr(conv, direction)(np.ones((2, 7)))


def test_too_few_axes_are_rejected():
    bijector, _ = BIJECTORS["SymmetricConv2d"]
    with pytest.raises(ValueError, match="expected at least 2 axes"):
        bijector.forward(np.ones(4))


# --- primitives ---------------------------------------------------------------------------


@pytest.mark.parametrize("fun", [dct1, idct1, dct1_via_rfft, idct1_via_irfft])
def test_dct1_needs_two_samples(fun):
    with pytest.raises(ValueError, match="DCT-I needs at least 2 samples.*got 1"):
        fun(np.ones((3, 1)))


def test_dct1_needs_two_samples_along_the_given_axis():
    with pytest.raises(ValueError, match="along axis 0, got 1"):
        dct1(np.ones((1, 4)), axis=0)
    with pytest.raises(ValueError, match="got 1"):
        dct1_2d(np.ones((1, 4)))
    with pytest.raises(ValueError, match="needs L >= 2"):
        dct1_matrix(1)


# --- spectral functions -------------------------------------------------------------------


def test_spectral_functions_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"symmetric_conv.*\(6,\).*expected \(5,\)"):
        symmetric_conv(np.ones((2, 6)), W_HAT)
    with pytest.raises(ValueError, match=r"symmetric_deconv.*expected \(5,\)"):
        symmetric_deconv(np.ones((2, 6)), W_HAT)
    with pytest.raises(ValueError, match=r"half spectrum with trailing shape \(4,\).*got \(3,\)"):
        circular_conv(np.ones((2, 6)), W_HALF[:3])
    with pytest.raises(ValueError, match=r"circular_deconv.*trailing shape \(5,\).*got \(4,\)"):
        circular_deconv(np.ones((2, 8)), W_HALF)
    with pytest.raises(ValueError, match="length 7 has 4 half-spectrum bins, got 3"):
        circular_log_abs_det(W_HALF[:3], 7)


def test_spectral_functions_reject_bad_ndim():
    for fun, args in [(symmetric_conv, (np.ones(5), W_HAT)), (symmetric_spectrum, (W_HAT,)),
                      (circular_spectrum, (W_CIRC,)), (circular_conv, (np.ones(6), W_HALF))]:
        with pytest.raises(ValueError, match="ndim must be 1 .* or 2 .*got 3"):
            fun(*args, ndim=3)


@pytest.mark.parametrize("tiny", [0.0, 1e-300, 1e-17])
def test_deconvolutions_reject_zero_and_near_zero_eigenvalues(tiny):
    w_hat = W_HAT.copy()
    w_hat[2] = tiny
    with pytest.raises(ValueError, match="zero or near-zero eigenvalue.*not invertible"):
        symmetric_deconv(np.ones(5), w_hat)
    w_half = W_HALF.copy()
    w_half[1] = tiny
    with pytest.raises(ValueError, match="1 zero or near-zero eigenvalue"):
        circular_deconv(np.ones(6), w_half)
    w_hat_2d = S.symmetric_spectrum(RNG, (3, 4))
    w_hat_2d[1, 2] = tiny
    with pytest.raises(ValueError, match="near-zero eigenvalue"):
        symmetric_deconv(np.ones((3, 4)), w_hat_2d, ndim=2)


def test_deconvolutions_reject_non_finite_spectra():
    w_hat = W_HAT.copy()
    w_hat[0] = np.nan
    with pytest.raises(ValueError, match="non-finite eigenvalues"):
        symmetric_deconv(np.ones(5), w_hat)
    w_half = W_HALF.copy()
    w_half[0] = np.inf
    with pytest.raises(ValueError, match="non-finite eigenvalues"):
        circular_deconv(np.ones(6), w_half)


def test_a_per_sample_spectrum_is_checked_sample_by_sample():
    """A small eigenvalue is judged against the largest of its own event, not the batch."""
    w_hat = np.stack([W_HAT, 1e-20 * W_HAT])
    y = symmetric_deconv(np.ones((2, 5)), w_hat)  # both events are well conditioned
    assert np.all(np.isfinite(y))
    w_hat[1, 3] = 0.0
    with pytest.raises(ValueError, match="near-zero eigenvalue"):
        symmetric_deconv(np.ones((2, 5)), w_hat)


# --- convolution bijectors ----------------------------------------------------------------


def test_convolution_constructors_reject_bad_kernels():
    for cls in (SymmetricConv, CircularConv):
        with pytest.raises(ValueError, match=r"expected a kernel of shape \(L,\) or \(C, L\)"):
            cls(np.ones((2, 3, 4)))
        with pytest.raises(ValueError, match="ndim must be 1 or 2"):
            cls(np.ones(4), ndim=3)
        with pytest.raises(ValueError, match="NaN or infinite"):
            cls(np.array([1.0, np.nan, 2.0]))
        with pytest.raises(ValueError, match=r"\(H, W\) or \(C, H, W\)"):
            cls(np.ones(4), ndim=2)


def test_convolution_inverses_reject_singular_kernels():
    w_hat = W_HAT.copy()
    w_hat[1] = 0.0
    conv = SymmetricConv(w_hat)  # the forward map exists (it is singular, not undefined)
    with pytest.raises(ValueError, match="zero or near-zero eigenvalue"):
        conv.inverse(np.ones((2, 5)))
    # w = [1, -1, 1, -1] has W(0) = 0
    with pytest.raises(ValueError, match="zero or near-zero eigenvalue"):
        CircularConv(np.array([1.0, -1.0, 1.0, -1.0])).inverse(np.ones((2, 4)))
    w_half = W_HALF.copy()
    w_half[-1] = 1e-18
    with pytest.raises(ValueError, match="near-zero eigenvalue"):
        CircularConv.from_half_spectrum(w_half, 6).inverse(np.ones((1, 6)))


def test_from_half_spectrum_rejects_non_hermitian_spectra():
    for n in (5, 6):
        _, w_half = S.circular_kernel_of_shape(RNG, (n,), 1)
        bad = w_half.copy()
        bad[0] += 0.5j
        with pytest.raises(ValueError, match="not the spectrum of a real kernel"):
            CircularConv.from_half_spectrum(bad, n)
    bad = W_HALF.copy()
    bad[-1] += 0.5j  # the Nyquist bin of an even length
    with pytest.raises(ValueError, match="DC and Nyquist, must have zero imaginary part"):
        CircularConv.from_half_spectrum(bad, 6)
    # 2-D: the k2 = 0 column must be Hermitian along the first axis
    _, w_half_2d = S.circular_kernel_of_shape(RNG, (4, 5), 2)
    bad = w_half_2d.copy()
    bad[1, 0] *= np.exp(0.3j)
    with pytest.raises(ValueError, match="not the spectrum of a real kernel"):
        CircularConv.from_half_spectrum(bad, 5, ndim=2)
    with pytest.raises(ValueError, match="length-6 signal has 4 half-spectrum bins, got 3"):
        CircularConv.from_half_spectrum(W_HALF[:3], 6)


# --- elementwise --------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, -1.0, np.nan, np.inf, np.array([1.0, -0.5, 2.0])])
def test_slog_rejects_non_positive_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be finite and > 0"):
        SLog(alpha)


@pytest.mark.parametrize("alpha, y", [(1.0, 710.0), (2.0, 360.0), (0.01, 70850.0)])
def test_slog_inverse_overflow_is_reported(alpha, y):
    """Including a small alpha, where expm1(a|y|) is finite but dividing by a overflows."""
    with pytest.raises(ValueError, match="would overflow"):
        SLog(alpha).inverse(np.array([[0.5, -y]]))
    with pytest.raises(ValueError, match="would overflow"):
        Inverse(SLog(alpha)).forward(np.array([[y]]))


def test_slog_inverse_overflow_limit_follows_the_dtype():
    y = np.array([[100.0]], dtype=np.float32)  # exp(100) overflows float32, not float64
    with pytest.raises(ValueError, match="would overflow"):
        SLog(np.float32(1.0)).inverse(y)
    assert np.isfinite(SLog(1.0).inverse(y.astype(np.float64))[0]).all()


@pytest.mark.parametrize("s", [np.array([1.0, 0.0, 2.0]), np.array([1.0, np.nan, 2.0]), 0.0])
def test_scale_rejects_zero_and_non_finite_factors(s):
    with pytest.raises(ValueError, match="finite and non-zero"):
        Scale(s)


@pytest.mark.parametrize("lam", [0.0, 0.5, -0.1, 1.0])
def test_logit_rejects_lam_outside_the_open_interval(lam):
    with pytest.raises(ValueError, match=r"lam must lie in \(0, 0.5\)"):
        Logit(lam)


@pytest.mark.parametrize("bad", [-0.01, 1.5])
def test_logit_rejects_data_outside_the_unit_interval(bad):
    with pytest.raises(ValueError, match=r"data must lie in \[0, 1\]"):
        Logit(0.05).forward(np.array([[0.2, bad, 0.7]]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_lemma1_reports_overflow_of_its_quadrature():
    lemma = ElementwiseFromRegularizer(lambda y: anp.abs(y) ** 3)
    with pytest.raises(ValueError, match="overflowed"):
        lemma.inverse(np.array([[20.0]]))


# --- mixing -------------------------------------------------------------------------------


@pytest.mark.parametrize("perm", [[0, 0, 1], [1, 2, 3], [[0, 1], [1, 0]], [0, 2]])
def test_permutation_rejects_non_permutations(perm):
    with pytest.raises(ValueError, match="expected a permutation of 0..n-1"):
        Permutation(perm)


def test_mixing_layers_reject_wrong_sizes_and_event_ndims():
    with pytest.raises(ValueError, match="Permutation of 3 entries applied to an axis of length 4"):
        Permutation([2, 0, 1]).forward(np.ones((1, 4)))
    with pytest.raises(ValueError, match="expected event_ndim 1 .* or 3"):
        Reverse(event_ndim=2)
    with pytest.raises(ValueError, match="expected event_ndim 1 .* or 3"):
        ActNorm(np.zeros(3), np.zeros(3), event_ndim=2)
    params = Invertible1x1.random_params(3, random_state=0)
    with pytest.raises(ValueError, match=r"lower must have shape \(3, 3\)"):
        Invertible1x1(**{**params, "lower": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"log_s must have shape \(3,\)"):
        Invertible1x1(**{**params, "log_s": np.zeros(4)})
    with pytest.raises(ValueError, match="Invertible1x1 of 3 channels applied to an axis of length 2"):
        Invertible1x1(**params, event_ndim=3).forward(np.ones((1, 2, 4, 4)))


def test_chain_needs_a_bijector():
    with pytest.raises(ValueError, match="at least one bijector"):
        Chain([])
