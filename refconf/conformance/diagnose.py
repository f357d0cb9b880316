"""Known porting mistakes, recognised by the pattern of the error.

Each mistake is a *model*: from a case's inputs (and expected outputs) it predicts what
an implementation with that mistake returns. A failing output that matches a model's
prediction (to a loose relative tolerance, the mistakes being errors of order 1) gets
that model's diagnosis. Generic patterns follow: single precision, complex dtype, and a
constant factor, which names the DCT-I scale ``(2N)^p`` when the case has a DCT-I.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .. import primitives, spectral
from .kinds import KINDS

__all__ = ["MESSAGES", "Diagnosis", "diagnose"]

MATCH_RTOL = 1e-6       # a prediction matches when max|r - p| <= MATCH_RTOL * max|p|
FLOAT32_MATCH = 1e-4    # single-precision results land within this of the expected

MESSAGES = {  # code -> (title, explanation)
    "dct1_normalisation": (
        "DCT-I normalisation",
        ("dct1 is eq. 2 unnormalised (scipy.fft.dct(x, type=1), norm='backward') and "
         "idct1(X) = dct1(X) / (2N)")),
    "dct1_ortho": (
        "orthonormal DCT-I (norm='ortho') used",
        ("the kit's DCT-I is the unnormalised eq. 2 and the symmetric convolution is "
         "idct1(w_hat * dct1(x)); Q^T diag(w_hat) Q with an orthonormal Q is a different map")),
    "half_spectrum_doubling": (
        "interior half-spectrum bins not doubled in the log-det",
        ("each interior rfft bin (0 < k < N/2) stands for itself and its conjugate: "
         "log|det| = log|W(0)| + [N even] log|W(N/2)| + 2 sum of log|W(k)| over the "
         "interior bins")),
    "log_det_sign": (
        "log-det has the opposite sign (direction convention)",
        ("forward maps data -> latent and returns log|det dz/dx|; inverse maps return "
         "minus that")),
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
    "layer_order": (
        "layers applied in the wrong order",
        ("in eq. 5 F_m (index m - 1) is applied first and F_1 (index 0) last")),
    "alpha_swapped": (
        "alpha and alpha_prime swapped",
        ("alpha is the scale of the contracting gate f_a (on the convolution output), "
         "alpha_prime of the expanding gate g_a' (last in the layer)")),
    "complex_output": (
        "complex output for a real quantity",
        ("take real spectra through irfft (Hermitian half spectra), never an inverse FFT "
         "of a non-Hermitian spectrum, and return real arrays")),
    "float32": (
        "computed in single precision",
        ("the errors are float32 round-off; the kit's tolerances are for float64")),
    "negated": ("the output has the opposite sign", "check the sign conventions"),
    "constant_factor": ("off by a constant factor", "a scale factor is missing or extra"),
    "shape": ("wrong shape", "outputs must have the shapes listed in the manifest"),
}


@dataclass
class Diagnosis:
    """A recognised mistake: ``code`` (a key of :data:`MESSAGES`) and ``detail``, what
    was seen in this case (may be empty)."""

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


def _matches(result, predicted, rtol=MATCH_RTOL):
    predicted = np.asarray(predicted)
    if predicted.shape != result.shape or not np.all(np.isfinite(predicted)):
        return False
    scale = _max_abs(predicted)
    return scale > 0 and _max_abs(result - predicted) <= rtol * scale


def _first_input(case):
    return case.inputs[KINDS[case.kind].inputs[0]]


# --- mistake models: (case, output name) -> predicted array or None ----------------------


def _ortho(case, output):
    kind = KINDS[case.kind]
    if kind.transform != "dct1" or kind.level > 1 or output == "log_det" or "vjp" in case.kind:
        return None
    axes = tuple(range(-kind.axes, 0))

    def Q(a):
        return scipy.fft.dctn(a, type=1, axes=axes, norm="ortho")

    data = _first_input(case)
    if "w_hat" not in case.inputs:
        return Q(data)
    w_hat = case.inputs["w_hat"]
    return Q(Q(data) / w_hat) if kind.sign < 0 else Q(w_hat * Q(data))


def _interior_log_abs(case):
    """Per-sample sum of log|W(k)| over the interior half-spectrum bins."""
    kind = KINDS[case.kind]
    data = _first_input(case)
    n = data.shape[-1]
    if "w" in case.inputs:
        W = spectral.circular_spectrum(case.inputs["w"], kind.axes)
    else:
        W = case.inputs["w_half"]
    k = np.arange(W.shape[-1])
    terms = np.log(np.abs(W)) * ((k >= 1) & (k <= (n - 1) // 2))
    if case.kind.startswith("conf_step"):
        terms = np.sum(terms, axis=0)
    half = data.shape[:-1] + (W.shape[-1],)
    return np.sum(np.broadcast_to(terms, half), axis=tuple(range(1, len(half))))


def _doubling(case, output):
    kind = KINDS[case.kind]
    if output != "log_det" or kind.transform != "circular":
        return None
    return case.expected["log_det"] - kind.sign * _interior_log_abs(case)


def _transposed_vjp(case, output):
    g = case.inputs.get("g")
    if case.kind == "dct1_vjp":
        return primitives.dct1(g)
    if case.kind == "idct1_vjp":
        return primitives.idct1(g)
    return None


def _conjugated_cotangent(case, output):
    if case.kind == "rfft_vjp":
        inputs = dict(case.inputs, g=np.conj(case.inputs["g"]))
        return KINDS[case.kind].function(**inputs)[output]
    if case.kind == "irfft_vjp":
        return np.conj(case.expected[output])
    return None


def _naive_log1p(case, output):
    if case.kind not in ("slog", "slog_inverse"):
        return None
    alpha = case.inputs["alpha"]
    if case.kind == "slog":
        t = np.log(1.0 + alpha * np.abs(case.inputs["x"]))
        return np.sign(case.inputs["x"]) * t / alpha if output == "y" else -np.sum(t, axis=-1)
    if case.kind == "slog_inverse" and output == "x":
        y = case.inputs["y"]
        return np.sign(y) * (np.exp(alpha * np.abs(y)) - 1.0) / alpha
    return None


def _variant(case, output, change):
    if not case.kind.startswith(("conf_step", "conf_layer")):
        return None
    inputs = change(dict(case.inputs))
    try:
        return KINDS[case.kind].function(**inputs)[output]
    except (ValueError, FloatingPointError):  # the variant may overflow an S-Log gate
        return None


def _layer_order(case, output):
    if not case.kind.startswith("conf_step"):
        return None
    reverse = ("w_hat", "w_half", "s", "alpha", "alpha_prime")
    return _variant(case, output, lambda d: {k: v[::-1] if k in reverse else v
                                             for k, v in d.items()})


def _alpha_swapped(case, output):
    return _variant(case, output, lambda d: dict(d, alpha=d["alpha_prime"],
                                                 alpha_prime=d["alpha"]))


def _log_prob_sign(case, output):
    if case.kind != "conf_model_log_prob" or output != "log_prob":
        return None
    return case.expected["log_prob"] - 2 * case.expected["log_det"]


MODELS = [
    ("dct1_ortho", _ortho),
    ("half_spectrum_doubling", _doubling),
    ("vjp_end_weights", _transposed_vjp),
    ("complex_cotangent", _conjugated_cotangent),
    ("log1p_expm1", _naive_log1p),
    ("layer_order", _layer_order),
    ("alpha_swapped", _alpha_swapped),
    ("log_det_sign", _log_prob_sign),
]


# --- generic patterns --------------------------------------------------------------------


def _dct_factor(case, factor):
    """``(2N_1)^p_1 ... `` naming ``factor`` for a DCT-I case, or None."""
    kind = KINDS[case.kind]
    if kind.transform != "dct1" or kind.level > 1 or not np.isreal(factor) or factor <= 0:
        return None
    Ns = [L - 1 for L in _first_input(case).shape[-kind.axes:]]
    for powers in itertools.product((-1, -0.5, 0, 0.5, 1), repeat=len(Ns)):
        if not any(powers):
            continue
        value = np.prod([(2.0 * N) ** p for N, p in zip(Ns, powers)])
        if abs(factor.real / value - 1) < 1e-6:
            terms = [f"(2N = {2 * N})" + ("" if p == 1 else f"^{p:g}")
                     for N, p in zip(Ns, powers) if p]
            return " x ".join(terms)
    return None


def _constant_factor(result, expected):
    e, r = expected.ravel(), result.ravel()
    ee = np.vdot(e, e).real
    if ee == 0:
        return None
    c = np.vdot(e, r) / ee
    if abs(c - 1) < 1e-9 or not _matches(r, c * e):
        return None
    return complex(c) if np.iscomplexobj(c) and c.imag != 0 else float(np.real(c))


def diagnose(case, output, result):
    """The :class:`Diagnosis` of a failing output, or None when no known pattern fits.

    Parameters
    ----------
    case : Case
    output : str
        The output's name.
    result : ndarray
        The implementation's value, with the expected shape.
    """
    expected = case.expected[output]
    result = np.asarray(result)
    if result.dtype in (np.float32, np.float16, np.complex64) and _matches(
            result.astype(np.result_type(expected, np.float64)), expected, FLOAT32_MATCH):
        return Diagnosis("float32", f"result dtype {result.dtype}")
    if np.iscomplexobj(result) and not np.iscomplexobj(expected):
        imag = _max_abs(result.imag)
        detail = ("the real part matches; the imaginary part is round-off "
                  f"(max {imag:.2g}): return a real array"
                  if _matches(result.real, expected) else
                  f"imaginary parts up to {imag:.3g}: the spectrum is not Hermitian")
        return Diagnosis("complex_output", detail)
    result = result.astype(np.result_type(result, np.float64))
    for code, model in MODELS:
        predicted = model(case, output)
        if predicted is not None and _matches(result, predicted):
            return Diagnosis(code)
    factor = _constant_factor(result, expected)
    if factor is None:
        return None
    if factor == -1 or (isinstance(factor, float) and abs(factor + 1) < 1e-6):
        code = "log_det_sign" if output == "log_det" else "negated"
        return Diagnosis(code, "the output is minus the expected")
    named = _dct_factor(case, factor) if isinstance(factor, float) else None
    if named:
        return Diagnosis("dct1_normalisation",
                         f"the output is {factor:.6g} x the expected = {named}")
    return Diagnosis("constant_factor", f"the output is {factor:.6g} x the expected")
