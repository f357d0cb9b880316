"""Conformance kit for ports of CONF (PyTorch, JAX, C++, ...).

Golden vectors of every transform CONF is built from, from the DCT-I to a whole model,
and a checker that compares another implementation's outputs with them, in float64 or
float32 (:mod:`~refconf.conformance.profiles`), and names a known porting mistake only
when it explains the error (:mod:`~refconf.conformance.diagnose`)::

    refconf vectors write golden/              # manifest.json + one .npz per case
    # ... the port reads golden/<case>.npz, writes results/<case>.npz ...
    refconf check golden/ results/ [--precision float32] [--json report.json]

or, without files::

    from refconf.conformance import cases, check_function
    report = check_function("dct1", lambda x: my_dct1(torch.from_numpy(x)).numpy())
    print(report.format_table())

The conventions (direction, normalisation, layouts) are in ``manifest.json`` and in
:data:`CONVENTIONS`; :data:`KINDS` lists the function signatures.
"""

from .check import check, check_callable, check_function, compare_outputs
from .conventions import CONVENTIONS
from .diagnose import MESSAGES, Diagnosis
from .kinds import KINDS, Kind, flatten_params, unflatten_params
from .layer import conf_layer, conf_layer_inverse, conf_step, conf_step_inverse
from .profiles import PRECISIONS
from .report import CaseResult, OutputResult, Report
from .vectors import (
    FORMAT,
    FORMAT_VERSION,
    Case,
    cases,
    generate_cases,
    golden_identity,
    load_cases,
    write_vectors,
)

__all__ = [
    "CONVENTIONS",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "MESSAGES",
    "PRECISIONS",
    "Case",
    "CaseResult",
    "Diagnosis",
    "Kind",
    "OutputResult",
    "Report",
    "cases",
    "check",
    "check_callable",
    "check_function",
    "compare_outputs",
    "conf_layer",
    "conf_layer_inverse",
    "conf_step",
    "conf_step_inverse",
    "flatten_params",
    "generate_cases",
    "golden_identity",
    "load_cases",
    "unflatten_params",
    "write_vectors",
]
