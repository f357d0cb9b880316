"""The conformance kit (refconf.conformance): golden vectors, checker, diagnoses.

* The golden values are checked against the reference tier (dense DCT-I and DFT
  matrices, direct convolution sums, dense Jacobians and ``slogdet``) and, for the
  smallest cases, against 50-digit mpmath arithmetic.
* The pure eq. 4/5 functions equal ConvCoupling's update given the same conditioner
  outputs.
* Writing is byte-deterministic; the checker passes the golden files against themselves
  and the independent FFT implementation of ``validation/conformance_example.py``; each
  known mistake fails with its diagnosis; missing and malformed result files are reported,
  never passed.

Tolerances: golden vs reference tier ``1e-11`` relative to the largest expected value
(observed ~1e-14; the reference paths solve and factor dense matrices of size <= 45);
golden vs mpmath ``1e-14`` relative (observed at the float64 rounding level).
"""

import importlib.util
import json
import os
import shutil
import zipfile

import mpmath
import numpy as np
import pytest
from autograd import numpy as anp

from refconf import reference
from refconf.bijectors.coupling import ConvCoupling
from refconf.conditioners import mlp_init
from refconf.conformance import (
    check,
    check_function,
    conf_layer,
    conf_step,
    conf_step_inverse,
    flatten_params,
    generate_cases,
    load_cases,
    unflatten_params,
    write_vectors,
)
from refconf.conformance.cli import main as cli_main
from refconf.conformance.vectors import _digest
from refconf.flows import FlowModel
from refconf.primitives import dct1, idct1

REF_RTOL = 1e-11
MP_RTOL = 1e-14
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_example():
    path = os.path.join(ROOT, "validation", "conformance_example.py")
    spec = importlib.util.spec_from_file_location("conformance_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()
#: other names a planted mistake legitimately gets where it shows as something else
ALLOWED_ALONGSIDE = {
    "log_det_sign": {"inverse_log_det"},  # every log-det negated: inverse maps too
    "dct1_normalisation": {"constant_factor"},  # a factor (2N)^p inside a model
    "non_hermitian_spectrum": {"complex_output"},
    # an inverse map with one spectrum for the batch: a zero log-det is both mistakes
    "constant_log_det_dropped": {"inverse_log_det"},
}
CASES = {case.name: case for case in generate_cases()}


def by_kind(*kinds):
    return [c for c in CASES.values() if c.kind in kinds]


def assert_close(actual, expected, rtol=REF_RTOL, atol=0.0):
    """``max|actual - expected| <= rtol * max|expected| + atol``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    err = np.max(np.abs(actual - expected))
    bound = rtol * np.max(np.abs(expected)) + atol
    assert err <= bound, f"error {err:.3g} > {bound:.3g}"


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("golden"))
    write_vectors(directory)
    return directory


# --- determinism and format --------------------------------------------------------------


def test_writing_twice_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_vectors(str(a))
    write_vectors(str(b))
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    assert len(names) == len(CASES) + 1
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_manifest_documents_conventions_and_cases(golden):
    with open(os.path.join(golden, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["format"] == "refconf-conformance" and manifest["format_version"] == 2
    assert manifest["case_count"] == len(CASES) and len(manifest["digest"]) == 64
    conventions = manifest["conventions"]
    for key in ("direction", "dtype", "dct1", "circular_convolution", "conf_step", "model"):
        assert key in conventions
    assert "norm='backward'" in conventions["dct1"] and "/ (2N)" in conventions["dct1"]
    assert [c["name"] for c in manifest["cases"]] == list(CASES)
    for entry in manifest["cases"]:
        assert entry["description"] and entry["kind"] in manifest["kinds"]
        for info in entry["outputs"].values():
            tol = info["tolerance"]
            assert 0 < tol["float64"]["rtol"] <= 1e-9 and tol["float64"]["atol"] > 0
            if entry["float64_only"] is None:
                assert tol["float32"]["rtol"] > 1e-6 and tol["float32"]["atol"] > 0
            else:
                assert "float32" not in tol and "float32" in entry["float64_only"]
        with zipfile.ZipFile(os.path.join(golden, entry["file"])) as archive:
            assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        with np.load(os.path.join(golden, entry["file"]), allow_pickle=False) as data:
            assert not any(data[k].dtype.hasobject for k in data.files)
    model = next(c for c in manifest["cases"] if c["kind"] == "conf_model_log_prob")
    assert "param/steps/0/coupling/conditioner/0/W" in model["inputs"]
    assert model["attributes"]["spec"]["model"] == "conf"


def test_load_cases_round_trips_generated_cases(golden):
    loaded = load_cases(golden)
    assert [c.name for c in loaded] == list(CASES)
    for case in loaded:
        original = CASES[case.name]
        for group in ("inputs", "expected"):
            a, b = getattr(case, group), getattr(original, group)
            assert list(a) == list(b)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
        assert case.tolerances == original.tolerances and case.attributes == original.attributes
        assert case.float64_only == original.float64_only


def test_case_coverage():
    lengths = {c.inputs["x"].shape[-1] for c in by_kind("dct1")}
    assert {2, 3, 4, 5, 8, 17} <= lengths
    w = np.concatenate([c.inputs["w_hat"].ravel() for c in by_kind("symmetric_conv")])
    assert np.any(w < 0) and np.min(np.abs(w)) <= 1e-7
    assert {c.inputs["x"].shape[-1] % 2 for c in by_kind("circular_conv")} == {0, 1}
    assert {"alpha", "alpha_prime"} <= set(by_kind("conf_step")[0].inputs)
    for case in CASES.values():
        for value in list(case.inputs.values()) + list(case.expected.values()):
            assert np.all(np.isfinite(value)) and value.dtype in (np.float64, np.complex128)


def test_params_flatten_round_trip():
    params = {"steps": [{"coupling": {"conditioner": [{"W": np.ones((2, 3))}],
                                      "log_alpha": np.zeros(2)}}]}
    flat = flatten_params(params)
    assert list(flat) == ["param/steps/0/coupling/conditioner/0/W",
                          "param/steps/0/coupling/log_alpha"]
    back = unflatten_params(flat)
    assert isinstance(back["steps"], list) and isinstance(back["steps"][0]["coupling"]
                                                          ["conditioner"], list)
    np.testing.assert_array_equal(back["steps"][0]["coupling"]["conditioner"][0]["W"],
                                  np.ones((2, 3)))


# --- golden values against the reference tier --------------------------------------------


def _dense(apply, event_shape):
    """Dense matrix of a linear map on events of ``event_shape`` (columns = images of the
    unit vectors)."""
    size = int(np.prod(event_shape))
    return np.stack([np.ravel(apply(np.eye(size)[j].reshape(event_shape)))
                     for j in range(size)], axis=1)


def test_dct_cases_against_dense_matrices():
    for case in by_kind("dct1", "idct1", "dct1_2d", "idct1_2d"):
        data = case.inputs["x" if case.kind.startswith("dct") else "X"]
        Cs = [reference.dct1_matrix(L) for L in data.shape[1:]]
        if case.kind == "dct1":
            expected = data @ Cs[0].T
        elif case.kind == "idct1":
            expected = np.linalg.solve(Cs[0], data.T).T
        elif case.kind == "dct1_2d":
            expected = Cs[0] @ data @ Cs[1].T
        else:
            expected = np.linalg.solve(Cs[0], np.linalg.solve(Cs[1], data.transpose(0, 2, 1))
                                       .transpose(0, 2, 1))
        assert_close(next(iter(case.expected.values())), expected)


def test_vjp_cases_against_dense_transposes():
    for case in by_kind("dct1_vjp", "idct1_vjp"):
        C = reference.dct1_matrix(case.inputs["g"].shape[-1])
        A = C if case.kind == "dct1_vjp" else np.linalg.inv(C)
        assert_close(case.expected["vjp"], case.inputs["g"] @ A)
    for case in by_kind("rfft_vjp"):
        N = case.inputs["x"].shape[-1]
        F = reference.dft_matrix(N)[: N // 2 + 1]
        # Re X = Re(F) x, Im X = Im(F) x; cotangent g = dl/dRe X - i dl/dIm X
        g = case.inputs["g"]
        assert_close(case.expected["vjp"], g.real @ F.real - g.imag @ F.imag)
    for case in by_kind("irfft_vjp"):
        g = case.inputs["g"]
        N, nh = g.shape[-1], case.inputs["X"].shape[-1]
        k, n = np.arange(nh)[None, :], np.arange(N)[:, None]
        c = np.where((k == 0) | (2 * k == N), 1.0, 2.0)
        # x(n) = sum_k c_k / N (Re X(k) cos(2 pi k n / N) - Im X(k) sin(2 pi k n / N))
        M_re, M_im = c * np.cos(2 * np.pi * k * n / N) / N, -c * np.sin(2 * np.pi * k * n / N) / N
        assert_close(case.expected["vjp"], g @ M_re - 1j * (g @ M_im))


def _symmetric_kernel(w_hat, ndim):
    """Spatial kernel of a DCT-I spectrum by dense inverses: w = C^-1 w_hat per axis."""
    w = w_hat @ np.linalg.inv(reference.dct1_matrix(w_hat.shape[-1])).T
    if ndim == 2:
        w = np.linalg.inv(reference.dct1_matrix(w_hat.shape[-2])) @ w
    return w


def _symmetric_matrix(w_hat_sample, event_shape, ndim):
    """Dense Jacobian of the symmetric convolution of one sample, by direct sums."""
    w = np.broadcast_to(w_hat_sample, event_shape)
    if ndim == 1:
        w = _symmetric_kernel(w, 1)
        return _dense(lambda e: reference.symmetric_conv_direct(e, w), event_shape)
    w = _symmetric_kernel(w, 2)
    return _dense(lambda e: reference.symmetric_conv2_direct(e, w), event_shape)


def test_symmetric_cases_against_direct_sums_and_dense_slogdet():
    for case in by_kind("symmetric_conv", "symmetric_deconv", "symmetric_conv_2d",
                        "symmetric_deconv_2d"):
        ndim = 2 if case.kind.endswith("2d") else 1
        inverse = "deconv" in case.kind
        data = case.inputs["y" if inverse else "x"]
        w_hat = case.inputs["w_hat"]
        per_sample = w_hat.ndim == data.ndim
        for b in range(len(data)):
            J = _symmetric_matrix(w_hat[b] if per_sample else w_hat, data.shape[1:], ndim)
            if inverse:  # the residual of J x = y: a solve loses ~cond(J) digits, this does not
                x = case.expected["x"][b].ravel()
                assert_close(J @ x, data[b].ravel(), atol=100 * np.finfo(float).eps
                             * np.linalg.norm(J, 2) * np.linalg.norm(x))
            else:
                assert_close(case.expected["y"][b].ravel(), J @ data[b].ravel())
            # a dense slogdet of J resolves its smallest eigenvalue to ~eps * cond(J)
            log_det = np.linalg.slogdet(J)[1]
            assert_close(case.expected["log_det"][b], -log_det if inverse else log_det,
                         atol=100 * np.finfo(float).eps * np.linalg.cond(J))


def _kernel_from_half(w_half, n):
    """Real kernel of a 1-D half spectrum by the inverse DFT sum with Hermitian completion."""
    full = np.concatenate([w_half, np.conj(w_half[1:(n + 1) // 2][::-1])])
    return (reference.dft_matrix(n).conj() @ full / n).real


def test_circular_cases_against_circulant_matrices():
    for case in by_kind("circular_conv_kernel", "circular_conv", "circular_deconv"):
        inverse = case.kind == "circular_deconv"
        data = case.inputs["y" if inverse else "x"]
        n = data.shape[-1]
        for b in range(len(data)):
            if "w" in case.inputs:
                w = case.inputs["w"]
            else:
                w_half = case.inputs["w_half"]
                w = _kernel_from_half(w_half[b] if w_half.ndim == 2 else w_half, n)
            A = reference.circulant_matrix(w)
            if inverse:
                assert_close(case.expected["x"][b], np.linalg.solve(A, data[b]))
            else:
                assert_close(case.expected["y"][b], reference.circular_conv_direct(data[b], w))
            log_det = np.linalg.slogdet(A)[1]
            assert_close(case.expected["log_det"][b], -log_det if inverse else log_det)
    for case in by_kind("circular_conv_kernel_2d", "circular_conv_2d"):
        x = case.inputs["x"]
        w = (case.inputs["w"] if "w" in case.inputs
             else np.fft.irfft2(case.inputs["w_half"], s=x.shape[1:]))
        A = _dense(lambda e, w=w: reference.circular_conv2_direct(e, w), x.shape[1:])
        for b in range(len(x)):
            assert_close(case.expected["y"][b].ravel(), A @ x[b].ravel())
            assert_close(case.expected["log_det"][b], np.linalg.slogdet(A)[1])


def _mp_slog(x, alpha, inverse):
    mpmath.mp.dps = 50
    a = mpmath.mpf(float(alpha))
    out, log_det = np.empty(x.shape), np.zeros(len(x))
    for index in np.ndindex(x.shape):
        v = mpmath.mpf(float(x[index]))
        sign = mpmath.sign(v)
        if inverse:
            out[index] = float(sign * mpmath.expm1(a * abs(v)) / a)
            log_det[index[0]] += float(a * abs(v))
        else:
            t = mpmath.log1p(a * abs(v))
            out[index] = float(sign * t / a)
            log_det[index[0]] -= float(t)
    return out, log_det


def test_slog_cases_against_mpmath():
    for case in by_kind("slog", "slog_inverse"):
        inverse = case.kind == "slog_inverse"
        data = case.inputs["y" if inverse else "x"]
        out, log_det = _mp_slog(data, case.inputs["alpha"], inverse)
        np.testing.assert_allclose(case.expected["x" if inverse else "y"], out, rtol=MP_RTOL)
        np.testing.assert_allclose(case.expected["log_det"], log_det, rtol=MP_RTOL)


def test_smallest_cases_against_mpmath():
    mpmath.mp.dps = 50

    def mp_dct1_matrix(L):
        N = L - 1
        return mpmath.matrix([[(1 if n in (0, N) else 2) * mpmath.cos(mpmath.pi * k * n / N)
                               for n in range(L)] for k in range(L)])

    for L in (2, 3, 4, 5):
        case = CASES[f"dct1_L{L}"]
        C = mp_dct1_matrix(L)
        for b, row in enumerate(case.inputs["x"]):
            exact = C * mpmath.matrix([mpmath.mpf(float(v)) for v in row])
            np.testing.assert_allclose(case.expected["X"][b], [float(v) for v in exact],
                                       rtol=MP_RTOL, atol=MP_RTOL * np.abs(row).max())
    for name in ("symmetric_conv_L2", "symmetric_conv_L4"):
        case = CASES[name]
        w_hat = case.inputs["w_hat"]
        L = len(w_hat)
        C = mp_dct1_matrix(L)
        J = (C / (2 * (L - 1))) * mpmath.diag([mpmath.mpf(float(v)) for v in w_hat]) * C
        log_det = mpmath.log(abs(mpmath.det(J)))
        for b, row in enumerate(case.inputs["x"]):
            y = J * mpmath.matrix([mpmath.mpf(float(v)) for v in row])
            np.testing.assert_allclose(case.expected["y"][b], [float(v) for v in y],
                                       rtol=MP_RTOL, atol=MP_RTOL * float(mpmath.mnorm(y, 1)))
            np.testing.assert_allclose(case.expected["log_det"][b], float(log_det), rtol=MP_RTOL)


def _layer_reference(x2, w, s, alpha, alpha_prime, kind):
    """One combined layer of one sample from the reference tier: the convolution as a
    dense matrix of direct sums, the gates written out."""
    d2 = len(x2)
    if kind == "symmetric":
        A = _symmetric_matrix(w, (d2,), 1)
    else:
        A = reference.circulant_matrix(_kernel_from_half(w, d2))
    u = A @ x2
    v = s * np.sign(u) * np.log1p(alpha * np.abs(u)) / alpha
    return np.sign(v) * np.expm1(alpha_prime * np.abs(v)) / alpha_prime


def test_coupling_cases_against_reference_tier():
    for case in by_kind("conf_layer", "conf_layer_circular", "conf_step", "conf_step_circular",
                        "conf_step_inverse", "conf_step_inverse_circular"):
        kind = "circular" if case.kind.endswith("circular") else "symmetric"
        w = case.inputs["w_half" if kind == "circular" else "w_hat"]
        s, alpha, alpha_prime = case.inputs["s"], case.inputs["alpha"], case.inputs["alpha_prime"]
        layer = case.kind.startswith("conf_layer")
        if layer:
            w, s, alpha, alpha_prime = w[None], s[None], alpha[None], alpha_prime[None]
        t = case.inputs.get("t", np.zeros_like(s[0]))
        inverse = "inverse" in case.kind
        # the forward map's input: given, or (inverse cases) the expected output
        x2 = case.expected["x2"] if inverse else case.inputs["x2"]
        for b in range(len(x2)):
            h = x2[b]
            for i in reversed(range(len(alpha))):
                h = _layer_reference(h, w[i][b], s[i][b], alpha[i], alpha_prime[i], kind)
            y2 = h + t[b]

            def forward(x, b=b, w=w, s=s, t=t, alpha=alpha, alpha_prime=alpha_prime, kind=kind):
                out, _ = conf_step(x[None], w[:, b:b + 1], s[:, b:b + 1], t[b:b + 1], alpha,
                                   alpha_prime, kind)
                return out[0]

            log_det = reference.log_abs_det_dense(forward, x2[b])
            if inverse:
                assert_close(case.inputs["y2"][b], y2)
                assert_close(case.expected["log_det"][b], -log_det)
            else:
                assert_close(case.expected["y2"][b], y2)
                assert_close(case.expected["log_det"][b], log_det)


def test_model_cases_against_dense_jacobians():
    for case in by_kind("conf_model_log_prob"):
        flow = FlowModel(case.attributes["spec"]).build(unflatten_params(case.inputs))
        x, z = case.inputs["x"], case.expected["z"]
        D = x.shape[1]
        for b in range(len(x)):
            log_det = reference.log_abs_det_dense(
                lambda v, flow=flow: flow.forward(v[None])[0][0], x[b])
            assert_close(case.expected["log_det"][b], log_det)
            base = -0.5 * z[b] @ z[b] - 0.5 * D * np.log(2 * np.pi)
            assert_close(case.expected["log_prob"][b], base + log_det)
    for case in by_kind("conf_model_sample"):
        flow = FlowModel(case.attributes["spec"]).build(unflatten_params(case.inputs))
        assert_close(flow.forward(case.expected["x"])[0], case.inputs["z"], 1e-10)


# --- the pure eq. 4/5 functions ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["symmetric", "circular"])
@pytest.mark.parametrize("swap", [False, True])
def test_conf_step_equals_conv_coupling_update(kind, swap):
    rng = np.random.default_rng(7)
    D, m = 7, 2
    d_base = D - D // 2 if swap else D // 2
    d_update = D - d_base
    conditioner = mlp_init(d_base, (8,), (2 * m + 1) * d_update, random_state=1)
    conditioner[-1]["W"] = 0.2 * rng.normal(size=conditioner[-1]["W"].shape)
    conditioner[-1]["b"] = 0.1 * rng.normal(size=conditioner[-1]["b"].shape)
    log_alpha, log_alpha_prime = 0.4 * rng.normal(size=m), 0.4 * rng.normal(size=m)
    coupling = ConvCoupling(conditioner, log_alpha, log_alpha_prime, kind=kind, swap=swap)
    x = rng.normal(size=(5, D))
    base, x2 = (x[:, d_update:], x[:, :d_update]) if swap else (x[:, :d_base], x[:, d_base:])
    w, s, t = coupling.conditioner_outputs(base)
    y, log_det = coupling.forward(x)
    y2 = y[:, :d_update] if swap else y[:, d_base:]
    alpha, alpha_prime = np.exp(log_alpha), np.exp(log_alpha_prime)
    mine, mine_log_det = conf_step(x2, w, s, t, alpha, alpha_prime, kind)
    np.testing.assert_allclose(mine, y2, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(mine_log_det, log_det, rtol=1e-13, atol=1e-13)
    assert np.max(np.abs(y2 - x2)) > 0.1 and np.min(np.abs(log_det)) > 1e-3  # not identity
    back, back_log_det = conf_step_inverse(y2, w, s, t, alpha, alpha_prime, kind)
    np.testing.assert_allclose(back, x2, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(back_log_det, coupling.inverse(y)[1], rtol=1e-12, atol=1e-12)


def test_conf_layer_rejects_bad_input():
    x2, w, s = np.ones((2, 5)), np.ones((2, 5)), np.ones((2, 5))
    with pytest.raises(ValueError, match="w_hat must have shape"):
        conf_layer(x2, np.ones((2, 4)), s, 1.0, 1.0)
    with pytest.raises(ValueError, match="rfft half spectrum"):
        conf_layer(x2, w, s, 1.0, 1.0, kind="circular")
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        conf_layer(x2, w, s, -1.0, 1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        conf_layer(x2, w, s, 1.0, 1.0, kind="toeplitz")
    with pytest.raises(ValueError, match="leading axis of the m = 2 layers"):
        conf_step(x2, w, s[None], x2, np.ones(2), np.ones(2))


# --- the checker -------------------------------------------------------------------------


def test_golden_files_are_never_results(golden, tmp_path, capsys):
    """No silent pass: the golden directory, copies of its files, and a harness that
    adds one output of its own to a copied case file all fail."""
    with pytest.raises(ValueError, match="golden vector directory"):
        check(golden, golden)
    assert cli_main(["check", golden, golden]) == 2
    assert "golden vector directory" in capsys.readouterr().err
    copy = tmp_path / "copy"
    shutil.copytree(golden, copy)
    with pytest.raises(ValueError, match="golden vector directory"):
        check(golden, str(copy))
    (copy / "manifest.json").unlink()
    report = check(golden, str(copy))
    assert not report.passed and report.counts()["invalid"] == len(CASES)
    assert "expected/" in report.cases[0].problem
    # a harness that copies the case file and adds only its own (negated) log_det
    results = tmp_path / "results"
    results.mkdir()
    data = dict(np.load(copy / "symmetric_conv_L4.npz"))
    data["y"] = data["expected/y"] + 1.0
    np.savez(results / "symmetric_conv_L4.npz", **data)
    report = check(golden, str(results), allow_missing=True)
    assert not report.passed and report.cases[0].status != "pass"
    assert next(c for c in report.cases if c.name == "symmetric_conv_L4").status == "invalid"


def test_a_forgotten_output_fails(golden, tmp_path):
    port = example.FFTPort()
    results = tmp_path / "results"
    results.mkdir()
    case = CASES["symmetric_conv_L4"]
    y, _ = port.symmetric_conv(**case.inputs)
    np.savez(results / "symmetric_conv_L4.npz", y=y)
    report = check(golden, str(results), allow_missing=True)
    output = report.cases[[c.name for c in report.cases].index("symmetric_conv_L4")].outputs[1]
    assert not report.passed and not output.passed and "missing output" in output.problem


def test_independent_implementation_passes_and_broken_ones_are_diagnosed(tmp_path, capsys):
    """The worked example: the independent port passes in float64 and float32, every
    planted mistake fails with its name, and the loud failures hold."""
    assert example.main(["--keep", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "CLAIM HOLDS" in out and "VIOLATED" not in out
    golden = str(tmp_path / "golden")
    for precision in ("float64", "float32"):
        for cls, expected in example.PORTS:
            report = check(golden, str(tmp_path / "results" / precision / cls.__name__),
                           precision=precision)
            if expected is None:
                assert report.passed, report.format_table(failures_only=True)
                continue
            assert not report.passed and example.top_cause(report) == expected
            # no failing output names another mistake of the same level
            for case in report.cases:
                codes = {o.diagnosis.code for o in case.outputs
                         if not o.passed and o.diagnosis is not None}
                assert codes <= ALLOWED_ALONGSIDE.get(expected, set()) | {expected} | {
                    "unexplained", "round_off"}, (precision, cls.__name__, case.name, codes)


def _mistake(case_name, function):
    report = check_function(case_name, function)
    assert not report.passed and all(c.status == "fail" for c in report.cases)
    return {o.diagnosis.code if o.diagnosis else None
            for c in report.cases for o in c.outputs if not o.passed}


def test_each_known_mistake_is_diagnosed():
    import scipy.fft

    port = example.FFTPort()
    ortho = lambda a: scipy.fft.dct(a, type=1, norm="ortho")
    assert _mistake("dct1_L8", lambda x: ortho(x)) == {"dct1_ortho"}
    assert _mistake("symmetric_conv_L9_per_sample", lambda x, w_hat: (
        ortho(w_hat * ortho(x)), port.symmetric_conv(x, w_hat)[1])) == {"dct1_ortho"}
    assert _mistake("dct1_L17", lambda x: dct1(x) / 32) == {"dct1_normalisation"}
    assert _mistake("dct1_vjp_L5", lambda x, g: dct1(g)) == {"vjp_end_weights"}
    assert _mistake("idct1_vjp_L6", lambda X, g: idct1(g)) == {"vjp_end_weights"}
    assert _mistake("rfft_vjp_N8", lambda x, g: port.rfft_vjp(x, np.conj(g))) == {
        "complex_cotangent"}
    assert _mistake("irfft_vjp_N7", lambda X, g: np.conj(port.irfft_vjp(X, g))) == {
        "complex_cotangent"}

    def naive_slog(x, alpha):
        t = np.log(1 + alpha * np.abs(x))
        return np.sign(x) * t / alpha, -t.sum(axis=1)

    assert _mistake("slog_tiny_alpha", naive_slog) == {"log1p_expm1"}
    assert _mistake("slog_inverse_tiny_alpha", lambda y, alpha: (
        np.sign(y) * (np.exp(alpha * np.abs(y)) - 1) / alpha, port.slog_inverse(y, alpha)[1])
    ) == {"log1p_expm1"}
    assert _mistake("conf_step", lambda x2, w_hat, s, t, alpha, alpha_prime: port.conf_step(
        x2, w_hat[::-1], s[::-1], t, alpha[::-1], alpha_prime[::-1])) == {"layer_order"}
    assert _mistake("conf_layer", lambda x2, w_hat, s, alpha, alpha_prime: port.conf_layer(
        x2, w_hat, s, alpha_prime, alpha)) == {"alpha_swapped"}
    assert _mistake("circular_conv_N8", lambda x, w_half: (
        port.circular_conv(x, w_half)[0], -port.circular_conv(x, w_half)[1])) == {
        "log_det_sign"}


def test_dtype_and_complex_outputs_are_diagnosed():
    port = example.FFTPort()
    assert _mistake("symmetric_conv", lambda x, w_hat: tuple(
        np.asarray(a, dtype=np.float32) for a in port.symmetric_conv(x, w_hat))) == {"float32"}

    def complex_conv(x, w_half, imag=1e-17):  # real part right, imaginary part small
        y, log_det = port.circular_conv(x, w_half)
        return y + 1j * imag, log_det

    report = check_function("circular_conv_N7", complex_conv)
    output = report.cases[0].outputs[0]
    assert not report.passed and output.diagnosis.code == "complex_output"
    assert "round-off" in output.diagnosis.detail
    report = check_function("circular_conv_N7", lambda x, w_half: complex_conv(x, w_half, 1e-3))
    assert report.cases[0].outputs[0].diagnosis.code == "non_hermitian_spectrum"
    assert "not round-off" in report.cases[0].outputs[0].diagnosis.detail

    def non_hermitian(x, w_half):  # the half spectrum zero-padded and used as a full one
        n = x.shape[-1]
        full = np.concatenate([w_half, np.zeros(w_half.shape[:-1] + (n - w_half.shape[-1],))],
                              axis=-1)
        return np.fft.ifft(full * np.fft.fft(x)), port.circular_conv(x, w_half)[1]

    report = check_function("circular_conv_N8", non_hermitian)
    output = report.cases[0].outputs[0]
    assert output.diagnosis.code == "non_hermitian_spectrum"


def test_shapes_errors_and_missing_outputs_are_reported():
    port = example.FFTPort()
    report = check_function("symmetric_conv_L4", lambda x, w_hat: (
        port.symmetric_conv(x, w_hat)[0], np.float64(1.0)))
    output = report.cases[0].outputs[1]
    assert not report.passed and "one value per sample" in output.problem
    report = check_function("dct1_L5", lambda x: 1 / 0)
    assert report.cases[0].status == "error" and "ZeroDivisionError" in report.cases[0].problem
    report = check_function("slog_moderate", lambda x, alpha: {"y": port.slog(x, alpha)[0]})
    assert report.cases[0].outputs[0].problem is None
    assert report.cases[0].outputs[1].problem.startswith("missing output: no array 'log_det'")
    nan = np.full((3, 3), np.nan)
    nan[0, 0] = np.inf
    report = check_function("dct1_L3", lambda x: nan)
    output = report.cases[0].outputs[0]
    assert output.max_abs_error == np.inf and not report.passed
    assert output.diagnosis.code == "non_finite" and "9 of 9 values are NaN or inf" in output.problem
    with pytest.raises(ValueError, match="no case or kind named"):
        check_function("dct2", lambda x: x)


def test_correct_functions_get_no_diagnosis():
    port = example.FFTPort()
    for kind in ("dct1", "idct1_2d", "dct1_vjp", "irfft_vjp", "circular_conv_2d", "conf_step",
                 "conf_step_inverse_circular", "conf_model_sample"):
        report = check_function(kind, getattr(port, kind))
        assert report.passed, report.format_table(failures_only=True)


def _results(golden, directory, names):
    os.makedirs(directory, exist_ok=True)
    for case in load_cases(golden):
        if case.name in names:
            np.savez(os.path.join(directory, f"{case.name}.npz"), **case.expected)


def test_missing_cases_are_listed_and_fail_unless_allowed(golden, tmp_path, capsys):
    results = str(tmp_path / "results")
    _results(golden, results, {"dct1_L2", "idct1_L5"})
    report = check(golden, results)
    assert not report.passed and len(report.missing) == len(CASES) - 2
    assert "idct1_L2" in report.missing and "dct1_L2" not in report.missing
    assert check(golden, results, allow_missing=True).passed
    assert cli_main(["check", golden, results]) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and "DOES NOT CONFORM" in out
    assert cli_main(["check", golden, results, "--allow-missing"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not check(golden, str(empty), allow_missing=True).passed  # nothing was checked


def test_malformed_result_files_fail_cleanly(golden, tmp_path, capsys):
    results = tmp_path / "results"
    _results(golden, str(results), {"dct1_L2", "dct1_L3", "dct1_L4", "dct1_L5", "idct1_L2"})
    x = load_cases(golden)[0].expected["X"]
    np.savez(results / "dct1_L2.npz", X=x[:, :1])                                   # shape
    np.savez(results / "dct1_L3.npz", X=np.array([object()], dtype=object))        # pickle
    (results / "dct1_L4.npz").write_bytes(b"not a zip at all")                      # garbage
    np.save(results / "dct1_L5.npy", x)
    os.replace(results / "dct1_L5.npy", results / "dct1_L5.npz")                    # lone .npy
    np.savez(results / "idct1_L2.npz", x=np.array(["a", "b"]))                      # strings
    np.savez(results / "extra_case.npz", y=x)
    report = check(golden, str(results), allow_missing=True)
    by_name = {c.name: c for c in report.cases}
    assert not report.passed
    assert "shape (3, 1), expected (3, 2)" in by_name["dct1_L2"].outputs[0].problem
    assert by_name["dct1_L3"].status == "invalid" and "pickle" in by_name["dct1_L3"].problem
    assert by_name["dct1_L4"].status == "invalid" and "not a zip" in by_name["dct1_L4"].problem
    assert "single .npy" in by_name["dct1_L5"].problem
    assert "dtype <U1" in by_name["idct1_L2"].problem
    assert report.unexpected == ["extra_case.npz"]
    assert cli_main(["check", golden, str(results), "--allow-missing"]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_json_report(golden, tmp_path, capsys):
    results = str(tmp_path / "results")
    _results(golden, results, {"dct1_L2"})
    out = tmp_path / "report.json"
    assert cli_main(["check", golden, results, "--json", str(out)]) == 1
    document = json.loads(out.read_text())
    assert document["passed"] is False and document["counts"]["pass"] == 1
    assert document["counts"]["missing"] == len(CASES) - 1
    capsys.readouterr()
    assert cli_main(["check", golden, results, "--json", "-", "--allow-missing"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True


def test_bad_golden_directory_is_a_usage_error(golden, tmp_path, capsys):
    assert cli_main(["check", str(tmp_path), golden]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    altered = tmp_path / "altered"
    write_vectors(str(altered))
    data = dict(np.load(altered / "dct1_L2.npz"))
    data["expected/X"] = data["expected/X"] + 1
    np.savez(altered / "dct1_L2.npz", **data)
    with pytest.raises(ValueError, match="SHA-256 differs"):
        check(str(altered), golden)
    assert cli_main(["check", golden, str(tmp_path / "nowhere")]) == 2
    manifest = json.loads((altered / "manifest.json").read_text())
    del manifest["cases"][0]["sha256"]
    (altered / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="the manifest was edited"):
        load_cases(str(altered))
    manifest["digest"] = _digest(manifest)  # an editor who also recomputes the digest
    (altered / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="corrupt manifest.json"):
        load_cases(str(altered))


def test_cli_vectors_write_and_list(tmp_path, capsys):
    assert cli_main(["vectors", "write", str(tmp_path / "v")]) == 0
    assert f"wrote {len(CASES)} cases" in capsys.readouterr().out
    assert cli_main(["vectors", "list", str(tmp_path / "v")]) == 0
    assert "conf_model_circular_sample" in capsys.readouterr().out


def test_register_sets_handlers():
    import argparse

    parser = argparse.ArgumentParser()
    from refconf.conformance.cli import register

    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["check", "g", "r", "--json", "-"])
    assert args.command == "check" and args.json == "-" and callable(args.handler)
    args = parser.parse_args(["vectors", "write", "d"])
    assert args.command == "vectors" and args.directory == "d" and callable(args.handler)


def test_autograd_traces_conf_step():
    """The pure step is differentiable (ports can compare gradients against it)."""
    from autograd import grad

    case = CASES["conf_step_m3_d5"]
    inputs = dict(case.inputs)

    def loss(x2):
        y2, log_det = conf_step(x2, inputs["w_hat"], inputs["s"], inputs["t"],
                                inputs["alpha"], inputs["alpha_prime"])
        return anp.sum(y2 ** 2) + anp.sum(log_det)

    g = grad(loss)(inputs["x2"])
    eps = 1e-6
    e = np.zeros_like(inputs["x2"])
    e[1, 2] = eps
    fd = (loss(inputs["x2"] + e) - loss(inputs["x2"] - e)) / (2 * eps)
    assert abs(g[1, 2] - fd) <= 1e-5 * max(1.0, abs(fd))


def test_model_cases_depend_on_every_spec_field_a_port_reads():
    """A port that ignores the spec's activation, spectrum or permutation fails."""
    port = example.FFTPort()

    def without(field, value):
        def log_prob(x, spec, **params):
            return port.conf_model_log_prob(x, dict(spec, **{field: value}), **params)
        return log_prob

    assert check_function("conf_model_circular_log_prob", port.conf_model_log_prob).passed
    assert not check_function("conf_model_circular_log_prob", without("activation", "tanh")).passed
    assert not check_function("conf_model_circular_log_prob", without("spectrum", "raw")).passed
    assert not check_function("conf_model_circular_log_prob", without("mixing", "reverse")).passed
