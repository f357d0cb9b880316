"""Amortised flows of a VAE posterior: planar, IAF, orthogonal Sylvester and CONF steps.

Every flow maps a batch of latent samples ``z`` (``B x D``) through ``K`` steps whose
parameters are partly global (``params``) and partly per sample, computed by the encoder
from the datum ``x`` (``amortised``, ``B x amortised_size``; and ``h``, the encoder's
feature vector, ``B x F``). ``forward(params, amortised, h, z)`` returns ``(z_K, log_det)``
with ``log_det = sum_k log|det dz_k/dz_{k-1}|`` per sample, so that

    log q(z_K | x) = log N(z_0; mu(x), diag sigma(x)^2) - log_det

(docs/theory/flow-posteriors.md). The flows:

- :class:`NoFlow`: the diagonal Gaussian posterior itself (``K = 0``);
- :class:`Planar`: Rezende and Mohamed (2015), ``z + u tanh(w.z + b)``, all amortised;
- :class:`IAF`: Kingma et al. (2016), a MADE of ``z`` with the encoder features added to
  its hidden layer, ``sigma z + (1 - sigma) m``;
- :class:`Sylvester`: orthogonal Sylvester flows (van den Berg et al. 2018),
  ``z + Q R tanh(R~ Q^T z + b)`` with ``Q`` made orthonormal by Björck's iteration;
- :class:`ConfPosterior`: CONF coupling steps (paper eqs. 4-5) on circular (DFT)
  convolutions, the conditioner seeing ``z1`` or ``z1`` and the encoder features.
"""

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from ..bijectors.autoregressive import made_masks
from ..bijectors.coupling import conf_step, split_sizes, step_parameters
from ..conditioners import mlp, mlp_init

__all__ = [
    "CONDITIONER_INPUTS",
    "FLOWS",
    "IAF",
    "ConfPosterior",
    "NoFlow",
    "Planar",
    "Sylvester",
    "bjorck_orthonormalize",
    "make_flow",
]

CONDITIONER_INPUTS = ("z1", "z1+h")
_TINY = 1e-12


def _softplus(a):
    return np.logaddexp(0.0, a)


class NoFlow:
    """No flow: ``q(z|x)`` is the encoder's diagonal Gaussian."""

    name = "vae"
    amortised_size = 0

    def __init__(self, latent, features, steps=0):
        self.latent, self.features, self.steps = latent, features, 0

    def init_params(self, rng):
        return {}

    def forward(self, params, amortised, h, z):
        return z, np.zeros(np.shape(z)[0])


class Planar(NoFlow):
    """``K`` planar steps ``z' = z + u^ tanh(w.z + b)`` (Rezende and Mohamed 2015, eq. 10).

    ``u, w`` (``D`` each) and ``b`` of every step come from the encoder. ``u^ = u +
    (m(w.u) - w.u) w / |w|^2`` with ``m(a) = -1 + softplus(a)`` keeps ``w.u^ >= -1``, so
    each step is invertible (their appendix A); ``log|det| = log|1 + u^.w tanh'(w.z +
    b)|`` (eq. 12).
    """

    name = "planar"

    def __init__(self, latent, features, steps):
        super().__init__(latent, features)
        self.steps = steps
        self.amortised_size = steps * (2 * latent + 1)

    def forward(self, params, amortised, h, z):
        D, K = self.latent, self.steps
        u = np.reshape(amortised[:, : K * D], (-1, K, D))
        w = np.reshape(amortised[:, K * D: 2 * K * D], (-1, K, D))
        b = amortised[:, 2 * K * D:]
        log_det = 0.0
        for k in range(K):
            wu = np.sum(w[:, k] * u[:, k], axis=1, keepdims=True)
            # clamped: an all-zero w (ReLU features all 0) gives u^ = u, not 0/0
            w_sq = np.maximum(np.sum(w[:, k] ** 2, axis=1, keepdims=True), _TINY)
            u_hat = u[:, k] + (_softplus(wu) - 1.0 - wu) * w[:, k] / w_sq
            a = np.tanh(np.sum(w[:, k] * z, axis=1, keepdims=True) + b[:, k: k + 1])
            z = z + u_hat * a
            psi_u = (1.0 - a[:, 0] ** 2) * np.sum(w[:, k] * u_hat, axis=1)
            log_det = log_det + np.log(np.abs(1.0 + psi_u))
        return z, log_det


class IAF(NoFlow):
    """``K`` inverse autoregressive steps (Kingma et al. 2016, eqs. 10-14).

    A MADE (Germain et al. 2015; masks :func:`refconf.bijectors.autoregressive.made_masks`)
    of ``z`` with the encoder features ``h`` added to its hidden layer outputs ``m`` and
    ``s``; ``sigma = sigmoid(s + 1)`` (the forget-gate bias of their section 4) and
    ``z' = sigma z + (1 - sigma) m``, so ``log|det| = sum log sigma``. The order is
    reversed between steps.
    """

    name = "iaf"

    def __init__(self, latent, features, steps, hidden=None):
        super().__init__(latent, features)
        self.steps, self.hidden = steps, hidden or 2 * latent
        orders = [onp.arange(latent), onp.arange(latent)[::-1]]
        self.masks = [made_masks(orders[k % 2], (self.hidden,)) for k in range(steps)]

    def init_params(self, rng):
        D, F, H = self.latent, self.features, self.hidden
        return [{"W": rng.normal(size=(D, H)) / onp.sqrt(D), "C": rng.normal(size=(F, H)) / onp.sqrt(F),
                 "b": onp.zeros(H), "V": rng.normal(size=(H, 2 * D)) * 0.01 / onp.sqrt(H),
                 "c": onp.zeros(2 * D)} for _ in range(self.steps)]

    def forward(self, params, amortised, h, z):
        D = self.latent
        log_det = 0.0
        for step, (mask_in, mask_out) in zip(params, self.masks):
            hidden = np.maximum(z @ (step["W"] * mask_in) + h @ step["C"] + step["b"], 0.0)
            out = hidden @ (step["V"] * mask_out) + step["c"]
            m, s = out[:, :D], out[:, D:] + 1.0
            sigma = 1.0 / (1.0 + np.exp(-s))
            z = sigma * z + (1.0 - sigma) * m
            log_det = log_det - np.sum(_softplus(-s), axis=1)  # log sigmoid(s)
        return z, log_det


def bjorck_orthonormalize(q, max_iterations=100, tol=1e-12):
    """Björck and Bowie's (1971) iteration towards the closest matrix with orthonormal
    columns, ``Q <- Q (I + (I - Q^T Q) / 2)``, started at ``Q / |Q|_F`` (every singular
    value then lies in (0, 1], where the iteration converges), as van den Berg et al.
    (2018, section 3.2) orthogonalise their amortised ``Q``.

    Parameters
    ----------
    q : ndarray, (..., D, M), M <= D
    max_iterations : int
    tol : float
        Stop once every entry of ``I - Q^T Q`` is below ``tol`` in magnitude.

    Returns
    -------
    ndarray, (..., D, M)
    """
    q = q / np.sqrt(np.sum(q ** 2, axis=(-2, -1), keepdims=True))
    eye = onp.eye(np.shape(q)[-1])
    for _ in range(max_iterations):
        residual = eye - np.swapaxes(q, -1, -2) @ q
        if onp.max(onp.abs(getval(residual))) < tol:
            break
        q = q @ (eye + 0.5 * residual)
    return q


class Sylvester(NoFlow):
    """``K`` orthogonal Sylvester steps (van den Berg et al. 2018, eqs. 13-14, O-SNF).

    ``z' = z + Q R tanh(R~ Q^T z + b)`` with ``Q`` (``D x M``) orthonormal columns
    (:func:`bjorck_orthonormalize` of an amortised matrix), ``R`` and ``R~`` upper
    triangular ``M x M`` with diagonals ``tanh`` of amortised values (so
    ``R_ii R~_ii > -1``: invertible), all per sample. By Sylvester's determinant identity
    ``log|det| = sum_i log|1 + R_ii R~_ii tanh'(.)_i|`` (their eq. 14).
    """

    name = "osnf"

    def __init__(self, latent, features, steps, bottleneck=8):
        super().__init__(latent, features)
        self.steps, self.bottleneck = steps, bottleneck
        D, M = latent, bottleneck
        self.sizes = [D * M, M * M, M, M, M]  # Q, full R / R~, diag R, diag R~, b
        self.amortised_size = steps * sum(self.sizes)
        self.upper = onp.triu(onp.ones((M, M)), 1)

    def _unpack(self, amortised):
        blocks, start = [], 0
        for size in self.sizes:
            stop = start + self.steps * size
            blocks.append(np.reshape(amortised[:, start:stop], (-1, self.steps, size)))
            start = stop
        return blocks

    def forward(self, params, amortised, h, z):
        D, M = self.latent, self.bottleneck
        q, full, d1, d2, b = self._unpack(amortised)
        log_det = 0.0
        for k in range(self.steps):
            Q = bjorck_orthonormalize(np.reshape(q[:, k], (-1, D, M)))
            F = np.reshape(full[:, k], (-1, M, M))
            diag_r, diag_rt = np.tanh(d1[:, k]), np.tanh(d2[:, k])
            R = F * self.upper + diag_r[:, :, None] * onp.eye(M)
            Rt = np.swapaxes(F, 1, 2) * self.upper + diag_rt[:, :, None] * onp.eye(M)
            pre = np.einsum("bij,bkj,bk->bi", Rt, Q, z) + b[:, k]
            a = np.tanh(pre)
            z = z + np.einsum("bij,bjk,bk->bi", Q, R, a)
            log_det = log_det + np.sum(np.log(np.abs(1.0 + diag_r * diag_rt * (1.0 - a ** 2))),
                                       axis=1)
        return z, log_det


class ConfPosterior(NoFlow):
    """``K`` CONF coupling steps (paper eqs. 4-5) of ``m`` combined layers each, on
    circular convolutions (the paper's "complex" convolutional flow: DFT spectra).

    Step ``k`` splits ``z`` into ``z1`` (``floor(D/2)``) and ``z2`` (``ceil(D/2)``), the
    halves trading places between steps; a conditioner MLP of ``z1`` (``"z1"``) or of
    ``[z1, h]`` with the encoder features (``"z1+h"``, amortised) outputs the ``m``
    spectra, ``m`` scales and the shift
    (:func:`refconf.bijectors.coupling.step_parameters`, ``spectrum="exp"``), bounded
    (choice): kernel outputs ``tanh(o) / (m d2)``, so every eigenvalue has
    ``|log|W|| <= 1/m``, and scale outputs ``tanh(o) / m``, so ``|log s| <= 1/m`` (a
    combined layer grows like ``|u|^(s a'/a)``: unbounded, a few Adam steps make the
    ``K m`` stacked layers overflow), and
    :func:`refconf.bijectors.coupling.conf_step` updates ``z2``. The S-Log scales
    ``a, a'`` are global. The conditioner's last layer starts at zero: every step starts
    as the identity.
    """

    name = "conf"

    def __init__(self, latent, features, steps, m=8, hidden=(64,), conditioner_input="z1+h"):
        super().__init__(latent, features)
        if conditioner_input not in CONDITIONER_INPUTS:
            raise ValueError(f"conditioner_input must be one of {CONDITIONER_INPUTS}, got "
                             f"{conditioner_input!r}")
        self.steps, self.m, self.hidden = steps, m, tuple(hidden)
        self.conditioner_input = conditioner_input
        self.d1, self.d2 = split_sizes(latent)

    def init_params(self, rng):
        n_in = self.d1 + (self.features if self.conditioner_input == "z1+h" else 0)
        return [{"conditioner": mlp_init(n_in, self.hidden, (2 * self.m + 1) * self.d2,
                                         random_state=rng),
                 "log_alpha": onp.zeros(self.m), "log_alpha_prime": onp.zeros(self.m)}
                for _ in range(self.steps)]

    def _bounded(self, out):
        """The kernel blocks as ``tanh(o) / (m d2)`` (every DFT bin of their rfft then has
        ``|log|W|| <= 1/m``) and the scale blocks as ``tanh(o) / m`` (``log s`` in
        ``[-1/m, 1/m]``): a whole step's gains are bounded as one layer's would be by 1;
        the shift as it is."""
        n = self.m * self.d2
        return np.concatenate([np.tanh(out[:, :n]) / (self.m * self.d2),
                               np.tanh(out[:, n: 2 * n]) / self.m, out[:, 2 * n:]], axis=1)

    def forward(self, params, amortised, h, z):
        log_det = 0.0
        for k, step in enumerate(params):
            if k % 2:  # the halves trade places
                base, update = z[:, self.d2:], z[:, : self.d2]
            else:
                base, update = z[:, : self.d1], z[:, self.d1:]
            inputs = base if self.conditioner_input == "z1" else np.concatenate([base, h], axis=1)
            out = mlp(step["conditioner"], inputs, "relu")
            w, s, t = step_parameters(self._bounded(out), self.m, self.d2, "circular", "exp")
            update, step_log_det = conf_step(update, w, s, t, np.exp(step["log_alpha"]),
                                             np.exp(step["log_alpha_prime"]), "circular",
                                             overflow="inf")
            z = (np.concatenate([update, base], axis=1) if k % 2
                 else np.concatenate([base, update], axis=1))
            log_det = log_det + step_log_det
        return z, log_det


#: Model name -> flow class.
FLOWS = {"vae": NoFlow, "planar": Planar, "iaf": IAF, "osnf": Sylvester, "conf": ConfPosterior}


def make_flow(name, latent, features, steps, **options):
    """The flow ``name`` (one of :data:`FLOWS`) of ``steps`` steps on a ``latent``-wide
    latent with ``features`` encoder features; ``options``: ``m``, ``hidden`` and
    ``conditioner_input`` for ``"conf"``, ``bottleneck`` for ``"osnf"``, ``hidden`` for
    ``"iaf"``."""
    if name not in FLOWS:
        raise ValueError(f"unknown posterior flow {name!r}; expected one of {list(FLOWS)}")
    if name == "vae":
        return NoFlow(latent, features)
    return FLOWS[name](latent, features, steps, **options)
