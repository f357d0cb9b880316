"""Precision profiles: the tolerance of every output of every case, per precision.

An output passes when ``|result - expected| <= atol + rtol |expected|`` elementwise.

``float64``
    ``rtol = 1e-10`` (``1e-9`` for whole models), ``atol = rtol max|expected|``.

``float32``
    From the case's own conditioning, measured: the case is evaluated in float64 at its
    inputs rounded to float32 and at ``PERTURBATIONS - 1`` random perturbations of every
    input by up to ``eps32 / 2`` (``eps32 = 2^-23``), relative to each entry for the
    elementwise S-Log gates and to the largest magnitude of the entry's row (last axis)
    for everything else, the normwise error of a transform computed in float32. With
    ``dev`` the largest deviation of an output from the expected one over those
    evaluations, ``atol = SAFETY max(dev, eps32 max|expected|)`` and
    ``rtol = SAFETY eps32``: a badly conditioned case (a spread-out spectrum, a long
    chain of gates) gets a looser bound than a well conditioned one, and a correct
    float32 port's own rounding (a few ``eps32`` per operation) stays inside the factor
    ``SAFETY``. A case has no float32 profile, it is *float64-only* and a float32 check
    skips it with the reason, when its inputs or expected outputs do not fit float32
    (beyond ``3.4e38``, or non-zero below ``1.2e-38``), or when ``dev`` exceeds
    ``ILL_CONDITIONED`` of the output's largest magnitude (float32 cannot resolve the
    case, e.g. an eigenvalue ``1e-7`` beside eigenvalues near ``10``).

The profile is a pure function of the case's inputs and expected outputs, so the checker
recomputes it instead of trusting a file.
"""

import zlib

import numpy as np

from .kinds import KINDS

__all__ = ["EPS32", "ILL_CONDITIONED", "PERTURBATIONS", "PRECISIONS", "SAFETY", "float32_tolerance",
           "float64_only_reason", "float64_tolerance"]

PRECISIONS = ("float64", "float32")
EPS32 = float(np.finfo(np.float32).eps)
SAFETY = 100.0
PERTURBATIONS = 4
ILL_CONDITIONED = 1e-2
_F32 = np.finfo(np.float32)


def _round_up(value):
    """``value`` to 3 significant digits, rounded away from zero (a bound stays a bound)."""
    if value <= 0:
        return 0.0
    digits = 10.0 ** (np.floor(np.log10(value)) - 2)
    return float(f"{np.ceil(value / digits) * digits:.3g}")


def _max_abs(a):
    return float(np.max(np.abs(a), initial=0.0))


def float64_tolerance(expected, rtol):
    """``{"rtol": rtol, "atol": rtol max|expected|}`` (``atol = rtol`` for an all-zero
    output)."""
    scale = _max_abs(expected)
    return {"rtol": rtol, "atol": _round_up(rtol * scale) if scale > 0 else rtol}


def float64_only_reason(inputs, expected):
    """Why a case cannot be computed in float32, or None when it can."""
    for group, arrays in (("input", inputs), ("expected output", expected)):
        for name, value in arrays.items():
            magnitude = np.abs(np.asarray(value))
            largest = float(np.max(magnitude, initial=0.0))
            if largest > _F32.max:
                return (f"{group} {name} reaches {largest:.3g}, beyond float32's largest "
                        f"value {_F32.max:.3g}")
            nonzero = magnitude[magnitude > 0]
            if nonzero.size and float(nonzero.min()) < _F32.tiny:
                return (f"{group} {name} has values down to {float(nonzero.min()):.3g}, "
                        f"below float32's smallest normal {_F32.tiny:.3g}")
    return None


def _perturb(value, rng, first, elementwise):
    """``value`` as a float32 port may see it: rounded to float32 (``first``), else
    perturbed by up to ``eps32 / 2`` relative to each entry (``elementwise``) or to the
    largest magnitude of its row (last axis), the error of a transform computed in
    float32 (an FFT's rounding is normwise)."""
    value = np.asarray(value)
    if first:
        target = np.complex64 if np.iscomplexobj(value) else np.float32
        return value.astype(target).astype(value.dtype)
    scale = np.abs(value)
    if not elementwise and value.ndim:
        scale = np.max(scale, axis=-1, keepdims=True)

    def noise():
        return 0.5 * EPS32 * scale * rng.uniform(-1.0, 1.0, value.shape)

    if np.iscomplexobj(value):
        return value + noise() + 1j * noise()
    return value + noise()


def float32_tolerance(name, kind, inputs, expected, attributes):
    """``({output: {"rtol", "atol"}}, None)`` of the float32 profile (see the module
    docstring), or ``(None, reason)`` when the case is too ill-conditioned for float32:
    rounding its inputs at float32 precision moves an output by more than
    ``ILL_CONDITIONED`` of its largest magnitude (e.g. a spectrum whose smallest
    eigenvalue is below ``eps32`` times its largest).

    Deterministic: the perturbations are drawn from a generator seeded by ``name``.
    """
    rng = np.random.default_rng(zlib.crc32(f"{name}/float32".encode()))
    elementwise = KINDS[kind].transform is None and KINDS[kind].level == 0
    deviation = dict.fromkeys(expected, 0.0)
    for draw in range(PERTURBATIONS):
        perturbed = {key: _perturb(value, rng, draw == 0, elementwise)
                     for key, value in inputs.items()}
        with np.errstate(all="ignore"):
            outputs = KINDS[kind].function(**perturbed, **attributes)
        for key, value in expected.items():
            deviation[key] = max(deviation[key], _max_abs(np.asarray(outputs[key]) - value))
    for key, value in expected.items():
        relative = deviation[key] / max(_max_abs(value), 1e-300)
        if not relative <= ILL_CONDITIONED:
            return None, (f"ill-conditioned for float32: rounding the inputs at float32 "
                          f"precision moves {key} by {relative:.2g} of its largest value")
    return {key: {"rtol": _round_up(SAFETY * EPS32),
                  "atol": _round_up(SAFETY * max(deviation[key], EPS32 * _max_abs(value)))}
            for key, value in expected.items()}, None
