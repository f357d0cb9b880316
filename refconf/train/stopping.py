"""Why training stops: early stopping on the validation loss, and non-finite values."""

import math

import numpy as np

from .checkpoint import add_event, write_records

__all__ = ["DIVERGED", "NonFiniteTraining", "still_improving"]

#: A mean NLL or gradient norm beyond this is taken as divergence: no density of data in
#: floating point is ``exp(-1e10)`` per sample.
DIVERGED = 1e10


class NonFiniteTraining(FloatingPointError):
    """Training stopped on a NaN, infinite or diverging loss or gradient.

    Attributes
    ----------
    params : pytree
        The parameters at which the loss or gradient went bad.
    batch : ndarray
        The batch they were evaluated on (the validation data for the validation loss).
    best_params : pytree
        The last good parameters (those :func:`refconf.train.fit` would have returned).
    """

    def __init__(self, message, params, batch, best_params):
        super().__init__(message)
        self.params, self.batch, self.best_params = params, batch, best_params


class NonFinite(Exception):
    """A NaN, infinite or diverging loss or gradient (``what``) at optimiser step ``step``,
    at the flat parameters ``x`` and ``batch``."""

    def __init__(self, what, value, step, x=None, batch=None):
        super().__init__(what)
        self.what, self.value, self.step, self.x, self.batch = what, value, step, x, batch


def check_finite(what, value, step):
    if not np.all(np.isfinite(value)):
        raise NonFinite(what, value if np.ndim(value) == 0 else None, step)


def check_step(value, g, norm, step, x, batch, clip_norm=None):
    """Raise :class:`NonFinite` for a bad training loss ``value`` or gradient ``g``
    (of norm ``norm`` before clipping) at parameters ``x``: not finite, or above
    :data:`DIVERGED` (the gradient norm only when it is not clipped)."""
    if not math.isfinite(value) or abs(value) > DIVERGED:
        what = "training loss" if not math.isfinite(value) else "diverging training loss"
        raise NonFinite(what, value, step, x.copy(), batch)
    if not math.isfinite(norm):  # a finite norm has finite terms: no second pass
        try:
            check_finite("gradient", g, step)
        except NonFinite as bad:
            bad.x, bad.batch = x.copy(), batch
            raise
        raise NonFinite("gradient norm", norm, step, x.copy(), batch)
    if norm > DIVERGED and clip_norm is None:  # clipped, a spike moves no further
        raise NonFinite("diverging gradient norm", norm, step, x.copy(), batch)


def early_stopping(state, patience, metrics_path=None):
    """Whether the patience is used up; if so, add the event record (and log it to
    ``metrics_path`` when given)."""
    if patience is None or state["patience_counter"] < patience:
        return False
    record = add_event(state, "early_stopping", state["epoch"], state["step"], (
        f"early stopping after epoch {state['epoch']}: no lower validation loss for "
        f"{state['patience_counter']} epochs; restored the parameters of epoch "
        f"{state['best_epoch']} (validation loss {state['best_val_loss']:.6g})"))
    if metrics_path is not None:
        write_records(metrics_path, [record], "a")
    return True


def record_non_finite(state, metrics_path, epoch, bad):
    """Log a non-finite stop; ``state`` keeps the last complete epoch (not checkpointed)."""
    value = "" if bad.value is None else f" ({bad.value})"
    where = "the initial parameters" if state["best_epoch"] == 0 else (
        f"the parameters of epoch {state['best_epoch']}")
    what = bad.what if bad.what.startswith("diverging") else f"non-finite {bad.what}"
    record = add_event(state, "non_finite", epoch, bad.step, (
        f"{what}{value} in epoch {epoch} at step {bad.step}; stopped and returned {where}. "
        "Try a lower learning_rate or set clip_norm."))
    if metrics_path is not None:
        write_records(metrics_path, [record], "a")


def still_improving(history, min_delta=0.0):
    """Whether the last fifth of a run (at least one epoch) lowered the best loss by more
    than ``min_delta``: the validation loss when the history has it, else the training loss.

    A run stopped by its epoch cap in that state had not converged.

    Examples
    --------
    >>> still_improving([{"val_loss": v} for v in (3.0, 2.0, 1.5, 1.2, 1.1)])
    True
    >>> still_improving([{"val_loss": v} for v in (3.0, 2.0, 1.5, 1.6, 1.7)])
    False
    """
    if len(history) < 2:
        return False
    key = "val_loss" if history[-1].get("val_loss") is not None else "train_loss"
    values = [record[key] for record in history]
    recent = max(1, len(values) // 5)
    return min(values[-recent:]) < min(values[:-recent]) - min_delta
