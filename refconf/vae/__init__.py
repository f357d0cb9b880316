"""Variational auto-encoders whose posterior is a normalizing flow (the paper's Table 2).

- :mod:`~refconf.vae.flows`: the amortised posterior flows (none, planar, IAF,
  orthogonal Sylvester, CONF);
- :mod:`~refconf.vae.model`: the VAE (MLP encoder and decoder, Bernoulli likelihood);
- :mod:`~refconf.vae.bounds`: the ELBO and the importance-sampled NLL;
- :mod:`~refconf.vae.training`: Adamax (or Adam) with KL warm-up and early stopping on the
  validation ELBO.

The conventions (the log-det's sign in ``q(z|x)``, importance sampling) are in
docs/theory/flow-posteriors.md.
"""

from .bounds import bernoulli_log_likelihood, elbo, importance_nll, is_estimate, log_weights
from .flows import (
    CONDITIONER_INPUTS,
    FLOWS,
    IAF,
    ConfPosterior,
    NoFlow,
    Planar,
    Sylvester,
    bjorck_orthonormalize,
    make_flow,
)
from .model import VAE
from .training import OPTIMIZERS, VAEFit, adamax_step, fit_vae, warmup_beta

__all__ = [
    "CONDITIONER_INPUTS",
    "FLOWS",
    "IAF",
    "OPTIMIZERS",
    "VAE",
    "ConfPosterior",
    "NoFlow",
    "Planar",
    "Sylvester",
    "VAEFit",
    "adamax_step",
    "bernoulli_log_likelihood",
    "bjorck_orthonormalize",
    "elbo",
    "fit_vae",
    "importance_nll",
    "is_estimate",
    "log_weights",
    "make_flow",
    "warmup_beta",
]
