"""Maximum-likelihood training: minibatch Adam on a parameter pytree.

* :mod:`refconf.train.loop`: :func:`fit`, the epoch loop;
* :mod:`refconf.train.config`: :class:`FitConfig`, its settings;
* :mod:`refconf.train.optimiser`: :func:`adam_step` and :func:`clip_by_global_norm`;
* :mod:`refconf.train.objective`: :func:`nll_objective`, a CONF model's loss and gradient;
* :mod:`refconf.train.stopping`: early stopping and non-finite values;
* :mod:`refconf.train.checkpoint`: the resumable state and the metrics log.
"""

from .config import FitConfig
from .loop import FitResult, fit
from .objective import nll_objective
from .optimiser import adam_step, adam_step_inplace, clip_by_global_norm
from .stopping import NonFiniteTraining

__all__ = [
    "FitConfig",
    "FitResult",
    "NonFiniteTraining",
    "adam_step",
    "adam_step_inplace",
    "clip_by_global_norm",
    "fit",
    "nll_objective",
]
