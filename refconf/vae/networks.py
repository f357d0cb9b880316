"""The gated-convolution encoder and decoder of van den Berg et al. (2018) for 28 x 28
binary images, written in ``autograd.numpy``.

A gated convolution (Dauphin et al. 2017, as in the Sylvester code) is
``conv(x; W_h) * sigmoid(conv(x; W_g))``. The encoder is six of them, ``1 -> 32 (5, stride
1, pad 2) -> 32 (5, 2, 2) -> 64 (5, 1, 2) -> 64 (5, 2, 2) -> 64 (5, 1, 2) -> 256 (7, 1,
0)``: 28 x 28 -> 14 -> 7 -> 1, 256 features. The decoder is six gated transposed
convolutions ``D -> 64 (7, 1, 0) -> 64 (5, 1, 2) -> 32 (5, 2, 2, output padding 1) -> 32
(5, 1, 2) -> 32 (5, 2, 2, 1) -> 32 (5, 1, 2)``: 1 -> 7 -> 14 -> 28, then a 1 x 1
convolution to the logits.

Convolutions are cross-correlations (as in PyTorch) on ``(batch, channels, height,
width)`` arrays, computed by summing shifted slices (no im2col buffer), so autograd
differentiates them; they are the readable definition, not a fast path: on a CPU one MNIST
epoch takes hours.
"""

import autograd.numpy as np
import numpy as onp

__all__ = ["DECODER_LAYERS", "ENCODER_LAYERS", "FEATURES", "conv2d", "conv_transpose2d",
           "gated_decoder", "gated_encoder", "init_gated"]

#: (in, out, kernel, stride, padding) of the encoder's gated convolutions.
ENCODER_LAYERS = ((1, 32, 5, 1, 2), (32, 32, 5, 2, 2), (32, 64, 5, 1, 2), (64, 64, 5, 2, 2),
                  (64, 64, 5, 1, 2), (64, 256, 7, 1, 0))
#: (out, kernel, stride, padding, output padding) of the decoder's gated transposed
#: convolutions; the first takes the latent size as its input channels.
DECODER_LAYERS = ((64, 7, 1, 0, 0), (64, 5, 1, 2, 0), (32, 5, 2, 2, 1), (32, 5, 1, 2, 0),
                  (32, 5, 2, 2, 1), (32, 5, 1, 2, 0))
FEATURES = 256
SIDE = 28


def conv2d(x, w, b, stride=1, padding=0):
    """``y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] x_pad[n, c, s i + p, s j + q]``.

    Parameters
    ----------
    x : ndarray, (B, C, H, W)
    w : ndarray, (O, C, k, k)
    b : ndarray, (O,)
    stride, padding : int

    Returns
    -------
    ndarray, (B, O, (H + 2 padding - k) // stride + 1, same for W)
    """
    k = onp.shape(w)[-1]
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), "constant")
    height, width = onp.shape(x)[2:]
    rows, cols = (height - k) // stride + 1, (width - k) // stride + 1
    y = 0.0
    for p in range(k):
        for q in range(k):
            patch = x[:, :, p: p + stride * (rows - 1) + 1: stride,
                      q: q + stride * (cols - 1) + 1: stride]
            y = y + np.einsum("bchw,oc->bohw", patch, w[:, :, p, q])
    return y + b[None, :, None, None]


def _dilate(x, stride):
    """Insert ``stride - 1`` zeros between neighbouring pixels of the last two axes."""
    if stride == 1:
        return x
    B, C, H, W = onp.shape(x)
    zeros = np.zeros((B, C, H, W, stride - 1))
    x = np.reshape(np.concatenate([x[..., None], zeros], axis=-1), (B, C, H, W * stride))
    x = x[..., : W * stride - stride + 1]
    zeros = np.zeros((B, C, H, stride - 1, onp.shape(x)[-1]))
    x = np.reshape(np.concatenate([x[:, :, :, None], zeros], axis=3), (B, C, H * stride, -1))
    return x[:, :, : H * stride - stride + 1]


def conv_transpose2d(x, w, b, stride=1, padding=0, output_padding=0):
    """The transposed convolution (the adjoint of :func:`conv2d` in ``x``, PyTorch's
    ``ConvTranspose2d``): dilate by ``stride``, pad by ``k - 1 - padding`` (plus
    ``output_padding`` at the bottom and right) and correlate with the flipped kernel.

    Parameters
    ----------
    x : ndarray, (B, C, H, W)
    w : ndarray, (C, O, k, k)
        PyTorch's layout of a transposed convolution's weight.
    b : ndarray, (O,)

    Returns
    -------
    ndarray, (B, O, (H - 1) stride - 2 padding + k + output_padding, same for W)
    """
    k = onp.shape(w)[-1]
    x = _dilate(x, stride)
    edge = k - 1 - padding
    x = np.pad(x, ((0, 0), (0, 0), (edge, edge + output_padding), (edge, edge + output_padding)),
               "constant")
    flipped = np.swapaxes(w[:, :, ::-1, ::-1], 0, 1)
    return conv2d(x, flipped, b)


def _sigmoid(a):
    return 0.5 * (np.tanh(0.5 * a) + 1.0)


def _glorot(rng, shape, fan_in, fan_out):
    limit = onp.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def init_gated(rng, latent):
    """``(encoder, decoder)`` parameters: Glorot-uniform kernels, zero biases; each
    gated layer holds ``h`` and ``g`` (the gate)."""
    encoder = [{part: {"W": _glorot(rng, (o, c, k, k), c * k * k, o * k * k), "b": onp.zeros(o)}
                for part in ("h", "g")} for c, o, k, _, _ in ENCODER_LAYERS]
    decoder, c = [], latent
    for o, k, _, _, _ in DECODER_LAYERS:
        decoder.append({part: {"W": _glorot(rng, (c, o, k, k), c * k * k, o * k * k),
                               "b": onp.zeros(o)} for part in ("h", "g")})
        c = o
    decoder.append({"W": _glorot(rng, (1, c, 1, 1), c, 1), "b": onp.zeros(1)})
    return encoder, decoder


def gated_encoder(params, x):
    """Features ``(B, 256)`` of images given as rows ``(B, 784)``."""
    h = np.reshape(x, (-1, 1, SIDE, SIDE))
    for layer, (_, _, _, stride, padding) in zip(params, ENCODER_LAYERS):
        h = (conv2d(h, layer["h"]["W"], layer["h"]["b"], stride, padding)
             * _sigmoid(conv2d(h, layer["g"]["W"], layer["g"]["b"], stride, padding)))
    return np.reshape(h, (-1, FEATURES))


def gated_decoder(params, z):
    """Bernoulli logits ``(B, 784)`` of latents ``(B, D)``."""
    h = np.reshape(z, (*onp.shape(z), 1, 1))
    for layer, (_, _, stride, padding, extra) in zip(params, DECODER_LAYERS):
        h = (conv_transpose2d(h, layer["h"]["W"], layer["h"]["b"], stride, padding, extra)
             * _sigmoid(conv_transpose2d(h, layer["g"]["W"], layer["g"]["b"], stride, padding,
                                         extra)))
    logits = conv2d(h, params[-1]["W"], params[-1]["b"])
    return np.reshape(logits, (-1, SIDE * SIDE))
