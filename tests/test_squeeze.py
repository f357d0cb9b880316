"""Squeeze (space-to-depth): values against an index formula, the dense-Jacobian laws in
both directions on 1 x 4 x 4 and 3 x 4 x 4 images, the compiled kernels against the
readable ones, and the input checks. (Its ``backward`` passes ``check_grads`` in
``tests/test_backward.py``; the law registry, ``tests/test_bijector_laws.py``, draws it
too.)"""

import array_api_strict as xps
import numpy as np
import pytest

from refconf import Inverse
from refconf.backend import to_device, to_numpy
from refconf.bijectors.squeeze import Squeeze, depth_to_space, space_to_depth
from refconf.testing import check_bijector


@pytest.mark.parametrize("C", [1, 3])
def test_squeeze_moves_each_block_to_channels_and_passes_the_laws(C):
    rng = np.random.default_rng(C)
    x = rng.normal(size=(2, C, 4, 4))
    y, log_det = Squeeze().forward(x)
    assert y.shape == (2, 4 * C, 2, 2)
    for c, i, j, h, w in np.ndindex(C, 2, 2, 2, 2):
        assert y[1, (2 * c + i) * 2 + j, h, w] == x[1, c, 2 * h + i, 2 * w + j]
    np.testing.assert_array_equal(log_det, np.zeros(2))
    for bijector, data in ((Squeeze(), x), (Inverse(Squeeze()), y)):
        report = check_bijector(bijector, data)
        assert max(report.values()) < 1e-12


@pytest.mark.parametrize("factor", [2, 3])
def test_compiled_kernels_equal_the_readable_ones_and_the_array_api_ones(factor):
    rng = np.random.default_rng(factor)
    x = rng.normal(size=(3, 2, 2 * factor, 3 * factor))
    y = space_to_depth.readable(np, x, factor)
    np.testing.assert_array_equal(space_to_depth(np, x, factor), y)
    np.testing.assert_array_equal(depth_to_space(np, y, factor), x)
    np.testing.assert_array_equal(to_numpy(space_to_depth(xps, to_device(x, xps), factor)), y)
    np.testing.assert_array_equal(to_numpy(depth_to_space(xps, to_device(y, xps), factor)), x)


def test_squeeze_rejects_odd_sides_channel_counts_and_factors():
    with pytest.raises(ValueError, match="multiples of the factor 2"):
        Squeeze().forward(np.ones((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="multiple of factor"):
        Squeeze().inverse(np.ones((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="integer >= 2"):
        Squeeze(1)
