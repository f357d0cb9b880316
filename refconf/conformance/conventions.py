"""The conventions a port must follow, written into every ``manifest.json``."""

__all__ = ["CONVENTIONS"]

CONVENTIONS = {
    "direction": (
        "forward maps data to latent (x -> z) and returns log_det = log|det dz/dx|; the "
        "inverse kinds (idct1, *_deconv, *_inverse, conf_model_sample) return "
        "log|det dx/dz|, minus the forward's. A data input's first axis is the batch axis "
        "B; log_det has shape (B,), summed over every other axis."),
    "dtype": (
        "inputs are float64 (complex128 for circular spectra and complex cotangents). A "
        "port computes in float64 (checked with the float64 profile, the default) or in "
        "float32 (checked with `refconf check --precision float32`, whose tolerances come "
        "from each case's conditioning; float64-only cases are skipped there)."),
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
        "(modulus for complex values) with that output's rtol and atol of the chosen "
        "precision profile. float64: rtol 1e-10 (1e-9 for whole models), atol = rtol "
        "times the largest |expected|. float32: measured from the case's conditioning "
        "(inputs rounded and perturbed at float32 precision), times a safety factor 100. "
        "The tolerances are stored in each hashed case file (tolerance/<precision>/<output>"
        " = [rtol, atol]) and in this manifest; the checker recomputes and compares them."),
    "result_files": (
        "RESULT_DIR/<case>.npz holds every output under the name listed in the case's "
        "'outputs', e.g. numpy.savez(path, y=y, log_det=log_det), computed by the port: "
        "numeric arrays only, no pickle, no 'expected/' arrays (a copied golden file is "
        "refused); other arrays are ignored."),
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

