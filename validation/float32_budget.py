"""Claim: a correct float32 port stays well inside the conformance kit's float32 profile,
for every transform, at every length and conditioning measured; the table this prints is
the float32 error budget of docs/tutorials/conformance-float32.md.

For each transform (DCT-I, inverse DCT-I, symmetric and circular convolution and
deconvolution, the S-Log gates, a CONF step) at lengths ``L`` and conditionings ``c``
(spectrum magnitudes log-uniform in ``[c^-1/2, c^1/2]``, so the convolution's condition
number is about ``c``; for the gates ``c`` is ``alpha``), a case is built exactly as the
golden cases are (refconf in float64 gives the expected outputs, the float32 profile
gives the tolerances), and the independent port of ``validation/conformance_example.py``
computes it in float32. Printed per row and output: the port's largest error and the
profile's ``atol``, both in units of ``eps32 max|expected|``, and the misfit
``max |r - e| / (atol + rtol |e|)``. The claim holds when every misfit is below
``0.1`` (a tenth of the tolerance); rows the profile marks float64-only (too
ill-conditioned for float32) are listed with the port's error but not judged.

Usage: ``python validation/float32_budget.py [--lengths 8,64,512] [--json FILE]``.
"""

import argparse
import importlib.util
import json
import os
import sys
import zlib

import numpy as np

from refconf.conformance.diagnose import misfit
from refconf.conformance.profiles import EPS32
from refconf.conformance.vectors import _build

HERE = os.path.dirname(os.path.abspath(__file__))
CONDITIONS = (10.0, 1e3, 1e5)
ALPHAS = (1e-3, 1.0, 10.0)
LIMIT = 0.1


def _port():
    spec = importlib.util.spec_from_file_location(
        "conformance_example", os.path.join(HERE, "conformance_example.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FFTPort(np.float32)


def _spectrum(rng, shape, c):
    sign = rng.choice([-1.0, 1.0], shape)
    return sign * np.exp(rng.uniform(-0.5, 0.5, shape) * np.log(c))


def _half(rng, shape, n, c):
    W = _spectrum(rng, shape, c) * np.exp(2j * np.pi * rng.uniform(size=shape))
    W[..., 0] = W[..., 0].real
    if n % 2 == 0:
        W[..., -1] = W[..., -1].real
    return W


def _inputs(kind, L, c, rng):
    """The inputs of one budget case (batch 4)."""
    x = rng.normal(size=(4, L))
    nh = L // 2 + 1
    table = {
        "dct1": lambda: {"x": x}, "idct1": lambda: {"X": x},
        "symmetric_conv": lambda: {"x": x, "w_hat": _spectrum(rng, (4, L), c)},
        "symmetric_deconv": lambda: {"y": x, "w_hat": _spectrum(rng, (4, L), c)},
        "circular_conv": lambda: {"x": x, "w_half": _half(rng, (4, nh), L, c)},
        "circular_deconv": lambda: {"y": x, "w_half": _half(rng, (4, nh), L, c)},
        "slog": lambda: {"x": 3 * x, "alpha": np.array(c)},
        "slog_inverse": lambda: {"y": x / c, "alpha": np.array(c)},
        "conf_step": lambda: {"x2": x, "w_hat": _spectrum(rng, (2, 4, L), c),
                              "s": np.exp(0.3 * rng.normal(size=(2, 4, L))),
                              "t": rng.normal(size=(4, L)),
                              "alpha": np.array([0.7, 1.1]), "alpha_prime": np.array([0.9, 0.6])},
    }
    return table[kind]()


def _row(case, output, expected, value, L, c):
    unit = EPS32 * float(np.max(np.abs(expected)))
    row = {"kind": case.kind, "L": L, "c": c, "output": output,
           "error_eps": float(np.max(np.abs(value - expected))) / unit,
           "atol_eps": None, "misfit": None, "float64_only": case.float64_only}
    if case.float64_only is None:
        tol = case.tolerances["float32"][output]
        row.update(atol_eps=tol["atol"] / unit, misfit=misfit(value, expected, expected, tol))
    return row


def measure(lengths):
    port, rows = _port(), []
    for kind in ("dct1", "idct1", "symmetric_conv", "symmetric_deconv", "circular_conv",
                 "circular_deconv", "slog", "slog_inverse", "conf_step"):
        for L in lengths:
            for c in (ALPHAS if kind.startswith("slog") else
                      (1.0,) if kind in ("dct1", "idct1") else CONDITIONS):
                name = f"budget_{kind}_L{L}_c{c:g}"
                rng = np.random.default_rng(zlib.crc32(name.encode()))
                case = _build(name, kind, name, _inputs(kind, L, c, rng), {}, 1e-10)
                result = port.run(kind, **case.inputs)
                result = result if isinstance(result, tuple) else (result,)
                for (output, expected), value in zip(case.expected.items(), result):
                    rows.append(_row(case, output, expected, np.asarray(value, np.float64),
                                     L, c))
    return rows


def markdown(rows):
    lines = [("| transform | L | c | output | error / (eps32 max\\|e\\|) | "
             "atol / (eps32 max\\|e\\|) | misfit |"), "|---|---|---|---|---|---|---|"]
    for r in rows:
        budget = ("float64-only |" if r["misfit"] is None
                  else f"{r['atol_eps']:.3g} | {r['misfit']:.2g} |")
        lines.append(f"| {r['kind']} | {r['L']} | {r['c']:g} | {r['output']} | "
                     f"{r['error_eps']:.3g} | {budget}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="8,64,512",
                        help="comma-separated lengths L (default: %(default)s)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to FILE "
                        "(default: none)")
    args = parser.parse_args(argv)
    rows = measure([int(v) for v in args.lengths.split(",")])
    print(markdown(rows))
    worst = max((r for r in rows if r["misfit"] is not None), key=lambda r: r["misfit"])
    ok = worst["misfit"] < LIMIT
    print(f"\nlargest misfit {worst['misfit']:.3g} ({worst['kind']} L = {worst['L']} "
          f"c = {worst['c']:g} {worst['output']}); limit {LIMIT}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "passed": ok}, f, indent=1)
    print("CLAIM HOLDS" if ok else "CLAIM VIOLATED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
