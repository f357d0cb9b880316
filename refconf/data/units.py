"""Negative log-likelihood units: undoing preprocessing, nats to bits per dimension.

A model fitted to preprocessed data ``y = T(x)`` (rescaling, logit, ...) gives, by the
change of variables, the log-likelihood of the unpreprocessed data

    log p_x(x) = log p_y(T(x)) + log|det dT/dx|,

so ``NLL_x = NLL_y - log|det dT/dx|`` (per example). Image results are reported in bits per
dimension of the unpreprocessed scale: ``NLL_x / (D ln 2)`` (``docs/tutorials/digits.md``).
"""

import numpy as np

from ._common import positive_int

__all__ = ["bits_per_dim", "nll_before_preprocessing"]


def nll_before_preprocessing(nll_nats, log_det_preprocessing):
    """NLL (nats) of the data before a preprocessing map T, from the NLL after it.

    ``NLL_x = NLL_y - log|det dT/dx|``.

    Parameters
    ----------
    nll_nats : float or ndarray
        Negative log-likelihood of the preprocessed data, per example or averaged.
    log_det_preprocessing : float or ndarray
        ``log|det dT/dx|`` of the preprocessing, per example or averaged alike (broadcast).
        A rescaling ``y = x / c`` of ``D`` values has ``-D log c``.

    Returns
    -------
    float or ndarray

    Examples
    --------
    A uniform density on (0, 1)^D has NLL 0; on the raw (0, 256)^D scale it is D log 256:

    >>> D = 3
    >>> bool(np.isclose(nll_before_preprocessing(0.0, -D * np.log(256)), D * np.log(256)))
    True
    """
    return np.asarray(nll_nats, dtype=np.float64) - np.asarray(log_det_preprocessing,
                                                              dtype=np.float64)


def bits_per_dim(nll_nats, dim, log_det_preprocessing=0.0):
    """Bits per dimension of an NLL in nats: ``(NLL - log|det dT/dx|) / (D ln 2)``.

    Parameters
    ----------
    nll_nats : float or ndarray
        NLL in nats per example of the data the model saw (after preprocessing T).
    dim : int
        Number of dimensions ``D`` of one example.
    log_det_preprocessing : float or ndarray
        ``log|det dT/dx|`` of the preprocessing from the scale the result is to be reported
        on (0 when the model saw that scale). For 8-bit images dequantised and divided by
        256, ``-D log 256``; add a logit's log-det per example where one is used.

    Returns
    -------
    float or ndarray

    Examples
    --------
    A uniform density on (0, 1)^D fitted to 8-bit data divided by 256 costs 8 bits/dim:

    >>> D = 784
    >>> float(bits_per_dim(0.0, D, log_det_preprocessing=-D * np.log(256)))
    8.0
    """
    dim = positive_int(dim, "dim")
    return nll_before_preprocessing(nll_nats, log_det_preprocessing) / (dim * np.log(2.0))
