"""The multi-scale 2-D CONF image model (``docs/theory/image-flows.md``).

The layers' laws (round trip, log-det against the dense Jacobian) are in
``tests/test_bijector_laws.py``; here: the convolutional conditioner against SciPy and
finite differences, the explicit reverse pass of a whole model against autograd, the
factor-out keeping its latents, identity at initialisation, save/load, sampling, bad
input, and the preprocessing's bits per dimension on a case with a known answer.
"""

import json

import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads
from scipy.signal import correlate
from scipy.special import expit

from refconf import ImageFlowModel, conf_image, load_model, save_model
from refconf.backend import map_leaves
from refconf.bijectors import ConvCoupling2D
from refconf.conditioners import conv2d_same, conv_init
from refconf.data import bits_per_dim, dequantize_logit, read_idx, write_idx
from refconf.engines import nll_and_grad
from refconf.params import ravel


def _perturbed(params, seed, scale=0.05):
    rng = np.random.default_rng(seed)
    return map_leaves(lambda a: a + scale * rng.normal(size=np.shape(a)), params)


def test_conv2d_same_is_zero_padded_cross_correlation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5))
    layer = conv_init(3, (), 2, kernel=3, random_state=0, zero_output=False)[0]
    b = rng.normal(size=2)
    kernels = layer["W"].reshape(2, 3, 3, 3)
    expected = np.array([[sum(correlate(x[n, c], kernels[o, c], mode="same") for c in range(3))
                          + b[o] for o in range(2)] for n in range(2)])
    assert np.allclose(conv2d_same(x, layer["W"], b), expected, rtol=1e-13, atol=1e-13)


def test_conv2d_same_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x, W, b = rng.normal(size=(2, 2, 3, 4)), rng.normal(size=(3, 2 * 9)), rng.normal(size=3)
    check_grads(conv2d_same, modes=["rev"], order=1)(x, W, b)


@pytest.mark.parametrize("kind, coupling, mixing", [("symmetric", "conf", "1x1"),
                                                    ("circular", "conf", "reverse"),
                                                    ("symmetric", "affine", "1x1")])
def test_explicit_pass_of_a_two_level_model_equals_autograd(kind, coupling, mixing):
    model = conf_image((2, 4, 4), levels=2, steps_per_level=2, hidden=(4,), kind=kind,
                       coupling=coupling, mixing=mixing)
    x = np.random.default_rng(2).normal(size=(12, 32))
    params = _perturbed(model.init_params(x, random_state=0), seed=3)

    def loss(p):
        return -np.mean(model.build(p).log_prob(x))

    nll, grads = nll_and_grad(model, params, x)
    expected = ravel(grad(loss)(params))
    assert np.isclose(nll, loss(params), rtol=1e-12)
    assert np.abs(expected).max() > 1e-3
    assert np.allclose(ravel(grads), expected, rtol=1e-9, atol=1e-10)


def test_factor_out_keeps_its_latents_and_inverts_exactly():
    model = conf_image((1, 8, 8), levels=2, steps_per_level=2, hidden=(4,))
    assert [level[3] for level in model.levels] == [2, 0]
    offset = model.levels[1][0]
    x = np.random.default_rng(4).normal(size=(6, 64))
    params = _perturbed(model.init_params(x, random_state=0), seed=5)
    z, _ = model.build(params).forward(x)
    # the second level's parameters do not reach the latents the first factored out
    other = {"steps": [params["steps"][0], _perturbed(params["steps"][1], seed=6, scale=0.3)]}
    z_other, _ = model.build(other).forward(x)
    assert np.array_equal(z_other[:, :offset], z[:, :offset])
    assert not np.allclose(z_other[:, offset:], z[:, offset:])
    # and the inverse uses them: exact reconstruction, no resampling
    chain = model.build(params).chain
    assert np.allclose(chain.inverse(z)[0], x, rtol=0, atol=1e-12)
    changed = z.copy()
    changed[:, 0] += 1.0
    assert not np.allclose(chain.inverse(changed)[0], x)


def test_identity_at_initialisation_is_a_signed_permutation():
    model = conf_image((3, 4, 4), levels=2, steps_per_level=2, hidden=(4,), kind="circular")
    x = np.random.default_rng(7).normal(size=(5, 48))
    z, log_det = model.build(model.init_params(random_state=0)).forward(x)
    assert np.allclose(log_det, 0.0, atol=1e-12)
    assert np.allclose(np.sort(np.abs(z), axis=1), np.sort(np.abs(x), axis=1), atol=1e-12)


def test_data_dependent_initialisation_normalises_the_first_step():
    model = conf_image((1, 8, 8), levels=1, steps_per_level=1, hidden=(4,))
    x = np.random.default_rng(8).normal(3.0, 2.0, size=(200, 64))
    params = model.init_params(x, random_state=0)
    log_scale = params["steps"][0][0]["actnorm"]["log_scale"]
    assert np.allclose(np.exp(log_scale).ravel(), 2.0, rtol=0.1)


def test_save_load_and_sample(tmp_path):
    model = conf_image((2, 4, 4), levels=2, steps_per_level=1, hidden=(4,), spectrum="exp")
    x = np.random.default_rng(9).normal(size=(10, 32))
    params = _perturbed(model.init_params(x, random_state=0), seed=10)
    save_model(tmp_path / "image.npz", params, model.spec)
    loaded, spec, _ = load_model(tmp_path / "image.npz")
    again = ImageFlowModel(spec)
    assert np.array_equal(again.build(loaded).log_prob(x), model.build(params).log_prob(x))
    assert np.array_equal(again.build(loaded, engine="numba").log_prob(x),
                          model.build(params).log_prob(x))
    flow = again.build(loaded)
    samples = flow.sample(7, random_state=1)
    assert samples.shape == (7, 32) and np.all(np.isfinite(samples))
    z = np.random.default_rng(1).standard_normal((7, 32))
    assert np.allclose(flow.forward(samples)[0], z, atol=1e-10)


def test_bad_input_is_rejected_at_the_boundary():
    with pytest.raises(ValueError, match="even sides"):
        conf_image((1, 6, 6), levels=2)
    with pytest.raises(ValueError, match="coupling needs 2"):
        conf_image((1, 4, 4), levels=1, squeeze=False)
    with pytest.raises(ValueError, match="shape must be"):
        conf_image((4, 4), levels=1)
    model = conf_image((1, 4, 4), levels=1, steps_per_level=1, hidden=(4,))
    with pytest.raises(ValueError, match="engine"):
        model.build(model.init_params(), engine="cupy")
    with pytest.raises(ValueError, match="trailing event shape"):
        model.build(model.init_params()).log_prob(np.zeros((2, 15)))
    with pytest.raises(ValueError, match="conditioner"):
        ConvCoupling2D(conv_init(1, (4,), 6), np.zeros(2), np.zeros(2), (2, 4, 4))


def test_bits_per_dim_of_the_preprocessing_has_the_known_answer():
    """A logistic density of ``z`` truncated to the logit's range makes the dequantised
    pixels uniform: exactly ``log2(levels)`` bits per dimension, through every Jacobian
    (dequantisation, scaling by 1/levels, the lambda squeeze, the logit)."""
    rng = np.random.default_rng(11)
    for levels, lam, D in [(256, 1e-6, 12), (256, 0.05, 7), (17, 0.05, 64)]:
        z, log_det = dequantize_logit(rng.integers(0, levels, (50, D)), lam, rng, levels)
        log_q = np.sum(np.log(expit(z) * expit(-z)), axis=1) - D * np.log(1 - 2 * lam)
        assert bits_per_dim(-np.mean(log_q), D, np.mean(log_det)) == pytest.approx(
            np.log2(levels), rel=1e-9)
    with pytest.raises(ValueError, match="integer pixels"):
        dequantize_logit(np.full((1, 3), 256), 0.05, rng)


def test_idx_files_round_trip(tmp_path):
    images = np.random.default_rng(12).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), images)
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "bad", images.astype(float))


def test_image_experiments_write_bits_per_dim_grids_and_resume(tmp_path):
    from matplotlib.image import imread

    from refconf.cli import main
    from refconf.experiments.images import run_images

    lines = []
    argv = ["images", "--datasets", "digits", "--models", "conf_image", "glow_image", "gaussian",
            "--trials", "2", "--epochs", "1", "--subsample", "120", "--hidden", "4",
            "--steps", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    cells = json.loads((tmp_path / "images.json").read_text())["cells"]
    assert [c["model"] for c in cells] == ["conf_image", "glow_image", "gaussian"]
    for cell in cells:
        assert cell["finite_trials"] == 2 and 0.5 < cell["bits_per_dim"] < 8.0
    grid = imread(tmp_path / "digits-conf_image-seed1.png")
    assert grid.shape[:2] == (4 * (8 * 9 + 1), 4 * (8 * 9 + 1))
    assert (tmp_path / "models" / "digits-conf_image-seed0.npz").exists()
    again = run_images(["digits"], ["conf_image"], trials=2, out=str(tmp_path), subsample=120,
                       training={"epochs": 1},
                       architecture={"image": {"levels": 2, "steps_per_level": 1,
                                               "hidden": [4]},
                                     "conf_image": {"m": 2, "kind": "symmetric"}},
                       log=lines.append)
    assert lines == [f"2 of 2 trials finished earlier (in {tmp_path / 'trials'}): not run again"]
    assert again["cells"][0]["bits_per_dim"] == cells[0]["bits_per_dim"]


@pytest.mark.parametrize("mixing", ["reverse", "1x1"])
def test_consecutive_steps_update_complementary_channels(mixing):
    """With the channel reversal (which alternates the halves itself) two steps update
    disjoint sets of the squeezed channels; with the 1x1 (a learned mix of all channels)
    the steps alternate the updated half explicitly."""
    model = conf_image((1, 4, 4), levels=1, steps_per_level=2, hidden=(4,), coupling="affine",
                       mixing=mixing)
    params = _perturbed(model.init_params(random_state=0), seed=13, scale=0.3)
    level = model.build(params).chain.bijectors[0]
    h = level.chain.bijectors[0].forward(np.random.default_rng(14).normal(size=(3, 1, 4, 4)))[0]
    order, updated = list(range(4)), []  # order[p]: the squeezed channel at position p
    for step in level.chain.bijectors[1:]:
        actnorm, mix, coupling = step.bijectors
        mixed = mix.forward(actnorm.forward(h)[0])[0]
        order = order[::-1] if mixing == "reverse" else order
        h = coupling.forward(mixed)[0]
        positions = {p for p in range(4) if not np.allclose(h[:, p], mixed[:, p])}
        updated.append(positions if mixing == "1x1" else {order[p] for p in positions})
    assert len(updated[0]) == len(updated[1]) == 2
    assert not updated[0] & updated[1]
