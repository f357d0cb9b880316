"""Maximum-likelihood training: minibatch Adam on a parameter pytree.

:func:`fit` minimises ``loss(params, batch)``, the mean negative log-likelihood of a batch
written in ``autograd.numpy``, over shuffled minibatches. It is generic: any model that is
a pure function of a parameter pytree (see :mod:`refconf.params`) trains with it.

Reproducibility and recovery are part of the contract:

* a fixed ``random_state`` gives bit-identical runs (the only randomness is the
  per-epoch shuffle, drawn from one ``numpy.random.Generator``);
* with ``checkpoint_path`` the full training state is written atomically after every
  epoch, and ``resume=True`` continues a run exactly as if it had not been interrupted;
* a non-finite loss or gradient stops training with a warning and returns the best
  parameters so far, instead of returning NaN.
"""

import dataclasses
import functools
import math
import os
import statistics
import time
import warnings

import numpy as np
from autograd import value_and_grad
from tqdm.auto import tqdm

from ..bijectors.base import validate_input
from ..params import check_params, flatten, ravel, save_checkpoint
from .checkpoint import resume_state, write_records
from .config import FitConfig, check_io
from .optimiser import adam_step_inplace, clip_by_global_norm
from .stopping import (
    NonFinite,
    NonFiniteTraining,
    check_step,
    early_stopping,
    record_non_finite,
)

__all__ = ["FitResult", "fit"]

_STOPPED_REASONS = ("completed", "early_stopping", "non_finite")


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    params : pytree
        The best parameters: those of the epoch with the lowest validation loss when
        ``val`` is given, else those after the last completed epoch.
    history : list of dict
        One record per completed epoch: ``epoch`` (1-based), ``train_loss`` (mean over
        the epoch's steps, weighted by batch size), ``val_loss`` (or None), ``lr``,
        ``grad_norm`` (mean global gradient norm before clipping) and ``seconds``.
    best_epoch : int
        Epoch whose parameters are returned; 0 means the initial parameters.
    best_val_loss : float or None
        Validation loss at ``best_epoch`` (None without validation data).
    stopped_reason : {"completed", "early_stopping", "non_finite"}
    n_steps : int
        Number of optimiser steps taken, including those before a resume.
    message : str
        One line saying why training stopped.
    """

    params: object
    history: list
    best_epoch: int
    best_val_loss: float | None
    stopped_reason: str
    n_steps: int
    message: str


def _check_data(train, val):
    """Validate the data: finite float arrays of shape (n, ...), n >= 1, same sample shape."""
    train = np.asarray(validate_input(train, 1, name="fit: train"))
    if len(train) == 0:
        raise ValueError(f"fit: train is empty (shape {train.shape}); expected at least one sample")
    if val is None:
        return train, None
    val = np.asarray(validate_input(val, 1, name="fit: val"))
    if len(val) == 0:
        raise ValueError(f"fit: val is empty (shape {val.shape}); expected at least one sample")
    if val.shape[1:] != train.shape[1:]:
        raise ValueError(
            f"fit: val samples have shape {val.shape[1:]}, train samples {train.shape[1:]}; "
            "expected the same shape"
        )
    return train, val


def _batches(n, batch_size, order=None):
    """Index arrays (or slices) covering ``range(n)`` in ``batch_size`` chunks; the last
    chunk may be smaller."""
    for start in range(0, n, batch_size):
        yield slice(start, start + batch_size) if order is None else order[start:start + batch_size]


def _mean_loss(loss, params, data, batch_size):
    """Mean loss over ``data``, evaluated in batches (no gradients), weighted by size."""
    total = 0.0
    for index in _batches(len(data), batch_size):
        batch = data[index]
        total += float(loss(params, batch)) * len(batch)
    return total / len(data)


def _finite_or_none(value):
    return value if value is not None and math.isfinite(value) else None


def _train_epoch(objective, state, batches, lr, config, show):
    """Adam steps over ``batches``; returns ``(x, m, v, step, train_loss, grad_norm)``
    without touching ``state`` (so a failed epoch leaves the last complete one)."""
    # copies, updated in place by each step
    x, m, v, step = state["x"].copy(), state["m"].copy(), state["v"].copy(), state["step"]
    total, seen, norms = 0.0, 0, []
    for batch in batches:
        value, g = objective(x, batch)
        value = float(value)
        g, norm = clip_by_global_norm(np.asarray(g, dtype=x.dtype), config.clip_norm)
        check_step(value, g, norm, step + 1, x, batch, config.clip_norm)
        step += 1
        adam_step_inplace(np, x, g, m, v, step, lr, config.beta1, config.beta2, config.eps)
        total += value * len(batch)
        seen += len(batch)
        norms.append(norm)
        if show is not None:
            show(total / seen)
    return x, m, v, step, total / seen, statistics.fmean(norms)


def _objective(loss, gradient, unflatten):
    """``x, batch -> (loss, flat gradient)`` on the flat parameter vector."""
    if gradient is None:
        return value_and_grad(lambda x, batch: loss(unflatten(x), batch))

    def objective(x, batch):
        value, grads = gradient(unflatten(x), batch)
        g = ravel(grads)
        if g.shape != x.shape:
            raise ValueError(f"fit: gradient returned {g.size} values for {x.size} "
                             "parameters; expected a pytree like params")
        return value, g
    return objective


def _initial_state(x0, rng, config, trajectory, checkpoint_path, resume, metadata):
    state = {
        "x": x0, "m": np.zeros_like(x0), "v": np.zeros_like(x0), "best_x": x0.copy(),
        "step": 0, "epoch": 0, "rng_state": rng.bit_generator.state,
        "best_val_loss": math.inf, "best_epoch": 0, "patience_counter": 0,
        "learning_rate": float(config.learning_rate), "history": [], "events": [],
        "config": trajectory, "metadata": metadata,
    }
    if resume and os.path.exists(checkpoint_path):
        state = resume_state(checkpoint_path, state, trajectory, rng)
        state["config"] = trajectory
        if metadata is not None:  # else the checkpoint's description of the run stays
            state["metadata"] = metadata
    return state


def _already_stopped(state, config, metrics_path):
    """A resumed run that had stopped early (or does now, with a lower patience)."""
    if state["events"] and state["events"][-1]["event"] == "early_stopping":
        return "early_stopping"
    if early_stopping(state, config.patience, metrics_path):
        return "early_stopping"
    return None


@dataclasses.dataclass
class _Run:
    """What one :func:`fit` call works with besides its state."""

    loss: object
    objective: object
    unflatten: object
    train: np.ndarray
    val: np.ndarray | None
    config: FitConfig
    rng: np.random.Generator
    metrics_path: object
    checkpoint_path: object
    callback: object
    bar: object
    record_fields: dict


def _epoch(run, state, epoch):
    """Train one epoch and record it; returns the early-stopping flag."""
    config = run.config
    lr = config.learning_rate * config.lr_decay ** (epoch - 1)
    started = time.perf_counter()
    last_val = state["history"][-1]["val_loss"] if state["history"] else None
    show = None if run.bar.disable else functools.partial(_show_progress, run.bar, epoch,
                                                          last_val)
    batches = (run.train[index] for index in
               _batches(len(run.train), config.batch_size, run.rng.permutation(len(run.train))))
    x, m, v, step, train_loss, grad_norm = _train_epoch(run.objective, state, batches, lr,
                                                        config, show)
    val_loss = None
    if run.val is not None:
        val_loss = _mean_loss(run.loss, run.unflatten(x), run.val, config.batch_size)
        if not math.isfinite(val_loss):
            raise NonFinite("validation loss", val_loss, step, x.copy(), run.val)
    improved = val_loss is None or val_loss < state["best_val_loss"] - config.min_delta
    state.update(x=x, m=m, v=v, step=step, epoch=epoch, rng_state=run.rng.bit_generator.state,
                 learning_rate=lr,
                 patience_counter=0 if improved else state["patience_counter"] + 1)
    if improved:
        state.update(best_x=x.copy(), best_epoch=epoch,
                     best_val_loss=math.inf if val_loss is None else val_loss)
    record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
              "grad_norm": grad_norm, "seconds": time.perf_counter() - started,
              **run.record_fields}
    state["history"].append(record)
    new_records = [record]
    stop = early_stopping(state, config.patience)
    if stop:
        new_records.append(state["events"][-1])
    # Checkpoint first: a crash before the metrics line is repaired on resume,
    # which rewrites the metrics file from the checkpoint.
    if run.checkpoint_path is not None:
        save_checkpoint(run.checkpoint_path, state)
    if run.metrics_path is not None:
        write_records(run.metrics_path, new_records, "a")
    if run.callback is not None:
        run.callback(run.unflatten(x), dict(record))
    return stop


def _epochs(run, state, stopped):
    """Epochs until the cap or a stop; returns the stop reason (None: the cap)."""
    try:
        while stopped is None and state["epoch"] < run.config.epochs:
            epoch = state["epoch"] + 1
            try:
                if _epoch(run, state, epoch):
                    stopped = "early_stopping"
            except NonFinite as bad:
                record_non_finite(state, run.metrics_path, epoch, bad)
                return "non_finite", bad
    finally:
        run.bar.close()
    return stopped, None


def fit(loss, params, train, val=None, *, epochs=None, batch_size=None, learning_rate=1e-3,
        lr_decay=1.0, clip_norm=None, patience=None, min_delta=0.0, random_state=None,
        metrics_path=None, checkpoint_path=None, resume=False, progress=True, callback=None,
        beta1=0.9, beta2=0.999, eps=1e-8, on_non_finite="warn", gradient=None, config=None,
        metadata=None, record_fields=None):
    """Fit ``params`` by maximum likelihood with minibatch Adam.

    Minimises the mean negative log-likelihood ``loss(params, batch)`` over ``epochs``
    passes through ``train``, shuffled each epoch. Gradients come from
    ``autograd.value_and_grad`` (or from ``gradient``); Adam (:func:`adam_step`) runs on
    the flattened parameter vector (:func:`refconf.params.flatten`) in its dtype.

    Parameters
    ----------
    loss : callable
        ``loss(params, batch) -> scalar``, the mean NLL of ``batch`` (an array of shape
        ``(b, ...)``), written in ``autograd.numpy``.
    params : pytree
        Initial parameters (floating arrays and floats in dicts, lists, tuples).
    train : array_like, shape (n, ...)
        Training samples along the first axis; finite floating-point values.
    val : array_like, shape (n_val, ...), optional
        Validation samples, evaluated after each epoch in batches of ``batch_size``
        without gradients. When given, the parameters of the epoch with the lowest
        validation loss are returned.
    epochs : int
        Number of passes through ``train`` (in total, counting epochs before a resume).
    batch_size : int
        Samples per step; the last batch of an epoch may be smaller.
    learning_rate : float
        Adam step size in the first epoch.
    lr_decay : float
        Exponential decay per epoch: epoch ``k`` (1-based) uses
        ``learning_rate * lr_decay ** (k - 1)``.
    clip_norm : float, optional
        Rescale each gradient to this global Euclidean norm if it is larger.
    patience : int, optional
        Early stopping: stop after ``patience`` epochs without a new lowest validation
        loss, and return the best parameters. Needs ``val``.
    min_delta : float
        A validation loss counts as a new lowest one only when it is below the best so far
        by more than ``min_delta`` (nats); 0 counts any decrease.
    random_state : int, numpy.random.SeedSequence or numpy.random.Generator, optional
        Seed of the shuffle (``numpy.random.default_rng(random_state)``).
    metrics_path : str or os.PathLike, optional
        JSON-lines log: one record per epoch (the ``history`` record), plus an
        ``{"event": ...}`` record on early stopping or a non-finite stop.
    checkpoint_path : str or os.PathLike, optional
        The training state (parameters, Adam moments, step, epoch, generator state, best
        parameters and loss, patience counter, history) is written here atomically after
        each epoch, in the :func:`refconf.params.save_checkpoint` format.
    resume : bool
        Continue from ``checkpoint_path`` if it exists (start afresh if it does not).
        The resumed run matches an uninterrupted one bit for bit; settings that differ
        from the checkpoint's are reported in a warning. The metrics file is rewritten
        to the checkpoint's records before training continues.
    progress : bool
        Show a tqdm bar with the running train loss and the last validation loss.
    callback : callable, optional
        ``callback(params, record)`` after each epoch's checkpoint and metrics are written;
        its return value is ignored.
    beta1, beta2, eps : float
        Adam constants.
    on_non_finite : {"warn", "raise"}
        What a NaN or infinite loss or gradient, or a diverging one (``|loss|``, or the
        gradient norm without ``clip_norm``, above ``1e10``), does: ``"warn"`` stops
        training with a ``RuntimeWarning`` and returns the best parameters so far; ``"raise"`` raises
        :class:`~refconf.train.stopping.NonFiniteTraining` (a ``FloatingPointError``) with
        the same message, carrying the offending parameters and batch for diagnosis. The
        checkpoint keeps the last complete epoch either way.
    config : FitConfig, optional
        The optimisation settings as one object; when given, ``epochs``, ``batch_size``,
        ``learning_rate``, ``lr_decay``, ``clip_norm``, ``patience``, ``min_delta``,
        ``beta1``, ``beta2``, ``eps`` and ``on_non_finite`` are taken from it instead.
    gradient : callable, optional
        ``gradient(params, batch) -> (loss value, gradient pytree like params)``, used for
        the training steps instead of autograd's ``value_and_grad`` of ``loss`` (which
        still evaluates the validation loss): an explicit reverse pass, such as
        :func:`refconf.engines.nll_and_grad`, that must equal it.
    metadata : dict, optional
        JSON-like description of the run (e.g. the estimator's settings), stored in the
        checkpoint as ``metadata`` so that a resumed run can restore its settings.
    record_fields : dict, optional
        Fields added to every epoch record of ``history`` and the metrics file (e.g. the
        engine that ran).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For a bad argument: wrong types or ranges, empty data, NaN/Inf in the data,
        train and validation samples of different shapes, non-float or non-finite
        initial parameters, or a checkpoint that does not fit the model.

    Notes
    -----
    The checkpoint stores the flattened vectors ``x`` (parameters), ``best_x``, ``m`` and
    ``v`` rather than trees, so that the optimiser state is restored exactly whatever the
    leaves' dtypes; ``unflatten`` from :func:`refconf.params.flatten` of the model's
    parameters turns them back into trees.

    Examples
    --------
    Learn the mean of a unit-variance Gaussian:

    >>> import autograd.numpy as anp
    >>> import numpy as np
    >>> data = np.random.default_rng(0).normal(3.0, 1.0, size=(256, 1))
    >>> def nll(params, x):
    ...     return anp.mean(0.5 * (x - params["mu"]) ** 2) + 0.5 * np.log(2 * np.pi)
    >>> result = fit(nll, {"mu": np.zeros(1)}, data, epochs=40, batch_size=32,
    ...              learning_rate=0.1, random_state=0, progress=False)
    >>> result.stopped_reason, bool(abs(result.params["mu"][0] - data.mean()) < 0.05)
    ('completed', True)
    """
    config = config if config is not None else FitConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, lr_decay=lr_decay,
        clip_norm=clip_norm, patience=patience, min_delta=min_delta, beta1=beta1, beta2=beta2,
        eps=eps, on_non_finite=on_non_finite)
    check_io(loss, gradient, val, config.patience, checkpoint_path, resume, callback)
    train, val = _check_data(train, val)
    check_params(params, finite=True)
    x0, unflatten = flatten(params)
    rng = np.random.default_rng(random_state)
    trajectory = config.trajectory(len(train), None if val is None else len(val))
    state = _initial_state(x0, rng, config, trajectory, checkpoint_path, resume, metadata)
    if metrics_path is not None:
        write_records(metrics_path, state["history"] + state["events"], "w")
    n_batches = -(-len(train) // config.batch_size)
    bar = tqdm(total=config.epochs * n_batches,
               initial=min(state["epoch"], config.epochs) * n_batches,
               disable=not progress, unit="step", dynamic_ncols=True)
    run = _Run(loss, _objective(loss, gradient, unflatten), unflatten, train, val, config, rng,
               metrics_path, checkpoint_path, callback, bar, dict(record_fields or {}))
    stopped, bad = _epochs(run, state, _already_stopped(state, config, metrics_path))
    if stopped is None:
        stopped = "completed"
        message = f"completed {state['epoch']} epochs ({state['step']} steps)"
    else:
        message = state["events"][-1]["message"]
    if stopped == "non_finite":
        if config.on_non_finite == "raise":
            raise NonFiniteTraining(message, None if bad.x is None else unflatten(bad.x),
                                    bad.batch, unflatten(state["best_x"]))
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return FitResult(
        params=unflatten(state["best_x"]),
        history=[dict(record) for record in state["history"]],
        best_epoch=state["best_epoch"],
        best_val_loss=_finite_or_none(state["best_val_loss"]),
        stopped_reason=stopped,
        n_steps=state["step"],
        message=message,
    )


def _show_progress(bar, epoch, val_loss, train_loss):
    bar.update()
    bar.set_postfix(epoch=epoch, train_loss=f"{train_loss:.4g}",
                    val_loss=None if val_loss is None else f"{val_loss:.4g}", refresh=False)


