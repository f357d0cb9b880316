"""Figures of the documentation, computed from refconf at build time.

Every figure is a function ``name(quick) -> matplotlib Figure`` registered in
:data:`FIGURES`; the theory and tutorial pages show them from
``docs/_generated/figures/<name>.png``. ``docs/conf.py`` calls :func:`make_all` when the
build starts. Figures are regenerated only when this script or a refconf source file has
changed (a hash of both is kept next to the images); ``--force`` regenerates them anyway.

``quick=True`` shrinks every size (grids, timings, training) so that the test suite can
run each figure function in a few seconds; the build uses ``quick=False``.

Usage::

    python docs/_scripts/make_figures.py [--force] [--quick] [--out DIR] [NAME ...]
"""

import argparse
import hashlib
import os
import pathlib
import sys
import tempfile
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy.fft

DOCS = pathlib.Path(__file__).resolve().parents[1]
REPO = DOCS.parent
DEFAULT_OUT = DOCS / "_generated" / "figures"
STAMP = ".stamp"

FIGURES = {}

plt.rcParams.update({
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
})


def figure(function):
    """Register ``function`` under its name."""
    FIGURES[function.__name__] = function
    return function


def _rng(seed=0):
    return np.random.default_rng(seed)


def _grid(limit, n):
    axis = np.linspace(-limit, limit, n)
    xx, yy = np.meshgrid(axis, axis)
    return axis, np.column_stack([xx.ravel(), yy.ravel()])


# ---------------------------------------------------------------------------------------
# Theory: change of variables
# ---------------------------------------------------------------------------------------

@figure
def change_of_variables(quick=False):
    """x-space samples and grid lines, their images in z-space, and p(x) from log_prob."""
    from refconf import Chain, Shift, SLog, SymmetricConv
    from refconf.flows import Flow, StandardNormal

    chain = Chain([SymmetricConv(np.array([2.0, -1.2])), SLog(0.5), Shift(np.array([0.3, -0.2]))])
    flow = Flow(StandardNormal(2), chain)
    n_samples = 1500 if quick else 6000
    x = flow.sample(n_samples, random_state=0)
    z, _ = flow.forward(x)

    limit, n = 8.0, (120 if quick else 400)
    axis, points = _grid(limit, n)
    density = np.exp(flow.log_prob(points)).reshape(n, n)
    mass = density.sum() * (axis[1] - axis[0]) ** 2

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    lines = np.linspace(-4, 4, 9)
    t = np.linspace(-limit, limit, 200)
    for c in lines:
        for segment in (np.column_stack([np.full_like(t, c), t]), np.column_stack([t, np.full_like(t, c)])):
            axes[0].plot(segment[:, 0], segment[:, 1], color="0.8", lw=0.6)
            mapped, _ = chain.forward(segment)
            axes[1].plot(mapped[:, 0], mapped[:, 1], color="0.8", lw=0.6)
    axes[0].scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, color="C0")
    axes[0].set(xlim=(-5, 5), ylim=(-5, 5), title="data x = inverse(z)",
                xlabel="$x_1$", ylabel="$x_2$")
    axes[1].scatter(z[:, 0], z[:, 1], s=1, alpha=0.4, color="C1")
    axes[1].set(xlim=(-4, 4), ylim=(-4, 4), title="latent z = forward(x), with the x-grid",
                xlabel="$z_1$", ylabel="$z_2$")
    image = axes[2].imshow(density, origin="lower", extent=[-limit, limit, -limit, limit],
                           cmap="magma")
    axes[2].set(title=f"exp(log_prob(x)); mass on [-8, 8]^2: {mass:.4f}", xlabel="$x_1$",
                xlim=(-5, 5), ylim=(-5, 5))
    fig.colorbar(image, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_aspect("equal")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Theory: circular convolution and the DFT
# ---------------------------------------------------------------------------------------

def _spectrum_roles(N):
    """Role of each full-spectrum bin: kept once, kept (counted twice), dropped conjugate."""
    roles = []
    for k in range(N):
        if k == 0 or (N % 2 == 0 and k == N // 2):
            roles.append("self-conjugate (weight 1)")
        elif k <= N // 2:
            roles.append("interior, kept (weight 2)")
        else:
            roles.append("conjugate, dropped by rfft")
    return roles


@figure
def circulant(quick=False):
    """Circulant matrix, its DFT diagonalisation and the half spectrum bins."""
    from refconf.reference import circulant_matrix, dft_matrix

    rng = _rng(3)
    N = 8
    w = rng.normal(size=N)
    A = circulant_matrix(w)
    F = dft_matrix(N)
    D = F @ A @ np.linalg.inv(F)

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2),
                             gridspec_kw={"width_ratios": [1, 1, 1.3, 1.3]})
    lim = np.abs(A).max()
    axes[0].imshow(A, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[0].set_title("circulant A, A[n, m] = w((n-m) mod N)")
    image = axes[1].imshow(np.log10(np.abs(D) + 1e-17), cmap="viridis", vmin=-17, vmax=1)
    fig.colorbar(image, ax=axes[1], shrink=0.8)
    axes[1].set_title("log10 |F A F^-1|: diagonal")
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    colours = {"self-conjugate (weight 1)": "C3", "interior, kept (weight 2)": "C0",
               "conjugate, dropped by rfft": "0.7"}
    for ax, kernel in zip(axes[2:], (w, rng.normal(size=9))):
        n = kernel.size
        W = np.fft.fft(kernel)
        roles = _spectrum_roles(n)
        for role, colour in colours.items():
            k = [i for i, r in enumerate(roles) if r == role]
            if k:
                ax.stem(k, np.abs(W[k]), linefmt=colour, markerfmt="o", basefmt=" ",
                        label=role).markerline.set_color(colour)
        ax.set(title=f"|W(k)|, N = {n}" + (" (the kernel of A)" if n == N else ""),
               xlabel="k", xticks=range(n))
    handles, labels = axes[2].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------
# Theory: symmetric convolution and the DCT-I
# ---------------------------------------------------------------------------------------

@figure
def symmetric_extension(quick=False):
    """Whole-sample extension, the even circular convolution and the real DFT."""
    from refconf import symmetric_conv, symmetric_spectrum
    from refconf.primitives import whole_sample_extension
    from refconf.reference import circular_conv_direct

    rng = _rng(1)
    L = 6
    N = L - 1
    x, w = rng.normal(size=L), rng.normal(size=L)
    x_ext, w_ext = whole_sample_extension(x), whole_sample_extension(w)
    y_ext = circular_conv_direct(x_ext, w_ext)
    y = symmetric_conv(x, symmetric_spectrum(w))
    X = np.fft.fft(x_ext)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    n = np.arange(2 * N)
    for ax, seq, name in [(axes[0], x_ext, "x"), (axes[1], y_ext, "y")]:
        ax.stem(n[:L], seq[:L], linefmt="C0", markerfmt="C0o", basefmt="0.6",
                label=f"base {name}(0..N)")
        ax.stem(n[L:], seq[L:], linefmt="C1--", markerfmt="C1o", basefmt="0.6",
                label=f"mirror {name}(2N-n)")
        ax.axvline(N, color="0.5", lw=0.8, ls=":")
        ax.set(xticks=n, xlabel="n")
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    axes[0].set_title(f"whole-sample extension, L = {L}, 2N = {2 * N}")
    axes[1].plot(np.arange(L), y, "k+", ms=10, label="symmetric_conv(x, dct1(w))")
    axes[1].legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                   ncol=2)
    axes[1].set_title("x^ (*) w^ on the 2N-ring is even again")
    k = np.arange(2 * N)
    axes[2].stem(k, X.real, linefmt="C0", markerfmt="C0o", basefmt="0.6", label="Re DFT(x^)")
    axes[2].plot(k, X.imag, "C3x", label=f"Im DFT(x^), max |Im| = {np.abs(X.imag).max():.1g}")
    axes[2].plot(np.arange(L), scipy.fft.dct(x, type=1), "k+", ms=10, label="dct1(x), k = 0..N")
    axes[2].set(title="the DFT of an even sequence is real", xlabel="k", xticks=k)
    axes[2].legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                   ncol=2)
    fig.tight_layout()
    return fig


@figure
def ortho_vs_symmetric(quick=False):
    """The symmetric convolution J and the orthonormal map Q^T diag(w_hat) Q."""
    from refconf.reference import dct1_matrix

    rng = _rng(2)
    L = 8
    w_hat = rng.choice([-1.0, 1.0], L) * np.exp(rng.uniform(-1, 1, L))
    C = dct1_matrix(L)
    J = np.linalg.solve(C, np.diag(w_hat) @ C)
    Q = scipy.fft.dct(np.eye(L), type=1, norm="ortho", axis=0)
    M = Q.T @ np.diag(w_hat) @ Q
    lim = max(np.abs(J).max(), np.abs(M).max())
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, A, title in [(axes[0], J, "symmetric convolution\n" + r"$J = C^{-1}\,\mathrm{diag}(\hat w)\,C$"),
                         (axes[1], M, "norm='ortho' map\n" + r"$Q^T \mathrm{diag}(\hat w)\, Q = B J B^{-1}$"),
                         (axes[2], M - J, "difference:\nonly the end rows and columns")]:
        im = ax.imshow(A, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set(title=title, xticks=[], yticks=[])
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle(f"same eigenvalues, log|det| = {np.linalg.slogdet(J)[1]:.6f} and "
                 f"{np.linalg.slogdet(M)[1]:.6f}; different maps", y=0.04, fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------
# Theory: log-determinant and deconvolution in O(N log N)
# ---------------------------------------------------------------------------------------

def _best_time(function, budget=0.2, repeats=5):
    """Best per-call time over ``repeats`` rounds of as many calls as fit in ``budget`` s."""
    function()
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(budget / repeats / once))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            function()
        best = min(best, (time.perf_counter() - start) / number)
    return best


@figure
def logdet_scaling(quick=False):
    """Measured cost of the spectral log-det and deconvolution against dense LU."""
    from threadpoolctl import threadpool_limits

    rng = _rng(4)
    fast_sizes = [2**k + 1 for k in range(4, 11 if quick else 18)]
    dense_sizes = [2**k + 1 for k in range(4, 8 if quick else 11)]
    budget = 0.02 if quick else 0.08
    with threadpool_limits(1):  # one BLAS thread: fewer outliers on a shared machine
        times, dense = _scaling_times(rng, fast_sizes, dense_sizes, budget)

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for (label, t), marker in zip(times.items(), "os"):
        ax.loglog(fast_sizes, t, marker + "-", label=label)
    for (label, t), marker in zip(dense.items(), "^v"):
        ax.loglog(dense_sizes, t, marker + "-", label=label)
    ref = np.array(fast_sizes, dtype=float)
    t0 = times["deconvolution: idct1(dct1(y) / w_hat)"][-1]
    ax.loglog(ref, t0 * ref * np.log(ref) / (ref[-1] * np.log(ref[-1])), "k:", lw=0.8,
              label="slope of N log N")
    dref = np.array(dense_sizes, dtype=float)
    d0 = dense["dense slogdet (LU)"][-1]
    ax.loglog(dref, d0 * (dref / dref[-1]) ** 3, "k--", lw=0.8, label="slope of N^3")
    common = max(set(fast_sizes) & set(dense_sizes))
    i = fast_sizes.index(common)
    ratio = dense["dense slogdet (LU)"][dense_sizes.index(common)] / times["log-det from the kernel: dct1 + sum log|w_hat|"][i]
    ax.set(xlabel="L = N + 1 samples", ylabel="seconds per call (best of 5, one thread)",
           title=f"at L = {common}: dense slogdet / spectral log-det = {ratio:,.0f}x")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _scaling_times(rng, fast_sizes, dense_sizes, budget):
    """Best time per call of the spectral and the dense log-det and inverse, per size."""
    from refconf import symmetric_deconv, symmetric_log_abs_det, symmetric_spectrum
    from refconf.primitives import idct1
    from refconf.reference import dct1_matrix

    times = {"log-det from the kernel: dct1 + sum log|w_hat|": [],
             "deconvolution: idct1(dct1(y) / w_hat)": []}
    for L in fast_sizes:
        w_hat = np.exp(rng.uniform(-1, 1, L))
        w = idct1(w_hat)  # the spatial kernel of that spectrum
        y = rng.normal(size=L)
        times["log-det from the kernel: dct1 + sum log|w_hat|"].append(
            _best_time(lambda w=w: symmetric_log_abs_det(symmetric_spectrum(w)), budget))
        times["deconvolution: idct1(dct1(y) / w_hat)"].append(
            _best_time(lambda y=y, w_hat=w_hat: symmetric_deconv(y, w_hat), budget))
    dense = {"dense slogdet (LU)": [], "dense solve (LU)": []}
    for L in dense_sizes:
        w_hat = np.exp(rng.uniform(-1, 1, L))
        C = dct1_matrix(L)
        J = (C * w_hat) @ C / (2 * (L - 1))  # C^-1 = C / (2N)
        y = rng.normal(size=L)
        dense["dense slogdet (LU)"].append(_best_time(lambda J=J: np.linalg.slogdet(J), budget))
        dense["dense solve (LU)"].append(_best_time(lambda J=J, y=y: np.linalg.solve(J, y), budget))
    return times, dense


# ---------------------------------------------------------------------------------------
# Theory: S-Log gate and Lemma 1
# ---------------------------------------------------------------------------------------

def log_cosh(y):
    """``log cosh y`` without overflow: ``logaddexp(y, -y) - log 2``."""
    return np.logaddexp(y, -y) - np.log(2.0)


@figure
def slog_gates(quick=False):
    """S-Log gates, the two regularisers, and Lemma-1 gates by quadrature."""
    from refconf import ElementwiseFromRegularizer, SLog

    x = np.linspace(-6, 6, 401)[None, :]
    y = np.linspace(-2.5, 2.5, 11 if quick else 21)[None, :]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(x[0], x[0], "k:", lw=0.8, label="identity (a -> 0)")
    for a in (0.25, 1.0, 4.0):
        axes[0].plot(x[0], SLog(a).forward(x)[0][0], label=f"f_a, a = {a}")
    axes[0].set(title="S-Log gate f_a(x) = sign(x) log1p(a|x|) / a", xlabel="x")
    axes[0].legend(fontsize=7, frameon=False)
    t = np.linspace(-3, 3, 301)
    axes[1].plot(t, np.abs(t), label="gamma(y) = |y|  (L1)")
    axes[1].plot(t, log_cosh(t), label="gamma(y) = log cosh y  (smooth L1)")
    axes[1].plot(t, 0.5 * t**2, label="gamma(y) = y^2 / 2  (L2)", ls="--")
    axes[1].set(title="regulariser gamma(y) on the output", xlabel="y", ylim=(-0.2, 3.2))
    axes[1].legend(fontsize=7, frameon=False)
    for gamma, closed, label in [(np.abs, np.sign(y[0]) * np.expm1(np.abs(y[0])), "sign(y) expm1|y|"),
                                 (log_cosh, np.sinh(y[0]), "sinh y")]:
        lemma = ElementwiseFromRegularizer(gamma)
        line, = axes[2].plot(y[0], closed, lw=1, label=f"closed form {label}")
        axes[2].plot(y[0], lemma.inverse(y)[0][0], "o", ms=3.5, mfc="none",
                     color=line.get_color(), label="quadrature int_0^y exp(gamma)")
    axes[2].set(title="Lemma 1: g(y) = int_0^y exp(gamma(t)) dt", xlabel="y")
    axes[2].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Theory: the CONF step
# ---------------------------------------------------------------------------------------

def random_coupling(d_base, d_update, m, seed=0, scale=0.3, kind="symmetric"):
    """A ConvCoupling far from the identity: a conditioner with a random output layer and
    S-Log scales with a != a'."""
    from refconf.bijectors.coupling import ConvCoupling
    from refconf.conditioners import mlp_init

    rng = _rng(seed)
    conditioner = mlp_init(d_base, (16,), (2 * m + 1) * d_update, random_state=rng,
                           zero_output=False)
    conditioner[-1]["W"] *= scale
    conditioner[-1]["b"] = scale * rng.normal(size=conditioner[-1]["b"].shape)
    log_alpha = rng.normal(0.0, 0.5, size=m)
    return ConvCoupling(conditioner, log_alpha, log_alpha + rng.normal(0.0, 0.3, size=m),
                        kind=kind)


@figure
def conf_jacobian(quick=False):
    """Dense Jacobian of a CONF step at random parameters: block lower-triangular."""
    from refconf.reference import dense_jacobian

    D, m = 9, 2
    layer = random_coupling(D // 2, D - D // 2, m, seed=5)
    x = _rng(6).normal(size=D)
    J = dense_jacobian(lambda v: layer.forward(v[None])[0][0], x)
    _, log_det = layer.forward(x[None])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    lim = np.abs(J).max()
    ax.imshow(J, cmap="RdBu_r", vmin=-lim, vmax=lim)
    d1 = D // 2
    ax.axhline(d1 - 0.5, color="k", lw=0.8)
    ax.axvline(d1 - 0.5, color="k", lw=0.8)
    for (r, c), text in {(d1 / 2, d1 / 2): "I", (d1 / 2, d1 + (D - d1) / 2): "0",
                         (d1 + (D - d1) / 2, d1 / 2): "dy2/dx1",
                         (d1 + (D - d1) / 2, d1 + (D - d1) / 2): "dy2/dx2"}.items():
        ax.text(c - 0.5, r - 0.5, text, ha="center", va="center", fontsize=11,
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    ax.set(xticks=range(D), yticks=range(D), xlabel="input x", ylabel="output y")
    ax.set_title(f"D = {D}, m = {m}: slogdet = {np.linalg.slogdet(J)[1]:.6f}\n"
                 f"forward log_det = {float(log_det[0]):.6f}", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Theory: image flows
# ---------------------------------------------------------------------------------------

@figure
def image_flow(quick=False):
    """A digit squeezed into four channels, and the dense Jacobian of a 2-D CONF step on a
    2 x 3 x 4 image: identity on the base channel, block-triangular, log-det from spectra."""
    from sklearn.datasets import load_digits

    from refconf.bijectors.coupling2d import ConvCoupling2D
    from refconf.bijectors.squeeze import Squeeze
    from refconf.conditioners import conv_init
    from refconf.reference import dense_jacobian

    digit = load_digits().images[0][None, None] / 16.0
    squeezed = Squeeze().forward(digit)[0][0]
    rng = _rng(7)
    conditioner = conv_init(1, (4,), 5, random_state=rng, zero_output=False)
    conditioner[-1]["W"] *= 0.3
    layer = ConvCoupling2D(conditioner, rng.normal(0, 0.3, 2), rng.normal(0, 0.3, 2), (2, 3, 4))
    x = rng.normal(size=(2, 3, 4))
    J = dense_jacobian(lambda v: layer.forward(v[None])[0][0].ravel(), x).reshape(24, 24)
    log_det = float(layer.forward(x[None])[1][0])
    fig = plt.figure(figsize=(9.2, 3.6), layout="constrained")
    grid = fig.add_gridspec(2, 4, width_ratios=[2, 1, 1, 3.2])
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(digit[0, 0], cmap="gray")
    ax.set(title="8 x 8 digit", xticks=[], yticks=[])
    for c in range(4):
        ax = fig.add_subplot(grid[c // 2, 1 + c % 2])
        ax.imshow(squeezed[c], cmap="gray", vmin=0, vmax=1)
        ax.set(title=f"channel {c}", xticks=[], yticks=[])
    ax = fig.add_subplot(grid[:, 3])
    lim = np.abs(J).max()
    ax.imshow(J, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.axhline(11.5, color="k", lw=0.8)
    ax.axvline(11.5, color="k", lw=0.8)
    ax.set(xlabel="input (channel, row, column)", ylabel="output")
    ax.set_title(f"2-D CONF step, 2 x 3 x 4: slogdet {np.linalg.slogdet(J)[1]:.6f}\n"
                 f"forward log_det {log_det:.6f}", fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------
# Theory: the padding caveat
# ---------------------------------------------------------------------------------------

def gaussian_nll(train, test, eps):
    """Test NLL (nats per example) of a Gaussian fitted to ``train`` with covariance
    ``S + eps I``."""
    cov = np.cov(train, rowvar=False) + eps * np.eye(train.shape[1])
    variances, axes = np.linalg.eigh(cov)
    projected = (test - train.mean(axis=0)) @ axes
    quadratic = np.sum(projected**2 / variances, axis=1)
    return 0.5 * np.mean(quadratic + np.sum(np.log(variances)) + len(cov) * np.log(2 * np.pi))


@figure
def padding(quick=False):
    """NLL of padded data can be pushed down without bound; unpadded and corrected
    noise-padded NLLs settle."""
    from refconf.data import noise_padding_log_density, pad_for_equal_split

    rng = _rng(7)
    D, n = 3, (2000 if quick else 20000)
    mix = np.linalg.cholesky([[2.0, 0.8, 0.3], [0.8, 1.0, 0.2], [0.3, 0.2, 0.5]]).T
    train, test = rng.normal(size=(n, D)) @ mix, rng.normal(size=(n, D)) @ mix
    eps = np.logspace(-12, 0, 13 if quick else 49)
    curves = {
        "unpadded, D = 3": [gaussian_nll(train, test, e) for e in eps],
        "paper_mean padding, D = 4": [
            gaussian_nll(pad_for_equal_split(train, "paper_mean"),
                         pad_for_equal_split(test, "paper_mean"), e) for e in eps],
    }
    noisy_train = pad_for_equal_split(train, "noise", random_state=1)
    noisy_test = pad_for_equal_split(test, "noise", random_state=2)
    correction = noise_padding_log_density(noisy_test).mean()
    curves["noise padding, D = 4, minus log N(e)"] = [
        gaussian_nll(noisy_train, noisy_test, e) + correction for e in eps]

    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, values), style, width in zip(curves.items(), ["o-", "s-", "^--"], [3, 1.5, 1.5]):
        ax.semilogx(eps, values, style, ms=3, lw=width, label=label)
    padded = np.array(curves["paper_mean padding, D = 4"])
    ax.semilogx(eps, padded[0] + 0.5 * np.log(eps / eps[0]), "k:", lw=0.8,
                label="slope: NLL falls by 1/2 log(1/eps)")
    ax.set(xlabel="covariance floor eps (the model's width across the hyperplane)",
           ylabel="test NLL (nats per example)",
           title="Gaussian fits: padding with a function of the data has no NLL floor")
    ax.invert_xaxis()
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Theory: flow posteriors
# ---------------------------------------------------------------------------------------

@figure
def flow_posteriors(quick=False):
    """Importance-sampled log p(x) against S on a linear-Gaussian model: from the ELBO up
    to the exact marginal, with the delta-method standard error."""
    from scipy.stats import norm

    from refconf.vae import is_estimate

    rng = _rng(3)
    a, s, c, v = 1.5, 0.7, 0.2, 0.8  # p(x|z) = N(a z, s^2), q(z|x) = N(c x, v)
    x = np.array([2.2])
    exact = norm.logpdf(x, 0.0, np.hypot(a, s))[0]
    sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] if not quick else [1, 4, 16, 64]
    repeats = 50 if quick else 400

    def log_w(eps):
        z = c * x + np.sqrt(v) * eps
        return norm.logpdf(x, a * z, s) + norm.logpdf(z) - norm.logpdf(z, c * x, np.sqrt(v))

    means, spreads, reported = [], [], []
    for S in sizes:
        runs = [is_estimate(log_w(rng.normal(size=(S, 1)))) for _ in range(repeats)]
        estimates = np.array([r[0][0] for r in runs])
        means.append(estimates.mean())
        spreads.append(estimates.std(ddof=1))
        reported.append(np.mean([r[1][0] for r in runs]))
    elbo = log_w(rng.normal(size=(200000, 1))).mean()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.errorbar(sizes, means, yerr=spreads, fmt="o-", ms=3, capsize=2,
                label="IS estimate: mean ± spread over repeats")
    ax.plot(sizes, np.array(means) + np.array(reported), "k:", lw=0.8,
            label="mean + reported standard error")
    ax.axhline(exact, color="C2", label="exact log p(x)")
    ax.axhline(elbo, color="C3", ls="--", label="ELBO")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="importance samples S", ylabel="log p(x) estimate (nats)",
           title="log (1/S) sum w_s rises from the ELBO to log p(x) as S grows")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Theory: gradients
# ---------------------------------------------------------------------------------------

@figure
def dct_transpose(quick=False):
    """C, C^T and C^T - C: the transpose differs only on the frame."""
    from refconf.reference import dct1_matrix

    L = 9
    C = dct1_matrix(L)
    a2 = np.where((np.arange(L) == 0) | (np.arange(L) == L - 1), 1.0, 2.0)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.4))
    lim = np.abs(C).max()
    for ax, A, title in [(axes[0], C, r"$C[k, n] = 2 a_n \cos(\pi k n / N)$"),
                         (axes[1], C.T, r"$C^T = \mathrm{diag}(2a)\, C\, \mathrm{diag}(2a)^{-1}$"),
                         (axes[2], C.T - C, r"$C^T - C$: only the frame")]:
        im = ax.imshow(A, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set(title=title, xticks=[], yticks=[])
    assert np.allclose(C.T, a2[:, None] * C / a2[None, :])
    fig.colorbar(im, ax=axes, shrink=0.8)
    return fig


# ---------------------------------------------------------------------------------------
# Theory: engines and tiers
# ---------------------------------------------------------------------------------------

def _relative_error(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(1.0, np.max(np.abs(b))))


@figure
def engine_agreement(quick=False):
    """Largest relative disagreement between tiers, per size."""
    from refconf import (
        circular_conv,
        circular_log_abs_det,
        circular_spectrum,
        symmetric_conv,
        symmetric_spectrum,
    )
    from refconf.primitives import dct1, dct1_via_rfft
    from refconf.reference import (
        circulant_matrix,
        circular_conv_direct,
        dct1_matrix,
        symmetric_conv_direct,
    )

    rng = _rng(8)
    sizes = [3, 4, 5, 8, 9, 16, 17] if quick else [3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129]
    errors = {k: [] for k in [
        "dct1 vs DCT-I matrix (eq. 2)",
        "dct1_via_rfft (FFT-only) vs dct1",
        "symmetric_conv vs direct sum on the 2N ring",
        "circular_conv vs direct sum",
        "circular_log_abs_det vs dense slogdet",
    ]}
    for L in sizes:
        x, w = rng.normal(size=L), rng.normal(size=L)
        errors["dct1 vs DCT-I matrix (eq. 2)"].append(_relative_error(dct1(x), dct1_matrix(L) @ x))
        errors["dct1_via_rfft (FFT-only) vs dct1"].append(_relative_error(dct1_via_rfft(x), dct1(x)))
        errors["symmetric_conv vs direct sum on the 2N ring"].append(_relative_error(
            symmetric_conv(x, symmetric_spectrum(w)), symmetric_conv_direct(x, w)))
        errors["circular_conv vs direct sum"].append(_relative_error(
            circular_conv(x, circular_spectrum(w)), circular_conv_direct(x, w)))
        errors["circular_log_abs_det vs dense slogdet"].append(_relative_error(
            circular_log_abs_det(circular_spectrum(w), L), np.linalg.slogdet(circulant_matrix(w))[1]))
    fig, ax = plt.subplots(figsize=(7, 4))
    for (label, e), marker in zip(errors.items(), "os^vD"):
        ax.loglog(sizes, np.maximum(e, 1e-18), marker + "-", ms=4, label=label)
    ax.axhline(np.finfo(float).eps, color="k", ls=":", lw=0.8, label="float64 eps")
    ax.axhline(1e-9, color="C3", ls="--", lw=0.8, label="test tolerance 1e-9")
    ax.set(xlabel="length", ylabel="max |difference| / max(1, |reference|)",
           title="readable tier against the reference tier (exact agreement drawn at 1e-18)",
           ylim=(1e-18, 1e-3))
    ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=2)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Tutorials
# ---------------------------------------------------------------------------------------

TOY_SETTINGS = {"n": 4000, "model": {"steps": 4, "m": 2, "hidden": (32, 32), "epochs": 30}}


@figure
def toy_density(quick=False):
    """True and fitted two-moons densities, and samples of the fit."""
    from refconf.data import sample_toy, toy_log_density
    from refconf.estimator import ConfDensity

    n = 1000 if quick else TOY_SETTINGS["n"]
    train = sample_toy("two_moons", n, random_state=0)
    val = sample_toy("two_moons", n // 5, random_state=1)
    model = {"steps": 2, "m": 1, "hidden": (16,), "epochs": 2} if quick else TOY_SETTINGS["model"]
    est = ConfDensity(**model, batch_size=256, learning_rate=5e-3, lr_decay=0.95, patience=8,
                      random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(train, X_val=val)
    limit, g = 2.5, (80 if quick else 250)
    _, points = _grid(limit, g)
    true = np.exp(toy_log_density("two_moons", points)).reshape(g, g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # -inf far from the data is expected
        fitted = np.exp(est.score_samples(points)).reshape(g, g)
        test = sample_toy("two_moons", 5000, random_state=3)
        kl = np.mean(toy_log_density("two_moons", test) - est.score_samples(test))
    samples = est.sample(2000, random_state=2)

    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.7))
    extent = [-limit, limit, -limit, limit]
    vmax = true.max()
    axes[0].imshow(true, origin="lower", extent=extent, cmap="magma", vmin=0, vmax=vmax)
    axes[0].set_title("true density (toy_log_density)")
    axes[1].imshow(fitted, origin="lower", extent=extent, cmap="magma", vmin=0, vmax=vmax)
    axes[1].set_title(f"ConfDensity, {len(est.history_)} epochs; KL(p||q) ~ {kl:.3f} nats")
    axes[2].scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.5)
    axes[2].set(xlim=(-limit, limit), ylim=(-limit, limit), title="est.sample(2000)")
    for ax in axes:
        ax.set_aspect("equal")
    fig.tight_layout()
    return fig


DIGITS_SETTINGS = {"steps": 4, "m": 1, "hidden": (64, 64), "epochs": 25}
DIGITS_LOGIT_LAMBDA = 0.05


@figure
def digits_samples(quick=False):
    """Learning curves and samples of a CONF model of the 8x8 digits, fitted in logit
    space; NLLs on the [0, 1) pixel scale."""
    from sklearn.mixture import GaussianMixture

    from refconf.bijectors import Logit
    from refconf.data import load_digits
    from refconf.estimator import ConfDensity

    logit = Logit(DIGITS_LOGIT_LAMBDA)
    (train, _), (val, _), (test, log_det_test) = (
        logit.forward(split) for split in load_digits(random_state=0))
    model = {"steps": 2, "m": 1, "hidden": (16,), "epochs": 2} if quick else DIGITS_SETTINGS
    est = ConfDensity(**model, batch_size=128, learning_rate=1e-3, patience=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(train, X_val=val)
        nll = -(est.score_samples(test) + log_det_test).mean()
    gaussian = GaussianMixture(1, covariance_type="full", random_state=0).fit(train)
    gaussian_nll = -(gaussian.score_samples(test) + log_det_test).mean()
    samples = logit.inverse(est.sample(24, random_state=1))[0]

    fig = plt.figure(figsize=(11, 3.6))
    grid = fig.add_gridspec(3, 12)
    ax = fig.add_subplot(grid[:, :4])
    epochs = [h["epoch"] for h in est.history_]
    ax.plot(epochs, [h["train_loss"] for h in est.history_], label="train")
    ax.plot(epochs, [h["val_loss"] for h in est.history_], label="validation")
    ax.set(xlabel="epoch", ylabel="NLL in logit space (nats)",
           title=f"test NLL on [0, 1): CONF {nll:.1f}, one Gaussian {gaussian_nll:.1f} nats")
    ax.legend(frameon=False)
    for i, image in enumerate(samples):
        sub = fig.add_subplot(grid[i // 8, 4 + i % 8])
        sub.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        sub.axis("off")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------

def source_hash(quick=False):
    """Hash of this script and every refconf source file (and the ``quick`` flag)."""
    digest = hashlib.sha256(f"quick={quick}".encode())
    files = [pathlib.Path(__file__).resolve()] + sorted((REPO / "refconf").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save(fig, path):
    """Write ``fig`` as PNG through a temporary file and an atomic rename."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        plt.close(fig)


def make_all(out=DEFAULT_OUT, names=None, quick=False, force=False, log=print):
    """Write every figure (or ``names``) to ``out/<name>.png``; skip when up to date.

    Returns the list of figures written.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(FIGURES) if names is None else list(names)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; known: {sorted(FIGURES)}")
    stamp = out / STAMP
    current = source_hash(quick)
    fresh = stamp.is_file() and stamp.read_text() == current
    todo = [n for n in names if force or not fresh or not (out / f"{n}.png").is_file()]
    for name in todo:
        start = time.perf_counter()
        save(FIGURES[name](quick=quick), out / f"{name}.png")
        log(f"figure {name}: {time.perf_counter() - start:.1f} s")
    if names == list(FIGURES):
        stamp.write_text(current)
    return todo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"figures to make (default all): {', '.join(FIGURES)}")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    make_all(args.out, args.names or None, quick=args.quick, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
