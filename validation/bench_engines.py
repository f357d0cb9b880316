"""Claim: ``engine="numba"`` trains and samples CONF faster than the readable engine and
than zuko's MAF/RealNVP of comparable size. Targets (checked, exit code 1 if one is
missed):

1. training step (D = 8, batch 512, 5 steps of m = 2, MLP 2 x 64, tanh) of the numba
   engine <= 0.8 x zuko MAF's step time, each precision against the same precision
   (float32, zuko's default; float64, refconf's);
2. the numba engine's training step >= 4 x faster than the numpy engine's (float64);
3. sampling throughput at D = 44 >= 10 x zuko MAF's, precision against precision;
4. cold start (interpreter start, ``import refconf``, build, first training step) with a
   warm JIT cache < 3 s.

How it measures
---------------
* Training step: refconf's own loop, :func:`refconf.train.fit`, on 512 samples with
  ``batch_size=512``, so each epoch is one Adam step and the epoch time fit records is the
  step time (shuffle, flatten/unflatten of the parameters, forward, backward, clipping,
  update). zuko: ``-flow().log_prob(batch).mean()``, ``backward()``, ``Adam.step()`` on a
  fresh permutation each step. zuko runs in float32 (its default) and float64; the numba
  engine in float64 (refconf's default) and float32 (``ConfDensity(dtype="float32")``:
  parameters and data cast, as the estimator does).
* Every configuration runs in its own processes (--repeats of them, round-robin over
  the configurations so that a slow spell of the machine hits all of them alike), with
  OPENBLAS/OMP/MKL/NUMBA threads pinned (torch.set_num_threads too), glibc's malloc trim
  and mmap thresholds raised (GLIBC_TUNABLES) and ``gc.freeze()`` after the imports; each
  process warms up, then times --steps steps. A figure is the median over all timed steps
  of all processes; the spread is the 10-90 % range of the per-process medians. Wall
  time (perf_counter) is the figure; CPU time of the process (process_time) is reported
  too, because this machine is shared and wall time on it includes waiting.
* Sampling: ``flow.sample(n)`` (row blocks in NUMBA_NUM_THREADS threads; zuko:
  ``flow().sample((n,))`` without gradients), n =
  10,000, throughput = n / median time.
* Cold start: a fresh interpreter per run; "cold" points NUMBA_CACHE_DIR at an empty
  folder, "warm" at one a previous run filled.
* The load average (os.getloadavg) is recorded before and after each section.

Options: --quick (tiny sizes, a smoke run; targets not checked), --skip-peers,
--skip-cold, --threads 1,2, --crossover (matrix vs FFT transform break-even),
--parallel (serial vs prange-parallel kernels), --profile (where the numba step's time
goes, per kernel, and the floor: FLOPs of the step over measured GEMM peak).

Writes ``bench_engines.json`` and ``bench_engines.md`` to --out (atomically).

Run::

    python validation/bench_engines.py --profile            # about 10 minutes
    python validation/bench_engines.py --quick --out /tmp/bench

zuko and torch are the optional ``bench`` extra (``pip install -e ".[bench]"``); without
them the peer rows are skipped.
"""

import argparse
import functools
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")
MALLOC = "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=1073741824"
TARGETS = {"train_vs_maf": 0.8, "train_speedup_vs_numpy": 4.0, "sample_vs_maf": 10.0,
           "cold_start_warm_cache_s": 3.0}


# --- workers (each runs in its own process) ---------------------------------------------


def _data(n, dim, seed=0):
    """Correlated, non-Gaussian data: a random linear map of Laplace noise."""
    rng = np.random.default_rng(seed)
    return rng.laplace(size=(n, dim)) @ rng.normal(size=(dim, dim)) / np.sqrt(dim)


def _refconf_model(cfg):
    from refconf.flows import conf

    return conf(cfg["dim"], steps=cfg["flow_steps"], m=cfg["m"], hidden=tuple(cfg["hidden"]),
                kind=cfg["kind"])


def _in_dtype(params, dtype):
    """The parameters cast to ``dtype``, as ``ConfDensity(dtype=...)`` does."""
    from refconf.params import tree_map

    return tree_map(lambda a: np.asarray(a, dtype=dtype), params)


def _train_refconf(cfg):
    from refconf.train import fit, nll_objective

    engine = cfg["impl"].split("-")[1]
    X = _data(cfg["batch"], cfg["dim"]).astype(cfg["dtype"])
    model = _refconf_model(cfg)
    params = _in_dtype(model.init_params(X, random_state=0), cfg["dtype"])
    loss, gradient = nll_objective(model, engine)  # as ConfDensity.fit trains

    def run(epochs, params):
        return fit(loss, params, X, epochs=epochs, batch_size=cfg["batch"],
                   learning_rate=1e-3, clip_norm=10.0, random_state=0, progress=False,
                   gradient=gradient)

    params = run(cfg["warmup"], params).params
    gc.freeze()
    cpu = time.process_time()
    result = run(cfg["steps"], params)
    cpu = (time.process_time() - cpu) / cfg["steps"]
    return {"wall": [r["seconds"] for r in result.history], "cpu_mean": cpu}


def _torch_setup(cfg):
    import torch

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    return torch, getattr(torch, cfg["dtype"])


def _zuko_flow(cfg, dim):
    import zuko

    kind = {"zuko-maf": zuko.flows.MAF, "zuko-realnvp": zuko.flows.RealNVP}[cfg["impl"]]
    return kind(dim, transforms=cfg["flow_steps"], hidden_features=tuple(cfg["hidden"]))


def _train_zuko(cfg):
    torch, dtype = _torch_setup(cfg)
    X = torch.as_tensor(_data(cfg["batch"], cfg["dim"]), dtype=dtype)
    flow = _zuko_flow(cfg, cfg["dim"]).to(dtype)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)

    def step():
        batch = X[torch.randperm(len(X))]
        loss = -flow().log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
        optimizer.step()

    for _ in range(cfg["warmup"]):
        step()
    gc.freeze()
    wall, cpu = [], time.process_time()
    for _ in range(cfg["steps"]):
        start = time.perf_counter()
        step()
        wall.append(time.perf_counter() - start)
    return {"wall": wall, "cpu_mean": (time.process_time() - cpu) / cfg["steps"]}


def _sample_refconf(cfg):
    engine = cfg["impl"].split("-")[1]
    model = _refconf_model(cfg)
    params = _in_dtype(model.init_params(_data(4096, cfg["dim"]), random_state=0), cfg["dtype"])
    flow = model.build(params, engine=engine)  # samples in the parameters' dtype
    flow.sample(cfg["n_samples"], random_state=0)
    gc.freeze()
    return _time_calls(lambda i: flow.sample(cfg["n_samples"], random_state=i), cfg["steps"])


def _sample_zuko(cfg):
    torch, dtype = _torch_setup(cfg)
    flow = _zuko_flow(cfg, cfg["dim"]).to(dtype)
    with torch.no_grad():
        flow().sample((cfg["n_samples"],))
        gc.freeze()
        return _time_calls(lambda i: flow().sample((cfg["n_samples"],)), cfg["steps"])


def _time_calls(call, repeats):
    wall, cpu = [], time.process_time()
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        wall.append(time.perf_counter() - start)
    return {"wall": wall, "cpu_mean": (time.process_time() - cpu) / repeats}


COLD_START = """
import json, time
start = time.perf_counter()
from refconf.flows import conf
from refconf.train import fit, nll_objective
imported = time.perf_counter()
X = __import__("numpy").random.default_rng(0).normal(size=(512, {dim}))
model = conf({dim}, steps={flow_steps}, m={m}, hidden={hidden})
loss, gradient = nll_objective(model, "{engine}")
fit(loss, model.init_params(X, random_state=0), X, epochs=1, batch_size=512,
    progress=False, gradient=gradient)
done = time.perf_counter()
print(json.dumps({{"import": imported - start, "first_step": done - imported}}))
"""


# --- the parent: run workers, collect, summarise ----------------------------------------


def _env(threads, cache_dir=None):
    env = dict(os.environ, GLIBC_TUNABLES=MALLOC, PYTHONPATH=str(ROOT))
    env.update({var: str(threads) for var in THREAD_VARS})
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return env


def _run_worker(cfg):
    result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)],
                            capture_output=True, text=True, env=_env(cfg["threads"]),
                            cwd=ROOT, check=False, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"worker {cfg['impl']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _summary(runs):
    """Median over all timed calls; spread = 10-90 % range of the per-process medians."""
    per_process = [statistics.median(r["wall"]) for r in runs]
    every = [t for r in runs for t in r["wall"]]
    return {"median": statistics.median(every),
            "p10": float(np.percentile(per_process, 10)),
            "p90": float(np.percentile(per_process, 90)),
            "cpu": statistics.median(r["cpu_mean"] for r in runs),
            "processes": len(runs), "calls": len(every)}


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def measure(task, impls, base, args):
    """One row per (threads, implementation, dtype). The processes run round-robin,
    one of each configuration per round, so that a slow spell of this shared machine
    falls on all configurations alike rather than on the few that ran through it."""
    configs = [dict(base, task=task, impl=impl, dtype=dtype, threads=threads)
               for threads in args.threads for impl, dtype in impls]
    runs = [[] for _ in configs]
    for _ in range(args.repeats):
        for cfg, done in zip(configs, runs):
            done.append(_run_worker(cfg))
    rows = []
    for cfg, done in zip(configs, runs):
        row = dict(impl=cfg["impl"], dtype=cfg["dtype"], threads=cfg["threads"],
                   **_summary(done))
        rows.append(row)
        unit = "ms" if task == "train" else "s"
        scale = 1e3 if task == "train" else 1.0
        print(f"  {task:6s} {row['impl']:14s} {row['dtype']:8s} {row['threads']} thr: median "
              f"{scale * row['median']:9.3f} {unit} (10-90%: {scale * row['p10']:.3f}-"
              f"{scale * row['p90']:.3f}; cpu {scale * row['cpu']:.3f})", flush=True)
    return rows


def cold_start(base, args):
    """Interpreter + import + first training step, fresh process each run."""
    rows = []
    with tempfile.TemporaryDirectory() as warm_dir:
        warm_dir = Path(warm_dir)
        _one_cold(base, "numba", warm_dir)  # fills the warm cache
        for engine, state in (("numpy", "-"), ("numba", "cold"), ("numba", "warm")):
            totals, parts = [], []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as cold_dir:
                    cache = warm_dir if state != "cold" else Path(cold_dir)
                    total, inner = _one_cold(base, engine, cache)
                totals.append(total)
                parts.append(inner)
            row = {"engine": engine, "cache": state, "median": statistics.median(totals),
                   "min": min(totals), "max": max(totals),
                   "import": statistics.median(p["import"] for p in parts),
                   "first_step": statistics.median(p["first_step"] for p in parts)}
            rows.append(row)
            print(f"  cold start {engine:5s} cache {state:4s}: median {row['median']:.2f} s "
                  f"(import refconf {row['import']:.2f} s, first step {row['first_step']:.2f} s;"
                  f" range {row['min']:.2f}-{row['max']:.2f})", flush=True)
    return rows


def _one_cold(base, engine, cache):
    code = COLD_START.format(engine=engine, **{k: base[k] for k in ("dim", "flow_steps", "m")},
                             hidden=tuple(base["hidden"]))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(2, cache), cwd=ROOT, check=False, timeout=600)
    total = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"cold start run failed:\n{result.stderr[-3000:]}")
    return total, json.loads(result.stdout.strip().splitlines()[-1])


# --- optional analyses (in this process) ------------------------------------------------


def _median_time(call, repeats=50, clock=time.perf_counter):
    call()
    times = []
    for _ in range(repeats):
        start = clock()
        call()
        times.append(clock() - start)
    return statistics.median(times)


def crossover(args):
    """Matrix vs FFT transforms (conv + its VJP), CPU-time ratio per length, one BLAS
    thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _crossover(args)


def _crossover(args):
    from refconf.bijectors._step_kernels_numba import CompiledMatrixTransforms, NumpyFFTTransforms

    rng = np.random.default_rng(0)
    table = {}
    lengths = [8, 16, 32] if args.quick else [8, 16, 32, 48, 64, 96, 129, 160, 200, 257, 513]
    for kind in ("symmetric", "circular"):
        for B in (512, 4096):
            ratios = {}
            for L in lengths:
                h = rng.normal(size=(B, L))
                nb = L if kind == "symmetric" else L // 2 + 1
                w = rng.normal(size=(B, nb)) + (0 if kind == "symmetric" else 1j)
                times = [_median_time(functools.partial(_conv_and_vjp, ops, h, w), 20,
                                      time.process_time)
                         for ops in (CompiledMatrixTransforms(kind, L, h.dtype),
                                     NumpyFFTTransforms(kind, L, h.dtype))]
                ratios[L] = times[0] / times[1]
            table[f"{kind} B={B}"] = ratios
            print(f"  matrix/FFT time, {kind:9s} B={B:5d}: "
                  + ", ".join(f"L={L} {r:.2f}" for L, r in ratios.items()), flush=True)
    return table


def _conv_and_vjp(ops, h, w):
    u, U = ops.conv(h, w)
    return ops.conv_vjp(u, w, U)


def parallel(args):
    """The compiled kernels serial (as shipped) vs recompiled with parallel=True (prange
    over the batch rows)."""
    import numba

    from refconf import _conditioners_numba
    from refconf.bijectors import _elementwise_numba

    kernels = {"slog_gates_vjp": _elementwise_numba, "slog_gates_inverse_vjp": _elementwise_numba,
               "activation_vjp": _conditioners_numba}

    rng = np.random.default_rng(0)
    rows = []
    shapes = ((512, 4), (4096, 22)) if args.quick else ((512, 4), (512, 22), (16384, 22))
    for B, L in shapes:
        a, b, c = (rng.normal(size=(B, L)) for _ in range(3))
        s = np.exp(0.3 * rng.normal(size=(B, L)))
        calls = {"slog_gates_vjp": (a, b[:, 0].copy(), c, np.tanh(c), a, s, 0.7, 1.3),
                 "slog_gates_inverse_vjp": (a, b[:, 0].copy(), c, np.tanh(c), a, s, 0.7, 1.3),
                 "activation_vjp": (a, np.tanh(b), True)}
        for name, kernel_args in calls.items():
            serial = getattr(kernels[name], name)
            threaded = numba.njit(parallel=True)(serial.py_func)
            threaded(*kernel_args)
            t_serial = _median_time(functools.partial(serial, *kernel_args), 50)
            t_par = _median_time(functools.partial(threaded, *kernel_args), 50)
            rows.append({"kernel": name, "B": B, "L": L, "serial_us": 1e6 * t_serial,
                         "parallel_us": 1e6 * t_par, "threads": numba.get_num_threads()})
            print(f"  {name:22s} B={B:5d} L={L:3d}: serial {1e6 * t_serial:8.1f} us, "
                  f"parallel ({numba.get_num_threads()} thr) {1e6 * t_par:8.1f} us", flush=True)
    return rows


def profile(base, args):
    """Where the numba engine's training step goes, and its floor: measured in a worker
    process with one thread, like the training rows (:func:`_profile_worker`)."""
    result = _run_worker(dict(base, task="profile", impl="refconf-numba", threads=1,
                              quick=args.quick))
    for key, value in result.items():
        if key == "floor":
            f = value
            print(f"  floor: {f['gemm_flops_per_step'] / 1e6:.1f} MFLOP of GEMM per step at the "
                  f"measured dgemm peak {f['dgemm_peak_flops'] / 1e9:.1f} GFLOP/s = "
                  f"{1e3 * f['gemm_floor_s']:.2f} ms; {f['tanh_count']} tanh at "
                  f"{f['tanh_per_s'] / 1e9:.2f} G/s = {1e3 * f['tanh_floor_s']:.2f} ms")
        else:
            print(f"  {key:72s} {1e3 * value:8.3f} ms (CPU)")
    return result


def _profile_worker(base):
    import autograd.numpy as anp
    from autograd import value_and_grad

    from refconf import _conditioners_numba as compiled_mlp
    from refconf.bijectors import _step_kernels_numba as compiled_step
    from refconf.engines import nll_and_grad
    from refconf.params import flatten, ravel
    from refconf.train import adam_step_inplace

    clock = time.process_time
    result = {}
    gc.freeze()
    X = _data(base["batch"], base["dim"])
    model = _refconf_model(base)
    params = model.init_params(X, random_state=0)
    x, unflatten = flatten(params)
    repeats = 5 if base["quick"] else 40
    readable = value_and_grad(
        lambda x: -anp.mean(model.build(unflatten(x), engine="numpy").log_prob(X)))
    result["objective: numpy engine (autograd)"] = _median_time(
        functools.partial(readable, x), repeats, clock)
    result["objective: numba engine (explicit pass)"] = _median_time(
        lambda: ravel(nll_and_grad(model, unflatten(x), X)[1]), repeats, clock)
    result["unflatten + ravel of the gradient"] = _median_time(
        lambda: ravel(unflatten(x)), repeats, clock)
    g, m_, v_ = np.full_like(x, 1e-3), np.zeros_like(x), np.zeros_like(x)
    result["Adam update (compiled, in place)"] = _median_time(
        lambda: adam_step_inplace(np, x.copy(), g, m_, v_, 10, 1e-3), repeats, clock)

    # one coupling step's kernels at the benchmark's shapes
    rng = np.random.default_rng(0)
    d1 = base["dim"] // 2
    d2 = base["dim"] - d1
    m, B = base["m"], base["batch"]
    cond = params["steps"][0]["coupling"]["conditioner"]
    base_half = rng.normal(size=(B, d1))
    Ws, bs = [layer["W"] for layer in cond], [layer["b"] for layer in cond]
    out, hidden = compiled_mlp.mlp_forward(base_half, "tanh", Ws, bs)
    g_out = rng.normal(size=out.shape)
    result["mlp forward (BLAS + NumPy tanh), per coupling"] = _median_time(
        lambda: compiled_mlp.mlp_forward(base_half, "tanh", Ws, bs), 200, clock)
    result["mlp backward (BLAS + compiled tanh VJP), per coupling"] = _median_time(
        lambda: compiled_mlp.mlp_backward(g_out, [base_half, *hidden], Ws, "tanh"), 200, clock)
    x2, w, s, t = (rng.normal(size=(B, d2)), np.exp(0.3 * rng.normal(size=(m, B, d2))),
                   np.exp(0.3 * rng.normal(size=(m, B, d2))), rng.normal(size=(B, d2)))
    alpha = np.ones(m)
    ops = compiled_step.step_transforms("symmetric", d2, x2.dtype)
    y2, _, saved = compiled_step.step_forward(x2, w, s, t, alpha, alpha, "symmetric", "inf")
    gl = np.full(B, -1.0 / B)
    result["conf_step forward (NumPy log1p/expm1 + compiled gate pass), per coupling"] = _median_time(
        lambda: compiled_step.step_forward(x2, w, s, t, alpha, alpha, "symmetric", "inf"), 200, clock)
    result["conf_step backward (one compiled VJP per layer), per coupling"] = _median_time(
        lambda: compiled_step.step_backward(y2, gl, w, s, alpha, alpha, saved, ops), 200, clock)

    # the floor: GEMM FLOPs of the step over measured peak, transcendentals over
    # NumPy's measured rate
    widths = [d1, *base["hidden"], (2 * m + 1) * d2]
    macs = B * sum(a * b for a, b in itertools.pairwise(widths))
    flops = 2 * 3 * macs * base["flow_steps"]  # forward, grad of W, grad of input
    n = 1024
    A = rng.normal(size=(n, n))
    peak = 2 * n**3 / _median_time(lambda: A @ A, 5, clock)
    hidden = rng.normal(size=(B, base["hidden"][0]))
    tanh_rate = hidden.size / _median_time(lambda: np.tanh(hidden), 200, clock)
    n_tanh = B * sum(base["hidden"]) * base["flow_steps"]
    result["floor"] = {"gemm_flops_per_step": flops, "dgemm_peak_flops": peak,
                       "gemm_floor_s": flops / peak, "tanh_count": n_tanh,
                       "tanh_per_s": tanh_rate, "tanh_floor_s": n_tanh / tanh_rate}
    return result


WORKERS = {("train", "refconf"): _train_refconf, ("train", "zuko"): _train_zuko,
           ("sample", "refconf"): _sample_refconf, ("sample", "zuko"): _sample_zuko,
           ("profile", "refconf"): _profile_worker}


def worker(spec):
    cfg = json.loads(spec)
    print(json.dumps(WORKERS[cfg["task"], cfg["impl"].split("-")[0]](cfg)))


# --- report -------------------------------------------------------------------------------


def _pick(rows, impl, dtype, threads):
    for row in rows:
        if (row["impl"], row["dtype"], row["threads"]) == (impl, dtype, threads):
            return row
    return None


def targets(report, thread_counts):
    """Each target at each thread count (a target is met only where every count meets
    it; the machine is shared, so both are shown)."""
    checks = []
    train, sample = report.get("train", []), report.get("sample", [])
    for threads, dtype in itertools.product(thread_counts, ("float32", "float64")):
        # like for like: the same precision on both sides
        nb = _pick(train, "refconf-numba", dtype, threads)
        maf = _pick(train, "zuko-maf", dtype, threads)
        s_nb = _pick(sample, "refconf-numba", dtype, threads)
        s_maf = _pick(sample, "zuko-maf", dtype, threads)
        if nb and maf:
            checks.append((f"numba step / zuko MAF step, {dtype}, {threads} thr",
                           nb["median"] / maf["median"], "<=", TARGETS["train_vs_maf"]))
        if s_nb and s_maf:
            checks.append((f"sampling throughput numba / zuko MAF, {dtype}, {threads} thr",
                           s_maf["median"] / s_nb["median"], ">=", TARGETS["sample_vs_maf"]))
    for threads in thread_counts:
        nb = _pick(train, "refconf-numba", "float64", threads)
        npy = _pick(train, "refconf-numpy", "float64", threads)
        if nb and npy:
            checks.append((f"numpy engine step / numba step, float64, {threads} thr",
                           npy["median"] / nb["median"], ">=",
                           TARGETS["train_speedup_vs_numpy"]))
    warm = [r for r in report.get("cold_start", []) if r["cache"] == "warm"]
    if warm:
        checks.append(("cold start with a warm cache (s)", warm[0]["median"], "<",
                       TARGETS["cold_start_warm_cache_s"]))
    out = []
    for name, value, op, limit in checks:
        met = value <= limit if op == "<=" else value >= limit if op == ">=" else value < limit
        out.append({"target": name, "value": value, "op": op, "limit": limit, "met": bool(met)})
    return out


def markdown(report):
    lines = [f"# Engine benchmark ({report['when']})", "",
             (f"Machine: {report['machine']}; load average before/after each section: "
              f"{report['load']}"), ""]
    for task, unit, scale in (("train", "ms / step", 1e3), ("sample", "s / 10,000 samples", 1.0)):
        rows = report.get(task)
        if not rows:
            continue
        title = "Training step" if task == "train" else "Sampling"
        lines += [f"## {title} ({unit})", "",
                  ("| implementation | dtype | threads | median | 10-90 % of processes | CPU |"
                   " vs numba float64 |"), "|---|---|---|---|---|---|---|"]
        for row in rows:
            ref = _pick(rows, "refconf-numba", "float64", row["threads"])
            ratio = row["median"] / ref["median"] if ref else float("nan")
            lines.append(f"| {row['impl']} | {row['dtype']} | {row['threads']} | "
                         f"{scale * row['median']:.3f} | {scale * row['p10']:.3f}-"
                         f"{scale * row['p90']:.3f} | {scale * row['cpu']:.3f} | {ratio:.2f}x |")
        lines.append("")
    if report.get("cold_start"):
        lines += ["## Cold start (s): interpreter + import + first training step", "",
                  "| engine | JIT cache | median | range | import refconf | first step |",
                  "|---|---|---|---|---|---|"]
        for r in report["cold_start"]:
            lines.append(f"| {r['engine']} | {r['cache']} | {r['median']:.2f} | "
                         f"{r['min']:.2f}-{r['max']:.2f} | {r['import']:.2f} | "
                         f"{r['first_step']:.2f} |")
        lines.append("")
    if report.get("targets"):
        lines += ["## Targets", "", "| target | measured | limit | met |", "|---|---|---|---|"]
        for t in report["targets"]:
            lines.append(f"| {t['target']} | {t['value']:.2f} | {t['op']} {t['limit']} | "
                         f"{'yes' if t['met'] else 'NO'} |")
        lines.append("")
    if report.get("profile"):
        lines += ["## Where the numba training step goes (CPU ms, 1 thread)", ""]
        for key, value in report["profile"].items():
            if key != "floor":
                lines.append(f"- {key}: {1e3 * value:.3f}")
        f = report["profile"]["floor"]
        lines += [(f"- floor: {f['gemm_flops_per_step'] / 1e6:.1f} MFLOP of GEMM / "
                   f"{f['dgemm_peak_flops'] / 1e9:.1f} GFLOP/s = "
                   f"{1e3 * f['gemm_floor_s']:.2f} ms, plus {f['tanh_count']} tanh = "
                   f"{1e3 * f['tanh_floor_s']:.2f} ms"), ""]
    return "\n".join(lines) + "\n"


def _write(path, text):
    from refconf.params import atomic_write

    with atomic_write(path) as f:
        f.write(text.encode())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "validation" / "out" / "bench_engines"))
    parser.add_argument("--repeats", type=int, default=3, help="processes per configuration")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per process")
    parser.add_argument("--threads", default="2,1",
                        type=lambda s: [int(t) for t in s.split(",")])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no target check")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)

    base = {"dim": 8, "batch": 512, "flow_steps": 5, "m": 2, "hidden": [64, 64],
            "kind": "symmetric", "steps": args.steps, "warmup": 5}
    sample_base = dict(base, dim=44, n_samples=10000, steps=5)
    if args.quick:
        base.update(batch=64, flow_steps=2, hidden=[8], steps=3, warmup=1)
        sample_base.update(n_samples=200, flow_steps=2, hidden=[8], steps=2)
        args.repeats = 1
    try:
        import zuko  # noqa: F401
        peers = not args.skip_peers
    except ImportError:
        peers = False
        print("zuko/torch not installed (the 'bench' extra): peer rows skipped")

    report = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:],
              "machine": f"{os.cpu_count()} CPUs, {sys.platform}, Python "
                         f"{sys.version.split()[0]}, numpy {np.__version__}",
              "config": {"train": base, "sample": sample_base}, "load": []}
    ours = [("refconf-numpy", "float64"), ("refconf-numba", "float64"),
            ("refconf-numba", "float32")]
    theirs = [(impl, dt) for impl in ("zuko-maf", "zuko-realnvp")
              for dt in ("float32", "float64")] if peers else []

    print("training step", flush=True)
    report["load"].append(_load())
    report["train"] = measure("train", ours + theirs, base, args)
    report["load"].append(_load())
    print("sampling", flush=True)
    report["sample"] = measure("sample", [("refconf-numba", "float64"),
                                          ("refconf-numba", "float32"),
                                          ("refconf-numpy", "float64")]
                               + [t for t in theirs if t[0] == "zuko-maf"], sample_base, args)
    report["load"].append(_load())
    if not args.skip_cold:
        print("cold start", flush=True)
        report["cold_start"] = cold_start(base, args)
        report["load"].append(_load())
    if args.crossover:
        print("matrix vs FFT transforms", flush=True)
        report["crossover"] = crossover(args)
    if args.parallel:
        print("serial vs parallel kernels", flush=True)
        report["parallel"] = parallel(args)
    if args.profile:
        print("profile of the numba training step", flush=True)
        report["profile"] = profile(base, args)
    report["load"].append(_load())
    report["targets"] = [] if args.quick else targets(report, args.threads)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "bench_engines.json", json.dumps(report, indent=1, default=float))
    text = markdown(report)
    _write(out / "bench_engines.md", text)
    print()
    print(text)
    missed = [t for t in report["targets"] if not t["met"]]
    for t in missed:
        print(f"TARGET NOT MET: {t['target']} = {t['value']:.2f}, needs {t['op']} {t['limit']}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
