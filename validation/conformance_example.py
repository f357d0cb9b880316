"""Claim: the conformance kit accepts a correct independent implementation of CONF, in
float64 and in float32, and rejects each known porting mistake planted in it with that
mistake's name; a copy of the golden files, a forgotten output and an edited manifest
each fail loudly.

``FFTPort`` below is a second implementation of every kind in the kit, written from the
paper's equations in a different style from refconf (plain ``numpy.fft``, no scipy DCT,
no autograd): DCT-I as the real part of the rfft of the whole-sample even extension,
circular log-dets from the full spectrum rebuilt from the half spectrum, its own S-Log
gates, coupling layers, hand-derived VJPs and gradient, and a whole CONF model read from
the manifest's documented parameter layout. ``FFTPort(np.float32)`` casts every input to
float32 and computes in float32 (NumPy 2 keeps FFTs in single precision). It works from
files, as a port would: it reads ``golden/<case>.npz`` and writes ``results/<case>.npz``
with ``numpy.savez``; then ``refconf.conformance.check`` runs.

``MISTAKES`` lists one subclass per mistake class of the kit, each changing one thing
(the DCT-I normalisation, an orthonormal or half-sample DCT, the half-spectrum log-det,
the log-det's sign, the inverse's log-det, a dropped constant log-det, a detached
log-det, a non-Hermitian spectrum, log(1 + .), the S-Log log-det's variable, the layer
order, alpha and alpha' swapped, the wrong half, the VJP's end weights, the complex
cotangent); each must fail with its name as the most frequent diagnosis, in float64 and
in float32.

Usage: ``python validation/conformance_example.py [--keep DIR] [--quiet]``. Exit code 0
iff every claim holds.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import scipy.fft

from refconf.conformance import check, check_function, load_cases, write_vectors


class FFTPort:
    """CONF's transforms with numpy.fft only; one public method per kind of the kit.

    ``dtype`` is the precision the port computes in (np.float64 or np.float32). The
    underscored methods are the places a port goes wrong; ``MISTAKES`` overrides them.
    """

    gate_log_det_at_output = False

    def __init__(self, dtype=np.float64):
        self.dtype = np.dtype(dtype)

    def run(self, kind, **inputs):
        """Call the method of ``kind`` on ``inputs`` cast to the port's precision."""
        complex_dtype = np.result_type(self.dtype, np.complex64)
        cast = {k: (v.astype(complex_dtype if np.iscomplexobj(v) else self.dtype)
                    if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}
        return getattr(self, kind)(**cast)

    # --- building blocks ----------------------------------------------------------------

    def _inverse_log_det(self, log_det):
        """Hook for the log-det an inverse kind returns (unchanged when correct)."""
        return log_det

    def _constant_log_det(self, log_det):
        """Hook for a log-det that does not depend on the data (kept when correct)."""
        return log_det

    def _log1p(self, a):
        return np.log1p(a)

    def _expm1(self, a):
        return np.expm1(a)

    def _layer_indices(self, m, inverse):
        """Eq. 5: F_m first, so the forward loop runs from the last layer down."""
        return range(m) if inverse else reversed(range(m))

    def _gates(self, a, a_prime):
        return a, a_prime

    def _split(self, x, d2):
        """(kept x1, updated x2, join) of a coupling step on the whole x."""
        d1 = x.shape[-1] - d2
        return x[:, :d1], x[:, d1:], lambda kept, y2: np.concatenate([kept, y2], axis=1)

    def _spectrum_product(self, X, w_half, shape, axes, inverse):
        return np.fft.irfftn(X / w_half if inverse else X * w_half, s=shape, axes=axes)

    def _orient(self, log_det):
        """Hook for the sign of every elementary log-det (identity when correct)."""
        return log_det

    @staticmethod
    def _along(f, a, axis):
        return np.moveaxis(f(np.moveaxis(a, axis, -1)), -1, axis)

    def _dct1(self, x):
        """rfft of [x0, ..., xN, x(N-1), ..., x1]: its first N + 1 bins are the DCT-I."""
        return np.fft.rfft(np.concatenate([x, x[..., -2:0:-1]], axis=-1), axis=-1).real

    def _idct1(self, X):
        """irfft of the DCT-I bins as a half spectrum of length 2N, cropped to N + 1."""
        N = X.shape[-1] - 1
        return np.fft.irfft(X, n=2 * N, axis=-1)[..., : N + 1]

    def _transform(self, a, ndim, inverse=False):
        f = self._idct1 if inverse else self._dct1
        for axis in range(-ndim, 0):
            a = self._along(f, a, axis)
        return a

    @staticmethod
    def _per_sample(a, batch_shape):
        a = np.broadcast_to(a, batch_shape)
        return a.reshape(len(a), -1).sum(axis=1)

    def _symmetric(self, x, w_hat, ndim, inverse):
        X = self._transform(x, ndim)
        y = self._transform(X / w_hat if inverse else X * w_hat, ndim, inverse=True)
        log_det = self._orient(self._per_sample(np.log(np.abs(w_hat)), x.shape))
        if w_hat.ndim < x.ndim:  # one spectrum for the batch: a constant log-det
            log_det = self._constant_log_det(log_det)
        return y, -log_det if inverse else log_det

    def _circular_log_abs(self, w_half, shape):
        """log|W| over the full spectrum: rebuild the real kernel, take its full FFT."""
        axes = tuple(range(-len(shape), 0))
        kernel = np.fft.irfftn(w_half, s=shape, axes=axes)
        return np.log(np.abs(np.fft.fftn(kernel, axes=axes)))

    def _circular(self, x, w_half, ndim, inverse):
        shape, axes = x.shape[-ndim:], tuple(range(-ndim, 0))
        X = np.fft.rfftn(x, axes=axes)
        y = self._spectrum_product(X, w_half, shape, axes, inverse)
        log_abs = self._circular_log_abs(np.broadcast_to(w_half, X.shape), shape)
        log_det = self._orient(log_abs.reshape(len(x), -1).sum(axis=1))
        if w_half.ndim < x.ndim:
            log_det = self._constant_log_det(log_det)
        return y, -log_det if inverse else log_det

    def _f(self, x, a):
        """Contracting S-Log gate and its per-sample log-det."""
        t = self._log1p(a * np.abs(x))
        y = np.sign(x) * t / a
        if self.gate_log_det_at_output:
            t = self._log1p(a * np.abs(y))
        return y, self._orient(-t.reshape(len(x), -1).sum(axis=1))

    def _g(self, y, a):
        """Expanding S-Log gate and its per-sample log-det."""
        x = np.sign(y) * self._expm1(a * np.abs(y)) / a
        at = x if self.gate_log_det_at_output else y
        return x, self._orient(a * np.abs(at).reshape(len(y), -1).sum(axis=1))

    def _layer(self, h, w, s, a, a_prime, circular, inverse=False):
        conv = self._circular if circular else self._symmetric
        a, a_prime = self._gates(a, a_prime)
        log_s = self._orient(np.log(np.abs(s)).sum(axis=-1))
        if not inverse:
            u, ld_conv = conv(h, w, 1, False)
            q, ld_f = self._f(u, a)
            y, ld_g = self._g(s * q, a_prime)
            return y, ld_conv + ld_f + log_s + ld_g
        v, ld_f = self._f(h, a_prime)
        u, ld_g = self._g(v / s, a)
        x, ld_conv = conv(u, w, 1, True)
        return x, ld_f - log_s + ld_g + ld_conv

    def _step(self, h, w, s, t, a, a_prime, circular, inverse=False):
        total = 0.0
        if inverse:
            h = h - t
        for i in self._layer_indices(len(a), inverse):
            h, ld = self._layer(h, w[i], s[i], a[i], a_prime[i], circular, inverse)
            total = total + ld
        return (h if inverse else h + t), total

    # --- kinds: primitives --------------------------------------------------------------

    def dct1(self, x):
        return self._dct1(x)

    def idct1(self, X):
        return self._idct1(X)

    def dct1_2d(self, x):
        return self._transform(x, 2)

    def idct1_2d(self, X):
        return self._transform(X, 2, inverse=True)

    def dct1_vjp(self, x, g):
        """C^T g: the transpose of 'extend, FFT, keep N + 1 bins' is 'pad, FFT, fold'."""
        N = g.shape[-1] - 1
        u = np.fft.fft(g, n=2 * N, axis=-1).real
        v = u[..., : N + 1].copy()
        v[..., 1:N] += u[..., 2 * N - 1: N: -1]
        return v

    def idct1_vjp(self, X, g):
        return self.dct1_vjp(X, g) / (2 * (g.shape[-1] - 1))

    def rfft_vjp(self, x, g):
        N = x.shape[-1]
        k, n = np.arange(g.shape[-1])[:, None], np.arange(N)[None, :]
        return (g @ np.exp(-2j * np.pi * k * n / N)).real

    def irfft_vjp(self, X, g):
        N = g.shape[-1]
        c = np.full(X.shape[-1], 2.0)
        c[0] = 1.0
        if N % 2 == 0:
            c[-1] = 1.0
        return c * np.conj(np.fft.rfft(g, axis=-1)) / N

    def slog(self, x, alpha):
        return self._f(x, alpha)

    def slog_inverse(self, y, alpha):
        x, log_det = self._g(y, alpha)
        return x, self._inverse_log_det(log_det)

    # --- kinds: convolutions ------------------------------------------------------------

    def symmetric_conv(self, x, w_hat):
        return self._symmetric(x, w_hat, 1, False)

    def symmetric_deconv(self, y, w_hat):
        x, log_det = self._symmetric(y, w_hat, 1, True)
        return x, self._inverse_log_det(log_det)

    def symmetric_conv_2d(self, x, w_hat):
        return self._symmetric(x, w_hat, 2, False)

    def symmetric_deconv_2d(self, y, w_hat):
        x, log_det = self._symmetric(y, w_hat, 2, True)
        return x, self._inverse_log_det(log_det)

    def symmetric_conv_grad(self, x, w_hat, g):
        """d/dw [sum(g * y) + sum(log_det)]: y = idct1(w * dct1(x)) gives
        dct1(x) * idct1^T(g), and the log-det sum log|w| gives 1 / w."""
        return self._dct1(x) * self.idct1_vjp(x, g) + self._log_det_grad(w_hat)

    def _log_det_grad(self, w_hat):
        return 1 / w_hat

    def circular_conv_kernel(self, x, w):
        y, log_det = self._circular(x, np.fft.rfft(w), 1, False)
        return y, self._constant_log_det(log_det)

    def circular_conv_kernel_2d(self, x, w):
        y, log_det = self._circular(x, np.fft.rfft2(w), 2, False)
        return y, self._constant_log_det(log_det)

    def circular_conv(self, x, w_half):
        return self._circular(x, w_half, 1, False)

    def circular_deconv(self, y, w_half):
        x, log_det = self._circular(y, w_half, 1, True)
        return x, self._inverse_log_det(log_det)

    def circular_conv_2d(self, x, w_half):
        return self._circular(x, w_half, 2, False)

    # --- kinds: coupling ----------------------------------------------------------------

    def conf_layer(self, x2, w_hat, s, alpha, alpha_prime):
        return self._layer(x2, w_hat, s, alpha, alpha_prime, False)

    def conf_layer_circular(self, x2, w_half, s, alpha, alpha_prime):
        return self._layer(x2, w_half, s, alpha, alpha_prime, True)

    def conf_step(self, x2, w_hat, s, t, alpha, alpha_prime):
        return self._step(x2, w_hat, s, t, alpha, alpha_prime, False)

    def conf_step_circular(self, x2, w_half, s, t, alpha, alpha_prime):
        return self._step(x2, w_half, s, t, alpha, alpha_prime, True)

    def conf_step_inverse(self, y2, w_hat, s, t, alpha, alpha_prime):
        x2, log_det = self._step(y2, w_hat, s, t, alpha, alpha_prime, False, inverse=True)
        return x2, self._inverse_log_det(log_det)

    def conf_step_inverse_circular(self, y2, w_half, s, t, alpha, alpha_prime):
        x2, log_det = self._step(y2, w_half, s, t, alpha, alpha_prime, True, inverse=True)
        return x2, self._inverse_log_det(log_det)

    def _coupling_step(self, x, w, s, t, alpha, alpha_prime, circular):
        kept, x2, join = self._split(x, t.shape[-1])
        y2, log_det = self._step(x2, w, s, t, alpha, alpha_prime, circular)
        return join(kept, y2), log_det

    def conf_coupling_step(self, x, w_hat, s, t, alpha, alpha_prime):
        return self._coupling_step(x, w_hat, s, t, alpha, alpha_prime, False)

    def conf_coupling_step_circular(self, x, w_half, s, t, alpha, alpha_prime):
        return self._coupling_step(x, w_half, s, t, alpha, alpha_prime, True)

    # --- kinds: the whole model (layout from the manifest's "model" conventions) ---------

    def _coupling(self, spec, params, k, x, inverse):
        D, m = spec["dim"], spec["m"]
        p = f"param/steps/{k}/coupling/"
        swap = spec["mixing"] != "reverse" and k % 2 == 1
        d_base = D - D // 2 if swap else D // 2
        d_update = D - d_base
        base, h = (x[:, d_update:], x[:, :d_update]) if swap else (x[:, :d_base], x[:, d_base:])
        a = base
        n_layers = sum(1 for key in params if key.startswith(p + "conditioner/") and
                       key.endswith("/W"))
        for j in range(n_layers):
            a = a @ params[f"{p}conditioner/{j}/W"] + params[f"{p}conditioner/{j}/b"]
            if j < n_layers - 1:
                a = np.tanh(a) if spec["activation"] == "tanh" else np.maximum(a, 0.0)
        out = a.reshape(len(x), 2 * m + 1, d_update).transpose(1, 0, 2)
        o_w, o_s, t = out[:m], out[m: 2 * m], out[2 * m]
        s = np.exp(o_s)
        circular = spec["kind"] == "circular"
        if circular:
            o_w = np.fft.rfft(o_w, axis=-1)
        w = np.exp(o_w) if spec["spectrum"] == "exp" else 1.0 + o_w
        h, log_det = self._step(h, w, s, t, np.exp(params[p + "log_alpha"]),
                                np.exp(params[p + "log_alpha_prime"]), circular, inverse)
        return np.concatenate([h, base] if swap else [base, h], axis=1), log_det

    def _mix(self, spec, k, x, inverse):
        if spec["mixing"] == "reverse":
            return x[:, ::-1]
        perm = np.asarray(spec["mixing_fixed"][k]["perm"])
        return x[:, np.argsort(perm)] if inverse else x[:, perm]

    def conf_model_log_prob(self, x, spec, **params):
        log_det = np.zeros(len(x))
        for k in range(spec["steps"]):
            if spec["actnorm"]:
                log_scale = params[f"param/steps/{k}/actnorm/log_scale"]
                x = (x - params[f"param/steps/{k}/actnorm/loc"]) * np.exp(-log_scale)
                log_det = log_det + self._constant_log_det(self._orient(-np.sum(log_scale)))
            x, ld = self._coupling(spec, params, k, x, inverse=False)
            log_det = log_det + ld
            if k < spec["steps"] - 1:
                x = self._mix(spec, k, x, inverse=False)
        base = -0.5 * np.sum(x**2, axis=1) - 0.5 * spec["dim"] * np.log(2 * np.pi)
        return x, log_det, base + log_det

    def conf_model_sample(self, z, spec, **params):
        x = z
        for k in reversed(range(spec["steps"])):
            if k < spec["steps"] - 1:
                x = self._mix(spec, k, x, inverse=True)
            x, _ = self._coupling(spec, params, k, x, inverse=True)
            if spec["actnorm"]:
                x = (x * np.exp(params[f"param/steps/{k}/actnorm/log_scale"])
                     + params[f"param/steps/{k}/actnorm/loc"])
        return x


class UnnormalisedIDCT(FFTPort):
    """The inverse DCT-I reuses the forward one and forgets the 1 / (2N)."""

    def _idct1(self, X):
        return self._dct1(X)


class OrthonormalDCT(FFTPort):
    """scipy's orthonormal DCT-I (norm='ortho') for both directions."""

    def _dct1(self, x):
        return scipy.fft.dct(x, type=1, norm="ortho", axis=-1)

    _idct1 = _dct1


class HalfSampleExtension(FFTPort):
    """The even extension repeats the end samples: [x0..xN, xN..x0] (a DCT-II)."""

    def _dct1(self, x):
        L = x.shape[-1]
        return np.fft.rfft(np.concatenate([x, x[..., ::-1]], axis=-1), axis=-1).real[..., :L]

    def _idct1(self, X):
        L = X.shape[-1]
        return np.fft.irfft(X, n=2 * L, axis=-1)[..., :L]


class HalfSpectrumLogDet(FFTPort):
    """The circular log-det sums log|W| over the half spectrum once."""

    def _circular_log_abs(self, w_half, shape):
        return np.log(np.abs(w_half))


class NegatedLogDet(FFTPort):
    """Every log-det is log|det dx/dz| where log|det dz/dx| is meant."""

    def _orient(self, log_det):
        return -log_det


class InverseLogDetZero(FFTPort):
    """The inverse maps return a log-det of 0."""

    def _inverse_log_det(self, log_det):
        return np.zeros_like(log_det)


class InverseLogDetForwardSign(FFTPort):
    """The inverse maps return the forward map's log-det (the sign not flipped)."""

    def _inverse_log_det(self, log_det):
        return -log_det


class ConstantLogDetDropped(FFTPort):
    """Log-dets that do not depend on the data (fixed kernels, ActNorm) set to 0."""

    def _constant_log_det(self, log_det):
        return 0 * log_det


class DetachedLogDet(FFTPort):
    """The log-det's gradient is lost (as with .item() on it)."""

    def _log_det_grad(self, w_hat):
        return 0


class NonHermitianSpectrum(FFTPort):
    """The half spectrum used as a full one (zero-padded) through a complex FFT."""

    def _spectrum_product(self, X, w_half, shape, axes, inverse):
        if len(axes) > 1:
            return super()._spectrum_product(X, w_half, shape, axes, inverse)
        n = shape[-1]
        pad = np.zeros(np.broadcast_shapes(w_half.shape, X.shape)[:-1] + (n - X.shape[-1],))
        full = np.concatenate([np.broadcast_to(w_half, X.shape), pad], axis=-1)
        spectrum = np.fft.fft(np.fft.irfft(X, n=n, axis=-1), axis=-1)
        return np.fft.ifft(spectrum / np.where(full == 0, 1, full) if inverse
                           else spectrum * full, axis=-1)


class NaiveLog1p(FFTPort):
    """log(1 + .) and exp(.) - 1 instead of log1p and expm1."""

    def _log1p(self, a):
        return np.log(1 + a)

    def _expm1(self, a):
        return np.exp(a) - 1


class GateLogDetAtOutput(FFTPort):
    """Each S-Log gate's log-derivative evaluated at the gate's output."""

    gate_log_det_at_output = True


class LayerOrder(FFTPort):
    """Eq. 5 applied from the first layer instead of the last."""

    def _layer_indices(self, m, inverse):
        return reversed(range(m)) if inverse else range(m)


class AlphaSwapped(FFTPort):
    """alpha used for the expanding gate and alpha' for the contracting one."""

    def _gates(self, a, a_prime):
        return a_prime, a


class WrongHalf(FFTPort):
    """The coupling step transforms the first d2 entries and keeps the rest."""

    def _split(self, x, d2):
        return x[:, d2:], x[:, :d2], lambda kept, y2: np.concatenate([y2, kept], axis=1)


class VJPWithoutEndWeights(FFTPort):
    """The DCT-I VJP applies the forward transform (as if C were symmetric)."""

    def dct1_vjp(self, x, g):
        return self._dct1(g)

    def idct1_vjp(self, X, g):
        return self._idct1(g)


class ConjugatedCotangent(FFTPort):
    """PyTorch's conjugated complex gradient convention, not converted."""

    def rfft_vjp(self, x, g):
        return super().rfft_vjp(x, np.conj(g))

    def irfft_vjp(self, X, g):
        return np.conj(super().irfft_vjp(X, g))


#: (planted mistake, the diagnosis it must get)
MISTAKES = [(UnnormalisedIDCT, "dct1_normalisation"), (OrthonormalDCT, "dct1_ortho"),
            (HalfSampleExtension, "half_sample_extension"),
            (HalfSpectrumLogDet, "half_spectrum_doubling"), (NegatedLogDet, "log_det_sign"),
            (InverseLogDetZero, "inverse_log_det"),
            (InverseLogDetForwardSign, "inverse_log_det"),
            (ConstantLogDetDropped, "constant_log_det_dropped"),
            (DetachedLogDet, "detached_log_det"),
            (NonHermitianSpectrum, "non_hermitian_spectrum"), (NaiveLog1p, "log1p_expm1"),
            (GateLogDetAtOutput, "slog_log_det_variable"), (LayerOrder, "layer_order"),
            (AlphaSwapped, "alpha_swapped"), (WrongHalf, "wrong_half"),
            (VJPWithoutEndWeights, "vjp_end_weights"),
            (ConjugatedCotangent, "complex_cotangent")]
PORTS = [(FFTPort, None)] + MISTAKES


def write_results(port, golden, directory):
    """Run ``port`` on every golden case and save its outputs as a port would."""
    os.makedirs(directory, exist_ok=True)
    for case in load_cases(golden):
        try:
            with np.errstate(all="ignore"):  # a planted mistake may overflow
                outputs = port.run(case.kind, **case.inputs, **case.attributes)
        except (TypeError, ValueError):  # as a port would, write no result for this case
            continue
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        names = list(case.expected)
        np.savez(os.path.join(directory, f"{case.name}.npz"), **dict(zip(names, outputs)))


def top_cause(report):
    """The most frequent diagnosis naming a mistake (not 'unexplained')."""
    return next((code for code, _, _ in report.likely_causes() if code != "unexplained"), None)


def check_port(cls, expected_cause, golden, root, precision, quiet):
    results = os.path.join(root, "results", precision, cls.__name__)
    write_results(cls(np.dtype(precision)), golden, results)
    report = check(golden, results, precision=precision)
    top = top_cause(report)
    if expected_cause is None:
        verdict, claim = report.passed, "passes"
    else:
        verdict = not report.passed and top == expected_cause
        claim = f"fails with top diagnosis {expected_cause}"
    counts = report.counts()
    print(f"=== {precision} {cls.__name__}: {counts['pass']} of {len(report.cases)} cases pass"
          f" ({counts['skipped']} skipped); top diagnosis: {top}; claim '{claim}': "
          f"{'OK' if verdict else 'VIOLATED'}")
    if not quiet or not verdict:
        print(report.format_table(failures_only=True))
    return verdict


def _expect_refusal(what, function):
    try:
        report = function()
    except ValueError as err:
        print(f"=== {what}: refused: {err}")
        return True
    print(f"=== {what}: {report.verdict()}")
    return not report.passed


def loud_failures(golden, root):
    """A copy of the golden files, a forgotten output and an edited manifest fail."""
    correct = os.path.join(root, "results", "float64", "FFTPort")
    copy = os.path.join(root, "copy")
    shutil.copytree(golden, copy, dirs_exist_ok=True)
    ok = _expect_refusal("golden directory as results", lambda: check(golden, copy))
    os.remove(os.path.join(copy, "manifest.json"))
    report = check(golden, copy)
    print(f"=== golden case files as results: {report.verdict()}")
    ok &= report.counts()["invalid"] == len(report.cases)
    forgot = os.path.join(root, "forgot")
    shutil.copytree(correct, forgot, dirs_exist_ok=True)
    case = "symmetric_conv_L4"
    with np.load(os.path.join(forgot, f"{case}.npz")) as data:
        np.savez(os.path.join(forgot, f"{case}.npz"), y=data["y"])  # log_det forgotten
    report = check(golden, forgot)
    print(f"=== forgotten log_det: {report.verdict()}")
    ok &= not report.passed
    edited = os.path.join(root, "edited")
    shutil.copytree(golden, edited, dirs_exist_ok=True)
    path = os.path.join(edited, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    manifest["cases"][0]["outputs"]["X"]["tolerance"]["float64"]["rtol"] = 1e6
    with open(path, "w") as f:
        json.dump(manifest, f)
    ok &= _expect_refusal("manifest with a loosened tolerance", lambda: check(edited, correct))
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write golden/ and results/ here instead of a temp dir")
    parser.add_argument("--quiet", action="store_true", help="summaries only")
    args = parser.parse_args(argv)
    root = args.keep or tempfile.mkdtemp(prefix="refconf-conformance-")
    golden = os.path.join(root, "golden")
    write_vectors(golden)
    ok = True
    for precision in ("float64", "float32"):
        for cls, expected_cause in PORTS:
            ok &= check_port(cls, expected_cause, golden, root, precision, args.quiet)
    ok &= loud_failures(golden, root)

    # the same check without files, on one function
    direct = check_function("circular_conv", FFTPort().circular_conv)
    broken = check_function("circular_conv", HalfSpectrumLogDet().circular_conv)
    print(f"check_function('circular_conv', ...): correct port passed={direct.passed}; "
          f"HalfSpectrumLogDet passed={broken.passed}, diagnoses={sorted(broken.diagnosis_codes())}")
    ok &= direct.passed and not broken.passed and broken.diagnosis_codes() == {
        "half_spectrum_doubling"}
    print("\nCLAIM HOLDS" if ok else "\nCLAIM VIOLATED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
