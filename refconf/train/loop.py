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
import numbers
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
from .optimiser import _adam_step_inplace, clip_by_global_norm
from .stopping import NonFinite, check_finite, early_stopping, record_non_finite

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


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_arguments(loss, epochs, batch_size, learning_rate, lr_decay, clip_norm, patience,
                     val, beta1, beta2, eps, checkpoint_path, resume, callback, on_non_finite,
                     gradient):
    """Raise ``ValueError`` naming the first bad argument and what was expected."""
    checks = [
        (callable(loss), "loss", loss, "a function loss(params, batch) -> scalar"),
        (gradient is None or callable(gradient), "gradient", gradient,
         "None or a function gradient(params, batch) -> (loss, gradient pytree)"),
        (_is_int(epochs) and epochs >= 1, "epochs", epochs, "an integer >= 1"),
        (_is_int(batch_size) and batch_size >= 1, "batch_size", batch_size, "an integer >= 1"),
        (_is_real(learning_rate) and learning_rate > 0, "learning_rate", learning_rate,
         "a finite number > 0"),
        (_is_real(lr_decay) and 0 < lr_decay <= 1, "lr_decay", lr_decay,
         "a number in (0, 1] (the learning rate is multiplied by it after each epoch)"),
        (clip_norm is None or (_is_real(clip_norm) and clip_norm > 0), "clip_norm", clip_norm,
         "None or a finite number > 0"),
        (patience is None or (_is_int(patience) and patience >= 1), "patience", patience,
         "None or an integer >= 1"),
        (patience is None or val is not None, "patience", patience,
         "None when no validation data are given (early stopping watches the validation loss)"),
        (_is_real(beta1) and 0 <= beta1 < 1, "beta1", beta1, "a number in [0, 1)"),
        (_is_real(beta2) and 0 <= beta2 < 1, "beta2", beta2, "a number in [0, 1)"),
        (_is_real(eps) and eps > 0, "eps", eps, "a finite number > 0"),
        (not resume or checkpoint_path is not None, "resume", resume,
         "False when no checkpoint_path is given"),
        (callback is None or callable(callback), "callback", callback,
         "None or a function callback(params, record)"),
        (on_non_finite in ("warn", "raise"), "on_non_finite", on_non_finite,
         "'warn' or 'raise'"),
    ]
    for ok, name, value, expected in checks:
        if not ok:
            raise ValueError(f"fit: {name}={value!r:.60}; expected {expected}")


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
        if not math.isfinite(value):
            raise NonFinite("training loss", value, step + 1)
        g, norm = clip_by_global_norm(np.asarray(g, dtype=x.dtype), config["clip_norm"])
        if not math.isfinite(norm):  # a finite norm has finite terms: no second pass
            check_finite("gradient", g, step + 1)
        step += 1
        _adam_step_inplace(x, g, m, v, step, lr, config["beta1"], config["beta2"],
                           config["eps"])
        total += value * len(batch)
        seen += len(batch)
        norms.append(norm)
        if show is not None:
            show(total / seen)
    return x, m, v, step, total / seen, statistics.fmean(norms)


def fit(loss, params, train, val=None, *, epochs, batch_size, learning_rate=1e-3, lr_decay=1.0,
        clip_norm=None, patience=None, random_state=None, metrics_path=None,
        checkpoint_path=None, resume=False, progress=True, callback=None, beta1=0.9,
        beta2=0.999, eps=1e-8, on_non_finite="warn", gradient=None):
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
        What a NaN or infinite loss or gradient does: ``"warn"`` stops training with a
        ``RuntimeWarning`` and returns the best parameters so far; ``"raise"`` raises
        ``FloatingPointError`` with the same message.
    gradient : callable, optional
        ``gradient(params, batch) -> (loss value, gradient pytree like params)``, used for
        the training steps instead of autograd's ``value_and_grad`` of ``loss`` (which
        still evaluates the validation loss): an explicit reverse pass, such as
        :func:`refconf.engines.model_pass.nll_and_grad`, that must equal it.

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
    _check_arguments(loss, epochs, batch_size, learning_rate, lr_decay, clip_norm, patience, val,
                     beta1, beta2, eps, checkpoint_path, resume, callback, on_non_finite,
                     gradient)
    train, val = _check_data(train, val)
    check_params(params, finite=True)
    x0, unflatten = flatten(params)
    if gradient is None:
        objective = value_and_grad(lambda x, batch: loss(unflatten(x), batch))
    else:
        def objective(x, batch):
            value, grads = gradient(unflatten(x), batch)
            g = ravel(grads)
            if g.shape != x.shape:
                raise ValueError(f"fit: gradient returned {g.size} values for {x.size} "
                                 "parameters; expected a pytree like params")
            return value, g
    rng = np.random.default_rng(random_state)
    # The settings that shape the trajectory; resuming with other values is reported.
    config = {
        "batch_size": int(batch_size), "learning_rate": float(learning_rate),
        "lr_decay": float(lr_decay), "clip_norm": None if clip_norm is None else float(clip_norm),
        "patience": None if patience is None else int(patience), "beta1": float(beta1),
        "beta2": float(beta2), "eps": float(eps), "n_train": len(train),
        "n_val": None if val is None else len(val),
    }
    state = {
        "x": x0, "m": np.zeros_like(x0), "v": np.zeros_like(x0), "best_x": x0.copy(),
        "step": 0, "epoch": 0, "rng_state": rng.bit_generator.state,
        "best_val_loss": math.inf, "best_epoch": 0, "patience_counter": 0,
        "learning_rate": float(learning_rate), "history": [], "events": [], "config": config,
    }
    if resume and os.path.exists(checkpoint_path):
        state = resume_state(checkpoint_path, state, config, rng)
        state["config"] = config
    if metrics_path is not None:
        write_records(metrics_path, state["history"] + state["events"], "w")

    n_batches = -(-len(train) // batch_size)
    bar = tqdm(total=epochs * n_batches, initial=min(state["epoch"], epochs) * n_batches,
               disable=not progress, unit="step", dynamic_ncols=True)
    stopped = None
    if state["events"] and state["events"][-1]["event"] == "early_stopping":
        stopped = "early_stopping"  # resumed from a run that had already stopped early
    elif early_stopping(state, patience, metrics_path):  # resumed with a lower patience
        stopped = "early_stopping"
    try:
        while stopped is None and state["epoch"] < epochs:
            epoch = state["epoch"] + 1
            lr = learning_rate * lr_decay ** (epoch - 1)
            started = time.perf_counter()
            last_val = state["history"][-1]["val_loss"] if state["history"] else None
            show = functools.partial(_show_progress, bar, epoch, last_val) if progress else None
            batches = (train[index] for index in
                       _batches(len(train), batch_size, rng.permutation(len(train))))
            try:
                x, m, v, step, train_loss, grad_norm = _train_epoch(
                    objective, state, batches, lr, config, show)
                val_loss = None
                if val is not None:
                    val_loss = _mean_loss(loss, unflatten(x), val, batch_size)
                    check_finite("validation loss", val_loss, step)
            except NonFinite as bad:
                stopped = "non_finite"
                record_non_finite(state, metrics_path, epoch, bad)
                break
            improved = val_loss is None or val_loss < state["best_val_loss"]
            state.update(
                x=x, m=m, v=v, step=step, epoch=epoch, rng_state=rng.bit_generator.state,
                learning_rate=lr,
                patience_counter=0 if improved else state["patience_counter"] + 1,
            )
            if improved:
                state.update(best_x=x.copy(), best_epoch=epoch,
                             best_val_loss=math.inf if val_loss is None else val_loss)
            record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                      "grad_norm": grad_norm, "seconds": time.perf_counter() - started}
            state["history"].append(record)
            new_records = [record]
            if early_stopping(state, patience):
                stopped = "early_stopping"
                new_records.append(state["events"][-1])
            # Checkpoint first: a crash before the metrics line is repaired on resume,
            # which rewrites the metrics file from the checkpoint.
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, state)
            if metrics_path is not None:
                write_records(metrics_path, new_records, "a")
            if callback is not None:
                callback(unflatten(x), dict(record))
    finally:
        bar.close()

    if stopped is None:
        stopped = "completed"
        message = f"completed {state['epoch']} epochs ({state['step']} steps)"
    else:
        message = state["events"][-1]["message"]
    if stopped == "non_finite":
        if on_non_finite == "raise":
            raise FloatingPointError(message)
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


