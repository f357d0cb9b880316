"""The package's layering, beyond what ``lint-imports`` checks (pyproject.toml).

* No private name (a function, class or constant whose name starts with ``_``) is
  imported from another module of refconf: private modules (``_*_numba``, the compiled
  overrides; ``data/_common``) may be imported, their private names may not. (ruff's
  PLC2701 does this, but only in preview mode; this test is the check.)
* numba is a core dependency of the CPU path only: the array-API path (a model built,
  evaluated, sampled and differentiated by the explicit pass on ``array_api_strict``
  arrays, which stand in for CuPy) runs in a process where ``import numba`` fails.
"""

import ast
import subprocess
import sys
from pathlib import Path

import refconf

ROOT = Path(refconf.__file__).parent


def _module_path(module, level, current):
    """The package path an ``ImportFrom`` in ``current`` (a file) refers to."""
    if level:
        base = current.parent
        for _ in range(level - 1):
            base = base.parent
    else:
        if not (module or "").startswith("refconf"):
            return None
        base = ROOT.parent
    return base.joinpath(*module.split(".")) if module else base


def _private_imports(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        target = _module_path(node.module, node.level, path)
        if target is None:
            continue
        for alias in node.names:
            name = alias.name
            is_module = (target / name).is_dir() or (target / f"{name}.py").is_file()
            if name.startswith("_") and not name.startswith("__") and not is_module:
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {name}")
    return found


def test_no_private_name_is_imported_across_modules():
    found = [hit for path in sorted(ROOT.rglob("*.py")) for hit in _private_imports(path)]
    assert found == []


def test_the_private_name_check_finds_a_private_import(tmp_path):
    planted = ROOT / "bijectors" / "_planted_for_test.py"
    planted.write_text("from .coupling import _check_kind\n")
    try:
        assert _private_imports(planted) == [
            "refconf/bijectors/_planted_for_test.py:1 imports _check_kind"]
    finally:
        planted.unlink()


_WITHOUT_NUMBA = """
import sys


class BlockNumba:
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ImportError(f"import of {name} blocked by the test")


sys.meta_path.insert(0, BlockNumba())
import array_api_strict as xps
import numpy as np

from refconf.backend import to_device, to_numpy
from refconf.engines import nll_and_grad
from refconf.flows import conf

x = np.random.default_rng(0).normal(size=(32, 6))
for kind, mixing in (("symmetric", "1x1"), ("circular", "permutation")):
    model = conf(6, steps=2, m=2, hidden=(8,), kind=kind, mixing=mixing)
    params = model.init_params(x, random_state=0)
    p, xs = to_device(params, xps), to_device(x, xps)
    flow = model.build(p)
    log_p = to_numpy(flow.log_prob(xs))
    samples = flow.sample(4, random_state=0)
    nll, grads = nll_and_grad(model, p, xs)
    assert np.isclose(float(nll), -log_p.mean(), rtol=1e-12)
    assert np.all(np.isfinite(to_numpy(samples)))
assert not any(name.split(".")[0] == "numba" for name in sys.modules)
print("ran without numba")
"""


def test_the_array_api_path_runs_without_numba():
    result = subprocess.run([sys.executable, "-c", _WITHOUT_NUMBA], capture_output=True,
                            text=True, cwd=ROOT.parent, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "ran without numba" in result.stdout


# --- size and complexity of the modules ----------------------------------------------------

#: The most lines a module of refconf may have, and the worst radon grade of a function.
MAX_MODULE_LINES = 500
WORST_GRADE = "C"


def test_no_module_is_a_catch_all():
    long = {str(path.relative_to(ROOT.parent)): n for path in sorted(ROOT.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_above_radon_grade_c():
    from radon.complexity import cc_rank, cc_visit

    worse = [f"{path.relative_to(ROOT.parent)}:{block.lineno} {block.name} "
             f"{cc_rank(block.complexity)} ({block.complexity})"
             for path in sorted(ROOT.rglob("*.py"))
             for block in cc_visit(path.read_text())
             if cc_rank(block.complexity) > WORST_GRADE]
    assert worse == []
