"""Checking another implementation's outputs against the golden vectors.

Two entry points: :func:`check` compares result files (``RESULT_DIR/<case>.npz``) with a
golden directory, and :func:`check_function` / :func:`check_callable` call a function
directly on the golden inputs (a PyTorch or JAX function wrapped to return NumPy
arrays). Both give a :class:`~refconf.conformance.report.Report`: the golden set's
identity, per case and output the largest absolute and relative error, the tolerance of
the precision profile (:mod:`refconf.conformance.profiles`), pass or fail, and a
diagnosis (:mod:`refconf.conformance.diagnose`).

Outputs come only from the port: every output must be present under its own name, a
result file holding golden ``expected/`` arrays is refused, and so is a result directory
that is a golden directory. The tolerances are the built-in profile's, recomputed from
the case itself; ``tolerance_factor`` loosens or tightens them and is printed in the
verdict.
"""

import glob
import math
import os

import numpy as np

from .archive import read_npz
from .diagnose import Diagnosis, diagnose
from .kinds import KINDS
from .profiles import PRECISIONS
from .report import CaseResult, OutputResult, Report
from .vectors import (
    EXPECTED_PREFIX,
    MANIFEST,
    TOLERANCE_PREFIX,
    canonical_set,
    golden_identity,
)

__all__ = ["check", "check_callable", "check_function", "compare_outputs"]


def _errors(result, expected, rtol, atol):
    """``(max_abs, max_rel, passed)`` of ``|r - e| <= atol + rtol |e|`` elementwise."""
    diff = np.abs(result - expected)
    scale = np.abs(expected)
    nonzero = scale > 0
    max_rel = float(np.max(diff[nonzero] / scale[nonzero], initial=0.0))
    return float(np.max(diff, initial=0.0)), max_rel, bool(np.all(diff <= atol + rtol * scale))


def _tolerance(case, name, precision, factor):
    tol = case.tolerances[precision][name]
    return {"rtol": tol["rtol"] * factor, "atol": tol["atol"] * factor}


def _problem(name, result, expected):
    """What makes ``result`` unusable as ``name``, or None."""
    if not (np.issubdtype(result.dtype, np.number) or result.dtype == bool):
        return f"dtype {result.dtype}; expected numbers"
    if result.shape != expected.shape:
        problem = f"shape {result.shape}, expected {expected.shape}"
        if name == "log_det" and result.size == 1 and expected.size > 1:
            problem += ": log_det has one value per sample (B,)"
        elif result.size == expected.size:
            problem += " (same number of values: a transposed or reshaped output?)"
        return problem
    return None


def _compare_one(case, name, value, precision, factor):
    expected = case.expected[name]
    tol = _tolerance(case, name, precision, factor)
    out = OutputResult(name, False, tol["rtol"], tol["atol"])
    if value is None:
        out.problem = (f"missing output: no array {name!r} (every output of the case "
                       f"must come from the port: {', '.join(case.expected)})")
        return out
    try:
        result = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as err:
        out.problem = f"not convertible to a NumPy array ({err})"
        return out
    out.problem = _problem(name, result, expected)
    if out.problem:
        if result.shape != expected.shape:
            out.diagnosis = Diagnosis("shape", out.problem)
        return out
    finite = np.all(np.isfinite(result))
    compared = result.real if np.iscomplexobj(result) and not np.iscomplexobj(expected) else result
    with np.errstate(all="ignore"):  # non-finite results are reported, not warned about
        out.max_abs_error, out.max_rel_error, out.passed = _errors(
            compared.astype(np.result_type(compared, np.float64)), expected, **tol)
    out.passed = out.passed and finite and compared is result
    if not finite:
        out.max_abs_error = out.max_rel_error = math.inf
    if not out.passed:
        out.diagnosis = diagnose(case, name, result, tol, precision)
        if not finite:
            out.problem = out.diagnosis.detail
    return out


def compare_outputs(case, outputs, precision="float64", tolerance_factor=1.0):
    """Compare ``outputs`` (a dict of name -> array) with ``case.expected``.

    Returns
    -------
    CaseResult
        ``status="skipped"`` for a float64-only case in a float32 check.
    """
    if precision not in case.tolerances:
        return CaseResult(case.name, case.kind, "skipped",
                          problem=f"float64-only: {case.float64_only}")
    results = [_compare_one(case, name, outputs.get(name), precision, tolerance_factor)
               for name in case.expected]
    status = "pass" if all(o.passed for o in results) else "fail"
    return CaseResult(case.name, case.kind, status, results)


def _add_dependency_notes(case_results):
    """Point unexplained failures at failing cases of a lower level (their likely cause)."""
    failing = [c for c in case_results if c.status in ("fail", "invalid", "error")]
    for c in failing:
        unexplained = any(not o.passed and (o.diagnosis is None or o.diagnosis.code ==
                                            "unexplained") for o in c.outputs)
        lower = [f.name for f in failing if KINDS[f.kind].level < KINDS[c.kind].level]
        if (unexplained or not c.outputs) and lower:
            shown = ", ".join(lower[:4]) + (f" and {len(lower) - 4} more" if len(lower) > 4 else "")
            c.notes.append(f"lower-level cases fail too, fix those first: {shown}")


def _outputs_of(case, value):
    """Normalise a function's return value to a dict of outputs."""
    names = KINDS[case.kind].outputs
    if isinstance(value, dict):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != len(names):
            raise ValueError(f"returned {len(value)} values, expected {len(names)} "
                             f"({', '.join(names)})")
        return dict(zip(names, value))
    if len(names) == 1:
        return {names[0]: value}
    raise ValueError(f"returned a single value, expected {len(names)} ({', '.join(names)})")


def _check_options(precision, tolerance_factor):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if not (isinstance(tolerance_factor, (int, float)) and math.isfinite(tolerance_factor)
            and tolerance_factor > 0):
        raise ValueError(f"tolerance_factor must be a finite number > 0, got "
                         f"{tolerance_factor!r}")


def check_callable(case, function, precision="float64", tolerance_factor=1.0):
    """Call ``function(**case.inputs, **case.attributes)`` and compare its outputs.

    The function returns a dict of output name -> array, a tuple in the order of the
    kind's outputs, or (for one output) the array itself; anything with ``__array__``
    (NumPy, or a framework tensor converted to NumPy) works. In a float32 check the
    function still receives the float64 inputs; casting them is the port's business.

    Returns
    -------
    CaseResult
        ``status="error"`` with the exception's message if the function raised.
    """
    _check_options(precision, tolerance_factor)
    if precision not in case.tolerances:
        return compare_outputs(case, {}, precision)
    try:
        outputs = _outputs_of(case, case.call(function))
    except Exception as err:  # noqa: BLE001 - the function under test is arbitrary code
        return CaseResult(case.name, case.kind, "error", problem=f"{type(err).__name__}: {err}")
    return compare_outputs(case, outputs, precision, tolerance_factor)


def check_function(case_name_or_kind, function, directory=None, precision="float64",
                   tolerance_factor=1.0):
    """Check ``function`` on every case of a kind, or on one named case.

    Parameters
    ----------
    case_name_or_kind : str
        A case name (``"dct1_L17"``) or a kind (``"dct1"``: every case of that kind).
    function : callable
        Called as ``function(**inputs, **attributes)``; see :func:`check_callable`.
    directory : str, optional
        Golden directory to read the cases from; by default they are generated.
    precision : {"float64", "float32"}
        The tolerance profile (:mod:`refconf.conformance.profiles`).
    tolerance_factor : float
        Multiplies every tolerance; anything but 1 is printed in the verdict.

    Returns
    -------
    Report

    Examples
    --------
    >>> import scipy.fft
    >>> from refconf.conformance import check_function
    >>> check_function("dct1", lambda x: scipy.fft.dct(x, type=1)).passed
    True
    >>> report = check_function("dct1_L8", lambda x: scipy.fft.dct(x, type=1, norm="ortho"))
    >>> report.passed, sorted(report.diagnosis_codes())
    (False, ['dct1_ortho'])
    """
    _check_options(precision, tolerance_factor)
    identity, golden = golden_identity(directory)
    selected = [c for c in golden if case_name_or_kind in (c.name, c.kind)]
    if not selected:
        raise ValueError(f"no case or kind named {case_name_or_kind!r}; kinds are "
                         f"{', '.join(KINDS)}")
    results = [check_callable(case, function, precision, tolerance_factor)
               for case in selected]
    _add_dependency_notes(results)
    return Report(results, precision=precision, tolerance_factor=tolerance_factor,
                  identity=identity)


def _result_outputs(case, path):
    arrays = read_npz(path)
    copied = sorted(k for k in arrays if k.startswith((EXPECTED_PREFIX, TOLERANCE_PREFIX)))
    if copied:
        raise ValueError(f"{path}: holds golden arrays ({', '.join(copied[:3])}): a result "
                         "file holds only the port's outputs, under their own names; "
                         "outputs are never read from expected/ arrays")
    return {name: arrays.get(name) for name in case.expected}


def _missing_result(case, result_dir):
    npy = sorted(os.path.basename(p) for p in glob.glob(
        os.path.join(glob.escape(result_dir), glob.escape(case.name) + "*.npy")))
    if npy:
        return CaseResult(case.name, case.kind, "invalid", problem=(
            f"found {', '.join(npy[:3])} but no {case.name}.npz: results are one .npz per "
            f"case with every output by name, e.g. numpy.savez(path, "
            f"{', '.join(f'{n}={n}' for n in case.expected)})"))
    return CaseResult(case.name, case.kind, "missing",
                      problem=f"no {case.name}.npz in {result_dir}")


def _check_result_dir(golden_dir, result_dir):
    if not os.path.isdir(result_dir):
        raise ValueError(f"{result_dir}: no such result directory")
    if os.path.realpath(result_dir) == os.path.realpath(golden_dir) or os.path.isfile(
            os.path.join(result_dir, MANIFEST)):
        raise ValueError(f"{result_dir}: this is a golden vector directory (it holds "
                         f"{MANIFEST}), not results: the port must write its own outputs "
                         "to a separate directory")


def _allowed_kinds(allow_missing):
    if isinstance(allow_missing, bool) or allow_missing is None:
        return bool(allow_missing)
    kinds = set(allow_missing)
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(f"allow_missing: unknown kind(s) {', '.join(unknown)}; kinds are "
                         f"{', '.join(KINDS)}")
    return kinds or True


def check(golden_dir, result_dir, allow_missing=False, precision="float64",
          tolerance_factor=1.0):
    """Compare the result files in ``result_dir`` with the golden vectors.

    Parameters
    ----------
    golden_dir : str
        Written by :func:`~refconf.conformance.write_vectors` (verified: the manifest's
        digest, every file's SHA-256, and compared with this refconf's canonical set).
    result_dir : str
        ``<case>.npz`` files with the outputs another implementation computed from the
        golden inputs, under the output names of the manifest; not the golden directory
        and no ``expected/`` arrays.
    allow_missing : bool or collection of str
        True: pass although some cases have no result file; a collection of kinds: only
        cases of those kinds may be missing (an empty collection means any). Missing
        cases are always listed and counted in the verdict.
    precision : {"float64", "float32"}
        The tolerance profile; in float32, float64-only cases are skipped with their
        reason.
    tolerance_factor : float
        Multiplies every tolerance; anything but 1 is printed in the verdict.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        If ``golden_dir`` is not a valid vector directory (or was edited), ``result_dir``
        does not exist or is a golden directory, or an option is invalid.
    """
    _check_options(precision, tolerance_factor)
    allowed = _allowed_kinds(allow_missing)
    identity, golden = golden_identity(golden_dir)
    _check_result_dir(golden_dir, result_dir)
    results = []
    for case in golden:
        path = os.path.join(result_dir, f"{case.name}.npz")
        if precision not in case.tolerances:
            results.append(compare_outputs(case, {}, precision))
        elif not os.path.isfile(path):
            results.append(_missing_result(case, result_dir))
        else:
            try:
                outputs = _result_outputs(case, path)
            except (ValueError, OSError) as err:
                results.append(CaseResult(case.name, case.kind, "invalid", problem=str(err)))
                continue
            results.append(compare_outputs(case, outputs, precision, tolerance_factor))
    results += [CaseResult(name, canonical_set()[name][0], "missing",
                           problem=f"canonical case absent from the golden set {golden_dir}")
                for name in identity["absent"]]
    _add_dependency_notes(results)
    names = {case.name for case in golden}
    unexpected = sorted(f for f in os.listdir(result_dir)
                        if f.endswith(".npz") and f[:-4] not in names)
    missing = [c.name for c in results if c.status == "missing"]
    return Report(results, missing, unexpected, allowed, precision, tolerance_factor,
                  identity)

