"""Resumable training state: the checkpoint and the JSON-lines metrics log of
:func:`refconf.train.fit`.

The checkpoint (:func:`refconf.params.save_checkpoint` format, written atomically after each
epoch) is a dict with keys ``x``, ``m``, ``v`` (flattened parameters and Adam moments),
``best_x``, ``step``, ``epoch``, ``rng_state``, ``best_val_loss``, ``best_epoch``,
``patience_counter``, ``learning_rate``, ``history``, ``events`` and ``config`` (the
:meth:`~refconf.train.config.FitConfig.trajectory` settings; ``min_delta`` is new there, and
reads as 0 in checkpoints written before it).
"""

import json
import os
import warnings

import numpy as np

from ..params import atomic_write, load_checkpoint


def write_records(path, records, mode):
    """Write JSON lines: ``mode="w"`` replaces the file atomically, ``"a"`` appends."""
    text = "".join(json.dumps(record, allow_nan=False) + "\n" for record in records)
    if mode == "w":
        with atomic_write(path) as f:
            f.write(text.encode("utf-8"))
    else:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


def resume_state(path, state, config, rng):
    """Load a checkpoint written by :func:`fit` and check it fits this model and run."""
    saved = load_checkpoint(path)
    if type(saved) is dict:
        saved.setdefault("metadata", None)  # checkpoints written before it was stored
    if type(saved) is not dict or set(saved) != set(state):
        raise ValueError(
            f"{os.fspath(path)}: not a fit checkpoint (keys {sorted(saved)!r:.200}, "
            f"expected {sorted(state)})"
        )
    x = saved["x"]
    if not isinstance(x, np.ndarray) or x.shape != state["x"].shape or x.dtype != state["x"].dtype:
        raise ValueError(
            f"{os.fspath(path)}: checkpoint holds {getattr(x, 'size', '?')} parameters of dtype "
            f"{getattr(x, 'dtype', '?')}; the model has {state['x'].size} of dtype "
            f"{state['x'].dtype}"
        )
    # keys added since (min_delta) read as their default in older checkpoints
    old = {"min_delta": 0.0, **saved["config"]}
    changed = [f"{key}: {old.get(key)!r} -> {value!r}" for key, value in config.items()
               if old.get(key) != value]
    if changed:
        warnings.warn(
            f"resuming {os.fspath(path)} with different settings ({'; '.join(changed)}); "
            "the run will not match an uninterrupted one",
            UserWarning,
            stacklevel=3,
        )
    try:
        rng.bit_generator.state = saved["rng_state"]
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{os.fspath(path)}: cannot restore the random generator: {err}") from None
    return saved


def add_event(state, kind, epoch, step, message):
    """Add an event record to ``state`` (checkpointed with it) and return it."""
    record = {"event": kind, "epoch": epoch, "step": step, "best_epoch": state["best_epoch"],
              "message": message}
    state["events"].append(record)
    return record
