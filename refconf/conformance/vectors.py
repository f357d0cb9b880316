"""Golden test vectors: the cases, the on-disk format, and the golden set's identity.

A vector directory holds ``manifest.json`` and one ``<case>.npz`` per case. The
manifest states the format, the conventions a port must follow
(:data:`~refconf.conformance.CONVENTIONS`) and, per case, its kind (the function
signature, :data:`~refconf.conformance.kinds.KINDS`), description, input and output
names, shapes, the tolerances of each precision profile, whether it is float64-only, and
the SHA-256 of its file; last, ``digest``, the SHA-256 of the manifest's own canonical
JSON (sorted keys, no spaces) without that field. Each ``.npz`` holds the inputs under
their names, the expected outputs under ``expected/<name>`` and the tolerances under
``tolerance/<precision>/<name>`` (``[rtol, atol]``). Everything is generated from fixed
seeds (:mod:`refconf.conformance.generate`), so writing twice gives byte-identical files.

Reading verifies the manifest's digest, every file's SHA-256 and that the tolerances of
the manifest equal those of the hashed files; :func:`golden_identity` then compares the
set with the canonical set this refconf generates (same case names and bytes).
"""

import copy
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np
import scipy

from ..params import atomic_write
from ..version import __version__
from .archive import npz_bytes, read_npz, write_npz
from .conventions import CONVENTIONS
from .generate import specs
from .kinds import KINDS
from .profiles import PRECISIONS, float32_tolerance, float64_only_reason, float64_tolerance

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Case",
    "canonical_set",
    "cases",
    "generate_cases",
    "golden_identity",
    "load_cases",
    "write_vectors",
]

FORMAT = "refconf-conformance"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
EXPECTED_PREFIX = "expected/"
TOLERANCE_PREFIX = "tolerance/"


@dataclass
class Case:
    """One golden case.

    Attributes
    ----------
    name : str
    kind : str
        Key of :data:`~refconf.conformance.kinds.KINDS`: the function signature.
    description : str
    inputs : dict of str -> ndarray
        Call arguments, by name (model cases: ``x`` or ``z`` and ``param/...`` keys).
    expected : dict of str -> ndarray
        Expected outputs, by name.
    tolerances : dict
        ``{precision: {output: {"rtol": float, "atol": float}}}`` for each precision of
        :data:`~refconf.conformance.profiles.PRECISIONS` the case supports.
    attributes : dict
        JSON keyword arguments besides the arrays (``{"spec": ...}`` for model cases).
    float64_only : str or None
        Why the case has no float32 profile (values beyond float32's range), or None.
    """

    name: str
    kind: str
    description: str
    inputs: dict
    expected: dict
    tolerances: dict
    attributes: dict = field(default_factory=dict)
    float64_only: str = None

    @property
    def tolerance(self):
        """The float64 profile, ``{output: {"rtol", "atol"}}``."""
        return self.tolerances["float64"]

    def call(self, function):
        """``function(**inputs, **attributes)``: the call convention of the kit."""
        return function(**self.inputs, **self.attributes)

    def arrays(self):
        """Every array of the case file, in file order."""
        arrays = dict(self.inputs)
        arrays.update({EXPECTED_PREFIX + k: v for k, v in self.expected.items()})
        for precision, tolerance in self.tolerances.items():
            arrays.update({f"{TOLERANCE_PREFIX}{precision}/{k}": np.array([t["rtol"], t["atol"]])
                           for k, t in tolerance.items()})
        return arrays


def _build(name, kind, description, inputs, attributes, rtol):
    inputs = {key: np.asarray(value) for key, value in inputs.items()}
    outputs = KINDS[kind].function(**inputs, **attributes)
    expected = {key: np.asarray(outputs[key]) for key in KINDS[kind].outputs}
    tolerances = {"float64": {key: float64_tolerance(value, rtol)
                              for key, value in expected.items()}}
    reason = float64_only_reason(inputs, expected)
    if reason is None:
        float32, reason = float32_tolerance(name, kind, inputs, expected, attributes)
        if float32 is not None:
            tolerances["float32"] = float32
    return Case(name, kind, description, inputs, expected, tolerances, attributes, reason)


def generate_cases():
    """Every golden case, computed by refconf in memory (deterministic; computed once per
    process, each call returns fresh copies)."""
    return copy.deepcopy(_generated())


@functools.lru_cache(maxsize=1)
def _generated():
    with np.errstate(over="ignore"):  # cases near float64's range are meant to be
        return [_build(*spec) for spec in specs()]


@functools.lru_cache(maxsize=1)
def canonical_set():
    """``{case name: (kind, SHA-256 of its file)}`` of the canonical set of this refconf
    (computed once per process)."""
    return {case.name: (case.kind, hashlib.sha256(npz_bytes(case.arrays())).hexdigest())
            for case in _generated()}


# --- files -------------------------------------------------------------------------------


def _array_info(a):
    return {"shape": list(a.shape), "dtype": a.dtype.name}


def _digest(manifest):
    body = {k: v for k, v in manifest.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _manifest(case_list, digests):
    kinds_used = list(dict.fromkeys(case.kind for case in case_list))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "refconf_version": __version__,
        "generated_with": {"numpy": np.__version__, "scipy": scipy.__version__},
        "case_count": len(case_list),
        "conventions": CONVENTIONS,
        "kinds": {k: {"inputs": list(KINDS[k].inputs), "outputs": list(KINDS[k].outputs),
                      "signature": KINDS[k].signature} for k in kinds_used},
        "cases": [{
            "name": case.name,
            "kind": case.kind,
            "description": case.description,
            "file": f"{case.name}.npz",
            "sha256": digests[case.name],
            "float64_only": case.float64_only,
            "inputs": {k: _array_info(v) for k, v in case.inputs.items()},
            "outputs": {k: {**_array_info(v),
                            "tolerance": {p: t[k] for p, t in case.tolerances.items()}}
                        for k, v in case.expected.items()},
            "attributes": case.attributes,
        } for case in case_list],
    }
    manifest["digest"] = _digest(manifest)
    return manifest


def write_vectors(directory):
    """Write the golden vectors to ``directory`` (created if needed).

    Writes one ``<case>.npz`` per case (:meth:`Case.arrays`), then ``manifest.json``;
    each file atomically. Repeated calls give byte-identical files.

    Returns
    -------
    list of Case
    """
    os.makedirs(directory, exist_ok=True)
    case_list = generate_cases()
    digests = {case.name: write_npz(os.path.join(directory, f"{case.name}.npz"), case.arrays())
               for case in case_list}
    text = json.dumps(_manifest(case_list, digests), indent=1) + "\n"
    with atomic_write(os.path.join(directory, MANIFEST)) as f:
        f.write(text.encode("utf-8"))
    return case_list


def _read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise ValueError(f"{directory}: no {MANIFEST}; expected a directory written by "
                         "`refconf vectors write DIR`")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT!r} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version!r}; this refconf reads "
                         f"{FORMAT_VERSION}: rewrite the vectors with `refconf vectors write`")
    if manifest.get("digest") != _digest(manifest):
        raise ValueError(f"{path}: the manifest was edited (its content no longer matches "
                         "its recorded digest: cases removed, tolerances or checksums "
                         "changed); rewrite the vectors with `refconf vectors write DIR`")
    return manifest


def load_cases(directory):
    """Read and verify the golden cases of a vector directory.

    The manifest must match its own digest; each case file must match the SHA-256
    recorded in the manifest, hold the listed inputs, expected outputs and tolerances
    with the listed shapes, and its tolerances must equal the manifest's.

    Raises
    ------
    ValueError
        Naming the file and what is wrong (missing, altered, malformed).
    """
    return _load(directory)[1]


def _load(directory):
    manifest = _read_manifest(directory)
    try:
        return manifest, [_load_case(directory, entry) for entry in manifest["cases"]]
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{directory}: corrupt {MANIFEST} (missing or malformed field "
                         f"{err})") from None


def _file_tolerances(path, arrays, entry):
    tolerances = {}
    for precision in PRECISIONS:
        keys = [f"{TOLERANCE_PREFIX}{precision}/{k}" for k in entry["outputs"]]
        if not all(key in arrays for key in keys):
            continue
        tolerances[precision] = {k: {"rtol": float(arrays[key][0]), "atol": float(arrays[key][1])}
                                 for k, key in zip(entry["outputs"], keys)}
    listed = {p: {k: info["tolerance"][p] for k, info in entry["outputs"].items()}
              for p in tolerances}
    if listed != tolerances or any(p not in tolerances for p in
                                   next(iter(entry["outputs"].values()))["tolerance"]):
        raise ValueError(f"{path}: the manifest's tolerances differ from the case file's: "
                         "the manifest was edited; rewrite the vectors")
    return tolerances


def _load_case(directory, entry):
    """One manifest entry as a verified :class:`Case`."""
    name, kind = entry["name"], entry["kind"]
    if kind not in KINDS:
        raise ValueError(f"case {name}: unknown kind {kind!r} (a newer format?)")
    if os.path.basename(entry["file"]) != entry["file"]:
        raise ValueError(f"case {name}: file {entry['file']!r} is not a plain file name")
    path = os.path.join(directory, entry["file"])
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing golden case file")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"{path}: SHA-256 differs from the manifest; the golden file was "
                         "altered: rewrite the vectors")
    arrays = read_npz(path)
    inputs, expected = {}, {}
    for group, prefix, target in [("inputs", "", inputs),
                                  ("outputs", EXPECTED_PREFIX, expected)]:
        for key, info in entry[group].items():
            value = arrays.get(prefix + key)
            if value is None or list(value.shape) != info["shape"]:
                raise ValueError(f"{path}: {prefix + key} is missing or has the wrong "
                                 f"shape (expected {info['shape']})")
            target[key] = value
    return Case(name, kind, entry["description"], inputs, expected,
                _file_tolerances(path, arrays, entry), entry.get("attributes", {}),
                entry.get("float64_only"))


def golden_identity(directory=None):
    """The identity of a golden set and whether it is the canonical one.

    Returns
    -------
    identity : dict
        ``format_version``, ``refconf_version``, ``case_count``, ``digest`` (of the
        manifest; for the built-in set, of the manifest it would write), ``canonical``
        (bool), ``problems`` (list of str: how it differs from the canonical set of this
        refconf) and ``absent`` (canonical case names the set lacks).
    cases : list of Case
    """
    if directory is None:
        case_list = generate_cases()
        manifest = _manifest(case_list, {k: v[1] for k, v in canonical_set().items()})
    else:
        manifest, case_list = _load(directory)
    canonical = {name: sha for name, (_, sha) in canonical_set().items()}
    recorded = {entry["name"]: entry["sha256"] for entry in manifest["cases"]}
    problems = []
    if manifest["refconf_version"] != __version__:
        problems.append(f"written by refconf {manifest['refconf_version']}, checked by "
                        f"refconf {__version__}")
    absent = [name for name in canonical if name not in recorded]
    if absent:
        problems.append(f"{len(recorded)} cases, fewer than the {len(canonical)} of the "
                        f"canonical set (absent: {', '.join(absent[:6])}"
                        f"{' ...' if len(absent) > 6 else ''})")
    extra = [name for name in recorded if name not in canonical]
    changed = [name for name, sha in recorded.items()
               if name in canonical and sha != canonical[name]]
    if extra:
        problems.append(f"cases not in the canonical set: {', '.join(extra[:6])}")
    if changed:
        problems.append(f"{len(changed)} case file(s) differ from the canonical bytes "
                        f"({', '.join(changed[:4])}{' ...' if len(changed) > 4 else ''})")
    identity = {"format_version": manifest["format_version"],
                "refconf_version": manifest["refconf_version"],
                "case_count": len(recorded), "digest": manifest["digest"],
                "canonical": not problems, "problems": problems, "absent": absent}
    return identity, case_list


def cases(directory=None):
    """Iterate the golden cases: generated in memory, or read from ``directory``.

    Examples
    --------
    >>> from refconf.conformance import cases
    >>> case = next(c for c in cases() if c.name == "dct1_L3")
    >>> case.kind, case.inputs["x"].shape, sorted(case.expected)
    ('dct1', (3, 3), ['X'])
    """
    yield from (generate_cases() if directory is None else load_cases(directory))
