"""Write a small MNIST-format IDX pair from the scikit-learn digits, upsampled to 28 x 28.

The image experiments read MNIST from its IDX files (``refconf images --datasets mnist
--data-dir DIR``). Without network access, this script writes files in that format from
the 1797 scikit-learn digits: grey levels 0..16 scaled to 0..255, upsampled 3x
(bilinear) to 24 x 24 and zero-padded to 28 x 28, 1500 as ``train-images-idx3-ubyte``
and 297 as ``t10k-images-idx3-ubyte``. They exercise the MNIST path end to end; their
bits/dim are not MNIST's.

    python validation/small_mnist_idx.py OUT_DIR
"""
import os
import sys

import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits

from refconf.data import write_idx

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
pixels = load_digits().images  # (1797, 8, 8), 0..16
big = np.clip(zoom(pixels * (255 / 16), (1, 3, 3), order=1), 0, 255)  # (1797, 24, 24)
images = np.pad(np.round(big), ((0, 0), (2, 2), (2, 2))).astype(np.uint8)
order = np.random.default_rng(0).permutation(len(images))
write_idx(os.path.join(out, "train-images-idx3-ubyte"), images[order[:1500]])
write_idx(os.path.join(out, "t10k-images-idx3-ubyte"), images[order[1500:]])
print(images.shape, images.dtype, images.max())
