"""Bad input at every public boundary raises ValueError with a message that says what
was wrong (``docs/architecture.md``, "Bad input"). Each ``match`` names the problem,
so a generic error from deep inside numpy would not pass. The command line's catalogue (at
the end) checks one line on stderr, the exit code, and that no file changed."""

import hashlib
import os
import re
import shutil

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
from refconf.cli import main
from refconf.params import save_checkpoint
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


# --- the command line: the catalogue of bad invocations -----------------------------------
#
# Each row: an id, the words after `refconf` ({d} is a folder prepared by `cli_template`), the
# exit code and a pattern of the one-line message. Every row also checks that no file of the
# folder changed and none appeared (nothing destroyed, nothing half-written).



TINY = ["--steps", "2", "--m", "1", "--hidden", "8", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def cli_template(tmp_path_factory):
    """A folder of good and bad inputs, a trained model and its checkpoint."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    np.save(d / "data.npy", X)
    np.savetxt(d / "data.csv", X, delimiter=",")
    np.save(d / "val.npy", X[:50])
    assert main(["train", str(d / "data.npy"), "--out", str(d / "m.npz"),
                 "--checkpoint", str(d / "ckpt.npz"), *TINY]) == 0
    (d / "metrics.jsonl").write_text('{"epoch": 1}\n')
    np.save(d / "flat.npy", np.arange(5.0))
    np.save(d / "cube.npy", np.ones((2, 3, 4)))
    np.save(d / "nan.npy", np.where(np.eye(3, dtype=bool), np.nan, 1.0))
    np.savetxt(d / "inf.csv", np.array([[1.0, np.inf, 2.0]] * 3), delimiter=",")
    (d / "text.csv").write_text("a,b,c\nd,e,f\n")
    (d / "empty.csv").write_text("")
    (d / "data.txt").write_text("1,2,3\n")
    (d / "ragged.csv").write_text("1,2,3\n4,5\n")
    (d / "header.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    np.save(d / "one_row.npy", X[:1])
    np.save(d / "complex.npy", X[:5] + 1j)
    np.save(d / "bool.npy", np.ones((4, 3), dtype=bool))
    np.save(d / "empty.npy", np.zeros((0, 3)))
    np.save(d / "one_col.npy", X[:, :1])
    np.save(d / "wide.npy", np.zeros((4, 5)))
    np.save(d / "object.npy", np.array([[1, "a", None]], dtype=object), allow_pickle=True)
    np.save(d / "structured.npy", np.zeros(3, dtype=[("a", "f8"), ("b", "f8")]))
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    np.savez(d / "foreign.npz", a=np.ones(3))
    save_checkpoint(d / "bare_ckpt.npz", {"x": np.ones(3), "epoch": 1})
    (d / "adir").mkdir()
    (d / "folder.npz").mkdir()
    (d / "report" / "metrics.json").mkdir(parents=True)
    os.symlink(d / "data.csv", d / "link.npz")
    os.symlink(d / "m.npz", d / "model_link.npy")
    os.link(d / "data.npy", d / "hard.npz")
    assert main(["vectors", "write", str(d / "golden")]) == 0
    return d


def _train(*words):
    return ["train", "{d}/data.npy", "--out", "{d}/new.npz", *words]


def _resume(*words):
    return _train("--checkpoint", "{d}/ckpt.npz", "--resume", *words)


def _evaluate(data="{d}/data.npy", *words, model="{d}/m.npz"):
    return ["evaluate", model, data, *words]


def _sample(*words, out="{d}/s.npy", model="{d}/m.npz"):
    return ["sample", model, "--out", out, *words]


PATH_ROWS = [
    # (id, argv, pattern)
    ("out-wrong-suffix-txt", _train("--out", "{d}/m.txt"), r"--out .*m\.txt: expected .*\.npz"),
    ("out-npy", ["train", "{d}/data.npy", "--out", "{d}/m.npy"], r"ending in \.npz"),
    ("out-no-suffix", ["train", "{d}/data.npy", "--out", "{d}/model"], r"ending in \.npz"),
    ("out-is-data", ["train", "{d}/data.csv", "--out", "{d}/data.csv"], r"ending in \.npz"),
    ("out-missing-folder", ["train", "{d}/data.npy", "--out", "{d}/nodir/m.npz"],
     r"folder .*nodir does not exist"),
    ("out-is-folder", ["train", "{d}/data.npy", "--out", "{d}/folder.npz"], r"is a folder"),
    ("out-under-a-file", ["train", "{d}/data.npy", "--out", "{d}/data.csv/m.npz"],
     r"data\.csv is a file, not a folder"),
    ("out-in-proc", ["train", "{d}/data.npy", "--out", "/proc/refconf-m.npz"],
     r"cannot write in folder /proc"),
    ("out-in-sys", ["train", "{d}/data.npy", "--out", "/sys/refconf-m.npz"],
     r"cannot write in folder /sys"),
    ("out-symlink-to-data", ["train", "{d}/data.csv", "--out", "{d}/link.npz"],
     r"--out .*link\.npz is the input DATA"),
    ("out-hardlink-to-data", ["train", "{d}/data.npy", "--out", "{d}/hard.npz"],
     r"is the input DATA"),
    ("out-symlink-to-val", _train("--out", "{d}/link.npz", "--val", "{d}/data.csv"),
     r"is the input --val"),
    ("out-empty", ["train", "{d}/data.npy", "--out", ""], r"--out: empty path"),
    ("demo-out-empty", ["demo", "--out", " "], r"--out: empty path; expected a folder"),
    ("checkpoint-exists-without-resume", _train("--checkpoint", "{d}/ckpt.npz"),
     r"--checkpoint .*ckpt\.npz exists; add --resume"),
    ("checkpoint-is-a-model-without-resume", _train("--checkpoint", "{d}/m.npz"),
     r"m\.npz exists; add --resume"),
    ("out-equals-checkpoint", _train("--checkpoint", "{d}/new.npz"),
     r"--checkpoint and --out are the same file"),
    ("out-equals-checkpoint-spelled-otherwise",
     _train("--checkpoint", "{d}/adir/../new.npz"), r"are the same file"),
    ("out-equals-checkpoint-resume", _train("--checkpoint", "{d}/new.npz", "--resume"),
     r"are the same file"),
    ("checkpoint-csv", _train("--checkpoint", "{d}/data.csv"), r"--checkpoint .*ending in \.npz"),
    ("checkpoint-jsonl", _train("--checkpoint", "{d}/c.jsonl"), r"ending in \.npz"),
    ("checkpoint-npy", _train("--checkpoint", "{d}/c.npy"), r"ending in \.npz"),
    ("checkpoint-missing-folder", _train("--checkpoint", "{d}/nodir/c.npz"), r"does not exist"),
    ("checkpoint-is-folder", _train("--checkpoint", "{d}/folder.npz"), r"is a folder"),
    ("checkpoint-in-proc", _train("--checkpoint", "/proc/c.npz"), r"cannot write in folder"),
    ("checkpoint-symlink-to-data", ["train", "{d}/data.csv", "--out", "{d}/new.npz",
                                    "--checkpoint", "{d}/link.npz"], r"is the input DATA"),
    ("metrics-csv", _train("--metrics", "{d}/data.csv"), r"--metrics .*ending in \.jsonl"),
    ("metrics-json", _train("--metrics", "{d}/m.json"), r"ending in \.jsonl"),
    ("metrics-npz", _train("--metrics", "{d}/m.npz"), r"ending in \.jsonl"),
    ("metrics-missing-folder", _train("--metrics", "{d}/nodir/m.jsonl"), r"does not exist"),
    ("metrics-in-proc", _train("--metrics", "/proc/m.jsonl"), r"cannot write in folder"),
    ("metrics-in-sys", _train("--metrics", "/sys/m.jsonl"), r"cannot write in folder"),
    ("metrics-under-a-file", _train("--metrics", "{d}/data.npy/m.jsonl"), r"is a file"),
    ("sample-out-txt", _sample(out="{d}/s.txt"), r"--out .*expected .*\.npy or \.csv"),
    ("sample-out-npz", _sample(out="{d}/s.npz"), r"\.npy or \.csv"),
    ("sample-out-no-suffix", _sample(out="{d}/samples"), r"\.npy or \.csv"),
    ("sample-out-is-model", _sample(out="{d}/m.npz"), r"\.npy or \.csv"),
    ("sample-out-symlink-to-model", _sample(out="{d}/model_link.npy"), r"is the input MODEL"),
    ("sample-out-missing-folder", _sample(out="{d}/nodir/s.npy"), r"does not exist"),
    ("sample-out-is-folder", _sample(out="{d}/adir"), r"\.npy or \.csv"),
    ("sample-out-in-proc", _sample(out="/proc/s.npy"), r"cannot write in folder"),
    ("sample-out-under-a-file", _sample(out="{d}/data.npy/s.npy"), r"is a file"),
    ("sample-too-large-for-the-disk", _sample("-n", str(10**15)),
     r"-n 1000000000000000 samples of 3 features .* needs .* which has .* free"),
    ("sample-csv-too-large-for-the-disk", _sample("-n", str(10**14), out="{d}/s.csv"),
     r"needs .* free"),
    ("demo-out-is-a-file", ["demo", "--out", "{d}/data.csv"], r"is a file; expected a folder"),
    ("demo-out-under-a-file", ["demo", "--out", "{d}/data.csv/report"], r"is a file"),
    ("demo-out-in-proc", ["demo", "--out", "/proc/refconf-report"], r"cannot write in folder"),
    ("demo-report-file-is-a-folder", ["demo", "--out", "{d}/report"],
     r"--out .*report/metrics\.json: is a folder"),
]

NUMBER_ROWS = [
    (f"{flag}={value}", _train(flag, value), rf"argument {flag}: {expected}")
    for flag, values, expected in [
        ("--steps", ["0", "-1", "x", "1.5"], "expected a positive integer"),
        ("--m", ["0", "two"], "expected a positive integer"),
        ("--epochs", ["0", "-3", "ten"], "expected a positive integer"),
        ("--batch-size", ["0", "1e3"], "expected a positive integer"),
        ("--patience", ["0"], "expected a positive integer"),
        ("--lr", ["0", "-1", "nan", "inf", "abc"], "expected a (finite )?positive number"),
        ("--lr-decay", ["0", "1.5", "-0.5"], r"expected a (finite positive number|number in \(0, 1\])"),
        ("--hidden", ["0", "a", "", "64,-1", "64,,64"], "expected comma-separated|positive"),
        ("--seed", ["x", "1.5", "-1"], "expected a non-negative integer"),
        ("--lr", ["1e309"], "expected a finite positive number"),
        ("--hidden", ["64,64,", ",8"], "expected comma-separated integers"),
    ]
    for value in values
] + [
    (f"{flag}={value}", _train(flag, value), rf"argument {flag}: invalid choice")
    for flag, value in [("--kind", "toeplitz"), ("--mixing", "shuffle"), ("--spectrum", "log"),
                        ("--activation", "gelu"), ("--dtype", "float16"), ("--engine", "gpu")]
] + [
    ("sample-n-0", _sample("-n", "0"), r"argument -n/--n-samples: expected a positive integer"),
    ("sample-n-negative", _sample("-n", "-5"), r"expected a positive integer"),
    ("sample-n-text", _sample("-n", "many"), r"expected a positive integer"),
    ("sample-n-float", _sample("-n", "1e3"), r"expected a positive integer"),
    ("sample-seed-text", _sample("--seed", "x"), r"expected a non-negative integer"),
    ("evaluate-engine", _evaluate("{d}/data.npy", "--engine", "tpu"), r"invalid choice"),
    ("evaluate-seed", _evaluate("{d}/data.npy", "--seed", "s"), r"non-negative integer"),
    ("demo-seed", ["demo", "--seed", "x"], r"non-negative integer"),
    ("demo-negative-seed", ["demo", "--seed", "-2"], r"non-negative integer"),
]

USAGE_ROWS = [
    ("no-command", [], r"the following arguments are required"),
    ("unknown-command", ["fit", "x.npy"], r"invalid choice: 'fit'"),
    ("train-no-out", ["train", "{d}/data.npy"], r"required: --out"),
    ("train-no-data", ["train", "--out", "{d}/new.npz"], r"required: data"),
    ("train-unknown-option", _train("--no-such-option"), r"unrecognized arguments"),
    ("train-abbreviated-option", _train("--batch", "10"), r"unrecognized arguments: --batch"),
    ("train-abbreviated-epochs", _train("--epo", "3"), r"unrecognized arguments"),
    ("sample-no-out", ["sample", "{d}/m.npz"], r"required: --out"),
    ("evaluate-no-data", ["evaluate", "{d}/m.npz"], r"required: data"),
    ("evaluate-extra-word", _evaluate("{d}/data.npy", "extra"), r"unrecognized arguments"),
    ("demo-unknown-option", ["demo", "--fast"], r"unrecognized arguments"),
    ("vectors-no-action", ["vectors"], r"required"),
]

DATA_ROWS = [
    (f"train-{name}", ["train", f"{{d}}/{name}", "--out", "{d}/new.npz", *TINY], pattern)
    for name, pattern in [
        ("missing.npy", r"no such file: .*missing\.npy"),
        ("flat.npy", r"expected a 2-D numeric array .*shape \(5,\)"),
        ("cube.npy", r"expected a 2-D numeric array .*shape \(2, 3, 4\)"),
        ("nan.npy", r"row 0 contains NaN or Inf"),
        ("inf.csv", r"row 0 contains NaN or Inf"),
        ("text.csv", r"cannot read as a numeric matrix"),
        ("empty.csv", r"no rows|cannot read"),
        ("data.txt", r"unknown file type; expected \.npy or \.csv"),
        ("complex.npy", r"complex values .*expected real data"),
        ("bool.npy", r"dtype bool"),
        ("empty.npy", r"no rows"),
        ("one_col.npy", r"at least 2 features"),
        ("object.npy", r"cannot read as a numeric matrix"),
        ("structured.npy", r"expected a 2-D numeric array"),
        ("adir", r"no such file"),
    ]
] + [
    ("train-toy-unknown", ["train", "toy:spiral", "--out", "{d}/new.npz", *TINY], r"spiral"),
    ("train-toy-no-name", ["train", "toy:", "--out", "{d}/new.npz", *TINY], r"unknown"),
    ("train-one-row", ["train", "{d}/one_row.npy", "--out", "{d}/new.npz", *TINY],
     r"1 sample|minimum of 2"),
    ("train-ragged-csv", ["train", "{d}/ragged.csv", "--out", "{d}/new.npz", *TINY],
     r"cannot read as a numeric matrix"),
    ("train-csv-with-header", ["train", "{d}/header.csv", "--out", "{d}/new.npz", *TINY],
     r"cannot read as a numeric matrix"),
    ("sample-negative-seed", _sample("--seed", "-3"),
     r"argument --seed: expected a non-negative integer"),
    ("train-val-missing", _train("--val", "{d}/missing.npy", *TINY), r"no such file"),
    ("train-val-wide", _train("--val", "{d}/wide.npy", *TINY), r"5 features.*expecting 3"),
    ("train-val-complex", _train("--val", "{d}/complex.npy", *TINY), r"complex values"),
    ("train-val-nan", _train("--val", "{d}/nan.npy", *TINY), r"NaN or Inf"),
    ("train-network-too-large", _train("--hidden", "1,100000000000", "--quiet"),
     r"out of memory: Unable to allocate"),
] + [
    (f"evaluate-{name}", _evaluate(f"{{d}}/{name}"), pattern)
    for name, pattern in [
        ("missing.npy", r"no such file"), ("wide.npy", r"5 features, but the model expects 3"),
        ("complex.npy", r"complex values"), ("nan.npy", r"NaN or Inf"),
        ("flat.npy", r"2-D numeric"), ("text.csv", r"cannot read"), ("bool.npy", r"dtype bool"),
        ("empty.npy", r"no rows"), ("object.npy", r"cannot read"), ("data.txt", r"unknown file"),
    ]
] + [
    (f"evaluate-model-{name}", _evaluate(model=f"{{d}}/{name}"), pattern)
    for name, pattern in [
        ("missing.npz", r"no such model file"), ("data.csv", r"data\.csv"),
        ("corrupt.npz", r"corrupt\.npz"), ("foreign.npz", r"foreign\.npz"),
        ("ckpt.npz", r"ckpt\.npz"), ("adir", r"no such model file"),
    ]
] + [
    (f"sample-model-{name}", _sample(model=f"{{d}}/{name}"), pattern)
    for name, pattern in [
        ("missing.npz", r"no such model file"), ("corrupt.npz", r"corrupt\.npz"),
        ("ckpt.npz", r"ckpt\.npz"), ("data.npy", r"data\.npy"),
    ]
]

RESUME_ROWS = [
    ("resume-without-checkpoint", _train("--resume"), r"--resume needs --checkpoint"),
    ("resume-missing-checkpoint", _train("--checkpoint", "{d}/none.npz", "--resume"),
     r"no checkpoint .*none\.npz to resume from"),
    ("resume-corrupt-checkpoint", _train("--checkpoint", "{d}/corrupt.npz", "--resume"),
     r"corrupt\.npz"),
    ("resume-foreign-npz", _train("--checkpoint", "{d}/foreign.npz", "--resume"),
     r"foreign\.npz"),
    ("resume-model-as-checkpoint", _train("--checkpoint", "{d}/m.npz", "--resume"), r"m\.npz"),
    ("resume-checkpoint-without-settings", _train("--checkpoint", "{d}/bare_ckpt.npz",
                                                  "--resume"),
     r"does not record the settings of its run"),
] + [
    (f"resume-contradicts{flag}", _resume(flag, *value),
     rf"{flag} .* contradicts the checkpoint .*ckpt\.npz")
    for flag, value in [("--steps", ["3"]), ("--m", ["2"]), ("--hidden", ["16"]),
                        ("--kind", ["circular"]), ("--mixing", ["1x1"]),
                        ("--spectrum", ["exp"]), ("--activation", ["relu"]),
                        ("--no-actnorm", []), ("--dtype", ["float32"]), ("--seed", ["7"]),
                        ("--alpha-init", ["0.9"]), ("--no-whiten", []),
                        ("--defensive", ["0.5"])]
]

CHECK_ROWS = [
    # the golden set is written once by the module fixture, so a bad --json path is
    # refused before any case is read
    ("check-json-is-a-folder", ["check", "{d}/golden", "{d}/adir", "--json",
                                "{d}/report/metrics.json"], r"--json .*metrics\.json.*folder"),
    ("check-json-is-an-input", ["check", "{d}/golden", "{d}/adir", "--json", "{d}/adir"],
     r"--json .*adir"),
    ("check-json-missing-folder", ["check", "{d}/golden", "{d}/adir", "--json",
                                   "{d}/nodir/r.json"], r"does not exist"),
    ("check-json-not-json", ["check", "{d}/golden", "{d}/adir", "--json", "{d}/r.csv"],
     r"ending in \.json"),
    ("check-results-missing", ["check", "{d}/golden", "{d}/none"], r"none"),
    ("check-golden-missing", ["check", "{d}/none", "{d}/adir"], r"none"),
]

CATALOGUE = PATH_ROWS + NUMBER_ROWS + USAGE_ROWS + DATA_ROWS + RESUME_ROWS + CHECK_ROWS


def _snapshot(root):
    """Every file under ``root`` (links not followed) with the hash of its content."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [n for n in dirs if os.path.islink(os.path.join(folder, n))]:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                found[path] = "link:" + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    found[path] = hashlib.sha256(f.read()).hexdigest()
    return found


def _run(argv):
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        return exit_.code


def test_the_catalogue_has_more_than_100_rows():
    assert len(CATALOGUE) > 100
    assert len({row[0] for row in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("argv, pattern", [row[1:] for row in CATALOGUE],
                         ids=[row[0] for row in CATALOGUE])
def test_bad_command_lines_give_one_line_and_change_no_file(cli_template, tmp_path, capsys,
                                                          argv, pattern):
    d = tmp_path / "w"
    shutil.copytree(cli_template, d, symlinks=True)
    for name in ("link.npz", "model_link.npy"):  # point the copied links into the copy
        target = os.path.basename(os.readlink(d / name))
        os.remove(d / name)
        os.symlink(d / target, d / name)
    os.remove(d / "hard.npz")
    os.link(d / "data.npy", d / "hard.npz")
    before = _snapshot(d)
    capsys.readouterr()
    code = _run([word.replace("{d}", str(d)) for word in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert re.search(r"^refconf( [a-z]+)?: error: ", err), err
    assert re.search(pattern, err), err
    assert _snapshot(d) == before
