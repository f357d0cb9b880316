"""Diagnoses of failing outputs: a known mistake named only when it explains the error.

Errors are measured in units of the output's tolerance: with ``tol = atol + rtol|e|``
elementwise, the *misfit* of a prediction ``p`` of the result ``r`` is
``max |r - p| / tol``. The correct model (``p = e``, the expected value) has misfit
``q``. A mistake model (:mod:`refconf.conformance.mistakes`, or a constant factor
``c e``) is named only when

* its best prediction has misfit ``q_m <= FIT`` (with the tolerance scaled to the
  prediction's size), and
* it explains the error far better than the correct model: ``q >= GAP max(q_m, 1)``,
  which also puts the error far above tolerance (``q >= GAP``).

Otherwise the diagnosis is ``float32`` when a float64 check's error fits the float32
profile, ``round_off`` for errors within ``GAP`` tolerances (too small to tell a mistake
from rounding), else ``unexplained``, with the closest model as a hint.
Complex results for real outputs, non-finite values and wrong shapes have their own
codes.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from .kinds import KINDS
from .mistakes import FLOAT32_MODELS, MODELS
from .profiles import EPS32

__all__ = ["FIT", "GAP", "MESSAGES", "Diagnosis", "diagnose"]

FIT = 10.0
GAP = 100.0

MESSAGES = {  # code -> (title, explanation)
    "dct1_normalisation": (
        "DCT-I normalisation",
        ("dct1 is eq. 2 unnormalised (scipy.fft.dct(x, type=1), norm='backward') and "
         "idct1(X) = dct1(X) / (2N)")),
    "dct1_ortho": (
        "orthonormal DCT-I (norm='ortho') used",
        ("the kit's DCT-I is the unnormalised eq. 2 and the symmetric convolution is "
         "idct1(w_hat * dct1(x)); Q^T diag(w_hat) Q with an orthonormal Q is a different map")),
    "half_sample_extension": (
        "half-sample symmetric extension (a DCT-II) used",
        ("the DCT-I extends x0..xN to [x0, ..., xN, x(N-1), ..., x1] (whole-sample, length "
         "2N), not [x0, ..., xN, xN, ..., x0] (length 2N + 2, which gives the DCT-II)")),
    "half_spectrum_doubling": (
        "interior half-spectrum bins not doubled in the log-det",
        ("each interior rfft bin (0 < k < N/2) stands for itself and its conjugate: "
         "log|det| = log|W(0)| + [N even] log|W(N/2)| + 2 sum of log|W(k)| over the "
         "interior bins")),
    "log_det_sign": (
        "log-det has the opposite sign (direction convention)",
        ("forward maps data -> latent and returns log|det dz/dx|; inverse maps return "
         "minus that")),
    "inverse_log_det": (
        "inverse map's log-det wrong (0, or the forward's sign)",
        ("an inverse map returns log|det dx/dz| = minus the forward log-det at the "
         "result: neither 0 nor the forward's value")),
    "constant_log_det_dropped": (
        "a constant log-det was dropped (set to 0)",
        ("transforms whose log-det does not depend on the data (a fixed kernel, a shared "
         "spectrum, ActNorm) still contribute it: sum log|w_hat|, -sum log_scale")),
    "detached_log_det": (
        "log-det detached from the parameters",
        ("the log-det's gradient is missing (.item(), .detach(), stop_gradient or a NumPy "
         "round trip on it): the log-barrier sum log|w_hat| never reaches the gradient")),
    "vjp_end_weights": (
        "VJP applies the forward transform (end weights missing)",
        ("the DCT-I matrix C is not symmetric: C^T g = 2a * dct1(g / 2a) with the end "
         "weights 2a = (1, 2, ..., 2, 1)")),
    "complex_cotangent": (
        "complex cotangent conjugated",
        ("the kit follows autograd and JAX (the cotangent of z is dl/dRe z - i dl/dIm z); "
         "PyTorch's .grad is the complex conjugate")),
    "log1p_expm1": (
        "precision lost for small alpha|x|",
        ("use log1p(alpha|x|) and expm1(alpha|y|), not log(1 + alpha|x|) and "
         "exp(alpha|y|) - 1")),
    "slog_log_det_variable": (
        "S-Log log-det evaluated at the wrong variable",
        ("log f_a'(x) = -log1p(a|x|) at the gate's input x, log g_a'(y) = a|y| at the "
         "gate's input y; not at the gate's output")),
    "layer_order": (
        "layers applied in the wrong order",
        ("in eq. 5 F_m (index m - 1) is applied first and F_1 (index 0) last")),
    "alpha_swapped": (
        "alpha and alpha_prime swapped",
        ("alpha is the scale of the contracting gate f_a (on the convolution output), "
         "alpha_prime of the expanding gate g_a' (last in the layer)")),
    "wrong_half": (
        "the wrong half transformed",
        ("x1 = x[:, :D - d2] is kept and x2 = x[:, D - d2:] is updated; the output is "
         "[x1, y2] (d1 = floor(D / 2) in an unswapped model step)")),
    "complex_output": (
        "complex output for a real quantity",
        ("the imaginary part is round-off: return the real part (through irfft of a "
         "Hermitian half spectrum)")),
    "non_hermitian_spectrum": (
        "non-Hermitian spectrum: complex outputs",
        ("a real kernel's spectrum is Hermitian, W(N - k) = conj W(k); build it from the "
         "rfft half spectrum with irfft (or take rfft of a real kernel), never an inverse "
         "FFT of an arbitrary complex spectrum")),
    "non_finite": (
        "NaN or infinite values",
        ("the output has NaN or inf where finite values are expected: an overflow (use "
         "log1p / expm1, float64), a division by a zero eigenvalue, or an uninitialised "
         "array")),
    "float32": (
        "errors at float32 round-off level",
        ("a single-precision computation somewhere (or a formula that loses as many "
         "digits): check with --precision float32 (the float32 profile), or compute in "
         "float64")),
    "round_off": (
        "small error (round-off level)",
        ("the error is within 100 x the tolerance, too small to tell a mistake from "
         "round-off: a less accurate formula or summation order; no mistake is named")),
    "negated": ("the output has the opposite sign", "check the sign conventions"),
    "constant_factor": ("off by a constant factor", "a scale factor is missing or extra"),
    "unexplained": (
        "unexplained error",
        ("no known mistake explains the error; the closest one is given as a hint, and "
         "lower-level cases failing too are usually the cause")),
    "shape": ("wrong shape", "outputs must have the shapes listed in the manifest"),
}


@dataclass
class Diagnosis:
    """A diagnosis: ``code`` (a key of :data:`MESSAGES`) and ``detail``, what was seen
    in this case (may be empty)."""

    code: str
    detail: str = ""

    @property
    def title(self):
        return MESSAGES[self.code][0]

    @property
    def explanation(self):
        return MESSAGES[self.code][1]

    @property
    def message(self):
        return f"{self.title}: {self.detail}" if self.detail else self.title

    def to_dict(self):
        return {"code": self.code, "title": self.title, "detail": self.detail,
                "explanation": self.explanation}


def _max_abs(a):
    return float(np.max(np.abs(a), initial=0.0))


def misfit(result, predicted, expected, tol):
    """``max |result - predicted| / (atol s + rtol |predicted|)`` with ``s`` =
    ``max(max|predicted| / max|expected|, 1)``: the tolerance of ``expected`` scaled to
    the prediction's size. ``inf`` when ``predicted`` is unusable."""
    predicted = np.asarray(predicted)
    if predicted.shape != result.shape or not np.all(np.isfinite(predicted)):
        return np.inf
    scale = max(_max_abs(predicted) / max(_max_abs(expected), 1e-300), 1.0)
    bound = tol["atol"] * scale + tol["rtol"] * np.abs(predicted)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(result - predicted) / bound
    return float(np.max(np.where(np.isnan(ratio), 0.0, ratio), initial=0.0))


def _dct_factor(case, factor):
    """``(2N_1)^p_1 ... `` naming ``factor`` for a DCT-I case, or None."""
    kind = KINDS[case.kind]
    if kind.transform != "dct1" or kind.level > 1 or factor <= 0:
        return None
    Ns = [L - 1 for L in case.inputs[kind.inputs[0]].shape[-kind.axes:]]
    for base, label in ((2, "2N"), (1, "N"), (None, "2")):  # 1/(2N), a 1/N slip, a stray 2
        sizes = [2 if base is None else base * N for N in Ns]
        for powers in itertools.product((-1, -0.5, 0, 0.5, 1), repeat=len(Ns)):
            if not any(powers):
                continue
            value = np.prod([float(n) ** p for n, p in zip(sizes, powers)])
            if abs(factor / value - 1) < 1e-3:
                terms = [(f"({label} = {n})" if base else "2") + ("" if p == 1 else f"^{p:g}")
                         for n, p in zip(sizes, powers) if p]
                return " x ".join(terms)
    return None


def _factor_diagnosis(case, output, factor):
    if abs(factor + 1) < 1e-3:
        if output != "log_det" and output != "log_prob":
            return Diagnosis("negated", "the output is minus the expected")
        code = "inverse_log_det" if KINDS[case.kind].sign < 0 else "log_det_sign"
        return Diagnosis(code, "the output is minus the expected")
    named = _dct_factor(case, factor)
    if named:
        return Diagnosis("dct1_normalisation",
                         f"the output is {factor:.6g} x the expected = {named}")
    return Diagnosis("constant_factor", f"the output is {factor:.6g} x the expected")


def _candidates(case, output, result, tol, precision):
    """``[(misfit, code, factor or None)]`` of every mistake model."""
    expected = case.expected[output]
    found = []
    for code, model in (FLOAT32_MODELS if precision == "float32" else []) + MODELS:
        for predicted in model(case, output):
            found.append((misfit(result, predicted, expected, tol), code, None))
    found.sort(key=lambda item: item[0])
    size = max(_max_abs(expected), 1e-300)  # scaled: values near 1e300 must not overflow
    e, r = expected.ravel() / size, result.ravel() / size
    ee = float(np.vdot(e, e).real)
    if ee > 0 and not np.iscomplexobj(e):
        c = float(np.vdot(e, r).real / ee)
        # when every expected value is the same, any constant result is "c times" it:
        # no evidence for a factor, except an exact sign flip or a DCT-I scale
        degenerate = np.ptp(e) <= 1e-12 * np.max(np.abs(e))
        if abs(c - 1) > 1e-6 and not (degenerate and abs(c + 1) > 1e-3
                                      and _dct_factor(case, c) is None):
            found.append((misfit(result, c * expected, expected, tol), "constant_factor", c))
    return found


def _complex_diagnosis(result, expected, tol):
    bound = tol["atol"] + tol["rtol"] * np.abs(expected)
    imag = _max_abs(result.imag)
    if np.all(np.abs(result.imag) <= bound):
        return Diagnosis("complex_output", f"imaginary parts up to {imag:.2g}, within "
                         "tolerance (round-off): return a real array")
    return Diagnosis("non_hermitian_spectrum",
                     f"imaginary parts up to {imag:.3g}, {imag / float(np.max(bound)):.3g}"
                     " x the tolerance: not round-off")


def diagnose(case, output, result, tolerance, precision="float64"):
    """The :class:`Diagnosis` of a failing output (see the module docstring).

    Parameters
    ----------
    case : Case
    output : str
        The output's name.
    result : ndarray
        The implementation's value, with the expected shape.
    tolerance : dict
        ``{"rtol", "atol"}`` the output was judged by.
    precision : {"float64", "float32"}
        The profile ``tolerance`` comes from.
    """
    with np.errstate(all="ignore"):  # wildly wrong results must not warn
        return _diagnose(case, output, np.asarray(result), tolerance, precision)


def _named(case, output, expected, fits):
    """The diagnosis of the best fitting model, other fitting codes as a note."""
    fit, code, factor = fits[0]
    if code == "constant_factor":
        return _factor_diagnosis(case, output, factor)
    detail = f"explains the error to {fit:.2g} x the tolerance"
    if code == "inverse_log_det" and np.ptp(expected) <= 1e-12 * _max_abs(expected):
        detail += ("; with one spectrum for the batch a dropped constant log-det "
                   "gives the same output")
    others = sorted({c for _, c, _ in fits} - {code})
    if others:
        detail += f"; also consistent with: {', '.join(others)}"
    return Diagnosis(code, detail)


def _special(result, expected, tol):
    """The diagnosis of a non-finite or complex result for a real output, or None."""
    if not np.all(np.isfinite(result)):
        bad = int(np.sum(~np.isfinite(result)))
        kinds = [w for w, f in (("NaN", np.isnan), ("inf", np.isinf)) if np.any(f(result))]
        return Diagnosis("non_finite", f"{bad} of {result.size} values are "
                         f"{' or '.join(kinds)}")
    if np.iscomplexobj(result) and not np.iscomplexobj(expected):
        return _complex_diagnosis(result, expected, tol)
    return None


def _precision_diagnosis(case, output, result, dtype, q, precision):
    """``float32`` or ``round_off`` when the error is a matter of precision, else None."""
    expected = case.expected[output]
    float32_tol = case.tolerances.get("float32", {}).get(output)
    at_float32_level = dtype in (np.float32, np.complex64, np.float16) or (
        _max_abs(result - expected) >= 0.1 * EPS32 * _max_abs(expected))
    narrow = dtype in (np.float32, np.complex64, np.float16)
    if precision == "float64" and narrow and float32_tol is None:
        return Diagnosis("float32", f"result dtype {dtype}, and this case is float64-only "
                         f"({case.float64_only})")
    if precision == "float64" and float32_tol and at_float32_level and misfit(
            result, expected, expected, float32_tol) <= 1:
        return Diagnosis("float32", f"error {q:.3g} x the float64 tolerance, within the "
                         f"float32 profile (result dtype {dtype})")
    if q < GAP:
        return Diagnosis("round_off", f"error {q:.3g} x the tolerance")
    return None


def _diagnose(case, output, result, tolerance, precision):
    expected = case.expected[output]
    special = _special(result, expected, tolerance)
    if special:
        return special
    dtype = result.dtype
    result = result.astype(np.result_type(result, np.float64))
    q = misfit(result, expected, expected, tolerance)
    candidates = _candidates(case, output, result, tolerance, precision)
    fits = [c for c in candidates if c[0] <= FIT and q >= GAP * max(c[0], 1.0)]
    specific = [c for c in fits if c[1] != "constant_factor"]  # before the generic factor
    if fits:
        return _named(case, output, expected, specific or fits)
    by_precision = _precision_diagnosis(case, output, result, dtype, q, precision)
    if by_precision:
        return by_precision
    candidates.sort(key=lambda item: item[0])
    hint = ""
    if candidates and candidates[0][0] < q:
        fit, code, _ = candidates[0]
        hint = f"; closest known mistake: {code} (leaves {fit:.3g} x the tolerance)"
    return Diagnosis("unexplained", f"error {q:.3g} x the tolerance{hint}")
