"""Claim: a PyTorch port of CONF's transforms, checked with the conformance kit's Python
API (no files), passes every kind it implements; PyTorch's complex-gradient convention
is caught by the kit unless converted.

PyTorch has no DCT, so the port builds DCT-I from ``torch.fft.rfft`` of the whole-sample
even extension, and takes every VJP from ``torch.autograd``. PyTorch's gradient of a
complex tensor is ``dl/dRe + i dl/dIm``, the complex conjugate of the kit's (autograd and
JAX) cotangent convention: ``rfft_vjp`` and ``irfft_vjp`` conjugate on the way in and
out. Without that conversion the kit reports ``complex_cotangent``, which this script
also checks.

PyTorch is optional and not a dependency of refconf: without ``import torch`` the script
says so and exits 0. Usage: ``python validation/torch_port_example.py``.
"""

import sys

import numpy as np

from refconf.conformance import check_function

try:
    import torch
except ImportError:  # optional: the kit never needs it
    torch = None


def tensor(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def numpy_function(torch_function):
    """Wrap a function of tensors as a function of NumPy arrays (what the kit calls)."""

    def wrapped(**inputs):
        out = torch_function(**{k: tensor(v) for k, v in inputs.items()})
        if isinstance(out, tuple):
            return tuple(o.detach().resolve_conj().numpy() for o in out)
        return out.detach().resolve_conj().numpy()

    return wrapped


def dct1(x):
    return torch.fft.rfft(torch.cat([x, x[..., 1:-1].flip(-1)], dim=-1), dim=-1).real


def idct1(X):
    N = X.shape[-1] - 1
    return torch.fft.irfft(X, n=2 * N, dim=-1)[..., : N + 1]


def along(f, a, dim):
    return f(a.movedim(dim, -1)).movedim(-1, dim)


def dct1_2d(x):
    return along(dct1, dct1(x), -2)


def idct1_2d(X):
    return along(idct1, idct1(X), -2)


def per_sample(a, shape):
    return a.expand(shape).reshape(shape[0], -1).sum(dim=1)


def symmetric(x, w_hat, ndim, inverse):
    T, iT = (dct1, idct1) if ndim == 1 else (dct1_2d, idct1_2d)
    y = iT(T(x) / w_hat) if inverse else iT(w_hat * T(x))
    log_det = per_sample(torch.log(torch.abs(w_hat)), x.shape)
    return y, -log_det if inverse else log_det


def hermitian_weights(n, bins):
    c = torch.full((bins,), 2.0, dtype=torch.float64)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return c


def circular(x, w_half, ndim, inverse):
    dims = tuple(range(-ndim, 0))
    X = torch.fft.rfftn(x, dim=dims)
    y = torch.fft.irfftn(X / w_half if inverse else X * w_half, s=x.shape[-ndim:], dim=dims)
    terms = hermitian_weights(x.shape[-1], w_half.shape[-1]) * torch.log(torch.abs(w_half))
    log_det = per_sample(terms, X.shape)
    return y, -log_det if inverse else log_det


def slog(x, alpha):
    t = torch.log1p(alpha * torch.abs(x))
    return torch.sign(x) * t / alpha, -t.reshape(len(x), -1).sum(dim=1)


def slog_inverse(y, alpha):
    x = torch.sign(y) * torch.expm1(alpha * torch.abs(y)) / alpha
    return x, alpha * torch.abs(y).reshape(len(y), -1).sum(dim=1)


def layer(x2, w, s, alpha, alpha_prime, kind, inverse=False):
    conv = symmetric if kind == "symmetric" else circular
    if inverse:
        v, ld_f = slog(x2, alpha_prime)
        u, ld_g = slog_inverse(v / s, alpha)
        x, ld_conv = conv(u, w, 1, True)
        return x, ld_f + ld_g + ld_conv - torch.log(torch.abs(s)).sum(dim=-1)
    u, ld_conv = conv(x2, w, 1, False)
    q, ld_f = slog(u, alpha)
    y, ld_g = slog_inverse(s * q, alpha_prime)
    return y, ld_conv + ld_f + ld_g + torch.log(torch.abs(s)).sum(dim=-1)


def step(h, w, s, t, alpha, alpha_prime, kind, inverse=False):
    total = torch.zeros(h.shape[0], dtype=h.dtype)
    order = range(len(alpha)) if inverse else reversed(range(len(alpha)))
    h = h - t if inverse else h
    for i in order:
        h, ld = layer(h, w[i], s[i], alpha[i], alpha_prime[i], kind, inverse)
        total = total + ld
    return (h if inverse else h + t), total


def vjp(function, x, g):
    x = x.clone().requires_grad_(True)
    function(x).backward(g)
    return x.grad


def rfft_vjp(x, g, convert=True):
    # PyTorch's output gradient is conj of the kit's cotangent
    return vjp(lambda a: torch.fft.rfft(a, dim=-1), x, g.conj() if convert else g)


def irfft_vjp(X, g, convert=True):
    grad = vjp(lambda a: torch.fft.irfft(a, n=g.shape[-1], dim=-1), X, g)
    return grad.conj() if convert else grad


PORT = {
    "dct1": lambda x: dct1(x),
    "idct1": lambda X: idct1(X),
    "dct1_2d": lambda x: dct1_2d(x),
    "idct1_2d": lambda X: idct1_2d(X),
    "dct1_vjp": lambda x, g: vjp(dct1, x, g),
    "idct1_vjp": lambda X, g: vjp(idct1, X, g),
    "rfft_vjp": rfft_vjp,
    "irfft_vjp": irfft_vjp,
    "slog": slog,
    "slog_inverse": slog_inverse,
    "symmetric_conv": lambda x, w_hat: symmetric(x, w_hat, 1, False),
    "symmetric_deconv": lambda y, w_hat: symmetric(y, w_hat, 1, True),
    "symmetric_conv_2d": lambda x, w_hat: symmetric(x, w_hat, 2, False),
    "symmetric_deconv_2d": lambda y, w_hat: symmetric(y, w_hat, 2, True),
    "circular_conv_kernel": lambda x, w: circular(x, torch.fft.rfft(w), 1, False),
    "circular_conv_kernel_2d": lambda x, w: circular(x, torch.fft.rfft2(w), 2, False),
    "circular_conv": lambda x, w_half: circular(x, w_half, 1, False),
    "circular_deconv": lambda y, w_half: circular(y, w_half, 1, True),
    "circular_conv_2d": lambda x, w_half: circular(x, w_half, 2, False),
    "conf_layer": lambda x2, w_hat, s, alpha, alpha_prime: layer(
        x2, w_hat, s, alpha, alpha_prime, "symmetric"),
    "conf_layer_circular": lambda x2, w_half, s, alpha, alpha_prime: layer(
        x2, w_half, s, alpha, alpha_prime, "circular"),
    "conf_step": lambda x2, w_hat, s, t, alpha, alpha_prime: step(
        x2, w_hat, s, t, alpha, alpha_prime, "symmetric"),
    "conf_step_circular": lambda x2, w_half, s, t, alpha, alpha_prime: step(
        x2, w_half, s, t, alpha, alpha_prime, "circular"),
    "conf_step_inverse": lambda y2, w_hat, s, t, alpha, alpha_prime: step(
        y2, w_hat, s, t, alpha, alpha_prime, "symmetric", inverse=True),
    "conf_step_inverse_circular": lambda y2, w_half, s, t, alpha, alpha_prime: step(
        y2, w_half, s, t, alpha, alpha_prime, "circular", inverse=True),
}


def main():
    if torch is None:
        print("PyTorch is not installed; nothing to check (the kit does not need it).")
        return 0
    print(f"torch {torch.__version__}")
    ok = True
    worst = 0.0
    for kind, function in PORT.items():
        report = check_function(kind, numpy_function(function))
        largest = max((o.max_rel_error for c in report.cases for o in c.outputs), default=np.nan)
        worst = max(worst, largest)
        print(f"{kind:<28} {len(report.cases)} case(s)  max rel err {largest:.1e}  "
              f"{'pass' if report.passed else 'FAIL'}")
        if not report.passed:
            print(report.format_table(failures_only=True))
        ok &= report.passed
    print(f"largest relative error over all ported kinds: {worst:.1e}")
    for kind, function in [("rfft_vjp", lambda x, g: rfft_vjp(x, g, convert=False)),
                           ("irfft_vjp", lambda X, g: irfft_vjp(X, g, convert=False))]:
        report = check_function(kind, numpy_function(function))
        codes = report.diagnosis_codes()
        print(f"{kind} with PyTorch's own complex convention: passed={report.passed}, "
              f"diagnoses={sorted(codes)}")
        ok &= not report.passed and codes == {"complex_cotangent"}
    print("CLAIM HOLDS" if ok else "CLAIM VIOLATED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
