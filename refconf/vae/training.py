"""Training a flow-posterior VAE: minibatch Adamax on the single-sample ELBO, KL warm-up,
early stopping on the validation ELBO (the protocol of van den Berg et al. 2018).

Gradients come from autograd (the readable tier) through the whole model, flows
included; the update is Adamax (:func:`adamax_step`, the Sylvester protocol's optimiser)
or Adam (:func:`refconf.train.adam_step`) on the flattened parameters
(:func:`refconf.params.flatten`).
"""

import dataclasses
import time

import autograd.numpy as anp
import numpy as onp
from autograd import value_and_grad
from tqdm.auto import tqdm

from ..params import flatten
from ..train import adam_step, clip_by_global_norm
from .bounds import elbo

__all__ = ["OPTIMIZERS", "VAEFit", "adamax_step", "fit_vae", "warmup_beta"]

OPTIMIZERS = ("adamax", "adam")


@dataclasses.dataclass
class VAEFit:
    """What :func:`fit_vae` returns: the best-validation ``params``, the per-epoch
    ``history`` (``epoch``, ``beta``, ``train_loss`` (the warm-up objective),
    ``val_neg_elbo``, ``skipped``), ``best_epoch``, ``best_val_neg_elbo``,
    ``stopped_reason`` (``"completed"``, ``"early_stopping"`` or ``"non_finite"``) and
    ``skipped_steps`` (batches whose loss or gradient was not finite, skipped)."""

    params: object
    history: list
    best_epoch: int
    best_val_neg_elbo: float
    stopped_reason: str
    skipped_steps: int = 0


def adamax_step(x, g, m, u, step, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adamax update (Kingma and Ba 2015, Algorithm 2, the infinity-norm Adam):

    ``m <- beta1 m + (1 - beta1) g``, ``u <- max(beta2 u, |g|)``,
    ``x <- x - learning_rate / (1 - beta1^step) * m / (u + eps)``.

    Returns new ``(x, m, u)``; the inputs are not modified.

    Examples
    --------
    >>> import numpy as np
    >>> x, m, u = adamax_step(np.zeros(2), np.array([300.0, -0.01]), np.zeros(2),
    ...                       np.zeros(2), step=1, learning_rate=0.1)
    >>> np.round(x, 6)
    array([-0.1,  0.1])
    """
    m = beta1 * m + (1.0 - beta1) * g
    u = onp.maximum(beta2 * u, onp.abs(g))
    return x - learning_rate / (1.0 - beta1 ** step) * m / (u + eps), m, u


def warmup_beta(epoch, warmup):
    """The KL weight of 1-based ``epoch``: ``min(1, epoch / warmup)`` (1 without warm-up)."""
    return 1.0 if not warmup else min(1.0, epoch / warmup)


def _validation(model, unflatten, vector, val, eps, batch_size):
    params = unflatten(vector)
    total = 0.0
    for i in range(0, len(val), batch_size):
        total -= float(onp.sum(elbo(model, params, val[i:i + batch_size],
                                    eps[i:i + batch_size])))
    return total / len(val)


def fit_vae(model, params, train, val, *, epochs, batch_size=100, learning_rate=5e-4,
            warmup=100, patience=100, optimizer="adamax", clip_norm=None, random_state=None,
            progress=False):
    """Maximise the ELBO of ``model`` on ``train``.

    Each step draws one ``eps ~ N(0, I)`` per datum and descends
    ``-mean(log p(x|z) + beta (log p(z) - log q(z|x)))`` with ``beta`` =
    :func:`warmup_beta`. After each epoch the ``-ELBO`` (``beta = 1``) on ``val`` with
    fixed noise decides early stopping: stop after ``patience`` epochs without a new best,
    counted once the warm-up is over (as van den Berg et al.'s code does), and return the
    best parameters. A batch whose loss or gradient is not finite (a posterior sample
    overflowing a flow) is skipped and counted; an epoch in which half the batches are
    skipped stops training, returning the best parameters so far.

    Parameters
    ----------
    model : refconf.vae.VAE
    params : pytree
    train, val : ndarray, (n, P), binary
    epochs, batch_size : int
    learning_rate : float
        The optimiser's step size.
    warmup : int
        Epochs of the linear KL warm-up (0: none).
    patience : int or None
    optimizer : {"adamax", "adam"}
        :func:`adamax_step` (van den Berg et al.'s choice) or
        :func:`refconf.train.adam_step`.
    clip_norm : float, optional
        Rescale each gradient to this global norm if larger
        (:func:`refconf.train.clip_by_global_norm`).
    random_state : seed of the batch order and the noise
    progress : bool

    Returns
    -------
    VAEFit
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    update = adamax_step if optimizer == "adamax" else adam_step
    rng = onp.random.default_rng(random_state)
    vector, unflatten = flatten(params)
    moments = [onp.zeros_like(vector), onp.zeros_like(vector)]

    def objective(v, batch, eps, beta):
        return -anp.mean(elbo(model, unflatten(v), batch, eps, beta))

    step_fn = value_and_grad(objective)
    val_eps = rng.standard_normal((len(val), model.latent))
    best = (0, _validation(model, unflatten, vector, val, val_eps, batch_size), vector)
    history, reason, step, waited, skipped_total = [], "completed", 0, 0, 0
    for epoch in tqdm(range(1, epochs + 1), disable=not progress, desc="epochs"):
        beta, started, total, rows = warmup_beta(epoch, warmup), time.perf_counter(), 0.0, 0
        batches = onp.array_split(rng.permutation(len(train)), max(1, len(train) // batch_size))
        skipped = 0
        for batch in batches:
            loss, g = step_fn(vector, train[batch], rng.standard_normal(
                (len(batch), model.latent)), beta)
            if not (onp.isfinite(loss) and onp.all(onp.isfinite(g))):
                skipped += 1
                continue
            step += 1
            g, _ = clip_by_global_norm(g, clip_norm)
            vector, *moments = update(vector, g, *moments, step, learning_rate)
            total, rows = total + float(loss) * len(batch), rows + len(batch)
        skipped_total += skipped
        if 2 * skipped >= len(batches):
            reason = "non_finite"
            break
        val_loss = _validation(model, unflatten, vector, val, val_eps, batch_size)
        history.append({"epoch": epoch, "beta": beta, "train_loss": total / rows,
                        "val_neg_elbo": val_loss, "skipped": skipped,
                        "seconds": time.perf_counter() - started})
        if onp.isfinite(val_loss) and val_loss < best[1]:
            best, waited = (epoch, val_loss, vector), 0
        else:
            waited = 0 if beta < 1.0 else waited + 1  # patience counts after the warm-up
        if patience is not None and waited >= patience:
            reason = "early_stopping"
            break
    return VAEFit(unflatten(best[2]), history, best[0], float(best[1]), reason, skipped_total)
