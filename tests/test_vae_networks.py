"""The gated-convolution networks: convolutions against a direct sum, the transposed
convolution as the adjoint, the shapes of the Sylvester architecture, and gradients."""

import autograd.numpy as anp
import numpy as np
from autograd.test_util import check_grads

from refconf.params import flatten
from refconf.vae import VAE, elbo
from refconf.vae.networks import conv2d, conv_transpose2d


def _direct_conv(x, w, b, stride, padding):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    k = w.shape[-1]
    rows = (x.shape[2] - k) // stride + 1
    cols = (x.shape[3] - k) // stride + 1
    y = np.empty((x.shape[0], w.shape[0], rows, cols))
    for i in range(rows):
        for j in range(cols):
            patch = x[:, :, i * stride: i * stride + k, j * stride: j * stride + k]
            y[:, :, i, j] = np.einsum("bcpq,ocpq->bo", patch, w) + b
    return y


def test_conv2d_is_the_direct_cross_correlation():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 9, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    for stride, padding in ((1, 0), (2, 1), (2, 2), (1, 2)):
        np.testing.assert_allclose(conv2d(x, w, b, stride, padding),
                                   _direct_conv(x, w, b, stride, padding), atol=1e-12)


def test_conv_transpose_is_the_adjoint_of_conv():
    rng = np.random.default_rng(1)
    for stride, padding, extra, side in ((1, 2, 0, 7), (2, 2, 1, 7), (1, 0, 0, 1)):
        k = 5 if padding else 7
        w = rng.normal(size=(3, 2, k, k))  # transposed layout (in, out, k, k)
        y = rng.normal(size=(2, 3, side, side))
        out = conv_transpose2d(y, w, np.zeros(2), stride, padding, extra)
        assert out.shape[-1] == (side - 1) * stride - 2 * padding + k + extra
        x = rng.normal(size=out.shape)
        forward = conv2d(x, w, np.zeros(3), stride, padding)  # (out -> in) direction
        assert forward.shape == y.shape
        np.testing.assert_allclose(np.sum(forward * y), np.sum(x * out), rtol=1e-10)


def test_gated_vae_shapes_and_elbo_gradient():
    model = VAE(784, 4, flow="conf", steps=1, flow_options={"m": 1, "hidden": (4,)},
                architecture="gated_conv")
    params = model.init_params(0)
    rng = np.random.default_rng(2)
    x = (rng.random((2, 784)) < 0.3).astype(float)
    mu, sigma, _, h = model.encode(params, x)
    assert h.shape == (2, 256) and mu.shape == sigma.shape == (2, 4)
    assert model.decode(params, mu).shape == (2, 784)
    vector, unflatten = flatten(params)
    eps = rng.normal(size=(2, 4))
    check_grads(lambda v: anp.mean(elbo(model, unflatten(v), x, eps)), modes=["rev"],
                order=1)(vector)
