"""Checking another implementation's outputs against the golden vectors.

Two entry points: :func:`check` compares result files (``RESULT_DIR/<case>.npz``) with a
golden directory, and :func:`check_function` / :func:`check_callable` call a function
directly on the golden inputs (a PyTorch or JAX function wrapped to return NumPy
arrays). Both give a :class:`Report`: per case and output the largest absolute and
relative error, the tolerance, pass or fail, and a diagnosis where a known mistake fits
the error pattern (:mod:`refconf.conformance.diagnose`).
"""

import collections
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .archive import read_npz
from .diagnose import MESSAGES, Diagnosis, diagnose
from .kinds import KINDS
from .vectors import EXPECTED_PREFIX, FORMAT_VERSION, cases, load_cases

__all__ = [
    "CaseResult",
    "OutputResult",
    "Report",
    "check",
    "check_callable",
    "check_function",
    "compare_outputs",
]


@dataclass
class OutputResult:
    """One output of one case: errors, tolerance, verdict and diagnosis.

    ``max_rel_error`` is over the entries whose expected value is non-zero. ``problem``
    is set when no error could be computed (missing output, wrong shape, non-numeric).
    """

    name: str
    passed: bool
    rtol: float
    atol: float
    max_abs_error: float = math.nan
    max_rel_error: float = math.nan
    problem: str = None
    diagnosis: Diagnosis = None

    def to_dict(self):
        return {"name": self.name, "passed": self.passed, "rtol": self.rtol, "atol": self.atol,
                "max_abs_error": _json_float(self.max_abs_error),
                "max_rel_error": _json_float(self.max_rel_error), "problem": self.problem,
                "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None}


@dataclass
class CaseResult:
    """The verdict on one case.

    ``status`` is ``"pass"``, ``"fail"`` (an output out of tolerance or malformed),
    ``"invalid"`` (unreadable result file), ``"error"`` (the checked function raised) or
    ``"missing"`` (no result).
    """

    name: str
    kind: str
    status: str
    outputs: list = field(default_factory=list)
    problem: str = None
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return self.status == "pass"

    def to_dict(self):
        return {"name": self.name, "kind": self.kind, "status": self.status,
                "problem": self.problem, "notes": list(self.notes),
                "outputs": [o.to_dict() for o in self.outputs]}


@dataclass
class Report:
    """Results of a conformance check.

    ``passed`` is true only when at least one case was checked, every checked case
    passed, and no case is missing (unless ``allow_missing``).
    """

    cases: list
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    allow_missing: bool = False

    @property
    def checked(self):
        return [c for c in self.cases if c.status != "missing"]

    @property
    def passed(self):
        return (bool(self.checked) and all(c.passed for c in self.checked)
                and (self.allow_missing or not self.missing))

    def counts(self):
        counts = collections.Counter(c.status for c in self.cases)
        return {status: counts.get(status, 0)
                for status in ("pass", "fail", "invalid", "error", "missing")}

    def likely_causes(self):
        """``[(code, count, explanation)]`` of the diagnoses of failing outputs, most
        frequent first."""
        counts = collections.Counter(
            o.diagnosis.code for c in self.cases for o in c.outputs
            if not o.passed and o.diagnosis is not None)
        return [(code, n, f"{MESSAGES[code][0]}: {MESSAGES[code][1]}")
                for code, n in counts.most_common()]

    def diagnosis_codes(self):
        return {code for code, _, _ in self.likely_causes()}

    def to_dict(self):
        return {
            "format": "refconf-conformance-report", "format_version": FORMAT_VERSION,
            "passed": self.passed, "counts": self.counts(), "allow_missing": self.allow_missing,
            "likely_causes": [{"code": c, "count": n, "explanation": m}
                              for c, n, m in self.likely_causes()],
            "missing": list(self.missing), "unexpected": list(self.unexpected),
            "cases": [c.to_dict() for c in self.cases],
        }

    def format_table(self, failures_only=False):
        """The report as text: one row per output, diagnoses under failing rows, then a
        summary."""
        header = (f"{'case':<34} {'output':<9} {'max abs err':>11} {'max rel err':>11}  "
                  f"{'tolerance':<24} result")
        lines = [header, "-" * len(header)]
        for case in self.cases:
            if failures_only and case.passed:
                continue
            if case.status in ("missing", "invalid", "error"):
                lines.append(f"{case.name:<34} {'-':<9} {'':>11} {'':>11}  {'':<24} "
                             f"{case.status.upper()}: {case.problem}")
            for o in case.outputs:
                if failures_only and o.passed:
                    continue
                tol = f"rtol {o.rtol:.0e} atol {o.atol:.2e}"
                verdict = "pass" if o.passed else "FAIL"
                lines.append(f"{case.name:<34} {o.name:<9} {_fmt(o.max_abs_error):>11} "
                             f"{_fmt(o.max_rel_error):>11}  {tol:<24} {verdict}")
                if o.problem and not (o.diagnosis and o.diagnosis.detail == o.problem):
                    lines.append(f"    problem: {o.problem}")
                if o.diagnosis:
                    lines.append(f"    diagnosis [{o.diagnosis.code}]: {o.diagnosis.message}")
            lines.extend(f"    note: {note}" for note in case.notes)
        counts = self.counts()
        lines.append("")
        lines.append(f"{len(self.cases)} cases: " + ", ".join(
            f"{n} {status}" for status, n in counts.items() if n))
        if self.missing:
            shown = ", ".join(self.missing[:8]) + (" ..." if len(self.missing) > 8 else "")
            allowed = " (allowed)" if self.allow_missing else ""
            lines.append(f"missing{allowed}: {shown}")
        if self.unexpected:
            lines.append("result files without a golden case (ignored): "
                         + ", ".join(self.unexpected))
        for code, n, message in self.likely_causes():
            lines.append(f"likely cause [{code}] ({n} output{'s' if n > 1 else ''}): {message}")
        lines.append("CONFORMS" if self.passed else "DOES NOT CONFORM")
        return "\n".join(lines)


def _fmt(value):
    return "-" if value is None or math.isnan(value) else f"{value:.2e}"


def _json_float(value):
    if value is None or math.isnan(value):
        return None
    return value if math.isfinite(value) else "inf"


def _errors(result, expected, rtol, atol):
    """``(max_abs, max_rel, passed)`` of ``|r - e| <= atol + rtol |e|`` elementwise;
    non-finite results count as infinite errors."""
    diff = np.abs(result - expected)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    scale = np.abs(expected)
    nonzero = scale > 0
    max_rel = float(np.max(diff[nonzero] / scale[nonzero], initial=0.0))
    return float(np.max(diff, initial=0.0)), max_rel, bool(np.all(diff <= atol + rtol * scale))


def _compare_one(case, name, value):
    expected = case.expected[name]
    tol = case.tolerance[name]
    out = OutputResult(name, False, tol["rtol"], tol["atol"])
    if value is None:
        out.problem = "missing output"
        return out
    try:
        result = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as err:
        out.problem = f"not convertible to a NumPy array ({err})"
        return out
    if not (np.issubdtype(result.dtype, np.number) or result.dtype == bool):
        out.problem = f"dtype {result.dtype}; expected numbers"
        return out
    if result.shape != expected.shape:
        out.problem = f"shape {result.shape}, expected {expected.shape}"
        if name == "log_det" and result.size == 1 and expected.size > 1:
            out.problem += ": log_det has one value per sample (B,)"
        elif result.size == expected.size:
            out.problem += " (same number of values: a transposed or reshaped output?)"
        out.diagnosis = Diagnosis("shape", out.problem)
        return out
    compared = result.real if np.iscomplexobj(result) and not np.iscomplexobj(expected) else result
    out.max_abs_error, out.max_rel_error, out.passed = _errors(
        compared.astype(np.result_type(compared, np.float64)), expected, out.rtol, out.atol)
    if compared is not result:  # a complex array where a real one is expected
        out.passed = False
    if not out.passed:
        out.diagnosis = diagnose(case, name, result)
    return out


def compare_outputs(case, outputs):
    """Compare ``outputs`` (a dict of name -> array) with ``case.expected``.

    Returns
    -------
    CaseResult
    """
    results = [_compare_one(case, name, outputs.get(name)) for name in case.expected]
    status = "pass" if all(o.passed for o in results) else "fail"
    return CaseResult(case.name, case.kind, status, results)


def _add_dependency_notes(case_results):
    """Point undiagnosed failures at failing cases of a lower level (their likely cause)."""
    failing = [c for c in case_results if c.status in ("fail", "invalid", "error")]
    for c in failing:
        undiagnosed = any(not o.passed and o.diagnosis is None for o in c.outputs)
        lower = [f.name for f in failing if KINDS[f.kind].level < KINDS[c.kind].level]
        if (undiagnosed or not c.outputs) and lower:
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


def check_callable(case, function):
    """Call ``function(**case.inputs, **case.attributes)`` and compare its outputs.

    The function returns a dict of output name -> array, a tuple in the order of the
    kind's outputs, or (for one output) the array itself; anything with ``__array__``
    (NumPy, or a framework tensor converted to NumPy) works.

    Returns
    -------
    CaseResult
        ``status="error"`` with the exception's message if the function raised.
    """
    try:
        outputs = _outputs_of(case, case.call(function))
    except Exception as err:  # noqa: BLE001 - the function under test is arbitrary code
        return CaseResult(case.name, case.kind, "error", problem=f"{type(err).__name__}: {err}")
    return compare_outputs(case, outputs)


def check_function(case_name_or_kind, function, directory=None):
    """Check ``function`` on every case of a kind, or on one named case.

    Parameters
    ----------
    case_name_or_kind : str
        A case name (``"dct1_L17"``) or a kind (``"dct1"``: every case of that kind).
    function : callable
        Called as ``function(**inputs, **attributes)``; see :func:`check_callable`.
    directory : str, optional
        Golden directory to read the cases from; by default they are generated.

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
    selected = [c for c in cases(directory)
                if case_name_or_kind in (c.name, c.kind)]
    if not selected:
        raise ValueError(f"no case or kind named {case_name_or_kind!r}; kinds are "
                         f"{', '.join(KINDS)}")
    results = [check_callable(case, function) for case in selected]
    _add_dependency_notes(results)
    return Report(results)


def _result_outputs(case, path):
    arrays = read_npz(path)
    return {name: arrays.get(name, arrays.get(EXPECTED_PREFIX + name))
            for name in case.expected}


def check(golden_dir, result_dir, allow_missing=False):
    """Compare the result files in ``result_dir`` with the golden vectors.

    Parameters
    ----------
    golden_dir : str
        Written by :func:`~refconf.conformance.write_vectors` (verified against its
        manifest's checksums).
    result_dir : str
        ``<case>.npz`` files with the outputs another implementation computed from the
        golden inputs, under the output names of the manifest (a copy of a golden file,
        with ``expected/<name>`` keys, is also read).
    allow_missing : bool
        Pass although some cases have no result file (they are still listed).

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        If ``golden_dir`` is not a valid vector directory or ``result_dir`` does not exist.
    """
    golden = load_cases(golden_dir)
    if not os.path.isdir(result_dir):
        raise ValueError(f"{result_dir}: no such result directory")
    results, missing = [], []
    for case in golden:
        path = os.path.join(result_dir, f"{case.name}.npz")
        if not os.path.isfile(path):
            missing.append(case.name)
            results.append(CaseResult(case.name, case.kind, "missing",
                                      problem=f"no {case.name}.npz in {result_dir}"))
            continue
        try:
            outputs = _result_outputs(case, path)
        except (ValueError, OSError) as err:
            results.append(CaseResult(case.name, case.kind, "invalid", problem=str(err)))
            continue
        results.append(compare_outputs(case, outputs))
    _add_dependency_notes(results)
    names = {case.name for case in golden}
    unexpected = sorted(f for f in os.listdir(result_dir)
                        if f.endswith(".npz") and f[:-4] not in names)
    return Report(results, missing, unexpected, allow_missing)
