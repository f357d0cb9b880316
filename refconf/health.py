"""Health of a fitted CONF model: where values go non-finite, and how well conditioned each
layer's convolution is.

A combined layer (paper eq. 4) inverts its convolution by dividing by the eigenvalues
``w_hat`` (:doc:`../theory/logdet-deconvolution`): a first-order bound on the relative
round-trip error is ``d2 * eps * kappa`` with ``kappa = max|w_hat| / min|w_hat|`` per
sample and ``eps`` the unit round-off of the dtype. :func:`spectrum_report` lists it
beside the measured error of a forward-inverse round trip in float32 and float64, per
layer, and warns for near-singular layers.
"""

import warnings

import numpy as np

from .bijectors.coupling import ConvCoupling, conf_layer, conf_layer_inverse
from .params import check_params

__all__ = ["NearSingularWarning", "locate_non_finite", "spectrum_report"]

#: ``min |w_hat|`` below which a layer is reported near-singular.
NEAR_SINGULAR = 1e-3


class NearSingularWarning(UserWarning):
    """A convolution with an eigenvalue near zero: its inverse amplifies round-off."""


def _layers(model, params):
    """``(name, bijector)`` of every layer of the flow, data side first."""
    flow = model.build(params, engine="numpy")
    for k, step in enumerate(flow.chain.bijectors):
        for layer in step.bijectors:
            yield f"step {k} {type(layer).__name__}", layer


def _finite(*values):
    return all(bool(np.all(np.isfinite(v))) for v in values)


def _coupling_pieces(layer, h):
    """The coupling's update half and conditioner outputs at input ``h``."""
    base, x2 = layer.split(h)
    w, s, t = layer.conditioner_outputs(base)
    return x2, w, s, t


def _gate(layer, h):
    """The first piece of a coupling that goes non-finite at input ``h``."""
    x2, w, s, t = _coupling_pieces(layer, h)
    if not _finite(w, s, t):
        return "the conditioner (kernel spectra, scales or shift)"
    alpha, alpha_prime = np.asarray(layer.alpha), np.asarray(layer.alpha_prime)
    for i in reversed(range(len(alpha))):
        y2, log_det = conf_layer(x2, w[i], s[i], alpha[i], alpha_prime[i], layer.kind,
                                 overflow="inf")
        if not _finite(y2):
            return (f"combined layer {i + 1} of {len(alpha)}: the expanding S-Log gate "
                    f"g_a' (a' = {alpha_prime[i]:.3g}) overflowed")
        if not _finite(log_det):
            return f"combined layer {i + 1} of {len(alpha)}: its log-determinant"
        x2 = y2
    return "its shift"


def locate_non_finite(model, params, x):
    """Name the first parameter, layer and gate where the flow's values at ``x`` stop
    being finite, e.g. ``"step 2 ConvCoupling, combined layer 1 of 2: the expanding S-Log
    gate g_a' (a' = 3.1) overflowed"``.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.flows import conf
    >>> model = conf(2, steps=1, hidden=(4,))
    >>> params = model.init_params(random_state=0)
    >>> params["steps"][0]["coupling"]["log_alpha_prime"][:] = 3.0     # a' = e^3
    >>> locate_non_finite(model, params, np.array([[0.0, 1e3]]))
    "step 0 ConvCoupling, combined layer 1 of 2: the expanding S-Log gate g_a' (a' = 20.1) overflowed"
    """
    try:
        check_params(params, finite=True)
    except ValueError as err:
        return str(err)
    h = np.asarray(x, dtype=np.float64)
    largest = (0.0, None)
    for name, layer in _layers(model, params):
        with np.errstate(all="ignore"):
            y, log_det = layer.forward(h)
            if not _finite(y, log_det):
                gate = f", {_gate(layer, h)}" if isinstance(layer, ConvCoupling) else ""
                return f"{name}{gate}"
        largest = max(largest, (float(np.max(np.abs(log_det))), name), key=lambda t: t[0])
        h = y
    return (f"every value is finite; the largest |log-determinant| is {largest[0]:.3g} in "
            f"{largest[1]}, and the largest latent value {float(np.max(np.abs(h))):.3g}")


def _round_trip(x2, w, s, alpha, alpha_prime, kind, dtype):
    """Relative error of ``conf_layer_inverse(conf_layer(x2))`` computed in ``dtype``."""
    cast = [np.asarray(a).astype(dtype if np.isrealobj(a) else np.complex64
                                 if dtype == np.float32 else np.complex128)
            for a in (x2, w, s)]
    with np.errstate(all="ignore"):
        y2, _ = conf_layer(cast[0], cast[1], cast[2], dtype(alpha), dtype(alpha_prime), kind,
                           overflow="inf")
        back, _ = conf_layer_inverse(y2, cast[1], cast[2], dtype(alpha), dtype(alpha_prime),
                                     kind)
    err = np.max(np.abs(back.astype(np.float64) - x2)) / max(1.0, float(np.max(np.abs(x2))))
    return float(err) if np.isfinite(err) else float("inf")


def _coupling_rows(name, layer, h):
    x2, w, s, _ = _coupling_pieces(layer, h)
    alpha, alpha_prime = np.asarray(layer.alpha), np.asarray(layer.alpha_prime)
    rows = []
    for i in reversed(range(len(alpha))):
        magnitude = np.abs(w[i])
        kappa = float(np.max(np.max(magnitude, axis=-1) / np.min(magnitude, axis=-1)))
        row = {"layer": f"{name} {i + 1}/{len(alpha)}", "min_abs_w_hat": float(magnitude.min()),
               "condition_number": kappa, "alpha": float(alpha[i]),
               "alpha_prime": float(alpha_prime[i])}
        for dtype in (np.float32, np.float64):
            key = np.dtype(dtype).name
            row[f"predicted_{key}"] = x2.shape[-1] * float(np.finfo(dtype).eps) * kappa
            row[f"measured_{key}"] = _round_trip(x2, w[i], s[i], alpha[i], alpha_prime[i],
                                                 layer.kind, dtype)
        rows.append(row)
        x2 = conf_layer(x2, w[i], s[i], alpha[i], alpha_prime[i], layer.kind, "inf")[0]
    return rows


def spectrum_report(model, params, x, near_singular=NEAR_SINGULAR):
    """Per combined layer of every CONF step, at the data ``x`` (rows, in the flow's input
    space): ``min |w_hat|``, the largest per-sample condition number ``kappa``, the S-Log
    scales ``alpha`` and ``alpha'``, and the predicted (``d2 eps kappa``) and measured
    round-trip errors in float32 and float64.

    Parameters
    ----------
    model : FlowModel
    params : pytree
    x : ndarray, shape (n, D)
    near_singular : float
        A ``NearSingularWarning`` names every layer with ``min |w_hat|`` below it.

    Returns
    -------
    list of dict
        One row per combined layer, keys ``layer``, ``min_abs_w_hat``,
        ``condition_number``, ``alpha``, ``alpha_prime``, ``predicted_float32``,
        ``measured_float32``, ``predicted_float64``, ``measured_float64``.

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.flows import conf
    >>> model = conf(4, steps=2, m=1, hidden=(8,))
    >>> x = np.random.default_rng(0).normal(size=(50, 4))
    >>> rows = spectrum_report(model, model.init_params(x, random_state=0), x)
    >>> len(rows), rows[0]["measured_float64"] <= rows[0]["predicted_float64"]
    (2, True)
    """
    h = np.asarray(x, dtype=np.float64)
    rows = []
    for name, layer in _layers(model, params):
        if isinstance(layer, ConvCoupling):
            rows += _coupling_rows(name, layer, h)
        h = layer.forward(h)[0]
    bad = [row["layer"] for row in rows if row["min_abs_w_hat"] < near_singular]
    if bad:
        warnings.warn(f"near-singular convolution (min |w_hat| < {near_singular:g}) in "
                      f"{', '.join(bad)}: its inverse amplifies round-off by the condition "
                      "number", NearSingularWarning, stacklevel=2)
    return rows
