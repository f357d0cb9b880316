"""The ELBO of a flow-posterior VAE and the importance-sampled marginal likelihood.

With ``z_0 = mu(x) + sigma(x) * eps``, ``eps ~ N(0, I)``, and ``z_K = f_K o ... o f_1(z_0)``,

    log q(z_K | x) = log N(z_0; mu, diag sigma^2) - sum_k log|det dz_k/dz_{k-1}|
    log w = log p(x | z_K) + log N(z_K; 0, I) - log q(z_K | x)
    ELBO(x) = E_q[log w] <= log p(x)
    log p(x) ~ log (1/S) sum_s w_s = logsumexp_s(log w_s) - log S

(docs/theory/flow-posteriors.md). The IS estimate is biased low for finite ``S`` but
never below the ELBO in expectation, and it converges to ``log p(x)`` as ``S`` grows.
"""

import autograd.numpy as np
import numpy as onp
from autograd.scipy.special import logsumexp

__all__ = ["bernoulli_log_likelihood", "elbo", "importance_nll", "is_estimate", "log_weights"]

_LOG_2PI = onp.log(2.0 * onp.pi)
_ROWS_PER_CALL = 20000


def bernoulli_log_likelihood(x, logits):
    """``sum_p [x_p l_p - log(1 + e^{l_p})]`` per row: ``log p(x|z)`` of binary ``x``."""
    return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)


def _standard_normal_log_density(z):
    return -0.5 * np.sum(z ** 2 + _LOG_2PI, axis=-1)


def log_weights(model, params, x, eps, beta=1.0):
    """``(log p(x|z_K), log p(z_K) - log q(z_K|x))`` per row of ``x`` for the noise ``eps``
    (``B x D``): the reconstruction and the negative KL sample; ``log w`` is their sum.
    ``beta`` only scales the second term (KL warm-up)."""
    mu, sigma, amortised, h = model.encode(params, x)
    z0 = mu + sigma * eps
    z, log_det = model.posterior_flow.forward(params["flow"], amortised, h, z0)
    log_q = (-0.5 * np.sum(eps ** 2 + _LOG_2PI, axis=-1) - np.sum(np.log(sigma), axis=-1)
             - log_det)
    reconstruction = bernoulli_log_likelihood(x, model.decode(params, z))
    return reconstruction, beta * (_standard_normal_log_density(z) - log_q)


def elbo(model, params, x, eps, beta=1.0):
    """The single-sample ELBO per row, ``log p(x|z) + beta (log p(z) - log q(z|x))`` (the
    KL warm-up's objective for ``beta < 1``)."""
    reconstruction, negative_kl = log_weights(model, params, x, eps, beta)
    return reconstruction + negative_kl


def is_estimate(log_w):
    """The importance-sampled ``log p(x)`` and its standard error from ``log w`` (``S x B``).

    Returns
    -------
    log_p : ndarray, (B,)
        ``logsumexp_s(log w_s) - log S``.
    standard_error : ndarray, (B,)
        The delta-method standard error of ``log_p``: ``sqrt(Var(w) / S) / mean(w)``,
        computed from the normalised weights ``w_s / mean(w)`` (no overflow).
    """
    log_w = onp.asarray(log_w)
    S = log_w.shape[0]
    log_p = logsumexp(log_w, axis=0) - onp.log(S)
    ratio = onp.exp(log_w - log_p)  # w_s / mean(w), mean 1
    return log_p, onp.sqrt(onp.mean((ratio - 1.0) ** 2, axis=0) / S)


def _log_weight_block(model, params, x, samples, chunk, rng):
    """``log w`` (``S x n``) of the data ``x``, ``chunk`` samples per call."""
    blocks = []
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        eps = rng.standard_normal((size * len(x), model.latent))
        rows = onp.broadcast_to(x, (size, *x.shape)).reshape(-1, x.shape[1])
        reconstruction, negative_kl = log_weights(model, params, rows, eps)
        blocks.append(onp.reshape(reconstruction + negative_kl, (size, len(x))))
    return onp.concatenate(blocks)


def importance_nll(model, params, x, samples, random_state=None, chunk=500):
    """Test metrics of the importance-sampled ``-log p(x)`` and the ``-ELBO``.

    Parameters
    ----------
    model : VAE
    params : pytree
    x : ndarray, (n, P)
    samples : int
        ``S`` importance samples per datum (the encoder's ``q(z|x)`` as the proposal).
    random_state : seed of the noise
    chunk : int
        Samples drawn at a time per datum.

    Returns
    -------
    dict
        ``nll`` (mean over data of ``-log p^(x)``), ``nll_se`` (the standard error of that
        mean from the importance sampling, ``sqrt(sum_i se_i^2) / n``), ``neg_elbo`` (the
        ``-ELBO`` averaged over the same ``S`` samples), ``samples``.
    """
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    rng = onp.random.default_rng(random_state)
    per_call = max(1, _ROWS_PER_CALL // min(chunk, samples))  # data per forward call
    log_w = onp.concatenate([_log_weight_block(model, params, x[i:i + per_call], samples,
                                               chunk, rng)
                             for i in range(0, len(x), per_call)], axis=1)
    log_p, se = is_estimate(log_w)
    return {"nll": float(-onp.mean(log_p)), "nll_se": float(onp.sqrt(onp.sum(se ** 2)) / len(x)),
            "neg_elbo": float(-onp.mean(log_w)), "samples": samples}
