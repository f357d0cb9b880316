"""The result of a conformance check: per output, per case, and the verdict."""

import collections
import math
from dataclasses import dataclass, field

from .diagnose import MESSAGES, Diagnosis

__all__ = ["CaseResult", "OutputResult", "Report"]

STATUSES = ("pass", "fail", "invalid", "error", "missing", "skipped")
NOT_CAUSES = ("unexplained",)  # listed per output, not as a likely cause


@dataclass
class OutputResult:
    """One output of one case: errors, tolerance, verdict and diagnosis.

    ``max_rel_error`` is over the entries whose expected value is non-zero. ``problem``
    is set when no error could be computed (missing output, wrong shape, non-numeric,
    non-finite values).
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
    ``"invalid"`` (unusable result file), ``"error"`` (the checked function raised),
    ``"missing"`` (no result, or a canonical case absent from the golden set) or
    ``"skipped"`` (float64-only case in a float32 check; ``problem`` says why).
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

    ``passed`` is true only when the golden set is the canonical one, at least one case
    was checked, every checked case passed, and every missing case is allowed:
    ``allow_missing`` is True (any case) or a collection of kinds.
    """

    cases: list
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    allow_missing: object = False
    precision: str = "float64"
    tolerance_factor: float = 1.0
    identity: dict = None

    @property
    def checked(self):
        return [c for c in self.cases if c.status not in ("missing", "skipped")]

    def _allowed(self, case):
        return self.allow_missing is True or (
            bool(self.allow_missing) and case.kind in self.allow_missing)

    @property
    def unchecked(self):
        return [c for c in self.cases if c.status in ("missing", "skipped")]

    @property
    def passed(self):
        canonical = self.identity is None or self.identity["canonical"]
        return (canonical and bool(self.checked) and all(c.passed for c in self.checked)
                and all(self._allowed(c) for c in self.cases if c.status == "missing"))

    def counts(self):
        counts = collections.Counter(c.status for c in self.cases)
        return {status: counts.get(status, 0) for status in STATUSES}

    def likely_causes(self):
        """``[(code, count, explanation)]`` of the diagnoses of failing outputs that name
        a mistake, most frequent first."""
        counts = collections.Counter(
            o.diagnosis.code for c in self.cases for o in c.outputs
            if not o.passed and o.diagnosis is not None)
        return [(code, n, f"{MESSAGES[code][0]}: {MESSAGES[code][1]}")
                for code, n in counts.most_common()]

    def diagnosis_codes(self):
        return {code for code, _, _ in self.likely_causes()}

    def to_dict(self):
        from .vectors import FORMAT_VERSION

        return {
            "format": "refconf-conformance-report", "format_version": FORMAT_VERSION,
            "passed": self.passed, "verdict": self.verdict(), "golden": self.identity,
            "precision": self.precision, "tolerance_factor": self.tolerance_factor,
            "counts": self.counts(),
            "allow_missing": (self.allow_missing if isinstance(self.allow_missing, bool)
                              else sorted(self.allow_missing)),
            "likely_causes": [{"code": c, "count": n, "explanation": m}
                              for c, n, m in self.likely_causes()],
            "missing": list(self.missing), "unexpected": list(self.unexpected),
            "cases": [c.to_dict() for c in self.cases],
        }

    def identity_line(self):
        if self.identity is None:
            return None
        i = self.identity
        state = ("canonical" if i["canonical"]
                 else "NOT CANONICAL: " + "; ".join(i["problems"]))
        return (f"golden set: format {i['format_version']}, refconf {i['refconf_version']}, "
                f"{i['case_count']} cases, digest {i['digest'][:16]} ({state})")

    def verdict(self):
        """``CONFORMS`` or ``DOES NOT CONFORM``, with everything that qualifies it."""
        notes = [f"{self.precision} profile"]
        if self.tolerance_factor != 1:
            notes.append(f"tolerances x {self.tolerance_factor:g} (--tolerance-factor): "
                         "NOT the built-in profile")
        skipped = sum(c.status == "skipped" for c in self.cases)
        missing = [c for c in self.cases if c.status == "missing"]
        if skipped:
            notes.append(f"{skipped} float64-only case{'s' if skipped > 1 else ''} skipped")
        if missing:
            allowed = sum(self._allowed(c) for c in missing)
            notes.append(f"{len(missing)} case{'s' if len(missing) > 1 else ''} not checked "
                         f"(missing; {allowed} allowed)")
        notes.append(f"{len(self.checked)} of {len(self.cases)} cases checked")
        if self.identity is not None and not self.identity["canonical"]:
            notes.append("golden set NOT CANONICAL")
        return f"{'CONFORMS' if self.passed else 'DOES NOT CONFORM'} ({'; '.join(notes)})"

    def _case_lines(self, case, failures_only):
        lines = []
        if case.status in ("missing", "invalid", "error", "skipped"):
            lines.append(f"{case.name:<34} {'-':<10} {'':>11} {'':>11}  {'':<24} "
                         f"{case.status.upper()}: {case.problem}")
        for o in case.outputs:
            if failures_only and o.passed:
                continue
            tol = f"rtol {o.rtol:.1e} atol {o.atol:.2e}"
            lines.append(f"{case.name:<34} {o.name:<10} {_fmt(o.max_abs_error):>11} "
                         f"{_fmt(o.max_rel_error):>11}  {tol:<24} "
                         f"{'pass' if o.passed else 'FAIL'}")
            if o.problem and not (o.diagnosis and o.diagnosis.detail == o.problem):
                lines.append(f"    problem: {o.problem}")
            if o.diagnosis:
                lines.append(f"    diagnosis [{o.diagnosis.code}]: {o.diagnosis.message}")
        lines.extend(f"    note: {note}" for note in case.notes)
        return lines

    def format_table(self, failures_only=False):
        """The report as text: the golden set's identity, one row per output (only the
        failing ones with ``failures_only``), diagnoses under failing rows, a summary
        and the verdict."""
        header = (f"{'case':<34} {'output':<10} {'max abs err':>11} {'max rel err':>11}  "
                  f"{'tolerance':<24} result")
        lines = [line for line in (self.identity_line(),) if line]
        lines += [header, "-" * len(header)]
        for case in self.cases:
            if not (failures_only and case.status in ("pass", "skipped")):
                lines.extend(self._case_lines(case, failures_only))
        counts = self.counts()
        lines.append("")
        lines.append(f"{len(self.cases)} cases: " + ", ".join(
            f"{n} {status}" for status, n in counts.items() if n))
        if self.missing:
            shown = ", ".join(self.missing[:8]) + (" ..." if len(self.missing) > 8 else "")
            lines.append(f"missing: {shown}")
        if self.unexpected:
            lines.append("result files without a golden case (ignored): "
                         + ", ".join(self.unexpected))
        for code, n, message in self.likely_causes():
            if code not in NOT_CAUSES:
                lines.append(f"likely cause [{code}] ({n} output{'s' if n > 1 else ''}): "
                             f"{message}")
        lines.append(self.verdict())
        return "\n".join(lines)


def _fmt(value):
    return "-" if value is None or math.isnan(value) else f"{value:.2e}"


def _json_float(value):
    if value is None or math.isnan(value):
        return None
    return value if math.isfinite(value) else "inf"
