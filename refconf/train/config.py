"""The settings of :func:`refconf.train.fit`, grouped and checked once."""

import dataclasses

from ..checks import is_finite_real, is_integer

__all__ = ["FitConfig"]


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """The optimisation settings of :func:`refconf.train.fit` (see there for each field).

    Frozen and checked on construction: a bad value raises ``ValueError`` naming the field
    and what was expected. ``trajectory()`` is the part stored in a checkpoint, whose
    change on resume is reported.

    Examples
    --------
    >>> FitConfig(epochs=10, batch_size=32).learning_rate
    0.001
    >>> FitConfig(epochs=0, batch_size=32)
    Traceback (most recent call last):
    ...
    ValueError: fit: epochs=0; expected an integer >= 1
    """

    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    lr_decay: float = 1.0
    clip_norm: float | None = None
    patience: int | None = None
    min_delta: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    on_non_finite: str = "warn"

    def __post_init__(self):
        p = self
        checks = [
            (is_integer(p.epochs) and p.epochs >= 1, "epochs", "an integer >= 1"),
            (is_integer(p.batch_size) and p.batch_size >= 1, "batch_size", "an integer >= 1"),
            (is_finite_real(p.learning_rate) and p.learning_rate > 0, "learning_rate",
             "a finite number > 0"),
            (is_finite_real(p.lr_decay) and 0 < p.lr_decay <= 1, "lr_decay",
             "a number in (0, 1] (the learning rate is multiplied by it after each epoch)"),
            (p.clip_norm is None or (is_finite_real(p.clip_norm) and p.clip_norm > 0), "clip_norm",
             "None or a finite number > 0"),
            (p.patience is None or (is_integer(p.patience) and p.patience >= 1), "patience",
             "None or an integer >= 1"),
            (is_finite_real(p.min_delta) and p.min_delta >= 0, "min_delta", "a finite number >= 0"),
            (is_finite_real(p.beta1) and 0 <= p.beta1 < 1, "beta1", "a number in [0, 1)"),
            (is_finite_real(p.beta2) and 0 <= p.beta2 < 1, "beta2", "a number in [0, 1)"),
            (is_finite_real(p.eps) and p.eps > 0, "eps", "a finite number > 0"),
            (p.on_non_finite in ("warn", "raise"), "on_non_finite", "'warn' or 'raise'"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"fit: {name}={getattr(p, name)!r:.60}; expected {expected}")

    def trajectory(self, n_train, n_val):
        """The settings that shape the trajectory (stored in checkpoints)."""
        return {
            "batch_size": int(self.batch_size), "learning_rate": float(self.learning_rate),
            "lr_decay": float(self.lr_decay),
            "clip_norm": None if self.clip_norm is None else float(self.clip_norm),
            "patience": None if self.patience is None else int(self.patience),
            "min_delta": float(self.min_delta), "beta1": float(self.beta1),
            "beta2": float(self.beta2), "eps": float(self.eps), "n_train": int(n_train),
            "n_val": None if n_val is None else int(n_val),
        }


def check_io(loss, gradient, val, patience, checkpoint_path, resume, callback):
    """Raise ``ValueError`` for a bad function or I/O argument of :func:`refconf.train.fit`."""
    checks = [
        (callable(loss), "loss", loss, "a function loss(params, batch) -> scalar"),
        (gradient is None or callable(gradient), "gradient", gradient,
         "None or a function gradient(params, batch) -> (loss, gradient pytree)"),
        (patience is None or val is not None, "patience", patience,
         "None when no validation data are given (early stopping watches the validation loss)"),
        (not resume or checkpoint_path is not None, "resume", resume,
         "False when no checkpoint_path is given"),
        (callback is None or callable(callback), "callback", callback,
         "None or a function callback(params, record)"),
    ]
    for ok, name, value, expected in checks:
        if not ok:
            raise ValueError(f"fit: {name}={value!r:.60}; expected {expected}")
