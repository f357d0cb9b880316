"""The conformance verdict: what passes, what fails, and what the diagnosis says.

* A mistake matrix: every mistake class of the kit, planted in the independent port of
  ``validation/conformance_example.py`` (or, for the pure output mistakes, applied to
  the correct outputs), is caught on every case where it shows and named right; a case
  it does not touch passes. In float64 and in float32.
* Correct outputs with noise at 0.1 x the tolerance pass in both profiles, and a correct
  float32 port is called float32 (not a mistake) under the float64 profile.
* The golden set's identity, edited or incomplete golden sets, tolerance factors,
  ``--allow-missing KIND``, ``--failures-only``, ``.npy`` results, warnings.
"""

import importlib.util
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from refconf.conformance import KINDS, check, check_callable, check_function, write_vectors
from refconf.conformance.cli import main as cli_main
from refconf.conformance.diagnose import GAP
from refconf.conformance.layers import coupling_variant
from refconf.conformance.vectors import _digest, generate_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISIONS = ("float64", "float32")


def _load_example():
    path = os.path.join(ROOT, "validation", "conformance_example.py")
    spec = importlib.util.spec_from_file_location("conformance_example_verdict", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()
CASES = generate_cases()
#: names a planted mistake may also get where it is indistinguishable from another
ALSO = {"log_det_sign": {"inverse_log_det"}, "dct1_normalisation": {"constant_factor"},
        "non_hermitian_spectrum": {"complex_output"},
        "constant_log_det_dropped": {"inverse_log_det"}}


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("golden"))
    write_vectors(directory)
    return directory


def returning(value):
    """A checked function that returns ``value`` whatever the inputs."""
    return lambda **_: value


def _port_function(port, kind):
    def function(**inputs):
        with np.errstate(all="ignore"):
            return port.run(kind, **inputs)
    return function


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("cls, code", example.MISTAKES, ids=[c.__name__ for c, _ in
                                                               example.MISTAKES])
def test_planted_mistake_is_caught_and_named(cls, code, precision):
    port = cls(np.dtype(precision))
    named = 0
    for case in CASES:
        result = check_callable(case, _port_function(port, case.kind), precision)
        if result.status in ("pass", "skipped"):
            continue
        assert result.status in ("fail", "error"), (case.name, result.problem)
        codes = {o.diagnosis.code for o in result.outputs if not o.passed}
        # a named diagnosis is this mistake's; whole models may stay unexplained
        assert codes <= {code, "unexplained", "round_off"} | ALSO.get(code, set()), (
            case.name, codes)
        named += code in codes
    assert named >= 1


def _output_mistakes(case, name, precision):
    """``[(code, wrong value)]`` of the mistakes that act on the output alone."""
    kind, e = KINDS[case.kind], case.expected[name]
    found = [("non_finite", np.where(np.arange(e.size).reshape(e.shape) == 0, np.nan, e))]
    if np.isrealobj(e):
        imag = 1e-3 if precision == "float64" else 0.1  # far above the profile's tolerance
        found.append(("non_hermitian_spectrum", e + 1j * imag * np.max(np.abs(e))))
    if name == "log_det":
        found.append(("inverse_log_det" if kind.sign < 0 else "log_det_sign", -e))
        found.append(("inverse_log_det" if kind.sign < 0 else "constant_log_det_dropped",
                      np.zeros_like(e)) if kind.level <= 1 or kind.sign < 0 else None)
    elif np.isrealobj(e) and kind.level <= 1:
        found.append(("negated", -e))
    if kind.transform == "dct1" and kind.level == 0 and name in ("X", "x") and "vjp" not in case.kind:
        n = case.inputs[kind.inputs[0]].shape[-1] - 1
        found.append(("dct1_normalisation", e * (2 * n) ** (-kind.sign)))
    if case.kind == "irfft_vjp":
        found.append(("complex_cotangent", np.conj(e)))
    return [item for item in found if item is not None]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_output_mistake_matrix(precision):
    checked = set()
    for case in CASES:
        if precision not in case.tolerances:
            continue
        for name in case.expected:
            for code, wrong in _output_mistakes(case, name, precision):
                outputs = dict(case.expected, **{name: wrong})
                result = check_callable(case, returning(outputs), precision)
                failing = [o for o in result.outputs if not o.passed]
                assert [o.name for o in failing] == [name], (case.name, code)
                diagnosis = failing[0].diagnosis  # or named as indistinguishable from it
                assert diagnosis.code == code or code in diagnosis.detail.split(
                    "also consistent with: ")[-1], (case.name, name, code, diagnosis)
                checked.add(code)
    assert len(checked) >= 8


@pytest.mark.parametrize("precision", PRECISIONS)
def test_correct_outputs_with_noise_at_a_tenth_of_the_tolerance_pass(precision):
    rng = np.random.default_rng(5)
    for case in CASES:
        if precision not in case.tolerances:
            continue
        noisy = {}
        for name, e in case.expected.items():
            tol = case.tolerances[precision][name]
            bound = tol["atol"] + tol["rtol"] * np.abs(e)
            noise = 0.1 * bound * rng.choice([-1.0, 1.0], e.shape)
            noisy[name] = e + (noise * np.exp(2j * np.pi * rng.uniform(size=e.shape))
                               if np.iscomplexobj(e) else noise)
        result = check_callable(case, returning(noisy), precision)
        assert result.passed, (case.name, [(o.name, o.max_rel_error) for o in result.outputs])


def test_float32_port_passes_float32_and_is_called_float32_under_float64():
    port = example.FFTPort(np.float32)
    for case in CASES:
        if "float32" not in case.tolerances:
            result = check_callable(case, _port_function(port, case.kind), "float32")
            assert result.status == "skipped" and "float64-only" in result.problem
            continue
        assert check_callable(case, _port_function(port, case.kind), "float32").passed
        result = check_callable(case, _port_function(port, case.kind), "float64")
        codes = {o.diagnosis.code for o in result.outputs if not o.passed}
        assert codes <= {"float32", "round_off"}, (case.name, codes)


def test_near_misses_are_not_named():
    """Errors a few times the tolerance are round-off, never a named mistake; the S-Log
    log-det of the output is named for what it is."""
    case = next(c for c in CASES if c.name == "slog_moderate")
    for factor in (3.0, 30.0):
        outputs = {k: v * (1 + factor * 1e-10) for k, v in case.expected.items()}
        result = check_callable(case, returning(outputs))
        assert {o.diagnosis.code for o in result.outputs if not o.passed} == {"round_off"}
    outputs = dict(case.expected, log_det=case.expected["log_det"] + 1e-3 * np.arange(4))
    result = check_callable(case, returning(outputs))
    assert result.outputs[1].diagnosis.code == "unexplained"
    port = example.GateLogDetAtOutput()
    report = check_function("slog", port.slog)
    assert report.diagnosis_codes() == {"slog_log_det_variable"}


def test_coupling_variant_without_switches_equals_the_kind():
    for case in CASES:
        if KINDS[case.kind].level != 2:
            continue
        mine = coupling_variant(case, dict(case.inputs))
        for name, value in case.expected.items():
            np.testing.assert_allclose(mine[name], value, rtol=1e-12, atol=1e-12)


# --- the golden set's identity and the verdict's qualifiers --------------------------------


def _correct_results(golden, directory, precision="float64", skip=()):
    os.makedirs(directory, exist_ok=True)
    port = example.FFTPort(np.dtype(precision))
    for case in CASES:
        if case.name in skip:
            continue
        outputs = port.run(case.kind, **case.inputs, **case.attributes)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        np.savez(os.path.join(directory, f"{case.name}.npz"),
                 **dict(zip(case.expected, outputs)))
    return directory


def test_identity_and_verdict_are_printed(golden, tmp_path, capsys):
    results = _correct_results(golden, str(tmp_path / "r"))
    assert cli_main(["check", golden, results]) == 0
    out = capsys.readouterr().out
    with open(os.path.join(golden, "manifest.json")) as f:
        manifest = json.load(f)
    assert (f"golden set: format 2, refconf {manifest['refconf_version']}, {len(CASES)} cases, "
            f"digest {manifest['digest'][:16]} (canonical)") in out
    assert f"CONFORMS (float64 profile; {len(CASES)} of {len(CASES)} cases checked)" in out
    assert cli_main(["check", golden, results, "--tolerance-factor", "10"]) == 0
    assert "tolerances x 10 (--tolerance-factor): NOT the built-in profile" in (
        capsys.readouterr().out)
    assert cli_main(["check", golden, results, "--failures-only"]) == 0
    out = capsys.readouterr().out
    assert not [line for line in out.splitlines() if "rtol" in line and line.endswith("pass")]
    assert "CONFORMS" in out
    assert cli_main(["check", golden, results, "--precision", "float32"]) == 0
    assert "3 float64-only cases skipped" in capsys.readouterr().out


def test_incomplete_or_edited_golden_sets_fail(golden, tmp_path):
    results = _correct_results(golden, str(tmp_path / "r"))
    edited = tmp_path / "fewer"
    shutil.copytree(golden, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["cases"] = manifest["cases"][1:]
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="the manifest was edited"):
        check(str(edited), results)
    manifest["digest"] = _digest(manifest)  # also the digest recomputed
    (edited / "manifest.json").write_text(json.dumps(manifest))
    report = check(str(edited), results, allow_missing=True)
    assert not report.passed and not report.identity["canonical"]
    assert report.identity["absent"] == [CASES[0].name]
    assert "NOT CANONICAL" in report.format_table() and CASES[0].name in report.missing
    with pytest.raises(ValueError, match="tolerance_factor"):
        check(golden, results, tolerance_factor=0)
    with pytest.raises(ValueError, match="precision"):
        check(golden, results, precision="float16")


def test_allow_missing_by_kind(golden, tmp_path, capsys):
    results = _correct_results(golden, str(tmp_path / "r"),
                               skip={"dct1_L2", "dct1_L3", "slog_moderate"})
    assert not check(golden, results).passed
    assert check(golden, results, allow_missing=True).passed
    report = check(golden, results, allow_missing=["dct1", "slog"])
    assert report.passed and "3 cases not checked (missing; 3 allowed)" in report.verdict()
    report = check(golden, results, allow_missing=["dct1"])
    assert not report.passed and "(missing; 2 allowed)" in report.verdict()
    assert cli_main(["check", golden, results, "--allow-missing", "dct1", "slog"]) == 0
    assert cli_main(["check", golden, results, "--allow-missing", "dct1"]) == 1
    assert cli_main(["check", golden, results, "--allow-missing"]) == 0
    capsys.readouterr()
    assert cli_main(["check", golden, results, "--allow-missing", "dct7"]) == 2
    assert "unknown kind(s) dct7" in capsys.readouterr().err


def test_npy_results_get_a_clear_error(golden, tmp_path):
    results = _correct_results(golden, str(tmp_path / "r"), skip={"slog_moderate"})
    np.save(os.path.join(results, "slog_moderate_y.npy"), np.zeros((4, 6)))
    report = check(golden, results)
    case = next(c for c in report.cases if c.name == "slog_moderate")
    assert case.status == "invalid" and "one .npz per case" in case.problem
    assert "numpy.savez(path, y=y, log_det=log_det)" in case.problem


def test_no_warning_leaks(golden, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for case in CASES:  # wildly wrong outputs through every diagnosis path
            with np.errstate(over="ignore"):
                wrong = {k: v * 1e300 for k, v in case.expected.items()}
            check_callable(case, returning(wrong))
            check_callable(case, returning({k: np.full_like(v, np.inf)
                                            for k, v in case.expected.items()}))
        report = check_function("slog_inverse_large_y", example.NaiveLog1p().slog_inverse)
        assert report.passed or report.cases[0].status == "fail"
    assert GAP >= 10


def test_float32_budget_script_holds_on_short_lengths(capsys):
    spec = importlib.util.spec_from_file_location(
        "float32_budget", os.path.join(ROOT, "validation", "float32_budget.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--lengths", "8,16"]) == 0
    out = capsys.readouterr().out
    assert "CLAIM HOLDS" in out and "| symmetric_deconv | 16 | 100000 | log_det |" in out
