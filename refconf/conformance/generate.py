"""The golden cases: their inputs, drawn from fixed seeds.

:func:`specs` lists every case as ``(name, kind, description, inputs, attributes,
rtol)``; :func:`refconf.conformance.generate_cases` evaluates them. Each case draws from
its own generator, seeded by the CRC-32 of its name, so adding a case changes no other.
Regenerating the vectors (``refconf vectors write DIR``) is deterministic: same refconf,
NumPy and SciPy versions give byte-identical files.
"""

import zlib

import numpy as np

from ..flows import conf
from .kinds import flatten_params

__all__ = ["DEFAULT_RTOL", "MODEL_RTOL", "specs"]

DEFAULT_RTOL = 1e-10
MODEL_RTOL = 1e-9


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


def specs():
    """``(name, kind, description, inputs, attributes, tolerance)`` of every case."""
    out = []

    def add(name, kind, description, tolerance=DEFAULT_RTOL, attributes=None, **inputs):
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
    add("slog_tiny_alpha", "slog", "S-Log gate near the identity, alpha = 1e-12 (needs log1p)",
        x=5.0 * rng.normal(size=(4, 6)), alpha=np.array(1e-12))
    add("slog_large_x", "slog", "S-Log gate, alpha = 3, |x| from 1e-12 to 1e15",
        x=rng.choice([-1.0, 1.0], (4, 6)) * 10.0 ** rng.uniform(-12, 15, (4, 6)),
        alpha=np.array(3.0))
    add("slog_inverse_moderate", "slog_inverse", "inverse S-Log gate, alpha = 0.7",
        y=2.0 * rng.normal(size=(4, 6)), alpha=np.array(0.7))
    add("slog_inverse_tiny_alpha", "slog_inverse",
        "inverse S-Log gate, alpha = 1e-12 (needs expm1)", y=5.0 * rng.normal(size=(4, 6)),
        alpha=np.array(1e-12))
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

    for kind, m, D, d2 in [("conf_coupling_step", 2, 7, 4),
                           ("conf_coupling_step_circular", 2, 7, 3)]:
        rng = _rng(kind)
        circular = kind.endswith("circular")
        spectra = (_half_spectrum(rng, (m, 3, d2 // 2 + 1), d2) if circular
                   else _eigenvalues(rng, (m, 3, d2)))
        alpha, alpha_prime = gates(rng, m)
        add(f"{kind}_D{D}_d{d2}", kind,
            f"coupling step on the whole x, D = {D}: x1 = x[:, :{D - d2}] kept, "
            f"x2 = x[:, {D - d2}:] updated by eq. 5 ({'circular' if circular else 'symmetric'}"
            f", m = {m}, d1 = {D - d2} != d2 = {d2})",
            x=rng.normal(size=(3, D)), **{"w_half" if circular else "w_hat": spectra},
            s=np.exp(0.3 * rng.normal(size=(m, 3, d2))), t=rng.normal(size=(3, d2)),
            alpha=alpha, alpha_prime=alpha_prime)
    rng = _rng("symmetric_conv_grad")
    add("symmetric_conv_grad_L6", "symmetric_conv_grad",
        "gradient of sum(g * y) + sum(log_det) of the symmetric convolution with respect "
        "to per-sample spectra w_hat (B, L), L = 6: the log-det term must reach it",
        x=rng.normal(size=(3, 6)), w_hat=_eigenvalues(rng, (3, 6)), g=rng.normal(size=(3, 6)))

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
            f"CONF model log density ({what})", tolerance=MODEL_RTOL, attributes={"spec": spec},
            x=x, **params)
        add(f"{model_name}_sample", "conf_model_sample",
            f"CONF model sample from given noise ({what})", tolerance=MODEL_RTOL,
            attributes={"spec": spec}, z=rng.normal(size=(4, D)), **params)
    return out


