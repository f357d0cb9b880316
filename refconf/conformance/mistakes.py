"""Models of the known porting mistakes: what a port with each mistake returns.

Each model maps ``(case, output name)`` to a list of predicted arrays (several when a
mistake has more than one common form, e.g. a half-sample extension written with
``scipy.fft.dct(type=2)`` or with an FFT), empty when the mistake cannot show in that
output. :mod:`refconf.conformance.diagnose` names a mistake only when one of its
predictions explains the observed output far better than the expected value does.
"""

import numpy as np
import scipy.fft

from .. import primitives, spectral
from .kinds import KINDS

__all__ = ["FLOAT32_MODELS", "MODELS"]


def _first_input(case):
    return case.inputs[KINDS[case.kind].inputs[0]]


def _dct_pair(kind_axes, variant):
    """``(forward, inverse)`` DCT-I replacements of a mistake, over ``kind_axes`` axes."""
    axes = tuple(range(-kind_axes, 0))
    if variant == "ortho":
        def Q(a):
            return scipy.fft.dctn(a, type=1, axes=axes, norm="ortho")
        return Q, Q
    if variant == "dct2":
        return (lambda a: scipy.fft.dctn(a, type=2, axes=axes),
                lambda a: scipy.fft.idctn(a, type=2, axes=axes))

    def along(f, a):
        for axis in axes:
            a = np.moveaxis(f(np.moveaxis(a, axis, -1)), -1, axis)
        return a

    def forward(a):  # rfft of the half-sample extension [x0..xN, xN..x0]
        L = a.shape[-1]
        return np.fft.rfft(np.concatenate([a, a[..., ::-1]], axis=-1), axis=-1).real[..., :L]

    def inverse(a):
        return np.fft.irfft(a, n=2 * a.shape[-1], axis=-1)[..., : a.shape[-1]]

    return (lambda a: along(forward, a)), (lambda a: along(inverse, a))


def _dct_variants(case, output, variants):
    kind = KINDS[case.kind]
    if kind.transform != "dct1" or kind.level > 1 or output == "log_det" or "vjp" in case.kind \
            or "grad" in case.kind:
        return []
    data = _first_input(case)
    predictions = []
    for variant in variants:
        forward, inverse = _dct_pair(kind.axes, variant)
        if "w_hat" not in case.inputs:
            predictions.append(inverse(data) if kind.sign < 0 else forward(data))
            continue
        w_hat = case.inputs["w_hat"]
        predictions.append(inverse(forward(data) / w_hat) if kind.sign < 0
                           else inverse(w_hat * forward(data)))
    return predictions


def _ortho(case, output):
    return _dct_variants(case, output, ("ortho",))


def _half_sample(case, output):
    return _dct_variants(case, output, ("dct2", "fft"))


def _interior_log_abs(case):
    """Per-sample sum of log|W(k)| over the interior half-spectrum bins."""
    kind = KINDS[case.kind]
    data = _first_input(case)
    n = data.shape[-1] if "t" not in case.inputs else case.inputs["t"].shape[-1]
    if "w" in case.inputs:
        W = spectral.circular_spectrum(case.inputs["w"], kind.axes)
    else:
        W = case.inputs["w_half"]
    k = np.arange(W.shape[-1])
    terms = np.log(np.abs(W)) * ((k >= 1) & (k <= (n - 1) // 2))
    if "alpha" in case.inputs and np.ndim(case.inputs["alpha"]) == 1:
        terms = np.sum(terms, axis=0)
    half = data.shape[:-1] + (W.shape[-1],)
    return np.sum(np.broadcast_to(terms, half), axis=tuple(range(1, len(half))))


def _doubling(case, output):
    kind = KINDS[case.kind]
    if output != "log_det" or kind.transform != "circular":
        return []
    return [case.expected["log_det"] - kind.sign * _interior_log_abs(case)]


def _transposed_vjp(case, output):
    g = case.inputs.get("g")
    if case.kind == "dct1_vjp":
        return [primitives.dct1(g)]
    if case.kind == "idct1_vjp":
        return [primitives.idct1(g)]
    return []


def _conjugated_cotangent(case, output):
    if case.kind == "rfft_vjp":
        inputs = dict(case.inputs, g=np.conj(case.inputs["g"]))
        return [KINDS[case.kind].function(**inputs)[output]]
    if case.kind == "irfft_vjp":
        return [np.conj(case.expected[output])]
    return []


def _slog_parts(case):
    """``(input, output, alpha)`` of an S-Log case in the forward direction."""
    if case.kind == "slog":
        return case.inputs["x"], case.expected["y"], case.inputs["alpha"]
    return case.expected["x"], case.inputs["y"], case.inputs["alpha"]


def _naive_log1p_in(case, output, dtype):
    if case.kind not in ("slog", "slog_inverse"):
        return []
    with np.errstate(over="ignore", invalid="ignore"):
        x, y, alpha = (np.asarray(a, dtype) for a in _slog_parts(case))
        if case.kind == "slog":
            t = np.log(1 + alpha * np.abs(x))
            value = np.sign(x) * t / alpha if output == "y" else -np.sum(t, axis=-1)
        elif output == "x":
            value = np.sign(y) * (np.exp(alpha * np.abs(y)) - 1) / alpha
        else:
            return []
    return [value.astype(np.float64)]


def _naive_log1p(case, output):
    return _naive_log1p_in(case, output, np.float64)


def _naive_log1p_float32(case, output):
    """The same in float32, where the cancellation is worse: used in float32 checks
    only (in a float64 check any float32 port would match it)."""
    return _naive_log1p_in(case, output, np.float32)


def _slog_wrong_variable(case, output):
    """The gate's log-det evaluated at its output instead of its input."""
    if output != "log_det":
        return []
    if case.kind == "slog":
        return [-np.sum(np.log1p(case.inputs["alpha"] * np.abs(case.expected["y"])), axis=-1)]
    if case.kind == "slog_inverse":
        return [case.inputs["alpha"] * np.sum(np.abs(case.expected["x"]), axis=-1)]
    return [value for where in ("output", "f_output", "g_output")
            for value in _variant(case, output, lambda d: d, gate_log_det_of=where)]


def _variant(case, output, change, **options):
    from .layers import coupling_variant

    if KINDS[case.kind].level != 2:
        return []
    try:
        with np.errstate(all="ignore"):
            value = coupling_variant(case, change(dict(case.inputs)), **options)[output]
    except (ValueError, FloatingPointError):  # the variant may overflow an S-Log gate
        return []
    return [value] if np.all(np.isfinite(value)) else []


def _layer_order(case, output):
    if np.ndim(case.inputs.get("alpha")) != 1:
        return []
    reverse = ("w_hat", "w_half", "s", "alpha", "alpha_prime")
    return _variant(case, output, lambda d: {k: v[::-1] if k in reverse else v
                                             for k, v in d.items()})


def _alpha_swapped(case, output):
    return _variant(case, output, lambda d: dict(d, alpha=d["alpha_prime"],
                                                 alpha_prime=d["alpha"]))


def _wrong_half(case, output):
    if not case.kind.startswith("conf_coupling_step"):
        return []
    return [value for half in ("first", "first_swapped_output", "swapped_output")
            for value in _variant(case, output, lambda d: d, half=half)]


def _log_prob_sign(case, output):
    if case.kind != "conf_model_log_prob" or output != "log_prob":
        return []
    return [case.expected["log_prob"] - 2 * case.expected["log_det"]]


def _actnorm_log_det(case):
    keys = [k for k in case.inputs if k.endswith("/actnorm/log_scale")]
    return -sum(np.sum(case.inputs[k]) for k in keys)


def _dropped_constant(case, output):
    kind = KINDS[case.kind]
    if case.kind == "conf_model_log_prob" and output in ("log_det", "log_prob"):
        return [case.expected[output] - _actnorm_log_det(case)]
    if output == "log_det" and kind.sign > 0 and kind.level <= 1:
        return [np.zeros_like(case.expected[output])]
    return []


def _inverse_log_det(case, output):
    if output != "log_det" or KINDS[case.kind].sign > 0:
        return []
    return [np.zeros_like(case.expected[output]), -case.expected[output]]


def _detached(case, output):
    if case.kind != "symmetric_conv_grad":
        return []
    return [case.expected[output] - 1.0 / case.inputs["w_hat"]]


#: models of a float32 computation, tried in float32 checks only
FLOAT32_MODELS = [("log1p_expm1", _naive_log1p_float32)]

MODELS = [  # (code, model); generic patterns (constant factors) are in diagnose
    ("dct1_ortho", _ortho),
    ("half_sample_extension", _half_sample),
    ("half_spectrum_doubling", _doubling),
    ("vjp_end_weights", _transposed_vjp),
    ("complex_cotangent", _conjugated_cotangent),
    ("log1p_expm1", _naive_log1p),
    ("slog_log_det_variable", _slog_wrong_variable),
    ("layer_order", _layer_order),
    ("alpha_swapped", _alpha_swapped),
    ("wrong_half", _wrong_half),
    ("log_det_sign", _log_prob_sign),
    ("constant_log_det_dropped", _dropped_constant),
    ("inverse_log_det", _inverse_log_det),
    ("detached_log_det", _detached),
]
