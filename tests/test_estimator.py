"""ConfDensity: scikit-learn conventions, reproducibility, model files, normalisation."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from refconf import ConfDensity
from refconf.data import sample_toy

SMALL = dict(steps=2, m=1, hidden=(8,), epochs=2, batch_size=64)

# Checks that do not apply to a density estimator, with the reason. (check_fit2d_1feature
# passes: one feature is refused with "n_features = 1", a wording the check accepts.)
NOT_APPLICABLE = {
    # Training is stochastic minibatch Adam: a sample repeated twice is not the same as
    # weighting it by 2, and there is no sample_weight parameter to compare against.
    "check_sample_weight_equivalence_on_dense_data": "no sample_weight",
}


@parametrize_with_checks(
    [ConfDensity(**SMALL, random_state=0)],
    expected_failed_checks=lambda est: NOT_APPLICABLE,
)
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def moons():
    return sample_toy("two_moons", 2000, random_state=0)


@pytest.fixture(scope="module")
def fitted(moons):
    return ConfDensity(steps=3, m=2, hidden=(16, 16), epochs=8, batch_size=128,
                       learning_rate=3e-3, random_state=0).fit(moons)


def test_score_is_the_sum_of_score_samples(fitted, moons):
    assert fitted.score(moons[:50]) == pytest.approx(fitted.score_samples(moons[:50]).sum())


def test_trained_two_dimensional_density_integrates_to_one(fitted):
    axis = np.linspace(-5, 5, 501)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    mass = np.exp(fitted.score_samples(grid)).sum() * (axis[1] - axis[0]) ** 2
    assert abs(mass - 1.0) < 0.01


def test_training_improves_on_the_initial_model(fitted, moons):
    initial = ConfDensity(**dict(SMALL, epochs=1), learning_rate=1e-12, random_state=0).fit(moons)
    assert fitted.score(moons) > initial.score(moons) + 0.2 * len(moons)


def test_fixed_seed_gives_identical_fits(moons):
    a = ConfDensity(**SMALL, random_state=3).fit(moons[:500])
    b = ConfDensity(**SMALL, random_state=3).fit(moons[:500])
    c = ConfDensity(**SMALL, random_state=4).fit(moons[:500])
    np.testing.assert_array_equal(a.score_samples(moons[:20]), b.score_samples(moons[:20]))
    assert not np.array_equal(a.score_samples(moons[:20]), c.score_samples(moons[:20]))


def test_sample_shapes_and_reproducibility(fitted):
    s1 = fitted.sample(7, random_state=1)
    assert s1.shape == (7, 2)
    np.testing.assert_array_equal(s1, fitted.sample(7, random_state=1))


def test_save_and_load_round_trip(fitted, moons, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = ConfDensity.load(path)
    np.testing.assert_array_equal(loaded.score_samples(moons[:30]), fitted.score_samples(moons[:30]))
    np.testing.assert_array_equal(loaded.sample(5, random_state=2), fitted.sample(5, random_state=2))
    assert loaded.get_params()["steps"] == fitted.get_params()["steps"]


def test_clone_and_set_params(fitted):
    twin = clone(fitted).set_params(steps=3)
    assert twin.get_params()["steps"] == 3
    assert not hasattr(twin, "params_")


def test_explicit_validation_set_is_used(moons):
    est = ConfDensity(**SMALL, random_state=0).fit(moons[:400], X_val=moons[400:600])
    assert all(h["val_loss"] is not None for h in est.history_)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 1)), "at least 2 features"),
    (np.full((10, 3), np.nan), "NaN"),
])
def test_fit_rejects_bad_data(bad, message):
    with pytest.raises(ValueError, match=message):
        ConfDensity(**SMALL).fit(bad)


def test_float32_fits_in_float32_and_agrees_with_float64(moons, tmp_path):
    settings = dict(steps=2, m=2, hidden=(16,), epochs=3, batch_size=128, random_state=0)
    single = ConfDensity(dtype="float32", **settings).fit(moons)
    double = ConfDensity(**settings).fit(moons)
    leaves = [layer["W"] for step in single.params_["steps"]
              for layer in step["coupling"]["conditioner"]]
    assert all(W.dtype == np.float32 for W in leaves)
    assert single.sample(5, random_state=1).dtype == np.float32
    # three epochs of float32 Adam stay within float32 round-off of the float64 fit
    np.testing.assert_allclose(single.score_samples(moons[:50]),
                               double.score_samples(moons[:50]), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(single.sample(5, random_state=1),
                               double.sample(5, random_state=1), rtol=1e-3, atol=1e-3)
    path = tmp_path / "single.npz"
    single.save(path)
    loaded = ConfDensity.load(path)
    assert loaded.dtype == "float32"
    np.testing.assert_array_equal(loaded.score_samples(moons[:5]), single.score_samples(moons[:5]))
    with pytest.raises(ValueError, match="dtype must be one of"):
        ConfDensity(dtype="float16", **SMALL).fit(moons)


def test_score_rejects_the_wrong_number_of_features(fitted):
    with pytest.raises(ValueError, match="expecting 2 features"):
        fitted.score_samples(np.zeros((3, 4)))


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_fit(moons, tmp_path):
    settings = dict(SMALL, epochs=4, patience=None, random_state=7)
    full = ConfDensity(**settings).fit(moons[:600], checkpoint_path=tmp_path / "full.npz")
    ckpt = tmp_path / "part.npz"
    ConfDensity(**dict(settings, epochs=2)).fit(moons[:600], checkpoint_path=ckpt)
    resumed = ConfDensity(**settings).fit(moons[:600], checkpoint_path=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.score_samples(moons[:50]), full.score_samples(moons[:50]))
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
