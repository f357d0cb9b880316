"""Claim: on a CUDA GPU (CuPy) every refconf bijector and the CONF model compute the same
numbers as the CPU float64 path, and evaluate and sample CONF models faster than the numba
CPU engine at large batches.

What it measures
----------------
1. Correctness. Every bijector type refconf exports (both convolutions in their 1-D,
   channel, 2-D and channel 2-D layouts, the circular one also from a half spectrum,
   S-Log with scalar and per-element scales, Scale, Shift, Logit, Permutation, Reverse,
   Invertible1x1 and ActNorm on vectors and images, both CONF coupling kinds, the affine
   coupling, the MADE layer, vector and image chains, Inverse), built with random
   parameters far from the identity (spectra with magnitudes log-uniform in [0.1, 10] and
   mixed signs, S-Log scales in [0.3, 3], 1x1 factors of a perturbed rotation with
   condition number <= 100, conditioners with non-zero output layers), moved to the device
   with ``Bijector.to``. Forward (output and log-det) and inverse (output and log-det) on
   the device are compared with the CPU float64 path, readable NumPy engine. In float32
   the parameters and inputs are rounded to float32 first and the CPU reference runs in
   float64 on the rounded values, so the error is that of the device computation alone.
   Error = max |device - cpu| / max(1, max |cpu|) over the four outputs (relative to the
   largest entry: entries that cancel to near zero would make an entrywise ratio
   meaningless). Limits: 1e-10 (float64), 1e-4 (float32), 1e-3 for float32 chains (up to
   nine maps whose condition numbers multiply: float32 on the CPU itself errs by ~1.4e-4
   there). Beside it, "CPU err" is the CPU's own error at the same dtype. A row also fails
   when an output comes back as a NumPy array (the computation left the device); output
   dtypes that differ from the CPU path's are reported in the row's note.
   Then CONF models (both kernel kinds, odd and even dimension, 1x1 and permutation
   mixing) with every parameter of the data-initialised model perturbed by N(0, 0.1^2):
   ``log_prob`` on the device against the CPU, and ``sample`` with the same seed (base
   samples are drawn by NumPy on the CPU and moved, so they must agree).
2. Throughput. ``log_prob`` and ``sample`` of a CONF model (symmetric kernel, --steps
   steps of m = 2, MLP 2 x 64, tanh; float64; data-initialised parameters) at batch 1e4,
   1e5, 1e6 and D = 8, 64 and 1024 (a 32 x 32 image flattened), on the device
   (``model.build(params, engine="cupy")``) and with the numba CPU engine (``log_prob``
   and ``sample`` of ``model.build(params, engine="numba")``). Inputs of
   ``log_prob`` are on the device before the clock starts; ``sample`` is timed as called
   (base samples drawn by NumPy on the CPU and moved, results left on the device). Large
   batches run in chunks of at most --chunk-elements numbers (rows x D) per call on both
   sides, to bound memory. The device is synchronised
   (``cupy.cuda.Device().synchronize()``) before the clock starts and before it stops.
   Each row: one first run (cuFFT plans, kernel compilation), then the median of
   --repeats runs if the first took under 2 s, else the first run alone (``device_runs``
   and ``cpu_runs`` in the JSON say which). The CPU runs a batch only while the previous
   batch's time, scaled by the batch ratio, predicts under --cpu-limit-s; the rest are
   marked "cpu skipped". Throughput rows stop ("skipped (budget)") once the script has run
   --budget-s seconds. Samples/s = batch / median seconds; ratio = device / CPU.
3. Writes everything as JSON (atomically) to --out and prints the tables last, in
   Markdown. Exit code 0 when every correctness row passes, 1 when one fails, 2 when the
   device is unavailable (CuPy missing or no CUDA device; the message says which).

``--device strict`` runs the same code with ``array_api_strict`` on the CPU instead of
CuPy (``to_device(params, array_api_strict)``, then the readable engine on those arrays):
a dry run of every step without a GPU. Its sizes are tiny and its timings measure
nothing; the tables say so.

Run::

    python validation/gpu_check.py                    # on a GPU machine, under 5 minutes
    python validation/gpu_check.py --device strict    # here, without a GPU: a dry run
    python validation/gpu_check.py --device strict --dims 8,16 --batches 64,256 --out /tmp/g.json
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from refconf import (
    ActNorm,
    AffineCoupling,
    Chain,
    CircularConv,
    ConvCoupling,
    Inverse,
    Invertible1x1,
    MaskedAutoregressive,
    Permutation,
    Reverse,
    Scale,
    Shift,
    SLog,
    SymmetricConv,
    backend,
)
from refconf.bijectors import Logit
from refconf.conditioners import mlp_init
from refconf.engines import EngineUnavailableError
from refconf.flows import conf
from refconf.params import atomic_write
from refconf.spectral import circular_kernel, circular_spectrum

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"float64": 1e-10, "float32": 1e-4}
#: Chains of up to nine maps multiply condition numbers: float32 on the CPU itself errs by
#: ~1.4e-4 on the vector chain (the "CPU err" column), so the device gets the law tests'
#: float32 chain tolerance (tests/test_bijector_laws.py, FLOAT32_CHAIN_RTOL).
CHAIN_LIMIT_FLOAT32 = 1e-3
BATCH = 64  # samples per correctness case


# --- the device --------------------------------------------------------------------------


class Device:
    """Where the checked computation runs: ``"cupy"`` (a CUDA GPU) or ``"strict"``
    (``array_api_strict`` on the CPU, the same code path without a GPU)."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "cupy":
            cupy = backend.require_cupy()
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            name = props["name"]
            self.description = (f"{name.decode() if isinstance(name, bytes) else name}, "
                                f"{props['totalGlobalMem'] / 2**30:.0f} GiB, CuPy "
                                f"{cupy.__version__}, CUDA runtime "
                                f"{cupy.cuda.runtime.runtimeGetVersion()}")
            self.target, self.engine = "cupy", "cupy"
            self._synchronize = cupy.cuda.Device().synchronize
        else:
            import array_api_strict

            self.description = (f"array_api_strict {array_api_strict.__version__} on the CPU "
                                "(dry run: timings measure nothing)")
            self.target, self.engine = array_api_strict, "numpy"
            self._synchronize = None

    def synchronize(self):
        if self._synchronize is not None:
            self._synchronize()

    def move(self, tree):
        return backend.to_device(tree, self.target)

    def build(self, model, params):
        """The model's flow on the device: ``engine="cupy"`` moves the parameters; on
        array_api_strict they are moved here and the readable engine runs on them."""
        if self.engine == "cupy":
            return model.build(params, engine="cupy")
        return model.build(self.move(params), engine="numpy")


# --- random parameters far from the identity ---------------------------------------------


def _signed_log_uniform(rng, shape, low=0.1, high=10.0):
    signs = rng.choice([-1.0, 1.0], size=shape)
    signs.reshape(-1)[:2] = [1.0, -1.0][: signs.size]  # both signs present
    return signs * np.exp(rng.uniform(np.log(low), np.log(high), size=shape))


def _circular_half(rng, shape, ndim, low=0.1, high=10.0):
    """The half spectrum of a random real kernel, magnitudes mapped log-linearly onto
    [low, high]: a function of |W| keeps W(-k) = conj W(k), so the kernel stays real."""
    W = circular_spectrum(rng.normal(size=shape), ndim)
    log_mag = np.log(np.abs(W))
    span = (log_mag - log_mag.min()) / max(np.ptp(log_mag), 1e-12)
    return W / np.abs(W) * np.exp(np.log(low) + span * np.log(high / low))


def _mlp(rng, n_in, n_out, c, scale=0.3):
    layers = mlp_init(n_in, (16,), n_out, random_state=rng, zero_output=False)
    layers[-1]["W"] *= scale
    layers[-1]["b"] = scale * rng.normal(size=n_out)
    return [{k: c(v) for k, v in layer.items()} for layer in layers]


def _rotation_factors(rng, C, c, spread=0.3, max_cond=100.0):
    base = Invertible1x1.random_params(C, random_state=rng)
    while True:
        p = dict(base, lower=base["lower"] + rng.normal(scale=spread, size=(C, C)),
                 upper=base["upper"] + rng.normal(scale=spread, size=(C, C)),
                 log_s=base["log_s"] + rng.uniform(-1.0, 1.0, C))
        if np.linalg.cond(Invertible1x1(**p).matrix) <= max_cond:
            return {k: v if k == "perm" else c(v) for k, v in p.items()}


def _conv(kind, layout):
    shape, ndim = {"1d": ((17,), 1), "channels_1d": ((3, 16), 1), "2d": ((8, 9), 2),
                   "channels_2d": ((2, 5, 6), 2)}[layout]

    def build(rng, c):
        if kind == "symmetric":
            bijector = SymmetricConv(c(_signed_log_uniform(rng, shape)), ndim)
        elif kind == "circular":
            bijector = CircularConv(c(circular_kernel(_circular_half(rng, shape, ndim),
                                                      shape[-1], ndim)), ndim)
        else:
            bijector = CircularConv.from_half_spectrum(c(_circular_half(rng, shape, ndim)),
                                                       shape[-1], ndim)
        return bijector, 2.0 * rng.normal(size=(BATCH,) + shape)

    return build


def _elementwise(name):
    def build(rng, c):
        L = 7
        x = 2.0 * rng.normal(size=(BATCH, L))
        if name == "slog_scalar":
            return SLog(c(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))), x
        if name == "slog_per_element":
            return SLog(c(np.exp(rng.uniform(np.log(0.3), np.log(3.0), L)))), x
        if name == "scale":
            return Scale(c(_signed_log_uniform(rng, (L,)))), x
        if name == "shift":
            return Shift(c(3.0 * rng.normal(size=L))), x
        return Logit(float(rng.uniform(1e-3, 0.2))), rng.uniform(0.0, 1.0, (BATCH, L))

    return build


def _mixing(name, event_ndim):
    shape = (7,) if event_ndim == 1 else (3, 4, 5)
    C = shape[0]

    def build(rng, c):
        x = 2.0 * rng.normal(size=(BATCH,) + shape)
        if name == "permutation":
            return Permutation(np.roll(rng.permutation(C), 1), event_ndim), x
        if name == "reverse":
            return Reverse(event_ndim), x
        if name == "1x1":
            return Invertible1x1(**_rotation_factors(rng, C, c), event_ndim=event_ndim), x
        pshape = (C,) if event_ndim == 1 else (C, 1, 1)
        return ActNorm(c(2.0 * rng.normal(size=pshape)), c(rng.uniform(-1.5, 1.5, pshape)),
                       event_ndim), x

    return build


def _coupling(name, dim=9, swap=True):
    d_update = dim // 2 if swap else dim - dim // 2  # HalfCoupling: base is the other half

    def build(rng, c):
        d_base = dim - d_update
        x = 2.0 * rng.normal(size=(BATCH, dim))
        if name == "made":
            made = mlp_init(dim, (3 * dim,), 2 * dim, random_state=rng, zero_output=False)
            # Glorot output layer plus N(0, 0.1^2): larger moves overflow float32 in the
            # early passes of the D-pass inverse
            made = [{k: c(v + 0.1 * rng.normal(size=v.shape)) for k, v in layer.items()}
                    for layer in made]
            return MaskedAutoregressive(made, rng.permutation(dim)), x
        if name == "affine":
            return AffineCoupling(_mlp(rng, d_base, 2 * d_update, c, scale=1.0),
                                  c(rng.uniform(0.5, 2.0, d_update)), swap=swap), x
        m = 2
        log_alpha = rng.normal(0.0, 0.5, m)
        return ConvCoupling(_mlp(rng, d_base, (2 * m + 1) * d_update, c), c(log_alpha),
                            c(log_alpha + rng.normal(0.0, 0.3, m)), kind=name,
                            spectrum="raw" if name == "symmetric" else "exp",
                            activation="tanh", swap=swap), x

    return build


def _chain(kind):
    """Chains multiply condition numbers: members from [0.3, 3] (still far from identity)."""

    def build(rng, c):
        if kind == "vector":
            L = 8
            return Chain([
                SymmetricConv(c(_signed_log_uniform(rng, (L,), 0.3, 3.0))),
                SLog(c(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))),
                Scale(c(_signed_log_uniform(rng, (L,), 0.3, 3.0))),
                Shift(c(3.0 * rng.normal(size=L))),
                Permutation(rng.permutation(L)),
                CircularConv(c(circular_kernel(_circular_half(rng, (L,), 1, 0.3, 3.0), L))),
                ActNorm(c(2.0 * rng.normal(size=L)), c(rng.uniform(-1.5, 1.5, L))),
                Invertible1x1(**_rotation_factors(rng, L, c, spread=0.2)),
                Reverse(),
            ]), 2.0 * rng.normal(size=(BATCH, L))
        shape = (3, 5, 4)
        return Chain([
            SymmetricConv(c(_signed_log_uniform(rng, shape, 0.3, 3.0)), ndim=2),
            ActNorm(c(2.0 * rng.normal(size=(3, 1, 1))), c(rng.uniform(-1.5, 1.5, (3, 1, 1))),
                    event_ndim=3),
            Invertible1x1(**_rotation_factors(rng, 3, c, spread=0.2), event_ndim=3),
            SLog(c(np.exp(rng.uniform(np.log(0.3), np.log(3.0), shape[-1]))), event_ndim=1),
            CircularConv(c(circular_kernel(_circular_half(rng, shape, 2, 0.3, 3.0), 4, 2)),
                         ndim=2),
            Reverse(event_ndim=3),
        ]), 2.0 * rng.normal(size=(BATCH,) + shape)

    return build


def _inverse_of(build):
    def build_inverse(rng, c):
        bijector, x = build(rng, c)
        return Inverse(bijector), np.asarray(bijector.forward(c(x))[0], dtype=np.float64)

    return build_inverse


CASES = {
    **{f"symmetric_conv_{lay}": _conv("symmetric", lay)
       for lay in ("1d", "channels_1d", "2d", "channels_2d")},
    **{f"circular_conv_{lay}": _conv("circular", lay)
       for lay in ("1d", "channels_1d", "2d", "channels_2d")},
    "circular_conv_half_spectrum_channels_1d": _conv("half", "channels_1d"),
    "circular_conv_half_spectrum_channels_2d": _conv("half", "channels_2d"),
    **{name: _elementwise(name)
       for name in ("slog_scalar", "slog_per_element", "scale", "shift", "logit")},
    **{f"{name}_{'vector' if nd == 1 else 'image'}": _mixing(name, nd)
       for name in ("permutation", "reverse", "1x1", "actnorm") for nd in (1, 3)},
    "conv_coupling_symmetric": _coupling("symmetric"),
    "conv_coupling_circular": _coupling("circular", dim=8, swap=False),
    "affine_coupling": _coupling("affine"),
    "masked_autoregressive": _coupling("made", dim=6),
    "chain_vector": _chain("vector"),
    "chain_image": _chain("image"),
    "inverse_chain_vector": _inverse_of(_chain("vector")),
    "inverse_circular_conv_2d": _inverse_of(_conv("circular", "2d")),
}


# --- correctness -------------------------------------------------------------------------


def _caster(dtype, reference):
    """Cast floating arrays to ``dtype`` (complex ones to its complex counterpart); with
    ``reference``, back to float64/complex128 (the rounded values, computed in float64)."""

    def cast(a):
        a = np.asarray(a)
        if a.dtype.kind not in "fc":
            return a
        out = a.astype(np.result_type(dtype, np.complex64) if a.dtype.kind == "c" else dtype)
        return out.astype(np.result_type(out, np.float64)) if reference else out

    return cast


def _rel_err(device_out, cpu_out):
    """max |device - cpu| / max(1, max |cpu|); infinite when shapes or the positions of
    non-finite values differ."""
    actual = backend.to_numpy(device_out).astype(np.float64)
    expected = np.asarray(cpu_out, dtype=np.float64)
    finite = np.isfinite(expected)
    if actual.shape != expected.shape or not np.array_equal(np.isfinite(actual), finite):
        return float("inf")
    actual, expected = actual[finite], expected[finite]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return float(np.max(np.abs(actual - expected), initial=0.0)) / scale


def _row(name, dtype, device_out, cpu_out, reference_out):
    """A correctness row from dicts ``{output name: array}`` of the device, the CPU at the
    same dtype and the float64 reference. The device's error is checked against the
    limit and its outputs must be device arrays; dtypes are compared with the CPU's."""
    errors = {k: _rel_err(device_out[k], reference_out[k]) for k in reference_out}
    worst = max(errors, key=errors.get)
    on_device = all(not backend.is_autograd(backend.namespace(o)) for o in device_out.values())
    dtypes = [str(backend.to_numpy(o).dtype) for o in device_out.values()]
    cpu_dtypes = [str(np.asarray(o).dtype) for o in cpu_out.values()]
    notes = [] if on_device else ["FAIL: an output came back as a NumPy array"]
    # dtypes are reported, not checked: promotion is the library's behaviour, the same
    # code on both sides (NumPy promotes NumPy float64 scalars, the array API does not)
    if dtypes != cpu_dtypes:
        notes.append("dtype differs from the CPU: " + ", ".join(
            f"{k} {d} (CPU {c})" for k, d, c in zip(device_out, dtypes, cpu_dtypes) if d != c))
    elif set(dtypes) != {dtype}:
        notes.append("float64 " + ", ".join(k for k, d in zip(device_out, dtypes)
                                            if d != dtype) + " (as on the CPU)")
    limit = CHAIN_LIMIT_FLOAT32 if dtype == "float32" and "chain" in name else LIMITS[dtype]
    cpu_err = max(_rel_err(cpu_out[k], reference_out[k]) for k in reference_out)
    if not np.isfinite(errors[worst]):
        notes.append(f"{worst}: shape or non-finite entries differ from the CPU")
    # None, not Infinity, in the JSON
    finite_or_none = lambda e: float(e) if np.isfinite(e) else None
    return {"name": name, "dtype": dtype, "max_rel_err": finite_or_none(errors[worst]),
            "worst": worst, "cpu_rel_err": finite_or_none(cpu_err), "limit": limit,
            "passed": bool(errors[worst] <= limit and on_device), "note": "; ".join(notes)}


def _guarded(name, dtype, check, *args):
    """``check(*args)``; an exception becomes a failed row (the run goes on)."""
    try:
        return check(*args)
    except Exception as e:  # noqa: BLE001 - reported in the row, the script continues
        return {"name": name, "dtype": dtype, "max_rel_err": None, "worst": None,
                "cpu_rel_err": None, "limit": LIMITS[dtype], "passed": False,
                "note": f"{type(e).__name__}: {e}"[:300]}


def _both_directions(bijector, x, y):
    fwd, log_det = bijector.forward(x)
    inv, log_det_inv = bijector.inverse(y)
    return {"forward": fwd, "forward log-det": log_det, "inverse": inv,
            "inverse log-det": log_det_inv}


def check_bijector(device, name, build, dtype, seed):
    """Forward and inverse of one bijector: device vs CPU float64 (and the CPU at
    ``dtype``, for comparison)."""
    np_dtype = np.dtype(dtype).type
    ref_cast, dev_cast = _caster(np_dtype, True), _caster(np_dtype, False)
    reference, x = build(np.random.default_rng(seed), ref_cast)
    cpu = build(np.random.default_rng(seed), dev_cast)[0]
    y = reference.forward(ref_cast(x))[0]
    reference_out = _both_directions(reference, ref_cast(x), ref_cast(y))
    cpu_out = _both_directions(cpu, dev_cast(x), dev_cast(y))
    device_out = _both_directions(cpu.to(device.target), device.move(dev_cast(x)),
                                  device.move(dev_cast(y)))
    device.synchronize()
    return _row(name, dtype, device_out, cpu_out, reference_out)


def _perturbed(params, rng, spread=0.1):
    """Every floating parameter of a CONF model moved by N(0, spread^2): non-zero
    conditioner outputs, S-Log scales a != a', ActNorm and 1x1 layers off their start
    (larger moves make the expanding S-Log gates overflow on the data's tails)."""
    def move(a):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a + spread * rng.normal(size=a.shape)
        return a

    return backend.map_leaves(move, params)


def _conf_model(dim, kind, mixing, steps, hidden, seed, perturb=True):
    """A CONF model, data-initialised parameters (float64; ``perturb``: moved off the
    identity by :func:`_perturbed`) and the data."""
    rng = np.random.default_rng(seed)
    model = conf(dim, steps=steps, m=2, hidden=hidden, kind=kind, mixing=mixing)
    x = rng.laplace(size=(256, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim)
    params = model.init_params(x, random_state=seed)
    return model, _perturbed(params, rng) if perturb else params, x


def check_conf(device, dim, kind, mixing, dtype, seed):
    """``log_prob`` and ``sample`` (same seed) of a perturbed CONF model: device vs CPU
    float64 (and the CPU at ``dtype``)."""
    np_dtype = np.dtype(dtype).type
    model, params, x = _conf_model(dim, kind, mixing, 3, (16, 16), seed)
    ref_cast, dev_cast = _caster(np_dtype, True), _caster(np_dtype, False)
    reference = model.build(backend.map_leaves(ref_cast, params), engine="numpy")
    cpu = model.build(backend.map_leaves(dev_cast, params), engine="numpy")
    flow = device.build(model, backend.map_leaves(dev_cast, params))
    x = x[:BATCH]
    name = f"CONF {kind} D={dim} {mixing}"
    log_prob = {"log_prob": flow.log_prob(device.move(dev_cast(x)))}
    device.synchronize()
    sample = {"sample": flow.sample(BATCH, random_state=seed)}
    device.synchronize()
    return [
        _row(f"{name} log_prob", dtype, log_prob, {"log_prob": cpu.log_prob(dev_cast(x))},
             {"log_prob": reference.log_prob(ref_cast(x))}),
        _row(f"{name} sample", dtype, sample, {"sample": cpu.sample(BATCH, random_state=seed)},
             {"sample": reference.sample(BATCH, random_state=seed)}),
    ]


def correctness(device):
    rows = []
    for dtype in ("float64", "float32"):
        for i, (name, build) in enumerate(CASES.items()):
            rows.append(_guarded(name, dtype, check_bijector, device, name, build, dtype,
                                 1000 + i))
        for j, (dim, kind, mixing) in enumerate([(7, "symmetric", "1x1"),
                                                 (8, "symmetric", "permutation"),
                                                 (7, "circular", "permutation"),
                                                 (8, "circular", "1x1")]):
            name = f"CONF {kind} D={dim} {mixing}"
            result = _guarded(name, dtype, check_conf, device, dim, kind, mixing, dtype,
                              2000 + j)
            rows.extend(result if isinstance(result, list) else [result])
    return rows


# --- throughput --------------------------------------------------------------------------


def _timed(call, synchronize, repeats):
    """``(median seconds, runs)``: a first run (plans, compilation), then the median of
    ``repeats`` runs when the first took under 2 s."""
    def once():
        synchronize()
        start = time.perf_counter()
        call()
        synchronize()
        return time.perf_counter() - start

    first = once()
    if first >= 2.0 or repeats < 1:
        return first, 1
    return statistics.median(once() for _ in range(repeats)), repeats


def _chunked(n, dim, chunk_elements):
    rows = max(1, chunk_elements // dim)
    return [(i, min(n, i + rows)) for i in range(0, n, rows)]


def _log_prob_call(flow, x, chunks):
    return lambda: [flow.log_prob(x[a:b, ...]) for a, b in chunks]


def _sample_call(sample, chunks):
    """``sample(n, random_state)`` per chunk, seeded by the chunk's index."""
    return lambda: [sample(b - a, k) for k, (a, b) in enumerate(chunks)]


def throughput(device, args, started):
    """Timing rows for every dimension, operation and batch (see the module docstring)."""
    rows = []
    for dim in args.dims:
        label = f"D={dim}" + (" (32x32 image)" if dim == 1024 else "")
        dim_rows = [{"dim": dim, "label": label, "op": op, "batch": n, "device_s": None,
                     "device_runs": 0, "cpu_s": None, "cpu_runs": 0, "status": "ok"}
                    for op in ("log_prob", "sample") for n in args.batches]
        rows.extend(dim_rows)
        try:
            _time_model(device, args, started, dim, dim_rows)
        except Exception as e:  # noqa: BLE001 - e.g. out of device memory while building
            for row in dim_rows:
                if row["status"] == "ok" and row["device_s"] is None:
                    row["status"] = f"error: {type(e).__name__}: {e}"[:300]
        for row in dim_rows:
            row.update(_rates(row))
    return rows


def _time_model(device, args, started, dim, dim_rows):
    def over_budget():
        return time.perf_counter() - started > args.budget_s

    if over_budget():
        for row in dim_rows:
            row["status"] = f"skipped (budget {args.budget_s:.0f} s spent)"
        return
    # data-initialised, unperturbed: the cost does not depend on the values, and a
    # million base samples reach tails where a perturbed model's gates overflow
    model, params, x_init = _conf_model(dim, "symmetric", "reverse", args.steps, (64, 64),
                                        seed=dim, perturb=False)
    flows = {"device": device.build(model, params), "cpu": model.build(params, engine="numba")}
    samplers = {where: (lambda n, seed, flow=flow: flow.sample(n, random_state=seed))
                for where, flow in flows.items()}
    for where, flow in flows.items():  # compile kernels (numba JIT, CUDA kernels) once
        flow.log_prob(device.move(x_init[:8]) if where == "device" else x_init[:8])
        samplers[where](8, 0)
    device.synchronize()
    # random rows repeated up to the largest batch (the values do not change the cost;
    # drawing 1e9 normals would take seconds of the budget)
    block = np.random.default_rng(dim).normal(size=(min(max(args.batches), 2**16), dim))
    x_host = np.resize(block, (max(args.batches), dim))
    cpu_prediction = {}  # op -> seconds per sample of its last CPU run
    for row in dim_rows:
        op, n = row["op"], row["batch"]
        if over_budget():
            row["status"] = f"skipped (budget {args.budget_s:.0f} s spent)"
            continue
        chunks = _chunked(n, dim, args.chunk_elements)
        try:
            if op == "log_prob":
                x_dev = device.move(x_host[:n])
                device.synchronize()
                call = _log_prob_call(flows["device"], x_dev, chunks)
            else:
                call = _sample_call(samplers["device"], chunks)
            row["device_s"], row["device_runs"] = _timed(call, device.synchronize,
                                                         args.repeats)
            call = x_dev = None  # free the device copy before the next batch
            predicted = cpu_prediction.get(op, 0.0) * n
            if predicted > args.cpu_limit_s:
                row["status"] = (f"cpu skipped (predicted {predicted:.0f} s > "
                                 f"{args.cpu_limit_s:.0f} s)")
            elif over_budget():
                row["status"] = "cpu skipped (budget)"
            else:
                call = (_log_prob_call(flows["cpu"], x_host[:n], chunks) if op == "log_prob"
                        else _sample_call(samplers["cpu"], chunks))
                row["cpu_s"], row["cpu_runs"] = _timed(call, lambda: None, args.repeats)
                cpu_prediction[op] = row["cpu_s"] / n
        except Exception as e:  # noqa: BLE001 - e.g. out of device memory
            row["status"] = f"error: {type(e).__name__}: {e}"[:300]
        print(f"  {row['label']:20s} {op:8s} n={n:>8d}: device {_fmt_s(row['device_s'])}, "
              f"cpu {_fmt_s(row['cpu_s'])}  {row['status']}", flush=True)


def _rates(row):
    n = row["batch"]
    dev = n / row["device_s"] if row["device_s"] else None
    cpu = n / row["cpu_s"] if row["cpu_s"] else None
    return {"device_per_s": dev, "cpu_per_s": cpu,
            "ratio": dev / cpu if dev and cpu else None}


def _fmt_s(t):
    return "-" if t is None else f"{t:.4f} s"


# --- report ------------------------------------------------------------------------------


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def markdown(report):
    dry = report["device_kind"] == "strict"
    lines = [f"# GPU check ({report['when']})", "",
             f"Device: {report['device']}. CPU: {report['machine']}.", "",
             "## Correctness (device vs CPU float64; CPU err: the CPU at the same dtype)", "",
             "| check | dtype | max rel err | worst output | limit | pass | CPU err | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["correctness"]:
        lines.append(f"| {r['name']} | {r['dtype']} | {_fmt(r['max_rel_err'], '.2e')} | "
                     f"{r['worst'] or '-'} | {r['limit']:.0e} | "
                     f"{'yes' if r['passed'] else 'NO'} | {_fmt(r['cpu_rel_err'], '.2e')} | "
                     f"{r['note']} |")
    title = ("## Throughput (DRY RUN on array_api_strict: these timings measure nothing)" if dry
             else "## Throughput (float64, samples/s; ratio = device / numba CPU)")
    lines += ["", title, "",
              ("| model | op | batch | device s | device /s | numba CPU s | CPU /s | ratio | "
               "status |"), "|---|---|---|---|---|---|---|---|---|"]
    for r in report["throughput"]:
        lines.append(f"| {r['label']} | {r['op']} | {r['batch']:,} | {_fmt(r['device_s'], '.4f')}"
                     f" | {_fmt(r['device_per_s'], ',.0f')} | {_fmt(r['cpu_s'], '.4f')} | "
                     f"{_fmt(r['cpu_per_s'], ',.0f')} | {_fmt(r['ratio'], '.1f')}"
                     f"{'' if r['ratio'] is None else 'x'} | {r['status']} |")
    verdict = "all passed" if report["passed"] else "FAILED: " + ", ".join(report["failures"])
    lines += ["", "Seconds per section: " + ", ".join(
        f"{k} {v:.1f}" for k, v in report["seconds"].items()), "", f"Correctness: {verdict}"]
    return "\n".join(lines) + "\n"


def _write_json(path, report):
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(json.dumps(report, indent=1).encode())


def _ints(text):
    return [int(float(t)) for t in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cupy", "strict"), default="cupy")
    parser.add_argument("--out", default=str(ROOT / "validation" / "out" / "gpu_check.json"))
    parser.add_argument("--dims", type=_ints, default=None,
                        help="throughput dimensions (default 8,64,1024)")
    parser.add_argument("--batches", type=_ints, default=None,
                        help="throughput batches (default 1e4,1e5,1e6; strict: 1e2,1e3)")
    parser.add_argument("--steps", type=int, default=4, help="CONF steps of the timed model")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median)")
    parser.add_argument("--cpu-limit-s", type=float, default=10.0,
                        help="run the CPU on a batch only if predicted under this")
    parser.add_argument("--budget-s", type=float, default=240.0,
                        help="skip the remaining throughput rows after this many seconds")
    parser.add_argument("--chunk-elements", type=int, default=2**26,
                        help="at most this many numbers (rows x D) per call")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    strict = args.device == "strict"
    args.dims = args.dims or [8, 64, 1024]
    args.batches = sorted(args.batches or ([100, 1000] if strict else [10**4, 10**5, 10**6]))

    started = time.perf_counter()
    try:
        device = Device(args.device)
    except (EngineUnavailableError, ImportError) as e:
        print(f"gpu_check: the {args.device} device is not available: {e}", file=sys.stderr)
        return 2
    print(f"device: {device.description}", flush=True)
    report = {"claim": __doc__.split("\n\n")[0].replace("\n", " "),
              "when": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:],
              "device_kind": args.device, "device": device.description,
              "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, numpy "
                         f"{np.__version__}",
              "limits": dict(LIMITS, float32_chains=CHAIN_LIMIT_FLOAT32), "seconds": {},
              "config": {k: v for k, v in vars(args).items() if k != "out"}}

    print("correctness", flush=True)
    t = time.perf_counter()
    report["correctness"] = correctness(device)
    report["seconds"]["correctness"] = time.perf_counter() - t
    print(f"  {len(report['correctness'])} checks in {report['seconds']['correctness']:.1f} s",
          flush=True)

    report["throughput"] = []
    if not args.skip_throughput:
        print("throughput" + (" (dry run: timings measure nothing)" if strict else ""),
              flush=True)
        t = time.perf_counter()
        report["throughput"] = throughput(device, args, started)
        report["seconds"]["throughput"] = time.perf_counter() - t
        print(f"  {report['seconds']['throughput']:.1f} s", flush=True)
    report["seconds"]["total"] = time.perf_counter() - started
    report["failures"] = [f"{r['name']} ({r['dtype']})" for r in report["correctness"]
                          if not r["passed"]]
    report["passed"] = not report["failures"]
    _write_json(Path(args.out), report)
    print()
    print(markdown(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
