"""Why training stops: early stopping on the validation loss, and non-finite values."""


import numpy as np

from .checkpoint import add_event, write_records


class NonFinite(Exception):
    """A NaN or infinite loss or gradient (``what``) at optimiser step ``step``."""

    def __init__(self, what, value, step):
        super().__init__(what)
        self.what, self.value, self.step = what, value, step


def check_finite(what, value, step):
    if not np.all(np.isfinite(value)):
        raise NonFinite(what, value if np.ndim(value) == 0 else None, step)


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
    record = add_event(state, "non_finite", epoch, bad.step, (
        f"non-finite {bad.what}{value} in epoch {epoch} at step {bad.step}; stopped and "
        f"returned {where}. Try a lower learning_rate or set clip_norm."))
    if metrics_path is not None:
        write_records(metrics_path, [record], "a")
