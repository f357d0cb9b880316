"""A VAE with a Bernoulli likelihood and a flow posterior: MLP or gated-convolution encoder
and decoder.

The encoder maps ``x`` (``P`` binary pixels) to the features ``h``: an MLP (``F =
hidden[-1]`` units, ReLU), or van den Berg et al.'s gated convolutions for 28 x 28 images
(``F = 256``, :mod:`refconf.vae.networks`); ``h`` maps linearly to the Gaussian's mean ``mu``, its
variance ``softplus(.)`` (as in van den Berg et al.'s code) and the flow's amortised
parameters. The decoder maps ``z`` through an MLP (or gated transposed convolutions) to
the Bernoulli logits. The ELBO and
the importance weights are in :mod:`refconf.vae.bounds`.
"""

import dataclasses

import autograd.numpy as np
import numpy as onp

from ..conditioners import mlp, mlp_init
from .flows import make_flow
from .networks import FEATURES, SIDE, gated_decoder, gated_encoder, init_gated

__all__ = ["ARCHITECTURES", "VAE"]

ARCHITECTURES = ("mlp", "gated_conv")

_MIN_VARIANCE = 1e-6


def _linear_init(rng, n_in, n_out, scale=1.0):
    limit = scale * onp.sqrt(6.0 / (n_in + n_out))
    return {"W": rng.uniform(-limit, limit, size=(n_in, n_out)), "b": onp.zeros(n_out)}


def _linear(layer, h):
    return h @ layer["W"] + layer["b"]


@dataclasses.dataclass(frozen=True)
class VAE:
    """A VAE ``p(x|z) p(z)`` with the amortised posterior ``q(z|x)`` of a flow.

    Attributes
    ----------
    data_dim : int
        Pixels per datum ``P``.
    latent : int
        ``D``.
    hidden : tuple of int
        Widths of the encoder's MLP (the decoder's, reversed); ``F = hidden[-1]``.
    flow : str
        One of :data:`refconf.vae.flows.FLOWS`.
    steps : int
        Flow steps ``K``.
    flow_options : dict
        Passed to :func:`refconf.vae.flows.make_flow`.
    architecture : {"mlp", "gated_conv"}
        ``"gated_conv"``: the Sylvester paper's networks (``data_dim`` 784; ``hidden``
        unused).
    """

    data_dim: int
    latent: int
    hidden: tuple = (300, 300)
    flow: str = "vae"
    steps: int = 4
    flow_options: dict = dataclasses.field(default_factory=dict)
    architecture: str = "mlp"

    @property
    def features(self):
        """``F``, the width of the encoder's features ``h``."""
        return FEATURES if self.architecture == "gated_conv" else self.hidden[-1]

    def __post_init__(self):
        for name in ("data_dim", "latent", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "steps" else 1):
                raise ValueError(f"VAE: {name} must be a positive integer, got {value!r}")
        if not self.hidden or any(not isinstance(w, int) or w < 1 for w in self.hidden):
            raise ValueError(f"VAE: hidden must be positive widths, got {self.hidden!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"VAE: architecture must be one of {ARCHITECTURES}, got "
                             f"{self.architecture!r}")
        if self.architecture == "gated_conv" and self.data_dim != SIDE * SIDE:
            raise ValueError(f"VAE: the gated convolutions take 28 x 28 images (data_dim "
                             f"784), got data_dim {self.data_dim}")
        object.__setattr__(self, "posterior_flow", make_flow(
            self.flow, self.latent, self.features, self.steps, **self.flow_options))

    def init_params(self, random_state=None):
        """Glorot-uniform MLPs, zero biases; the amortised head starts small."""
        rng = onp.random.default_rng(random_state)
        F, D = self.features, self.latent
        if self.architecture == "gated_conv":
            encoder, decoder = init_gated(rng, D)
        else:
            encoder = mlp_init(self.data_dim, self.hidden[:-1], F, rng, zero_output=False)
            decoder = mlp_init(D, self.hidden[::-1], self.data_dim, rng, zero_output=False)
        params = {"encoder": encoder, "mean": _linear_init(rng, F, D),
                  "variance": _linear_init(rng, F, D), "decoder": decoder,
                  "flow": self.posterior_flow.init_params(rng)}
        if self.posterior_flow.amortised_size:
            params["amortised"] = _linear_init(rng, F, self.posterior_flow.amortised_size, 0.1)
        return params

    def encode(self, params, x):
        """``(mu, sigma, amortised, h)`` of a batch ``x`` (``B x P``)."""
        if self.architecture == "gated_conv":
            h = gated_encoder(params["encoder"], x)
        else:
            h = np.maximum(mlp(params["encoder"], x, "relu"), 0.0)
        mu = _linear(params["mean"], h)
        sigma = np.sqrt(np.logaddexp(0.0, _linear(params["variance"], h)) + _MIN_VARIANCE)
        amortised = _linear(params["amortised"], h) if "amortised" in params else None
        return mu, sigma, amortised, h

    def decode(self, params, z):
        """Bernoulli logits ``(B, P)`` of ``p(x|z)``."""
        if self.architecture == "gated_conv":
            return gated_decoder(params["decoder"], z)
        return mlp(params["decoder"], z, "relu")
