"""Claim: the conformance kit accepts a correct independent implementation of CONF and
rejects the usual porting mistakes with the right diagnosis.

``FFTPort`` below is a second implementation of every kind in the kit, written in a
different style from refconf (plain ``numpy.fft``, no scipy DCT, no autograd): DCT-I as
the real part of the rfft of the whole-sample even extension, circular log-dets from the
full spectrum rebuilt from the half spectrum, its own S-Log gates, coupling layers,
hand-derived VJPs and a whole CONF model read from the manifest's documented parameter
layout. It works from files, as a port would: it reads ``golden/<case>.npz`` and writes
``results/<case>.npz`` with ``numpy.savez``; then ``refconf.conformance.check`` runs.

Three deliberately broken variants must each fail with a named diagnosis:

* ``UnnormalisedIDCT``: ``idct1`` reuses ``dct1`` without the ``1 / (2N)``
  -> ``dct1_normalisation``;
* ``HalfSpectrumLogDet``: the circular log-det sums the half spectrum once, without
  doubling the interior bins -> ``half_spectrum_doubling``;
* ``NegatedLogDet``: every log-det has the opposite sign (``log|det dx/dz|`` returned by
  the forward map) -> ``log_det_sign``.

Usage: ``python validation/conformance_example.py [--keep DIR] [--quiet]``. Exit code 0
iff the correct port passes and every broken one fails with its diagnosis as the most
frequent cause.
"""

import argparse
import os
import sys
import tempfile

import numpy as np

from refconf.conformance import check, check_function, load_cases, write_vectors


class FFTPort:
    """CONF's transforms with numpy.fft only; one public method per kind of the kit."""

    # --- building blocks ----------------------------------------------------------------

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
        return y, -log_det if inverse else log_det

    def _circular_log_abs(self, w_half, shape):
        """log|W| over the full spectrum: rebuild the real kernel, take its full FFT."""
        axes = tuple(range(-len(shape), 0))
        kernel = np.fft.irfftn(w_half, s=shape, axes=axes)
        return np.log(np.abs(np.fft.fftn(kernel, axes=axes)))

    def _circular(self, x, w_half, ndim, inverse):
        shape, axes = x.shape[-ndim:], tuple(range(-ndim, 0))
        X = np.fft.rfftn(x, axes=axes)
        y = np.fft.irfftn(X / w_half if inverse else X * w_half, s=shape, axes=axes)
        log_abs = self._circular_log_abs(np.broadcast_to(w_half, X.shape), shape)
        log_det = self._orient(log_abs.reshape(len(x), -1).sum(axis=1))
        return y, -log_det if inverse else log_det

    def _f(self, x, a):
        """Contracting S-Log gate and its per-sample log-det."""
        t = np.log1p(a * np.abs(x))
        return np.sign(x) * t / a, self._orient(-t.reshape(len(x), -1).sum(axis=1))

    def _g(self, y, a):
        """Expanding S-Log gate and its per-sample log-det."""
        x = np.sign(y) * np.expm1(a * np.abs(y)) / a
        return x, self._orient(a * np.abs(y).reshape(len(y), -1).sum(axis=1))

    def _layer(self, h, w, s, a, a_prime, circular, inverse=False):
        conv = self._circular if circular else self._symmetric
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
        for i in (range(len(a)) if inverse else reversed(range(len(a)))):
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
        return self._g(y, alpha)

    # --- kinds: convolutions ------------------------------------------------------------

    def symmetric_conv(self, x, w_hat):
        return self._symmetric(x, w_hat, 1, False)

    def symmetric_deconv(self, y, w_hat):
        return self._symmetric(y, w_hat, 1, True)

    def symmetric_conv_2d(self, x, w_hat):
        return self._symmetric(x, w_hat, 2, False)

    def symmetric_deconv_2d(self, y, w_hat):
        return self._symmetric(y, w_hat, 2, True)

    def circular_conv_kernel(self, x, w):
        return self._circular(x, np.fft.rfft(w), 1, False)

    def circular_conv_kernel_2d(self, x, w):
        return self._circular(x, np.fft.rfft2(w), 2, False)

    def circular_conv(self, x, w_half):
        return self._circular(x, w_half, 1, False)

    def circular_deconv(self, y, w_half):
        return self._circular(y, w_half, 1, True)

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
        return self._step(y2, w_hat, s, t, alpha, alpha_prime, False, inverse=True)

    def conf_step_inverse_circular(self, y2, w_half, s, t, alpha, alpha_prime):
        return self._step(y2, w_half, s, t, alpha, alpha_prime, True, inverse=True)

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
                log_det = log_det + self._orient(-np.sum(log_scale))
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
    """Mistake: the inverse DCT-I reuses the forward one and forgets the 1 / (2N)."""

    def _idct1(self, X):
        return self._dct1(X)


class HalfSpectrumLogDet(FFTPort):
    """Mistake: the circular log-det sums log|W| over the half spectrum once."""

    def _circular_log_abs(self, w_half, shape):
        return np.log(np.abs(w_half))


class NegatedLogDet(FFTPort):
    """Mistake: every log-det is log|det dx/dz| where log|det dz/dx| is meant."""

    def _orient(self, log_det):
        return -log_det


PORTS = [(FFTPort, None), (UnnormalisedIDCT, "dct1_normalisation"),
         (HalfSpectrumLogDet, "half_spectrum_doubling"), (NegatedLogDet, "log_det_sign")]


def write_results(port, golden, directory):
    """Run ``port`` on every golden case and save its outputs as a port would."""
    os.makedirs(directory, exist_ok=True)
    for case in load_cases(golden):
        outputs = case.call(getattr(port, case.kind))
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        names = list(case.expected)
        np.savez(os.path.join(directory, f"{case.name}.npz"), **dict(zip(names, outputs)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write golden/ and results/ here instead of a temp dir")
    parser.add_argument("--quiet", action="store_true", help="summaries only")
    args = parser.parse_args(argv)
    root = args.keep or tempfile.mkdtemp(prefix="refconf-conformance-")
    golden = os.path.join(root, "golden")
    write_vectors(golden)
    ok = True
    for cls, expected_cause in PORTS:
        results = os.path.join(root, "results", cls.__name__)
        write_results(cls(), golden, results)
        report = check(golden, results)
        causes = report.likely_causes()
        top = causes[0][0] if causes else None
        if expected_cause is None:
            verdict = report.passed
            claim = "passes"
        else:
            verdict = not report.passed and top == expected_cause
            claim = f"fails with top diagnosis {expected_cause}"
        counts = report.counts()
        print(f"\n=== {cls.__name__}: {counts['pass']} of {len(report.cases)} cases pass; "
              f"top diagnosis: {top}; claim '{claim}': {'OK' if verdict else 'VIOLATED'}")
        if not args.quiet:
            print(report.format_table(failures_only=expected_cause is not None))
        ok &= verdict

    # the same check without files, on one function
    port = FFTPort()
    direct = check_function("circular_conv", port.circular_conv)
    broken = check_function("circular_conv", HalfSpectrumLogDet().circular_conv)
    print(f"\ncheck_function('circular_conv', ...): correct port passed={direct.passed}; "
          f"HalfSpectrumLogDet passed={broken.passed}, diagnoses={sorted(broken.diagnosis_codes())}")
    ok &= direct.passed and not broken.passed and broken.diagnosis_codes() == {
        "half_spectrum_doubling"}
    print("\nCLAIM HOLDS" if ok else "\nCLAIM VIOLATED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
