"""Golden test vectors: the cases, their generation, and the on-disk format.

A vector directory holds ``manifest.json`` and one ``<case>.npz`` per case. The
manifest states the format, the conventions a port must follow (direction, DCT-I
normalisation, spectrum and parameter layouts, dtype, tolerances) and, per case, its
kind (the function signature, :data:`~refconf.conformance.kinds.KINDS`), description,
input and output names, shapes and tolerances, and the SHA-256 of its file. Each
``.npz`` holds the inputs under their names and the expected outputs under
``expected/<name>``. Everything is generated from fixed seeds, so writing twice gives
byte-identical files.
"""

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
import scipy

from ..flows import conf
from ..params import atomic_write
from .archive import read_npz, write_npz
from .kinds import KINDS, flatten_params

__all__ = [
    "CONVENTIONS",
    "FORMAT",
    "FORMAT_VERSION",
    "Case",
    "cases",
    "generate_cases",
    "load_cases",
    "write_vectors",
]

FORMAT = "refconf-conformance"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EXPECTED_PREFIX = "expected/"
DEFAULT_TOLERANCE = 1e-10

CONVENTIONS = {
    "direction": (
        "forward maps data to latent (x -> z) and returns log_det = log|det dz/dx|; the "
        "inverse kinds (idct1, *_deconv, *_inverse, conf_model_sample) return "
        "log|det dx/dz|, minus the forward's. A data input's first axis is the batch axis "
        "B; log_det has shape (B,), summed over every other axis."),
    "dtype": (
        "float64 (complex128 for circular spectra and complex cotangents). Compute results "
        "in float64: the tolerances are double-precision tolerances."),
    "dct1": (
        "DCT-I of eq. 2 of Karami et al. (2019), unnormalised: on L = N + 1 samples, "
        "X(k) = x(0) + (-1)^k x(N) + 2 sum_{n=1}^{N-1} x(n) cos(pi k n / N), k = 0..N. "
        "This is scipy.fft.dct(x, type=1) with the default norm='backward' (not "
        "norm='ortho'), and rfft(whole-sample even extension [x0, ..., xN, x(N-1), ..., "
        "x1]).real. Inverse: idct1(X) = dct1(X) / (2N). 2-D: along both trailing axes."),
    "symmetric_convolution": (
        "w *_s x = idct1(w_hat * dct1(x)) with w_hat = dct1(w) the real eigenvalues "
        "(no extra scale factor); deconvolution idct1(dct1(y) / w_hat); "
        "log|det| = sum log|w_hat| over the event (w_hat broadcast against x)."),
    "circular_convolution": (
        "y(n) = sum_m x(m) w((n - m) mod N). W(k) = sum_n w(n) exp(-2 pi i k n / N), no "
        "scale. Kernels are real, so spectra are stored as rfft half spectra: "
        "floor(N/2) + 1 bins on the last axis (numpy rfft2 layout in 2-D: every bin of "
        "the axis before it); imaginary parts at DC (and Nyquist for even N) are 0. "
        "log|det| = sum over all N bins of log|W(k)| = log|W(0)| + [N even] "
        "log|W(N/2)| + 2 sum of log|W(k)| over the interior half-spectrum bins."),
    "s_log": (
        "f_a(x) = sign(x) log1p(a|x|) / a, log f_a'(x) = -log1p(a|x|); inverse "
        "g_a(y) = sign(y) expm1(a|y|) / a, log g_a'(y) = a|y|; a > 0. Use log1p and "
        "expm1: tiny-alpha cases fail with log(1 + .) and exp(.) - 1."),
    "conf_layer": (
        "eq. 4: u = w *_s x2, v = s * f_a(u), y2 = g_{a'}(v); log_det = "
        "sum log|w_hat| - sum log1p(a|u|) + sum log|s| + a' sum|v| per sample. Inputs are "
        "explicit conditioner outputs: w_hat (B, d2) or w_half (B, d2 // 2 + 1), "
        "s (B, d2), scalars alpha, alpha_prime."),
    "conf_step": (
        "eq. 5: y2 = (F_1 o ... o F_m)(x2) + t with F_i the layer of w_hat[i], s[i], "
        "alpha[i], alpha_prime[i] (index i = 0..m-1 is layer i + 1); F_m is applied "
        "first and t added last. Shapes: w_hat (m, B, d2) (w_half (m, B, d2 // 2 + 1)), "
        "s (m, B, d2), t (B, d2), alpha and alpha_prime (m,)."),
    "vjp": (
        "vjp = J^T g, the vector-Jacobian product of the cotangent g. For complex values "
        "the cotangent of z is dl/dRe(z) - i dl/dIm(z) (autograd and JAX); PyTorch's "
        ".grad of a real loss is its complex conjugate."),
    "tolerance": (
        "an output passes when |result - expected| <= atol + rtol |expected| elementwise "
        "(modulus for complex values) with that output's rtol and atol; atol is "
        "rtol times the largest |expected| of the output."),
    "result_files": (
        "RESULT_DIR/<case>.npz holds the outputs under the names listed in the case's "
        "'outputs', e.g. numpy.savez(path, y=y, log_det=log_det); numeric arrays only, "
        "no pickle; other arrays are ignored."),
    "model": {
        "spec": (
            "the case attribute 'spec' (JSON): dim D, steps, m, hidden widths, kind "
            "(symmetric | circular), mixing (reverse | permutation), actnorm, spectrum "
            "(raw | exp), activation (relu | tanh), mixing_fixed (permutations)."),
        "parameters": (
            "stored flat in the case file: 'param/' + the pytree path, dict keys and list "
            "indices joined by '/': param/steps/<k>/actnorm/loc (D,), "
            "param/steps/<k>/actnorm/log_scale (D,), "
            "param/steps/<k>/coupling/conditioner/<j>/W (n_in, n_out) and /b (n_out,), "
            "param/steps/<k>/coupling/log_alpha (m,), "
            "param/steps/<k>/coupling/log_alpha_prime (m,)."),
        "forward": (
            "for k = 0..steps-1: ActNorm (if spec.actnorm), the coupling step, then the "
            "mixing unless k is the last step. log_det is the sum of the pieces'."),
        "actnorm": "z = (x - loc) * exp(-log_scale); log_det = -sum(log_scale).",
        "coupling": (
            "d_base = floor(D/2), d_update = D - d_base; in a swapped step (mixing other "
            "than 'reverse' and k odd) d_base = ceil(D/2). Not swapped: x1 = x[:d_base] "
            "conditions x2 = x[d_base:], output [x1, y2]. Swapped: x2 = x[:d_update], "
            "x1 = x[d_update:], output [y2, x1]. Conditioner MLP of x1: h = act(h W + b) "
            "for every layer but the last, which is linear (h W + b); act(h) = max(h, 0) "
            "for relu, tanh(h) for tanh."),
        "conditioner_layout": (
            "the conditioner's (2m + 1) d_update outputs per sample form a row-major "
            "(2m + 1, d_update) matrix: rows 0..m-1 are the kernel outputs o_w of layers "
            "1..m, rows m..2m-1 the scale outputs o_s, row 2m the shift t. Eigenvalues: "
            "spectrum 'raw': w_hat = 1 + o_w (symmetric) or W = 1 + rfft(o_w) (circular, "
            "the kernel delta + o_w); 'exp': w_hat = exp(o_w) or W = exp(rfft(o_w)). "
            "s = exp(o_s); "
            "alpha_i = exp(log_alpha[i]), alpha'_i = exp(log_alpha_prime[i]). Then eq. 5 "
            "(conf_step) on x2."),
        "mixing": (
            "'reverse': y = x[..., ::-1]; 'permutation': y = x[..., perm] with "
            "perm = spec.mixing_fixed[k].perm. Log-det 0."),
        "base": "log N(z; 0, I) = -|z|^2 / 2 - D log(2 pi) / 2; log_prob = that + log_det.",
        "sample": "x = inverse of the forward map at the given z (no random numbers).",
    },
}


@dataclass
class Case:
    """One golden case.

    Attributes
    ----------
    name : str
    kind : str
        Key of :data:`~refconf.conformance.kinds.KINDS`: the function signature.
    description : str
    inputs : dict of str -> ndarray
        Call arguments, by name (model cases: ``x`` or ``z`` and ``param/...`` keys).
    expected : dict of str -> ndarray
        Expected outputs, by name.
    tolerance : dict of str -> dict
        ``{output: {"rtol": float, "atol": float}}``.
    attributes : dict
        JSON keyword arguments besides the arrays (``{"spec": ...}`` for model cases).
    """

    name: str
    kind: str
    description: str
    inputs: dict
    expected: dict
    tolerance: dict
    attributes: dict = field(default_factory=dict)

    def call(self, function):
        """``function(**inputs, **attributes)``: the call convention of the kit."""
        return function(**self.inputs, **self.attributes)


# --- case generation ---------------------------------------------------------------------


def _rng(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _eigenvalues(rng, shape, tiny=()):
    """Real eigenvalues with |w| log-uniform in [0.1, 10] and random signs; the flat
    indices ``tiny`` are set to +-1e-7 (near-singular but invertible)."""
    w = rng.choice([-1.0, 1.0], size=shape) * np.exp(rng.uniform(np.log(0.1), np.log(10), shape))
    w.flat[list(tiny)] = 1e-7 * np.sign(w.flat[list(tiny)])
    return w


def _half_spectrum(rng, shape, n):
    """A half spectrum of a real length-``n`` kernel: |W| log-uniform in [0.1, 10], random
    phases, real DC (and Nyquist for even ``n``) bins with random signs."""
    W = _eigenvalues(rng, shape) * np.exp(2j * np.pi * rng.uniform(size=shape))
    W[..., 0] = W[..., 0].real
    if n % 2 == 0:
        W[..., -1] = W[..., -1].real
    return W


def _model(name, random_state, **kwargs):
    """A small CONF model with random parameters far from the identity, and 4 points
    drawn like its ActNorm initialisation data."""
    rng = _rng(name)
    model = conf(random_state=random_state, **kwargs)
    D = model.dim
    scale, offset = rng.uniform(0.5, 2.0, D), rng.normal(size=D)
    x_init = rng.normal(size=(64, D)) * scale + offset
    params = model.init_params(x_init, random_state=rng)
    for step in params["steps"]:
        coupling = step["coupling"]
        for layer in coupling["conditioner"][:-1]:
            layer["W"] = layer["W"] + 0.3 * rng.normal(size=layer["W"].shape)
            layer["b"] = 0.2 * rng.normal(size=layer["b"].shape)
        last = coupling["conditioner"][-1]
        last["W"] = 0.15 * rng.normal(size=last["W"].shape)
        last["b"] = 0.1 * rng.normal(size=last["b"].shape)
        for key in ("log_alpha", "log_alpha_prime"):
            coupling[key] = coupling[key] + 0.3 * rng.normal(size=coupling[key].shape)
        if "actnorm" in step:
            for key in ("loc", "log_scale"):
                step["actnorm"][key] = step["actnorm"][key] + 0.2 * rng.normal(size=D)
    x = rng.normal(size=(4, D)) * scale + offset  # points like the initialisation data
    return model.spec, flatten_params(params), x, rng


def _specs():
    """``(name, kind, description, inputs, attributes, tolerance)`` of every case."""
    out = []

    def add(name, kind, description, tolerance=DEFAULT_TOLERANCE, attributes=None, **inputs):
        out.append((name, kind, description, inputs, attributes or {}, tolerance))

    for L, what in [(2, "the smallest length (N = 1)"), (3, "odd, 2^1 + 1"), (4, "even"),
                    (5, "odd, 2^2 + 1"), (8, "even, a power of 2"), (17, "odd, 2^4 + 1")]:
        rng = _rng(f"dct1_L{L}")
        add(f"dct1_L{L}", "dct1", f"DCT-I of 3 random rows, L = {L}: {what}",
            x=2.0 * rng.normal(size=(3, L)))
    for L in (2, 5, 8, 17):
        rng = _rng(f"idct1_L{L}")
        add(f"idct1_L{L}", "idct1", f"inverse DCT-I of 3 random rows, L = {L}",
            X=rng.normal(size=(3, L)))
    rng = _rng("dct1_2d")
    add("dct1_2d_5x8", "dct1_2d", "separable 2-D DCT-I, 5 x 8 (odd x even)",
        x=rng.normal(size=(2, 5, 8)))
    add("idct1_2d_4x9", "idct1_2d", "inverse separable 2-D DCT-I, 4 x 9 (even x 2^3 + 1)",
        X=rng.normal(size=(2, 4, 9)))

    for L in (5, 8):
        rng = _rng(f"dct1_vjp_L{L}")
        add(f"dct1_vjp_L{L}", "dct1_vjp", f"VJP of dct1, L = {L}: C^T g (C is not symmetric)",
            x=rng.normal(size=(3, L)), g=rng.normal(size=(3, L)))
    rng = _rng("idct1_vjp_L6")
    add("idct1_vjp_L6", "idct1_vjp", "VJP of idct1, L = 6", X=rng.normal(size=(3, 6)),
        g=rng.normal(size=(3, 6)))
    for N in (7, 8):
        rng = _rng(f"rfft_vjp_N{N}")
        nh = N // 2 + 1
        add(f"rfft_vjp_N{N}", "rfft_vjp", f"VJP of rfft, N = {N}, complex cotangent",
            x=rng.normal(size=(3, N)),
            g=rng.normal(size=(3, nh)) + 1j * rng.normal(size=(3, nh)))
        rng = _rng(f"irfft_vjp_N{N}")
        add(f"irfft_vjp_N{N}", "irfft_vjp", f"VJP of irfft to N = {N} samples (complex result)",
            X=rng.normal(size=(3, nh)) + 1j * rng.normal(size=(3, nh)),
            g=rng.normal(size=(3, N)))

    rng = _rng("slog")
    x = 3.0 * rng.normal(size=(4, 6))
    x[0, 0] = 0.0
    add("slog_moderate", "slog", "S-Log gate, alpha = 0.7, one exact zero", x=x,
        alpha=np.array(0.7))
    add("slog_tiny_alpha", "slog", "S-Log gate near the identity, alpha = 1e-9 (needs log1p)",
        x=5.0 * rng.normal(size=(4, 6)), alpha=np.array(1e-9))
    add("slog_large_x", "slog", "S-Log gate, alpha = 3, |x| from 1e-12 to 1e15",
        x=rng.choice([-1.0, 1.0], (4, 6)) * 10.0 ** rng.uniform(-12, 15, (4, 6)),
        alpha=np.array(3.0))
    add("slog_inverse_moderate", "slog_inverse", "inverse S-Log gate, alpha = 0.7",
        y=2.0 * rng.normal(size=(4, 6)), alpha=np.array(0.7))
    add("slog_inverse_tiny_alpha", "slog_inverse",
        "inverse S-Log gate, alpha = 1e-9 (needs expm1)", y=5.0 * rng.normal(size=(4, 6)),
        alpha=np.array(1e-9))
    add("slog_inverse_large_y", "slog_inverse",
        "inverse S-Log gate, alpha = 2, |y| up to 300 (outputs near 1e260)",
        y=rng.choice([-1.0, 1.0], (4, 6)) * rng.uniform(0, 300, (4, 6)), alpha=np.array(2.0))

    rng = _rng("symmetric")
    add("symmetric_conv_L2", "symmetric_conv", "symmetric convolution, L = 2, one spectrum",
        x=rng.normal(size=(3, 2)), w_hat=np.array([-1.7, 0.3]))
    add("symmetric_conv_L4", "symmetric_conv",
        "symmetric convolution, L = 4, one spectrum with negative eigenvalues",
        x=rng.normal(size=(2, 4)), w_hat=np.array([2.5, -0.7, 1.3, -0.4]))
    add("symmetric_conv_L9_per_sample", "symmetric_conv",
        "symmetric convolution, L = 9, one spectrum per sample (data-adaptive), negative "
        "and tiny (1e-7) eigenvalues", x=rng.normal(size=(3, 9)),
        w_hat=_eigenvalues(rng, (3, 9), tiny=(12,)))
    add("symmetric_conv_multichannel", "symmetric_conv",
        "depthwise symmetric convolution, 3 channels x L = 6, log_det over channels too",
        x=rng.normal(size=(2, 3, 6)), w_hat=_eigenvalues(rng, (3, 6)))
    add("symmetric_conv_2d_5x4", "symmetric_conv_2d",
        "2-D symmetric convolution, 5 x 4, non-separable spectrum",
        x=rng.normal(size=(2, 5, 4)), w_hat=_eigenvalues(rng, (5, 4)))
    add("symmetric_deconv_L9_per_sample", "symmetric_deconv",
        "symmetric deconvolution, L = 9, per-sample spectra with a tiny (1e-7) eigenvalue",
        y=rng.normal(size=(3, 9)), w_hat=_eigenvalues(rng, (3, 9), tiny=(4, 22)))
    add("symmetric_deconv_multichannel", "symmetric_deconv",
        "depthwise symmetric deconvolution, 3 channels x L = 7",
        y=rng.normal(size=(2, 3, 7)), w_hat=_eigenvalues(rng, (3, 7)))
    add("symmetric_deconv_2d_4x6", "symmetric_deconv_2d",
        "2-D symmetric deconvolution, 4 x 6", y=rng.normal(size=(2, 4, 6)),
        w_hat=_eigenvalues(rng, (4, 6)))

    rng = _rng("circular")
    for N in (7, 8):
        add(f"circular_conv_kernel_N{N}", "circular_conv_kernel",
            f"circular convolution by a spatial kernel, N = {N}",
            x=rng.normal(size=(3, N)), w=rng.normal(size=N))
        add(f"circular_conv_N{N}", "circular_conv",
            f"circular convolution by per-sample half spectra, N = {N} "
            f"({N // 2 + 1} bins{', Nyquist real' if N % 2 == 0 else ''})",
            x=rng.normal(size=(3, N)), w_half=_half_spectrum(rng, (3, N // 2 + 1), N))
        add(f"circular_deconv_N{N}", "circular_deconv",
            f"circular deconvolution by a half spectrum, N = {N}",
            y=rng.normal(size=(3, N)), w_half=_half_spectrum(rng, (N // 2 + 1,), N))
    add("circular_conv_kernel_2d_4x5", "circular_conv_kernel_2d",
        "2-D circular convolution by a spatial kernel on a 4 x 5 torus",
        x=rng.normal(size=(2, 4, 5)), w=rng.normal(size=(4, 5)))
    add("circular_conv_2d_4x6", "circular_conv_2d",
        "2-D circular convolution by an rfft2 half spectrum (4 x 4 bins of a 4 x 6 kernel)",
        x=rng.normal(size=(2, 4, 6)), w_half=np.fft.rfft2(rng.normal(size=(4, 6))))

    def gates(rng, m):
        alpha = np.exp(rng.uniform(np.log(0.3), np.log(1.5), m))
        return alpha, alpha * np.exp(0.3 * rng.normal(size=m))

    rng = _rng("conf_layer")
    alpha, alpha_prime = gates(rng, 1)
    add("conf_layer_d5", "conf_layer", "eq. 4, symmetric, d2 = 5, per-sample spectra",
        x2=rng.normal(size=(3, 5)), w_hat=_eigenvalues(rng, (3, 5)),
        s=np.exp(0.3 * rng.normal(size=(3, 5))), alpha=alpha[0], alpha_prime=alpha_prime[0])
    alpha, alpha_prime = gates(rng, 1)
    add("conf_layer_circular_d6", "conf_layer_circular", "eq. 4, circular, d2 = 6",
        x2=rng.normal(size=(3, 6)), w_half=_half_spectrum(rng, (3, 4), 6),
        s=np.exp(0.3 * rng.normal(size=(3, 6))), alpha=alpha[0], alpha_prime=alpha_prime[0])
    for kind, m, d2, sign in [("conf_step", 3, 5, 1), ("conf_step_circular", 2, 6, 1),
                              ("conf_step_inverse", 3, 5, -1),
                              ("conf_step_inverse_circular", 2, 7, -1)]:
        rng = _rng(kind)
        circular = kind.endswith("circular")
        spectra = (_half_spectrum(rng, (m, 3, d2 // 2 + 1), d2) if circular
                   else _eigenvalues(rng, (m, 3, d2)))
        alpha, alpha_prime = gates(rng, m)
        data = {"x2" if sign > 0 else "y2": rng.normal(size=(3, d2)),
                "w_half" if circular else "w_hat": spectra,
                "s": np.exp(0.3 * rng.normal(size=(m, 3, d2))), "t": rng.normal(size=(3, d2)),
                "alpha": alpha, "alpha_prime": alpha_prime}
        add(f"{kind}_m{m}_d{d2}", kind,
            f"eq. 5{' inverse' if sign < 0 else ''}, {'circular' if circular else 'symmetric'}"
            f", m = {m}, d2 = {d2}", **data)

    for model_name, random_state, kwargs in [
            ("conf_model_symmetric", 0,
             {"dim": 5, "steps": 2, "m": 2, "hidden": (8,), "kind": "symmetric",
              "mixing": "reverse", "actnorm": True, "spectrum": "raw", "activation": "tanh",
              "alpha_init": 0.8}),
            ("conf_model_circular", 3,
             {"dim": 6, "steps": 3, "m": 1, "hidden": (6,), "kind": "circular",
              "mixing": "permutation", "actnorm": True, "spectrum": "exp",
              "activation": "relu", "alpha_init": 1.2})]:
        spec, params, x, rng = _model(model_name, random_state, **kwargs)
        what = (f"D = {spec['dim']}, {spec['steps']} steps of m = {spec['m']}, "
                f"{spec['kind']}, {spec['mixing']} mixing, {spec['spectrum']} spectrum")
        D = spec["dim"]
        add(f"{model_name}_log_prob", "conf_model_log_prob",
            f"CONF model log density ({what})", tolerance=1e-9, attributes={"spec": spec},
            x=x, **params)
        add(f"{model_name}_sample", "conf_model_sample",
            f"CONF model sample from given noise ({what})", tolerance=1e-9,
            attributes={"spec": spec}, z=rng.normal(size=(4, D)), **params)
    return out


def _tolerance(value, rtol):
    scale = float(np.max(np.abs(value), initial=0.0))
    return {"rtol": rtol, "atol": float(f"{rtol * scale:.3g}") if scale > 0 else rtol}


def generate_cases():
    """Every golden case, computed by refconf in memory (deterministic)."""
    result = []
    for name, kind, description, inputs, attributes, rtol in _specs():
        inputs = {key: np.asarray(value) for key, value in inputs.items()}
        outputs = KINDS[kind].function(**inputs, **attributes)
        expected = {key: np.asarray(outputs[key]) for key in KINDS[kind].outputs}
        tolerance = {key: _tolerance(value, rtol) for key, value in expected.items()}
        result.append(Case(name, kind, description, inputs, expected, tolerance, attributes))
    return result


# --- files -------------------------------------------------------------------------------


def _array_info(a):
    return {"shape": list(a.shape), "dtype": a.dtype.name}


def _manifest(case_list, digests):
    from .. import __version__

    kinds_used = list(dict.fromkeys(case.kind for case in case_list))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "refconf_version": __version__,
        "generated_with": {"numpy": np.__version__, "scipy": scipy.__version__},
        "conventions": CONVENTIONS,
        "kinds": {k: {"inputs": list(KINDS[k].inputs), "outputs": list(KINDS[k].outputs),
                      "signature": KINDS[k].signature} for k in kinds_used},
        "cases": [{
            "name": case.name,
            "kind": case.kind,
            "description": case.description,
            "file": f"{case.name}.npz",
            "sha256": digests[case.name],
            "inputs": {k: _array_info(v) for k, v in case.inputs.items()},
            "outputs": {k: {**_array_info(v), **case.tolerance[k]}
                        for k, v in case.expected.items()},
            "attributes": case.attributes,
        } for case in case_list],
    }


def write_vectors(directory):
    """Write the golden vectors to ``directory`` (created if needed).

    Writes one ``<case>.npz`` per case (inputs under their names, expected outputs under
    ``expected/<name>``), then ``manifest.json``; each file atomically. Repeated calls
    give byte-identical files.

    Returns
    -------
    list of Case
    """
    os.makedirs(directory, exist_ok=True)
    case_list = generate_cases()
    digests = {}
    for case in case_list:
        arrays = dict(case.inputs)
        arrays.update({EXPECTED_PREFIX + k: v for k, v in case.expected.items()})
        digests[case.name] = write_npz(os.path.join(directory, f"{case.name}.npz"), arrays)
    text = json.dumps(_manifest(case_list, digests), indent=1) + "\n"
    with atomic_write(os.path.join(directory, MANIFEST)) as f:
        f.write(text.encode("utf-8"))
    return case_list


def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise ValueError(f"{directory}: no {MANIFEST}; expected a directory written by "
                         "`refconf vectors write DIR`")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT!r} manifest")
    version = manifest.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version!r}; this refconf reads "
                         f"1..{FORMAT_VERSION}")
    return manifest


def load_cases(directory):
    """Read and verify the golden cases of a vector directory.

    Each case file must match the SHA-256 recorded in the manifest and hold the listed
    inputs and expected outputs with the listed shapes.

    Raises
    ------
    ValueError
        Naming the file and what is wrong (missing, altered, malformed).
    """
    manifest = _read_manifest(directory)
    try:
        return [_load_case(directory, entry) for entry in manifest["cases"]]
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{directory}: corrupt {MANIFEST} (missing or malformed field "
                         f"{err})") from None


def _load_case(directory, entry):
    """One manifest entry as a verified :class:`Case`."""
    name, kind = entry["name"], entry["kind"]
    if kind not in KINDS:
        raise ValueError(f"case {name}: unknown kind {kind!r} (a newer format?)")
    if os.path.basename(entry["file"]) != entry["file"]:
        raise ValueError(f"case {name}: file {entry['file']!r} is not a plain file name")
    path = os.path.join(directory, entry["file"])
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing golden case file")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"{path}: SHA-256 differs from the manifest; the golden file was "
                         "altered: rewrite the vectors")
    arrays = read_npz(path)
    inputs, expected = {}, {}
    for group, prefix, target in [("inputs", "", inputs),
                                  ("outputs", EXPECTED_PREFIX, expected)]:
        for key, info in entry[group].items():
            value = arrays.get(prefix + key)
            if value is None or list(value.shape) != info["shape"]:
                raise ValueError(f"{path}: {prefix + key} is missing or has the wrong "
                                 f"shape (expected {info['shape']})")
            target[key] = value
    tolerance = {k: {"rtol": v["rtol"], "atol": v["atol"]}
                 for k, v in entry["outputs"].items()}
    return Case(name, kind, entry["description"], inputs, expected, tolerance,
                entry.get("attributes", {}))


def cases(directory=None):
    """Iterate the golden cases: generated in memory, or read from ``directory``.

    Examples
    --------
    >>> from refconf.conformance import cases
    >>> case = next(c for c in cases() if c.name == "dct1_L3")
    >>> case.kind, case.inputs["x"].shape, sorted(case.expected)
    ('dct1', (3, 3), ['X'])
    """
    yield from (generate_cases() if directory is None else load_cases(directory))
