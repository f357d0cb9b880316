"""The training objective of a CONF model: mean negative log-likelihood and its gradient."""

import autograd.numpy as anp

from ..engines import get_engine

__all__ = ["nll_objective"]


def nll_objective(model, engine="numpy"):
    """The mean negative log-likelihood of a CONF model for :func:`fit`: ``(loss, gradient)``.

    ``loss(params, batch) = -mean(model.build(params, engine).log_prob(batch))``;
    ``gradient`` is the engine's explicit whole-model pass
    (:attr:`refconf.engines.Engine.nll_and_grad`) where it has one, else None (autograd).

    Examples
    --------
    >>> import numpy as np
    >>> from refconf.flows import conf
    >>> model = conf(3, steps=1, hidden=(4,))
    >>> x = np.random.default_rng(0).normal(size=(8, 3))
    >>> loss, gradient = nll_objective(model, "numba")
    >>> params = model.init_params(x, random_state=0)
    >>> bool(np.isclose(gradient(params, x)[0], loss(params, x)))
    True
    """
    engine = get_engine(engine)

    def loss(params, batch):
        return -anp.mean(model.build(params, engine=engine).log_prob(batch))

    if engine.nll_and_grad is None:
        return loss, None

    def gradient(params, batch):
        return engine.nll_and_grad(model, params, batch)

    return loss, gradient
