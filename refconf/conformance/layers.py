"""Eq. 4 and eq. 5 written out again with switches for the porting mistakes that live
inside a coupling step (the gate log-det at the wrong variable, the wrong half
transformed), for :mod:`refconf.conformance.mistakes`.

The correct path (no switch set) equals :mod:`refconf.conformance.layer`; the tests
check that, so a switch changes exactly one thing.
"""

import numpy as np

from .. import spectral
from .kinds import KINDS

__all__ = ["coupling_variant"]


def _event_sum(a):
    return np.sum(a, axis=-1)


def _conv(h, w, circular, inverse):
    if circular:
        conv = spectral.circular_deconv if inverse else spectral.circular_conv
        log_det = spectral.circular_log_abs_det(w, h.shape[-1])
    else:
        conv = spectral.symmetric_deconv if inverse else spectral.symmetric_conv
        log_det = spectral.symmetric_log_abs_det(w)
    return conv(h, w), -log_det if inverse else log_det


def _f(x, a, at_output):
    """Contracting gate; its log-det at the input (correct) or at the output."""
    y = np.sign(x) * np.log1p(a * np.abs(x)) / a
    return y, -_event_sum(np.log1p(a * np.abs(y if at_output else x)))


def _g(y, a, at_output):
    """Expanding gate; its log-det at the input (correct) or at the output."""
    x = np.sign(y) * np.expm1(a * np.abs(y)) / a
    return x, a * _event_sum(np.abs(x if at_output else y))


def _layer(h, w, s, a, a_prime, circular, inverse, at_output):
    """``at_output``: the set of gates ({"f", "g"}) whose log-det is taken at the output."""
    log_s = _event_sum(np.log(np.abs(s)))
    f_out, g_out = "f" in at_output, "g" in at_output
    if not inverse:
        u, ld_conv = _conv(h, w, circular, False)
        q, ld_f = _f(u, a, f_out)
        y, ld_g = _g(s * q, a_prime, g_out)
        return y, ld_conv + ld_f + log_s + ld_g
    v, ld_f = _f(h, a_prime, f_out)
    u, ld_g = _g(v / s, a, g_out)
    x, ld_conv = _conv(u, w, circular, True)
    return x, ld_f - log_s + ld_g + ld_conv


def _step(h, inputs, circular, inverse, at_output):
    w = inputs.get("w_hat", inputs.get("w_half"))
    s, a, a_prime = inputs["s"], inputs["alpha"], inputs["alpha_prime"]
    if np.ndim(a) == 0:  # a single layer (eq. 4)
        return _layer(h, w, s, a, a_prime, circular, inverse, at_output)
    total = 0.0
    h = h - inputs["t"] if inverse else h
    for i in (range(len(a)) if inverse else reversed(range(len(a)))):
        h, log_det = _layer(h, w[i], s[i], a[i], a_prime[i], circular, inverse, at_output)
        total = total + log_det
    return (h if inverse else h + inputs["t"]), total


def coupling_variant(case, inputs, gate_log_det_of="input", half=None):
    """The outputs of a level-2 case (conf_layer, conf_step, their inverses and
    circular forms, conf_coupling_step) at ``inputs``, with a mistake switched on.

    Parameters
    ----------
    gate_log_det_of : {"input", "output", "f_output", "g_output"}
        Where the S-Log gates' log-derivatives are evaluated: at their inputs (correct),
        at their outputs, or only the contracting gate's (``f``) or the expanding gate's
        (``g``) at its output.
    half : {None, "first", "first_swapped_output", "swapped_output"}
        conf_coupling_step only: ``"first"`` transforms x[:, :d2] and keeps the rest
        after it, ``"first_swapped_output"`` the same with the kept part first,
        ``"swapped_output"`` transforms the right half but returns ``[y2, x1]``.
    """
    kind = KINDS[case.kind]
    circular = kind.transform == "circular"
    at_output = {"input": "", "output": "fg", "f_output": "f", "g_output": "g"}[gate_log_det_of]
    names = kind.outputs
    if not case.kind.startswith("conf_coupling_step"):
        data = inputs[kind.inputs[0]]
        return dict(zip(names, _step(data, inputs, circular, kind.sign < 0, at_output)))
    x, d2 = inputs["x"], inputs["t"].shape[-1]
    d1 = x.shape[-1] - d2
    if half in ("first", "first_swapped_output"):
        kept, x2 = x[:, d2:], x[:, :d2]
    else:
        kept, x2 = x[:, :d1], x[:, d1:]
    y2, log_det = _step(x2, inputs, circular, False, at_output)
    parts = [y2, kept] if half in ("first", "swapped_output") else [kept, y2]
    return {"y": np.concatenate(parts, axis=-1), "log_det": log_det}
