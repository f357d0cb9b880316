"""One runner for independent trials: serially, on joblib's processes, or on a Dask cluster.

A table is a set of trials (dataset x model x seed) that share nothing but their data, so
they run in any order and in any process. :func:`run_trials` runs every trial that has no
result yet:

- ``executor="serial"``: one after the other in this process (the default);
- ``executor="joblib"``: on ``jobs`` local worker processes (joblib's loky backend; large
  arrays reach the workers memory-mapped);
- ``executor="dask"``: on a Dask distributed cluster, the one at ``scheduler`` (an
  address such as ``tcp://10.0.0.5:8786``, for a cluster started with ``dask scheduler``
  and ``dask worker`` or any Dask deployment), or else a local cluster of ``jobs``
  single-threaded worker processes. Each dataset is sent to the cluster once. The
  workers need refconf installed; the data and the results stay with this process.

Results are kept per trial (:class:`TrialStore`): each finished trial is written at once,
atomically, as one JSON file, so a run that is interrupted, killed or fails part-way
resumes where it stopped when the same command is run again, and a file recorded under
another configuration is refused. The same seeds give the same numbers under every
executor: a trial takes its randomness from its own seed only and runs BLAS, OpenMP and
numba single-threaded in worker processes
(:func:`refconf.experiments.trials.run_trial`).
"""

import dataclasses
import json
import os
import sys

from joblib import cpu_count
from tqdm.auto import tqdm

from ..storage import atomic_write
from ..version import __version__
from .trials import MODELS, run_trial

__all__ = ["EXECUTORS", "RunnerOptions", "Task", "TrialStore", "run_trials"]

EXECUTORS = ("serial", "joblib", "dask")
_TRIAL_FORMAT = "refconf-trial"


@dataclasses.dataclass(frozen=True)
class RunnerOptions:
    """How the trials run: ``executor`` (one of :data:`EXECUTORS`), ``jobs`` (worker
    processes of joblib or of a local Dask cluster; default one per CPU core),
    ``scheduler`` (the address of an existing Dask cluster; ``executor="dask"`` only) and
    ``progress`` (a progress bar counting trials; in serial runs also the training's
    per-epoch bars)."""

    executor: str = "serial"
    jobs: int | None = None
    scheduler: str | None = None
    progress: bool = True

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.jobs is not None and (type(self.jobs) is not int or self.jobs < 1):
            raise ValueError(f"jobs must be a positive integer, got {self.jobs!r}")
        if self.scheduler is not None and self.executor != "dask":
            raise ValueError(f"a scheduler address ({self.scheduler}) needs the dask "
                             f"executor, got executor {self.executor!r}")

    def workers(self):
        """Worker processes to start: ``jobs``, else one per CPU core."""
        return self.jobs or cpu_count()


@dataclasses.dataclass(frozen=True)
class Task:
    """A trial to run: its spec, its model's run function
    (:attr:`~refconf.experiments.trials.ModelEntry.run`) and the loaded dataset."""

    spec: object
    run: object
    dataset: object


def _stem(dataset):
    return dataset.replace(":", "-")  # no colons in file names


def _differences(recorded, current, prefix=""):
    """Dotted paths where two JSON documents differ."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return [path for key in dict.fromkeys([*recorded, *current])
                for path in _differences(recorded.get(key), current.get(key),
                                         f"{prefix}{key}.")]
    return [] if recorded == current else [f"{prefix[:-1]}: {recorded!r} then, {current!r} now"]


class TrialStore:
    """Finished trials under ``folder``: ``<dataset>-<model>-seed<seed>.json`` each (toy
    sets written ``toy-<name>``), holding the trial's configuration
    (:meth:`TrialSpec.config <refconf.experiments.trials.TrialSpec.config>`) and record.

    ``required(spec)``, when given, names a file that must also exist for the trial to
    count as finished (a saved model).
    """

    def __init__(self, folder, required=None):
        self.folder = os.fspath(folder)
        self.required = required

    def path(self, spec):
        """The trial's result file."""
        return os.path.join(self.folder, f"{_stem(spec.dataset)}-{spec.model}-seed{spec.seed}.json")

    def load(self, spec):
        """The recorded result of ``spec`` (its ``trial`` index set to ``spec.trial``), or
        None when there is none.

        Raises
        ------
        ValueError
            The file is not a trial result, or was recorded under another configuration
            (the message names the file and the differing settings).
        """
        path = self.path(spec)
        if not os.path.exists(path) or (self.required and not os.path.exists(self.required(spec))):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                document = json.load(f)
            if document["format"] != _TRIAL_FORMAT:
                raise ValueError(f"format {document['format']!r}")
            recorded, record = document["config"], document["record"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a trial result of refconf ({err!r}); delete it to "
                             f"run the trial again") from None
        current = json.loads(json.dumps(spec.config(__version__)))
        if recorded != current:
            changed = "; ".join(_differences(recorded, current)[:3])
            raise ValueError(f"{path} was recorded under another configuration ({changed}): "
                             f"rerun with the same settings, write to another output folder, "
                             f"or delete the trial files to start afresh")
        return {**record, "trial": spec.trial}

    def save(self, spec, record):
        """Write the trial's result atomically."""
        os.makedirs(self.folder, exist_ok=True)
        document = {"format": _TRIAL_FORMAT, "config": spec.config(__version__),
                    "record": record}
        with atomic_write(self.path(spec)) as f:
            f.write((json.dumps(document, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def _worker(index, task, keep_params, single_thread=True):
    """One task in a worker process: no per-epoch bars; threads pinned to one when
    several workers share the machine."""
    return index, run_trial(task.run, task.spec, task.dataset, keep_params=keep_params,
                            single_thread=single_thread)


def _serial(tasks, options, keep_params):
    for task in tasks:
        yield task, run_trial(task.run, task.spec, task.dataset, progress=options.progress,
                              keep_params=keep_params)


def _joblib(tasks, options, keep_params):
    from joblib import Parallel, delayed

    jobs = options.workers()
    parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
    for index, result in parallel(delayed(_worker)(i, task, keep_params, jobs > 1)
                                  for i, task in enumerate(tasks)):
        yield tasks[index], result


def _dask_client(options):
    """``(client, cluster)``: a client of the cluster at ``options.scheduler``, or of a new
    local cluster of single-threaded worker processes (``cluster``, to close)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("the dask executor needs dask.distributed: "
                          "pip install 'refconf[parallel]'") from None
    if options.scheduler is not None:
        return Client(options.scheduler), None
    cluster = LocalCluster(n_workers=options.workers(), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _dask(tasks, options, keep_params):
    from distributed import as_completed

    client, cluster = _dask_client(options)
    try:
        sent = {}  # each dataset crosses to the cluster once
        futures = []
        for i, task in enumerate(tasks):
            key = id(task.dataset)
            if key not in sent:
                sent[key] = client.scatter(task.dataset)
            remote = dataclasses.replace(task, dataset=None)
            futures.append(client.submit(_dask_worker, i, remote, sent[key], keep_params,
                                         pure=False))
        for future in as_completed(futures):
            index, result = future.result()
            yield tasks[index], result
    finally:
        client.close()
        if cluster is not None:  # workers that import refconf take seconds to exit
            cluster.close(timeout=30)


def _dask_worker(index, task, dataset, keep_params):
    return _worker(index, dataclasses.replace(task, dataset=dataset), keep_params)


_EXECUTE = {"serial": _serial, "joblib": _joblib, "dask": _dask}


def trial_line(spec, record, models=MODELS):
    """The log line of a finished trial; ``models`` is the registry that names its model."""
    nll = "non-finite" if record["test_nll"] is None else f"{record['test_nll']:.4f}"
    return (f"[{spec.dataset}] {models[spec.model].display} trial {spec.trial + 1}: test NLL "
            f"{nll} nats ({record['epochs']} epochs, {record['stopped_reason']}, "
            f"{record['seconds']:.1f} s)")


def run_trials(tasks, options=None, store=None, save=None, log=print, describe=trial_line):
    """Run every task of ``tasks`` (:class:`Task`) that ``store`` has no result for.

    Parameters
    ----------
    tasks : list of Task
    options : RunnerOptions, optional
        Default: serial, with a progress bar.
    store : TrialStore, optional
        Finished trials are read from it (and skipped) and each new result is written to
        it as soon as it arrives, before the next.
    save : callable, optional
        ``save(spec, model, record)`` with ``model = {"params", "spec"}`` of each new
        trial's trained model (not for models that cannot be saved), called before the
        result is stored.
    log : callable
        Receives one line per trial.
    describe : callable
        ``describe(spec, record)``: the line of a finished trial (default
        :func:`trial_line`, Table 1's).

    Returns
    -------
    list of dict
        The trials' records, in the order of ``tasks``.
    """
    options = options or RunnerOptions()
    records = {}
    pending = []
    for task in tasks:
        record = store.load(task.spec) if store is not None else None
        if record is None:
            pending.append(task)
        else:
            records[id(task)] = record
    if records:
        log(f"{len(records)} of {len(tasks)} trials finished earlier (in {store.folder}): "
            f"not run again")
    with tqdm(total=len(tasks), initial=len(records), unit="trial", file=sys.stderr,
              disable=not options.progress, desc="trials") as bar:
        for task, result in _EXECUTE[options.executor](pending, options, save is not None):
            if save is not None and result["model"] is not None:
                save(task.spec, result["model"], result["record"])
            if store is not None:
                store.save(task.spec, result["record"])
            records[id(task)] = result["record"]
            log(describe(task.spec, result["record"]))
            bar.update()
    return [records[id(task)] for task in tasks]
