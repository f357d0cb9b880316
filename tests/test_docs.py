"""The documentation's code and claims, as tests.

1. Every ```python block of every page under ``docs/`` runs: a page's blocks run in order
   in one namespace, in a temporary working directory. A block may be marked not run
   with the MyST comment ``% docs-test: skip`` on the line before it, only on the pages in
   :data:`SKIP_ALLOWED` (which document a planned API).
2. Every ``refconf ...`` command in a ```console block parses with the real CLI parser.
3. Every identity a theory page states as a labelled equation (``{math}`` with
   ``:label:``) is checked by a test: :data:`IDENTITY_TESTS` maps each label to a test in
   this module (``test_identity_*``, random parameters far from the identity, odd and
   even sizes) or to an existing test elsewhere in ``tests/``.
4. The figure script runs every figure in its quick mode, and every figure a page shows is
   one the script makes.
"""

import dataclasses
import importlib.util
import os
import pathlib
import re
import shlex
import sys

import autograd.numpy as anp
import numpy as np
import pytest
import scipy.fft

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SKIP_MARK = "% docs-test: skip"
#: Pages that may hold blocks marked not run: they document an API still being written.
SKIP_ALLOWED = set()


# ---------------------------------------------------------------------------------------
# Extracting code blocks
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    skip: bool


_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


def page_blocks(path):
    """The fenced blocks of a MyST page (top level only), in order."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        start = i
        body = []
        i += 1
        while i < len(lines) and not (lines[i].startswith(fence[0] * len(fence))
                                      and lines[i].strip() == fence[0] * len(lines[i].strip())
                                      and len(lines[i].strip()) >= len(fence)):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{path}:{start + 1}: unclosed code fence")
        i += 1
        language = info.split()[0] if info else ""
        if language != "python" and any(re.match(r"^\s*(`{3,}|~{3,})\s*python\b", b) for b in body):
            raise ValueError(f"{path}:{start + 1}: a python block nested in {language!r}; "
                             "put runnable code at the top level of the page")
        skip = start > 0 and lines[start - 1].strip() == SKIP_MARK
        blocks.append(Block(language, "\n".join(body) + "\n", start + 1, skip))
    return blocks


def doc_pages():
    """Every MyST page of the documentation, relative to ``docs/``."""
    skip_dirs = {"_build", "_generated", "_scripts", "_templates", "_static", "node_modules"}
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
                  if not skip_dirs & set(p.relative_to(DOCS).parts))


PAGES = doc_pages()


def run_page(page, workdir):
    """Run the python blocks of ``page`` in one namespace inside ``workdir``."""
    namespace = {"__name__": f"docs.{page}"}
    ran = 0
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for block in page_blocks(DOCS / page):
            if block.language != "python" or block.skip:
                continue
            code = compile(block.code, f"docs/{page}, block at line {block.line}", "exec")
            exec(code, namespace)  # noqa: S102 - running the documentation's own examples
            ran += 1
    finally:
        os.chdir(cwd)
        import matplotlib.pyplot as plt

        plt.close("all")
    return ran


# ---------------------------------------------------------------------------------------
# 1-2. Code blocks and commands
# ---------------------------------------------------------------------------------------

def test_pages_were_found():
    assert "index.md" in PAGES
    assert sum(p.startswith("theory/") for p in PAGES) >= 9
    assert sum(p.startswith("tutorials/") for p in PAGES) >= 5


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    blocks = [b for b in page_blocks(DOCS / page) if b.language == "python"]
    skipped = [b.line for b in blocks if b.skip]
    assert not skipped or page in SKIP_ALLOWED, (
        f"docs/{page} marks blocks at lines {skipped} as not run; only {SKIP_ALLOWED} may")
    ran = run_page(page, tmp_path)
    assert ran == len(blocks) - len(skipped)
    if page.startswith("theory/"):
        assert ran >= 2, f"docs/{page} should show its math in runnable code"


def _parse_refconf(argv):
    from refconf.cli import _parser

    _parser().parse_args(argv)


def _parse_registered(register, prefix=()):
    """A parse function for a command added by ``register(subparsers)``."""
    def parse(argv):
        import argparse

        parser = argparse.ArgumentParser()
        register(parser.add_subparsers(dest="command", required=True))
        parser.parse_args([*prefix, *argv])
    return parse


def _parse_conformance(argv):
    from refconf.conformance.cli import register

    _parse_registered(register)(argv)


def _parse_reproduce(argv):
    from refconf.experiments import register

    _parse_registered(register, ("reproduce", "table1"))(argv)


#: Command prefixes shown in console blocks, and the parser that must accept the rest
#: (argparse exits with SystemExit on anything it does not accept).
CLI_PARSERS = {"$ refconf": _parse_refconf,
               "$ python -m refconf.conformance.cli": _parse_conformance,
               "$ python validation/reproduce_table1.py": _parse_reproduce}


def _cli_commands(page):
    """``(line, argv)`` of every ``$ refconf ...`` command of the console blocks (lines
    ending in a backslash continue on the next line)."""
    for block in page_blocks(DOCS / page):
        if block.language != "console" or block.skip:
            continue
        lines = block.code.splitlines()
        offset = 0
        while offset < len(lines):
            start, command = offset, lines[offset]
            while command.endswith("\\") and offset + 1 < len(lines):
                offset += 1
                command = command[:-1] + " " + lines[offset].strip()
            offset += 1
            for prefix in CLI_PARSERS:
                if command.startswith(prefix + " "):
                    yield block.line + 1 + start, prefix, shlex.split(command[len(prefix):])


CLI_CASES = [pytest.param(page, line, prefix, argv, id=f"{page}:{line}")
             for page in PAGES for line, prefix, argv in _cli_commands(page)]


@pytest.mark.parametrize("page, line, prefix, argv", CLI_CASES)
def test_console_commands_parse(page, line, prefix, argv):
    try:
        CLI_PARSERS[prefix](argv)
    except SystemExit as exc:
        pytest.fail(f"docs/{page}:{line}: `{prefix[2:]} {' '.join(argv)}` is not a valid "
                    f"command (argparse exit {exc.code})")


def test_console_commands_were_found():
    pages = {case.values[0] for case in CLI_CASES}
    assert {"tutorials/toy-2d.md", "tutorials/conformance.md"} <= pages


# ---------------------------------------------------------------------------------------
# 4. Figures
# ---------------------------------------------------------------------------------------

def _figure_module():
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "_scripts" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIGURE_REFERENCE = re.compile(r"/_generated/figures/([\w-]+)\.png")


def test_every_figure_shown_is_made_and_every_figure_made_is_shown():
    shown = {m for page in PAGES for m in FIGURE_REFERENCE.findall((DOCS / page).read_text())}
    made = set(_figure_module().FIGURES)
    assert shown == made, f"shown but not made: {shown - made}; made but not shown: {made - shown}"
    theory = [p for p in PAGES if p.startswith("theory/")]
    for page in theory:
        assert FIGURE_REFERENCE.search((DOCS / page).read_text()), f"docs/{page} has no figure"


def test_training_figure_captions_state_the_settings_used():
    module = _figure_module()
    for page, settings in [("tutorials/toy-2d.md", module.TOY_SETTINGS["model"]),
                           ("tutorials/digits.md", module.DIGITS_SETTINGS)]:
        text = " ".join((DOCS / page).read_text().split())
        architecture = f"steps={settings['steps']}, m={settings['m']}, hidden={settings['hidden']}"
        assert architecture in text, f"docs/{page}: caption does not say {architecture}"
        assert f"{settings['epochs']} epochs" in text
    assert f"to {module.TOY_SETTINGS['n']} samples" in (DOCS / "tutorials/toy-2d.md").read_text()


@pytest.fixture(scope="module")
def figures():
    return _figure_module()


@pytest.mark.parametrize("name", sorted(_figure_module().FIGURES))
def test_figure_is_made_from_refconf(figures, name, tmp_path):
    written = figures.make_all(tmp_path, names=[name], quick=True, log=lambda *a: None)
    assert written == [name]
    png = (tmp_path / f"{name}.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not list(tmp_path.glob(".*.png")), "a temporary file was left behind"


def test_figure_cache_skips_up_to_date_figures(figures, tmp_path):
    names = ["dct_transpose"]
    figures.make_all(tmp_path, names=names, quick=True, log=lambda *a: None)
    (tmp_path / figures.STAMP).write_text(figures.source_hash(quick=True))
    assert figures.make_all(tmp_path, names=names, quick=True, log=lambda *a: None) == []
    assert figures.make_all(tmp_path, names=names, quick=True, force=True,
                            log=lambda *a: None) == names
    with pytest.raises(ValueError, match="unknown figure"):
        figures.make_all(tmp_path, names=["no_such_figure"], quick=True)


# ---------------------------------------------------------------------------------------
# 3. Every labelled identity of the theory pages, as a test
# ---------------------------------------------------------------------------------------
#
# Parameters are random and far from the identity (spectra with |w_hat| in [0.1, 10] and
# mixed signs, S-Log scales away from 0, a != a'), at odd and even sizes.

LENGTHS = (2, 3, 4, 7, 8, 9, 16)


def _rng(seed):
    return np.random.default_rng(seed)


def _spectrum(rng, shape):
    """Real eigenvalues with |w_hat| log-uniform in [0.1, 10] and random signs."""
    return rng.choice([-1.0, 1.0], shape) * np.exp(rng.uniform(np.log(0.1), np.log(10), shape))


def _jacobian(bijector, x):
    from refconf.reference import dense_jacobian

    return dense_jacobian(lambda v: bijector.forward(v[None])[0][0], x)


def _two_a(L):
    return np.where((np.arange(L) == 0) | (np.arange(L) == L - 1), 1.0, 2.0)


def _coupling(d_base, d_update, m, seed, kind="symmetric", spectrum="raw", scale=0.3):
    """A CONF step with a random (non-zero) conditioner output layer and a != a'."""
    from refconf.bijectors.coupling import ConvCoupling
    from refconf.conditioners import mlp_init

    rng = _rng(seed)
    conditioner = mlp_init(d_base, (12,), (2 * m + 1) * d_update, random_state=rng,
                           zero_output=False)
    conditioner[-1]["W"] *= scale
    conditioner[-1]["b"] = scale * rng.normal(size=conditioner[-1]["b"].shape)
    log_alpha = rng.normal(0.0, 0.5, size=m)
    log_alpha_prime = log_alpha + rng.uniform(0.2, 0.5, size=m) * rng.choice([-1, 1], m)
    return ConvCoupling(conditioner, log_alpha, log_alpha_prime, kind=kind, spectrum=spectrum)


def _conditioner_outputs(layer, x1):
    """``w_hat (B, m, d2)``, ``s (B, m, d2)``, ``t (B, d2)`` of a symmetric ``raw`` step, read
    off the conditioner as eq. (5) describes (not through the layer's own code)."""
    from refconf.conditioners import mlp

    m, d2 = layer.m, layer.d_update
    out = mlp(layer.conditioner, x1).reshape(len(x1), 2 * m + 1, d2)
    return 1.0 + out[:, :m], np.exp(out[:, m:2 * m]), out[:, -1]


# --- change of variables ----------------------------------------------------------------

def test_identity_change_of_variables():
    """log p(x) = log N(f(x)) + log|det J_f(x)|, with the log-det from the dense Jacobian,
    and in closed form for a linear flow."""
    from scipy.stats import multivariate_normal

    from refconf import Chain, Scale, Shift, SLog, SymmetricConv
    from refconf.flows import Flow, StandardNormal

    for seed, D in [(0, 3), (1, 6)]:
        rng = _rng(seed)
        linear = Chain([SymmetricConv(_spectrum(rng, D)), Scale(_spectrum(rng, D)),
                        Shift(rng.normal(size=D))])
        A = _jacobian(linear, np.zeros(D))
        t = linear.forward(np.zeros((1, D)))[0][0]
        cov = np.linalg.inv(A.T @ A)
        x = 2.0 * rng.normal(size=(7, D))
        expected = multivariate_normal(-np.linalg.solve(A, t), cov).logpdf(x)
        np.testing.assert_allclose(Flow(StandardNormal(D), linear).log_prob(x), expected,
                                   rtol=1e-10, atol=1e-10)

        nonlinear = Chain([SymmetricConv(_spectrum(rng, D)), SLog(1.3),
                           Shift(rng.normal(size=D))])
        flow = Flow(StandardNormal(D), nonlinear)
        for sample, value in zip(x, flow.log_prob(x)):
            z = nonlinear.forward(sample[None])[0][0]
            by_definition = (-0.5 * z @ z - 0.5 * D * np.log(2 * np.pi)
                             + np.linalg.slogdet(_jacobian(nonlinear, sample))[1])
            assert np.isclose(value, by_definition, rtol=1e-10, atol=1e-10)


def test_identity_logdet_chain():
    from refconf import Chain, CircularConv, Invertible1x1, Scale, SLog, SymmetricConv

    for seed, D in [(2, 5), (3, 8)]:
        rng = _rng(seed)
        params = Invertible1x1.random_params(D, random_state=rng)
        params["log_s"] = params["log_s"] + rng.uniform(-1, 1, D)
        members = [SymmetricConv(_spectrum(rng, D)), SLog(0.8), CircularConv(rng.normal(size=D)),
                   Scale(_spectrum(rng, D)), Invertible1x1(**params)]
        chain = Chain(members)
        x = 2.0 * rng.normal(size=D)
        _, log_det = chain.forward(x[None])
        h, total = x, 0.0
        for member in members:
            total += np.linalg.slogdet(_jacobian(member, h))[1]
            h = member.forward(h[None])[0][0]
        assert abs(total) > 0.5  # a non-trivial sum
        assert np.isclose(log_det[0], total, rtol=1e-10, atol=1e-10)


def test_identity_logdet_inverse():
    from refconf import Chain, Inverse, SLog, SymmetricConv

    rng = _rng(4)
    D = 6
    f = Chain([SymmetricConv(_spectrum(rng, D)), SLog(0.7)])
    x = 2.0 * rng.normal(size=D)
    z, log_det = f.forward(x[None])
    x_back, log_det_inverse = f.inverse(z)
    np.testing.assert_allclose(x_back[0], x, rtol=1e-10, atol=1e-10)
    assert np.isclose(log_det_inverse[0], -log_det[0]) and abs(log_det[0]) > 0.1
    J_f = _jacobian(f, x)
    J_g = _jacobian(Inverse(f), z[0])
    np.testing.assert_allclose(J_g @ J_f, np.eye(D), atol=1e-9)


def test_prose_standard_normal_log_prob():
    from scipy.stats import multivariate_normal

    from refconf.flows import StandardNormal

    z = _rng(5).normal(size=(4, 3))
    np.testing.assert_allclose(StandardNormal(3).log_prob(z),
                               multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z))


# --- circular convolution -----------------------------------------------------------------

def test_identity_dft_convolution():
    from refconf.reference import circular_conv_direct

    for N in LENGTHS:
        rng = _rng(N)
        x, w = rng.normal(size=N), rng.normal(size=N)
        np.testing.assert_allclose(np.fft.fft(circular_conv_direct(x, w)),
                                   np.fft.fft(w) * np.fft.fft(x), atol=1e-10)


def test_identity_circulant_eigen():
    from refconf.reference import circulant_matrix, dft_matrix

    for N in LENGTHS:
        w = _rng(10 + N).normal(size=N)
        F = dft_matrix(N)
        np.testing.assert_allclose(circulant_matrix(w),
                                   np.linalg.solve(F, np.diag(np.fft.fft(w)) @ F), atol=1e-10)
        # the Fourier modes are eigenvectors: A F^-1[:, k] = W(k) F^-1[:, k]
        modes = np.linalg.inv(F)
        np.testing.assert_allclose(circulant_matrix(w) @ modes, modes * np.fft.fft(w), atol=1e-10)


def test_identity_circulant_logdet():
    from refconf.reference import circulant_matrix

    for N in LENGTHS:
        w = _rng(20 + N).normal(size=N)
        assert np.isclose(np.sum(np.log(np.abs(np.fft.fft(w)))),
                          np.linalg.slogdet(circulant_matrix(w))[1])


def test_identity_hermitian_spectrum():
    for N in LENGTHS:
        W = np.fft.fft(_rng(30 + N).normal(size=N))
        k = np.arange(1, N)
        np.testing.assert_allclose(W[N - k], np.conj(W[k]), atol=1e-12)
        assert abs(W[0].imag) < 1e-12
        if N % 2 == 0:
            assert abs(W[N // 2].imag) < 1e-12


def test_identity_half_spectrum_logdet():
    from refconf import circular_log_abs_det, circular_spectrum
    from refconf.reference import circulant_matrix

    for N in LENGTHS:
        w = _rng(40 + N).normal(size=N)
        half = np.fft.rfft(w)
        interior = np.arange(1, (N + 1) // 2)
        by_formula = (np.log(abs(half[0])) + (np.log(abs(half[N // 2])) if N % 2 == 0 else 0.0)
                      + 2 * np.sum(np.log(np.abs(half[interior]))))
        dense = np.linalg.slogdet(circulant_matrix(w))[1]
        assert np.isclose(by_formula, dense)
        assert np.isclose(circular_log_abs_det(circular_spectrum(w), N), dense)
        assert 1 + 2 * interior.size + (N % 2 == 0) == N


def test_prose_circular_2d_logdet_sums_every_bin():
    from refconf import CircularConv

    for H, W in [(3, 4), (4, 5)]:
        rng = _rng(H * W)
        w = rng.normal(size=(H, W))
        x = rng.normal(size=(H, W))
        _, log_det = CircularConv(w, ndim=2).forward(x[None])
        assert np.isclose(log_det[0], np.sum(np.log(np.abs(np.fft.fft2(w)))))
        assert np.isclose(log_det[0], np.linalg.slogdet(_jacobian(CircularConv(w, ndim=2), x)
                                                        .reshape(H * W, H * W))[1])


# --- symmetric convolution ----------------------------------------------------------------

def test_identity_dct1_definition():
    from refconf.primitives import dct1, whole_sample_extension
    from refconf.reference import dct1_matrix

    for L in LENGTHS:
        x = _rng(50 + L).normal(size=L)
        N = L - 1
        by_sum = np.array([x[0] + (-1) ** k * x[N]
                           + 2 * sum(x[n] * np.cos(np.pi * k * n / N) for n in range(1, N))
                           for k in range(L)])
        spectrum = np.fft.fft(whole_sample_extension(x))
        for candidate in (dct1(x), dct1_matrix(L) @ x, scipy.fft.dct(x, type=1), spectrum[:L].real):
            np.testing.assert_allclose(candidate, by_sum, atol=1e-10)
        assert np.abs(spectrum.imag).max() < 1e-10
        np.testing.assert_allclose(spectrum[2 * N - np.arange(1, N)], spectrum[1:N], atol=1e-10)


def test_identity_dct1_inverse():
    from refconf.primitives import dct1, idct1
    from refconf.reference import dct1_matrix

    for L in LENGTHS:
        N = L - 1
        C = dct1_matrix(L)
        np.testing.assert_allclose(C @ C, 2 * N * np.eye(L), atol=1e-10)
        X = _rng(60 + L).normal(size=L)
        np.testing.assert_allclose(idct1(X), dct1(X) / (2 * N), atol=1e-12)
        np.testing.assert_allclose(dct1(idct1(X)), X, atol=1e-12)


def test_identity_dct_convolution():
    from refconf import symmetric_conv, symmetric_spectrum
    from refconf.primitives import dct1
    from refconf.reference import symmetric_conv_direct

    for L in LENGTHS:
        rng = _rng(70 + L)
        x, w = rng.normal(size=L), rng.normal(size=L)
        y = symmetric_conv_direct(x, w)
        np.testing.assert_allclose(dct1(y), dct1(w) * dct1(x), atol=1e-10)
        np.testing.assert_allclose(symmetric_conv(x, symmetric_spectrum(w)), y, atol=1e-10)


def test_prose_even_sequences_convolve_to_an_even_sequence():
    from refconf.primitives import whole_sample_extension
    from refconf.reference import circular_conv_direct

    for L in LENGTHS[1:]:
        rng = _rng(75 + L)
        y_ext = circular_conv_direct(whole_sample_extension(rng.normal(size=L)),
                                     whole_sample_extension(rng.normal(size=L)))
        np.testing.assert_allclose(y_ext, whole_sample_extension(y_ext[:L]), atol=1e-12)


def test_identity_symmetric_jacobian():
    from refconf import SymmetricConv, symmetric_log_abs_det
    from refconf.reference import dct1_matrix

    for L in LENGTHS:
        rng = _rng(80 + L)
        w_hat = _spectrum(rng, L)
        C = dct1_matrix(L)
        J = _jacobian(SymmetricConv(w_hat), rng.normal(size=L))
        np.testing.assert_allclose(J, np.linalg.solve(C, np.diag(w_hat) @ C), atol=1e-10)
        eigenvalues = np.linalg.eigvals(J)
        assert np.abs(eigenvalues.imag).max() < 1e-8
        np.testing.assert_allclose(np.sort(eigenvalues.real), np.sort(w_hat), atol=1e-8)
        assert np.isclose(symmetric_log_abs_det(w_hat), np.linalg.slogdet(J)[1])
        # eigenvectors: the columns of C^-1
        np.testing.assert_allclose(J @ np.linalg.inv(C), np.linalg.inv(C) * w_hat, atol=1e-10)


def test_prose_unit_spectrum_is_the_delta_kernel_and_length_one_is_a_multiply():
    from refconf import symmetric_conv
    from refconf.primitives import idct1

    for L in LENGTHS:
        np.testing.assert_allclose(idct1(np.ones(L)), np.eye(L)[0], atol=1e-14)
    x = _rng(85).normal(size=(3, 1))
    np.testing.assert_allclose(symmetric_conv(x, np.array([-2.5])), -2.5 * x)


def test_identity_ortho_similarity():
    from refconf.reference import dct1_matrix

    for L in LENGTHS[1:]:
        N = L - 1
        w_hat = _spectrum(_rng(90 + L), L)
        C = dct1_matrix(L)
        J = np.linalg.solve(C, np.diag(w_hat) @ C)
        b = np.ones(L)
        b[[0, -1]] = 1 / np.sqrt(2)
        B = np.diag(b)
        Q = scipy.fft.dct(np.eye(L), type=1, norm="ortho", axis=0)
        np.testing.assert_allclose(Q, B @ C @ np.linalg.inv(B) / np.sqrt(2 * N), atol=1e-12)
        np.testing.assert_allclose(Q @ Q, np.eye(L), atol=1e-12)
        np.testing.assert_allclose(Q, Q.T, atol=1e-12)
        M = Q.T @ np.diag(w_hat) @ Q
        np.testing.assert_allclose(M, B @ J @ np.linalg.inv(B), atol=1e-10)
        assert np.isclose(np.linalg.slogdet(M)[1], np.linalg.slogdet(J)[1])
        assert np.abs(M - J).max() > 1e-3


def test_prose_2d_symmetric_logdet_with_a_non_separable_spectrum():
    from refconf import SymmetricConv

    rng = _rng(95)
    W_hat = _spectrum(rng, (3, 5))
    assert np.linalg.matrix_rank(W_hat) > 1  # not an outer product
    x = rng.normal(size=(3, 5))
    _, log_det = SymmetricConv(W_hat, ndim=2).forward(x[None])
    J = _jacobian(SymmetricConv(W_hat, ndim=2), x).reshape(15, 15)
    assert np.isclose(log_det[0], np.linalg.slogdet(J)[1])
    assert np.isclose(log_det[0], np.sum(np.log(np.abs(W_hat))))


# --- log-det and deconvolution -------------------------------------------------------------

def test_identity_symmetric_logdet_cost():
    """The log-det from the spatial kernel equals slogdet of the matrix whose columns are
    the direct symmetric convolutions of the unit vectors (no DCT matrix involved)."""
    from refconf import symmetric_log_abs_det, symmetric_spectrum
    from refconf.reference import symmetric_conv_direct

    for L in LENGTHS:
        w = _rng(100 + L).normal(size=L)
        J = symmetric_conv_direct(np.eye(L), w).T
        assert np.isclose(symmetric_log_abs_det(symmetric_spectrum(w)), np.linalg.slogdet(J)[1])


def test_identity_symmetric_deconvolution():
    from refconf import symmetric_conv, symmetric_deconv
    from refconf.reference import dct1_matrix

    for L in LENGTHS:
        rng = _rng(110 + L)
        w_hat, y = _spectrum(rng, L), rng.normal(size=L)
        C = dct1_matrix(L)
        x = symmetric_deconv(y, w_hat)
        np.testing.assert_allclose(x, np.linalg.solve(np.linalg.solve(C, np.diag(w_hat) @ C), y),
                                   rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(x, symmetric_conv(y, 1.0 / w_hat), atol=1e-10)
    with pytest.raises(ValueError, match="not invertible"):
        symmetric_deconv(np.ones(5), np.array([1.0, 2.0, 0.0, 3.0, 1.0]))


def test_identity_deconvolution_conditioning():
    from refconf.reference import dct1_matrix

    for L in range(2, 41):
        assert np.linalg.cond(dct1_matrix(L)) <= 2.0 * (1 + 1e-12)
    for L in LENGTHS:
        w_hat = _spectrum(_rng(120 + L), L)
        C = dct1_matrix(L)
        J = np.linalg.solve(C, np.diag(w_hat) @ C)
        bound = 2 * np.abs(w_hat).max() / np.abs(w_hat).min()
        assert np.linalg.cond(J) <= bound * (1 + 1e-9)


# --- elementwise gates --------------------------------------------------------------------

def _log_cosh(y):
    return np.logaddexp(y, -y) - np.log(2.0)


def test_identity_lemma_1():
    """For an asymmetric gamma: g' = exp(gamma) by finite differences of the quadrature,
    f = g^-1, forward log-det = -gamma(f(x)), inverse log-det = gamma(y)."""
    from refconf import ElementwiseFromRegularizer

    def gamma(y):
        return 0.4 * y + _log_cosh(1.5 * y)

    lemma = ElementwiseFromRegularizer(gamma)
    y = np.array([[-1.8, -0.7, -0.1, 0.2, 0.9, 1.6]])
    g, log_det_inverse = lemma.inverse(y)
    h = 1e-5
    derivative = (lemma.inverse(y + h)[0] - lemma.inverse(y - h)[0]) / (2 * h)
    np.testing.assert_allclose(derivative, np.exp(gamma(y)), rtol=1e-6)
    assert np.isclose(log_det_inverse[0], np.sum(gamma(y)))
    f, log_det = lemma.forward(g)
    np.testing.assert_allclose(f, y, atol=1e-10)
    assert np.isclose(log_det[0], -np.sum(gamma(y)))


def test_identity_slog_gate():
    from refconf import ElementwiseFromRegularizer, SLog

    rng = _rng(130)
    x = 3.0 * rng.normal(size=(3, 5))
    for a in (0.3, 1.7, 4.0):
        y, _ = SLog(a).forward(x)
        np.testing.assert_allclose(y, np.sign(x) * np.log(1 + a * np.abs(x)) / a, rtol=1e-12)
        np.testing.assert_allclose(SLog(a).inverse(y)[0], np.sign(y) * (np.exp(a * np.abs(y)) - 1) / a,
                                   rtol=1e-10)
        lemma = ElementwiseFromRegularizer(lambda t, a=a: a * np.abs(t))
        np.testing.assert_allclose(lemma.inverse(y)[0], SLog(a).inverse(y)[0], rtol=1e-10)


def test_identity_slog_logdet():
    from refconf import SLog
    from refconf.bijectors.elementwise import slog, slog_inverse

    rng = _rng(131)
    x = 3.0 * rng.normal(size=(2, 6))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kink for the differences
    for a in (0.3, 1.7):
        y, log_d = slog(x, a)
        np.testing.assert_allclose(log_d, -np.log1p(a * np.abs(x)), rtol=1e-12)
        np.testing.assert_allclose(log_d, -a * np.abs(y), rtol=1e-12)
        h = 1e-6
        derivative = (slog(x + h, a)[0] - slog(x - h, a)[0]) / (2 * h)
        np.testing.assert_allclose(np.log(derivative), log_d, atol=1e-6)
        _, log_g = slog_inverse(y, a)
        np.testing.assert_allclose(log_g, a * np.abs(y), rtol=1e-12)
        assert np.allclose(SLog(a).forward(x)[1], np.sum(log_d, axis=-1))


def test_identity_slog_limit():
    """|f_a(x) - x| <= a x^2 / 2 (from log1p(u) >= u - u^2/2), so f_a -> identity."""
    from refconf import SLog

    x = np.linspace(-5, 5, 101)[None, :]
    for a in (1.0, 1e-2, 1e-4, 1e-6):
        gap = np.abs(SLog(a).forward(x)[0] - x)
        assert np.all(gap <= a * x**2 / 2 + 1e-12)
    with pytest.raises(ValueError):
        SLog(-0.5)


def test_prose_negative_alpha_has_a_bounded_range():
    """For gamma = -b|y| the Lemma-1 map g is bounded by 1/b: not a bijection of R."""
    from refconf import ElementwiseFromRegularizer

    b = 0.5
    g = ElementwiseFromRegularizer(lambda t: -b * np.abs(t)).inverse(np.array([[5.0, 20.0, 60.0]]))[0]
    assert np.all(g < 1 / b) and np.isclose(g[0, -1], 1 / b, rtol=1e-9)


def test_identity_logcosh_arcsinh():
    from refconf import ElementwiseFromRegularizer

    x = 4.0 * _rng(132).normal(size=(2, 5))
    lemma = ElementwiseFromRegularizer(_log_cosh)
    y, log_det = lemma.forward(x)
    np.testing.assert_allclose(y, np.arcsinh(x), atol=1e-12)
    np.testing.assert_allclose(log_det, -0.5 * np.sum(np.log1p(x**2), axis=-1), atol=1e-10)
    np.testing.assert_allclose(lemma.inverse(y)[0], np.sinh(y), rtol=1e-10)


def test_identity_quadratic_erfi():
    from scipy.special import erfi

    from refconf import ElementwiseFromRegularizer

    for b in (0.5, 2.0):
        y = np.linspace(-1.8, 1.8, 7)[None, :]
        g, _ = ElementwiseFromRegularizer(lambda t, b=b: 0.5 * b * t**2).inverse(y)
        np.testing.assert_allclose(g, np.sqrt(np.pi / (2 * b)) * erfi(np.sqrt(b / 2) * y),
                                   rtol=1e-10)


# --- the CONF step ------------------------------------------------------------------------

def _layer_map(layer, x1, x2):
    """y2 of eq. (5) written out: F_m first, then F_(m-1), ..., then + t."""
    from refconf import symmetric_conv
    from refconf.bijectors.elementwise import slog, slog_inverse

    w_hat, s, t = _conditioner_outputs(layer, x1)
    a, a_prime = layer.alpha, layer.alpha_prime
    h, terms = x2, []
    for i in reversed(range(layer.m)):
        u = symmetric_conv(h, w_hat[:, i])
        v = s[:, i] * slog(u, a[i])[0]
        h = slog_inverse(v, a_prime[i])[0]
        terms.append(np.sum(np.log(np.abs(w_hat[:, i])), -1) - np.sum(np.log1p(a[i] * np.abs(u)), -1)
                     + np.sum(np.log(np.abs(s[:, i])), -1) + a_prime[i] * np.sum(np.abs(v), -1))
    return h + t, terms, (w_hat, s, t)


def test_identity_combined_layer():
    """Eq. 4 forward and its inverse w^-1 *_s g_a(f_a'(y2) / s), for m = 1 and no shift."""
    from refconf import symmetric_deconv
    from refconf.bijectors.elementwise import slog, slog_inverse

    for D in (5, 8):
        layer = _coupling(D // 2, D - D // 2, m=1, seed=D)
        rng = _rng(140 + D)
        x = rng.normal(size=(4, D))
        x1, x2 = x[:, : D // 2], x[:, D // 2:]
        y2, _, (w_hat, s, t) = _layer_map(layer, x1, x2)
        y, _ = layer.forward(x)
        np.testing.assert_allclose(y[:, D // 2:], y2, rtol=1e-10, atol=1e-10)
        a, a_prime = layer.alpha[0], layer.alpha_prime[0]
        back = symmetric_deconv(slog_inverse(slog(y2 - t, a_prime)[0] / s[:, 0], a)[0], w_hat[:, 0])
        np.testing.assert_allclose(back, x2, rtol=1e-9, atol=1e-9)


def test_identity_combined_layer_logdet():
    """The four terms of eq. (4)'s log-det against the dense Jacobian in x2 (x1 fixed)."""
    from refconf.reference import dense_jacobian

    for D in (6, 9):
        layer = _coupling(D // 2, D - D // 2, m=1, seed=10 + D)
        x = _rng(150 + D).normal(size=D)
        d1 = D // 2
        _, terms, _ = _layer_map(layer, x[None, :d1], x[None, d1:])
        def update_half(v, layer=layer, x1=x[:d1], d1=d1):
            return layer.forward(anp.concatenate([x1, v])[None])[0][0, d1:]

        J22 = dense_jacobian(update_half, x[d1:])
        assert np.isclose(terms[0][0], np.linalg.slogdet(J22)[1])


def test_identity_block_triangular():
    for kind in ("symmetric", "circular"):
        for D in (5, 8):
            layer = _coupling(D // 2, D - D // 2, m=2, seed=20 + D, kind=kind)
            x = _rng(160 + D).normal(size=D)
            J = _jacobian(layer, x)
            d1 = D // 2
            np.testing.assert_allclose(J[:d1, :d1], np.eye(d1), atol=1e-12)
            np.testing.assert_allclose(J[:d1, d1:], 0.0, atol=1e-12)
            assert np.abs(J[d1:, :d1]).max() > 1e-3  # the conditioner's block is not zero
            _, log_det = layer.forward(x[None])
            assert np.isclose(log_det[0], np.linalg.slogdet(J[d1:, d1:])[1])
            assert np.isclose(log_det[0], np.linalg.slogdet(J)[1])


def test_identity_conf_step_logdet():
    for D, m in [(7, 3), (8, 2)]:
        layer = _coupling(D // 2, D - D // 2, m=m, seed=30 + D)
        x = _rng(170 + D).normal(size=(3, D))
        y2, terms, _ = _layer_map(layer, x[:, : D // 2], x[:, D // 2:])
        y, log_det = layer.forward(x)
        np.testing.assert_allclose(y[:, D // 2:], y2, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(log_det, np.sum(terms, axis=0), rtol=1e-10, atol=1e-10)
        assert np.all(np.abs(np.array(terms)) > 1e-3)


def test_identity_identity_initialisation():
    from refconf.bijectors.coupling import ConvCoupling
    from refconf.conditioners import mlp_init

    x = 2.0 * _rng(180).normal(size=(4, 7))
    for kind in ("symmetric", "circular"):
        for spectrum in ("raw", "exp"):
            log_alpha = np.log([0.3, 2.5])
            layer = ConvCoupling(mlp_init(3, (8,), 5 * 4, random_state=1), log_alpha, log_alpha,
                                 kind=kind, spectrum=spectrum)
            y, log_det = layer.forward(x)
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(log_det, 0.0, atol=1e-12)


def test_prose_invertible_1x1_logdet():
    from refconf import Invertible1x1

    rng = _rng(190)
    params = Invertible1x1.random_params(4, random_state=rng)
    params["log_s"] = params["log_s"] + rng.uniform(-1, 1, 4)
    x = rng.normal(size=(2, 4, 3, 5))
    _, log_det = Invertible1x1(**params, event_ndim=3).forward(x)
    layer = Invertible1x1(**params)
    assert np.isclose(np.linalg.slogdet(layer.matrix)[1], np.sum(params["log_s"]))
    np.testing.assert_allclose(log_det, 3 * 5 * np.sum(params["log_s"]))


# --- padding ------------------------------------------------------------------------------

def test_identity_padding_unbounded():
    """-E log q_sigma(x, h(x)) = -E log p(x) + 1/2 log(2 pi sigma^2) for
    q_sigma = p(x) N(e; h(x), sigma^2); and a Gaussian fit to mean-padded data loses
    1/2 log(ratio) per decade pair of its covariance floor."""
    from scipy.stats import multivariate_normal, norm

    from refconf.data import pad_for_equal_split

    rng = _rng(200)
    cov = np.array([[1.5, 0.4, 0.1], [0.4, 1.0, 0.3], [0.1, 0.3, 0.7]])
    p = multivariate_normal(np.zeros(3), cov)
    x = p.rvs(size=2000, random_state=rng)
    padded = pad_for_equal_split(x, "paper_mean")
    for sigma in (1.0, 1e-3, 1e-6):
        log_q = p.logpdf(padded[:, :3]) + norm.logpdf(padded[:, 3], loc=x.mean(axis=1), scale=sigma)
        assert np.isclose(-log_q.mean(), -p.logpdf(x).mean() + 0.5 * np.log(2 * np.pi * sigma**2))

    figures = _figure_module()
    train, test = padded[:1000], padded[1000:]
    for eps in (1e-6, 1e-9):
        drop = figures.gaussian_nll(train, test, eps) - figures.gaussian_nll(train, test, 100 * eps)
        assert np.isclose(drop, -0.5 * np.log(100), atol=1e-3)


def test_identity_noise_padding():
    """E_e[log q(x, e) - log N(e)] = log q_X(x) - KL(N(0, s^2) || q(e | x)) <= log q_X(x):
    exact for a product q, and checked by Monte Carlo for a correlated Gaussian q."""
    from scipy.stats import multivariate_normal, norm

    from refconf.data import noise_padding_log_density, pad_for_equal_split

    sigma = 0.3
    cov_x = np.array([[1.2, 0.3], [0.3, 0.8]])
    x = multivariate_normal(np.zeros(2), cov_x).rvs(size=5, random_state=1)
    product = multivariate_normal(np.zeros(3), np.block([[cov_x, np.zeros((2, 1))],
                                                         [np.zeros((1, 2)), sigma**2 * np.eye(1)]]))
    noisy = pad_for_equal_split(x, "noise", sigma=sigma, random_state=2)
    np.testing.assert_allclose(product.logpdf(noisy) - noise_padding_log_density(noisy, sigma=sigma),
                               multivariate_normal(np.zeros(2), cov_x).logpdf(x))

    c = np.array([0.5, -0.4])  # q(x, e) with e correlated with x: cov(x, e) = c
    joint = np.block([[cov_x, c[:, None]], [c[None, :], np.array([[1.0]])]])
    q = multivariate_normal(np.zeros(3), joint)
    point = x[0]
    e = sigma * _rng(3).standard_normal(400_000)
    values = q.logpdf(np.column_stack([np.tile(point, (e.size, 1)), e])) - norm.logpdf(e, scale=sigma)
    mu = c @ np.linalg.solve(cov_x, point)                         # q(e | x) = N(mu, tau^2)
    tau2 = 1.0 - c @ np.linalg.solve(cov_x, c)
    kl = 0.5 * (sigma**2 / tau2 + mu**2 / tau2 - 1 + np.log(tau2 / sigma**2))
    log_q_x = multivariate_normal(np.zeros(2), cov_x).logpdf(point)
    assert kl > 0.05
    assert abs(values.mean() - (log_q_x - kl)) < 5 * values.std() / np.sqrt(e.size)


# --- gradients ----------------------------------------------------------------------------

def test_identity_dct1_transpose():
    import autograd

    from refconf.primitives import dct1, idct1
    from refconf.reference import dct1_matrix
    from refconf.testing import dot_test

    for L in LENGTHS:
        rng = _rng(210 + L)
        C, two_a = dct1_matrix(L), _two_a(L)
        np.testing.assert_allclose(C.T, np.diag(two_a) @ C @ np.diag(1 / two_a), atol=1e-12)
        g = rng.normal(size=L)
        vjp = autograd.make_vjp(dct1)(rng.normal(size=L))[0]
        np.testing.assert_allclose(vjp(g), C.T @ g, atol=1e-10)
        np.testing.assert_allclose(vjp(g), two_a * dct1(g / two_a), atol=1e-10)
        np.testing.assert_allclose(autograd.make_vjp(idct1)(rng.normal(size=L))[0](g),
                                   C.T @ g / (2 * (L - 1)), atol=1e-10)
        if L > 2:
            assert np.abs(C.T @ g - C @ g).max() > 1e-3
        dot_test(dct1, np.zeros(L))


def test_identity_rfft_vjp():
    """Against the dense real Jacobians of Re X and Im X (autograd's cotangent convention
    g = dl/dRe - i dl/dIm)."""
    import autograd

    from refconf.primitives import rfft
    from refconf.reference import dft_matrix

    for N in LENGTHS:
        rng = _rng(220 + N)
        nh = N // 2 + 1
        F = dft_matrix(N)[:nh]
        dl_dre, dl_dim = rng.normal(size=nh), rng.normal(size=nh)
        g = dl_dre - 1j * dl_dim
        vjp = autograd.make_vjp(rfft)(rng.normal(size=N))[0]
        expected = F.real.T @ dl_dre + F.imag.T @ dl_dim
        np.testing.assert_allclose(vjp(g), expected, atol=1e-10)
        np.testing.assert_allclose(vjp(g), np.fft.fft(np.concatenate([g, np.zeros(N - nh)])).real,
                                   atol=1e-10)


def test_identity_irfft_vjp():
    import autograd

    from refconf.primitives import irfft

    for N in LENGTHS:
        rng = _rng(230 + N)
        nh = N // 2 + 1
        # dense real Jacobians of x in Re X and in Im X, column by column
        M_re = np.column_stack([np.fft.irfft(np.eye(nh)[k], n=N) for k in range(nh)])
        M_im = np.column_stack([np.fft.irfft(1j * np.eye(nh)[k], n=N) for k in range(nh)])
        g = rng.normal(size=N)
        X = np.fft.rfft(rng.normal(size=N))
        vjp = autograd.make_vjp(lambda X, N=N: irfft(X, N))(X)[0]
        np.testing.assert_allclose(vjp(g), M_re.T @ g - 1j * (M_im.T @ g), atol=1e-10)
        c = np.full(nh, 2.0)
        c[0] = 1.0
        if N % 2 == 0:
            c[-1] = 1.0
        np.testing.assert_allclose(vjp(g), c * np.fft.ifft(g)[:nh], atol=1e-10)


# --- the mapping --------------------------------------------------------------------------

#: label -> the tests that check it: this module's ``test_identity_<label>`` first, then
#: tests elsewhere in tests/ that check the same identity.
IDENTITY_TESTS = {
    "change-of-variables": ["tests/test_coupling.py::test_log_prob_is_normalised_in_two_dimensions"],
    "logdet-chain": ["tests/test_bijector_laws.py::test_chain_log_dets_add"],
    "logdet-inverse": ["tests/test_bijector_laws.py::test_bijector_laws"],
    "dft-convolution": ["tests/test_spectral.py::test_circular_conv_is_the_direct_sum_and_the_circulant_matrix"],
    "circulant-eigen": ["tests/test_reference.py::test_circulant_matrix_is_the_direct_circular_sum_and_numpy_fft"],
    "circulant-logdet": ["tests/test_spectral.py::test_circular_log_det_is_slogdet_of_the_circulant_matrix"],
    "hermitian-spectrum": [],
    "half-spectrum-logdet": ["tests/test_spectral.py::test_half_spectrum_log_det_counts_interior_bins_twice",
                             "tests/test_testing.py::test_half_spectrum_log_det_without_the_interior_weights_is_caught"],
    "dct1-definition": ["tests/test_primitives.py::test_rfft_of_the_whole_sample_extension_is_dct1",
                        "tests/test_reference.py::test_dct1_matrix_is_scipy_dct_type1",
                        "tests/test_primitives.py::test_dct1_of_a_small_sequence_in_50_digit_arithmetic"],
    "dct1-inverse": ["tests/test_primitives.py::test_dct1_matrix_inverse_is_dct1_over_2N"],
    "dct-convolution": ["tests/test_spectral.py::test_convolution_multiplication_property_has_no_scale_factor"],
    "symmetric-jacobian": ["tests/test_spectral.py::test_symmetric_log_det_is_slogdet_of_the_dense_jacobian_1d",
                           "tests/test_spectral.py::test_symmetric_conv_eigenvectors_are_the_dct1_basis"],
    "ortho-similarity": ["tests/test_spectral.py::test_orthonormal_dct1_gives_the_same_log_det_but_a_different_map",
                         "tests/test_testing.py::test_orthonormal_forward_with_unnormalised_inverse_is_caught"],
    "symmetric-logdet-cost": ["tests/test_spectral.py::test_symmetric_log_det_is_slogdet_of_the_dense_jacobian_1d"],
    "symmetric-deconvolution": ["tests/test_spectral.py::test_symmetric_deconv_inverts_symmetric_conv"],
    "deconvolution-conditioning": [],
    "lemma-1": ["tests/test_bijector_laws.py::test_lemma1_quadrature_derivative_is_exp_gamma"],
    "slog-gate": ["tests/test_bijector_laws.py::test_lemma1_with_abs_regulariser_is_slog"],
    "slog-logdet": ["tests/test_bijector_laws.py::test_bijector_laws"],
    "slog-limit": [],
    "logcosh-arcsinh": [],
    "quadratic-erfi": [],
    "combined-layer": ["tests/test_coupling.py::test_coupling_matches_eqs_4_and_5_written_out"],
    "combined-layer-logdet": ["tests/test_coupling.py::test_coupling_laws_at_random_parameters"],
    "block-triangular": ["tests/test_coupling.py::test_full_model_log_det_matches_dense_jacobian"],
    "conf-step-logdet": ["tests/test_coupling.py::test_coupling_matches_eqs_4_and_5_written_out"],
    "identity-initialisation": ["tests/test_coupling.py::test_identity_at_initialisation_for_any_alpha"],
    "padding-unbounded": [],
    "noise-padding": [],
    "dct1-transpose": ["tests/test_primitives.py::test_vjp_of_dct1_is_the_transpose_not_the_matrix",
                       "tests/test_primitives.py::test_dot_tests_of_dct1_and_idct1"],
    "rfft-vjp": ["tests/test_primitives.py::test_rfft_vjp_second_order_odd_and_even"],
    "irfft-vjp": ["tests/test_primitives.py::test_irfft_vjp_second_order_complex_input",
                  "tests/test_testing.py::test_check_vjp_catches_an_irfft_vjp_without_the_interior_weights"],
}

_LABEL = re.compile(r"^```\{math\}\s*\n:label:\s*(\S+)", re.MULTILINE)


def documented_identities():
    """``{label: page}`` of every labelled equation of the documentation."""
    found = {}
    for page in PAGES:
        for label in _LABEL.findall((DOCS / page).read_text(encoding="utf-8")):
            assert label not in found, f"equation label {label!r} used twice"
            found[label] = page
    return found


def test_every_labelled_identity_has_a_test():
    documented = documented_identities()
    assert len(documented) >= 30
    assert set(documented) == set(IDENTITY_TESTS), (
        f"labels without a test: {sorted(set(documented) - set(IDENTITY_TESTS))}; "
        f"mapped labels not on any page: {sorted(set(IDENTITY_TESTS) - set(documented))}")
    here = sys.modules[__name__]
    for label, others in IDENTITY_TESTS.items():
        name = "test_identity_" + label.replace("-", "_")
        assert callable(getattr(here, name, None)), f"{label}: no {name} in tests/test_docs.py"
        for reference in others:
            path, function = reference.split("::")
            source = (REPO / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {function}\(", source, re.MULTILINE), (
                f"{label}: {reference} does not exist")


# ---------------------------------------------------------------------------------------
# 5. The API reference covers the package
# ---------------------------------------------------------------------------------------

def test_api_reference_documents_every_public_module():
    """Every module with a public ``__all__`` is documented on an API page, or every one of
    its public names is re-exported by a documented module (the conformance kit's
    submodules), or it is private (a leading underscore)."""
    import importlib
    import pkgutil

    import refconf

    documented = set()
    for page in (DOCS / "api").glob("*.rst"):
        documented |= set(re.findall(r"^\.\. refconf-module:: (\S+)", page.read_text(),
                                     re.MULTILINE))
    exported = {id(getattr(importlib.import_module(m), n))
                for m in documented for n in getattr(importlib.import_module(m), "__all__", [])}
    missing = []
    for info in pkgutil.walk_packages(refconf.__path__, "refconf."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", [])
        if info.name in documented or not names:
            continue
        if all(id(getattr(module, n)) in exported for n in names):
            continue
        missing.append(info.name)
    packages = {"refconf.bijectors", "refconf.data"}  # re-export their submodules' names
    assert set(missing) <= packages, f"modules without an API entry: {sorted(set(missing) - packages)}"
