"""Parameter pytrees and the model/checkpoint file format (refconf/params.py, refconf/storage.py)."""

import io
import json
import os
import zipfile

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.misc.flatten import flatten as autograd_flatten

import refconf
from refconf.params import (
    check_params,
    flatten,
    load_checkpoint,
    load_model,
    ravel,
    save_checkpoint,
    save_model,
    tree_leaves,
    tree_map,
)


def random_params(seed=0):
    """A nested tree far from trivial: unsorted keys, lists, tuples, float32 and float64,
    0-d arrays, a NumPy scalar, Python floats, signed zero, NaN/Inf inside arrays."""
    rng = np.random.default_rng(seed)
    special = rng.normal(size=5)
    special[[1, 3]] = [-0.0, np.nan]
    special[4] = -np.inf
    return {
        "steps": [
            {"conditioner": {"W1": rng.normal(size=(4, 3)), "W0": rng.normal(size=(3, 2)),
                             "b0": rng.normal(size=3).astype(np.float32)},
             "alpha": 0.7312},
            {"conditioner": {"W0": rng.normal(size=(2, 2, 2))}, "alpha": -0.0},
        ],
        "mix": (rng.normal(size=()), np.float32(rng.normal()), special),
        "a_last": 1e-300,
    }


def assert_identical(a, b, path="root"):
    """Same structure, key order, container and leaf types, dtypes, shapes and bits."""
    assert type(a) is type(b), (path, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_identical(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}/{i}")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), path
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), path
    else:
        assert a == b, path


# --- pytrees -----------------------------------------------------------------------------


def test_flatten_round_trip_and_gradient():
    params = {"b": np.arange(3, dtype=np.float32), "a": [np.ones((2, 2)) * 2.5, 0.5]}
    vector, unflatten = flatten(params)
    assert vector.shape == (8,)
    rebuilt = unflatten(vector)
    assert list(rebuilt) == ["b", "a"]
    assert rebuilt["b"].dtype == np.float32
    np.testing.assert_array_equal(rebuilt["a"][0], params["a"][0])
    assert float(rebuilt["a"][1]) == 0.5

    # unflatten is differentiable: d/dv sum(W^2) * alpha = 2 W alpha, and sum(W^2) wrt alpha
    def f(v):
        p = unflatten(v)
        return anp.sum(p["a"][0] ** 2) * p["a"][1] + anp.sum(p["b"])

    g = unflatten(grad(f)(vector))
    np.testing.assert_allclose(g["a"][0], 2 * 2.5 * 0.5 * np.ones((2, 2)))
    np.testing.assert_allclose(g["a"][1], 4 * 2.5**2)
    np.testing.assert_allclose(g["b"], np.ones(3))


def test_tree_map_and_leaves():
    a = {"y": (3.0,), "x": [1.0, np.array([1.0, 2.0])]}
    b = {"y": (7.0,), "x": [10.0, np.array([5.0, 6.0])]}
    out = tree_map(lambda u, v: u * v, a, b)
    assert list(out) == ["y", "x"]
    assert type(out["y"]) is tuple and out["x"][0] == 10.0
    np.testing.assert_array_equal(out["x"][1], [5.0, 12.0])
    # one traversal order everywhere: dict entries by sorted key, whatever the dict's order
    assert [float(np.sum(leaf)) for leaf in tree_leaves(out)] == [10.0, 17.0, 21.0]
    with pytest.raises(ValueError, match="structure"):
        tree_map(lambda u, v: u, a, {"y": (7.0,), "x": [1.0]})
    with pytest.raises(ValueError, match="structure"):
        tree_map(lambda u, v: u, a, {"x": [1.0, 2.0], "y": (7.0,)})


def test_one_traversal_order_is_autograds_flatten_order():
    """flatten, ravel and tree_leaves lay the leaves out as autograd's flatten does (dict
    entries by sorted key), bit for bit: the flat vector is what the engines exchange."""
    rng = np.random.default_rng(5)
    params = {"z": [rng.normal(size=(3, 2)), {"q": rng.normal(size=4), "b": 0.25}],
              "a": (rng.normal(size=()), rng.normal(size=2)), "m": {"y": rng.normal(size=5)}}
    expected, autograd_unflatten = autograd_flatten(params)
    vector, unflatten = flatten(params)
    assert vector.tobytes() == expected.tobytes()
    assert ravel(params).tobytes() == expected.tobytes()
    leaves = tree_leaves(params)
    assert np.concatenate(leaves, axis=None).tobytes() == expected.tobytes()
    assert leaves[0] is params["a"][0] and leaves[-1] is params["z"][1]["q"]
    shifted = vector + rng.normal(size=vector.shape)
    assert_identical(tree_map(np.asarray, unflatten(shifted)),
                     tree_map(np.asarray, autograd_unflatten(shifted)))
    assert list(unflatten(shifted)) == ["z", "a", "m"]  # each dict keeps its own order
    # mixed dtypes take autograd's own unflatten: each leaf comes back in its dtype
    mixed = {"w": rng.normal(size=3).astype(np.float32), "a": rng.normal(size=2)}
    v, back = flatten(mixed)
    assert v.dtype == np.float64 and v.tobytes() == autograd_flatten(mixed)[0].tobytes()
    assert back(v)["w"].dtype == np.float32


@pytest.mark.parametrize(
    "params, match",
    [
        ({"W": np.arange(3)}, "floating"),
        ({"W": np.ones(2), "n": 3}, "floating"),
        ({"a/b": np.ones(2)}, "without '/'"),
        ({1: np.ones(2)}, "string"),
        ({"": np.ones(2)}, "string"),
        ({}, "at least one"),
        ([[], {}], "at least one"),
        ({"s": "text"}, "floating"),
    ],
)
def test_check_params_rejects(params, match):
    with pytest.raises(ValueError, match=match):
        check_params(params)


def test_check_params_finite():
    check_params({"W": np.array([np.nan])})
    with pytest.raises(ValueError, match="W has NaN"):
        check_params({"W": np.array([np.nan])}, finite=True)


# --- model files -------------------------------------------------------------------------


def test_model_round_trip_is_bit_exact(tmp_path):
    params = random_params()
    spec = {"kind": "conf", "dims": [2, 3], "options": {"z": True, "a": None}}
    metadata = {"best_val_loss": np.float64(1.25), "epochs": np.int64(7), "note": "é"}
    path = tmp_path / "model.npz"
    save_model(path, params, spec, metadata)
    loaded, spec2, metadata2 = load_model(path)
    assert_identical(params, loaded)
    assert spec2 == spec and list(spec2["options"]) == ["z", "a"]
    assert metadata2 == {"best_val_loss": 1.25, "epochs": 7, "note": "é"}
    # loading twice gives the same; saving the loaded params gives identical arrays
    save_model(tmp_path / "again.npz", loaded, spec2, metadata2)
    assert_identical(load_model(tmp_path / "again.npz")[0], params)


def test_model_file_layout_readable_by_plain_numpy(tmp_path):
    path = tmp_path / "model.npz"
    params = random_params(1)
    save_model(path, params, {"kind": "toy"})
    with np.load(path, allow_pickle=False) as archive:
        files = set(archive.files)
        np.testing.assert_array_equal(
            archive["params/steps/0/conditioner/W0"], params["steps"][0]["conditioner"]["W0"]
        )
        document = json.loads(archive["__refconf__.json"].tobytes().decode("utf-8"))
    assert files == {
        "__refconf__.json", "params/steps/0/conditioner/W1", "params/steps/0/conditioner/W0",
        "params/steps/0/conditioner/b0", "params/steps/1/conditioner/W0", "params/mix/0",
        "params/mix/1", "params/mix/2",
    }
    assert document["format"] == "refconf-model"
    assert document["format_version"] == 1
    assert document["refconf_version"] == refconf.__version__
    assert document["spec"] == {"kind": "toy"} and document["metadata"] == {}
    # Python floats live in the JSON tree; dict order is a list of pairs
    steps = dict(document["params"]["dict"])["steps"]["list"]
    assert dict(steps[0]["dict"])["alpha"] == {"float": 0.7312}
    assert [k for k, _ in document["params"]["dict"]] == ["steps", "mix", "a_last"]
    assert zipfile.is_zipfile(path)


def test_model_file_mode_follows_umask(tmp_path):
    path = tmp_path / "model.npz"
    save_model(path, {"W": np.ones(2)}, {})
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize(
    "spec, metadata, match",
    [
        ({"x": np.ones(2)}, None, "spec must be JSON"),
        ({"x": 1.0}, {"loss": float("nan")}, "metadata must be JSON"),
        ([1, 2], None, "spec must be a dict"),
        ({}, "notes", "metadata must be a dict"),
    ],
)
def test_save_model_rejects_bad_spec_and_metadata(tmp_path, spec, metadata, match):
    path = tmp_path / "model.npz"
    with pytest.raises(ValueError, match=match):
        save_model(path, {"W": np.ones(2)}, spec, metadata)
    assert os.listdir(tmp_path) == []


def test_save_model_rejects_bad_params(tmp_path):
    with pytest.raises(ValueError, match="floating"):
        save_model(tmp_path / "m.npz", {"W": np.array(["a"])}, {})
    with pytest.raises(ValueError, match="without '/'"):
        save_model(tmp_path / "m.npz", {"a/b": np.ones(1)}, {})
    assert os.listdir(tmp_path) == []


# --- corrupt and foreign files -----------------------------------------------------------


@pytest.fixture
def good_model(tmp_path):
    path = tmp_path / "good.npz"
    save_model(path, random_params(2), {"kind": "toy"})
    return path


def write_npz(path, members):
    with open(path, "wb") as f:
        np.savez(f, **members)


def json_member(document):
    return np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)


def test_load_truncated_file(good_model, tmp_path):
    raw = good_model.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 10, 3):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.npz: .*(truncated|corrupt|not a zip)"):
            load_model(bad)


def test_load_flipped_bytes(good_model, tmp_path):
    raw = bytearray(good_model.read_bytes())
    # members are stored uncompressed: find one array's data and flip a byte in it
    start = bytes(raw).find(random_params(2)["steps"][0]["conditioner"]["W1"].tobytes())
    assert start > 0
    raw[start + 5] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"flipped\.npz: corrupt .npz archive.*CRC"):
        load_model(bad)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "not a zip archive"),
        (b"hello, I am a text file", "not a zip archive"),
        ("npy", "a single .npy array"),
    ],
)
def test_load_foreign_bytes(tmp_path, content, match):
    path = tmp_path / "foreign.npz"
    if content == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.arange(3.0))
        content = buffer.getvalue()
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"foreign\.npz: not a refconf file \({match}"):
        load_model(path)


def test_load_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    write_npz(path, {"W": np.ones(3)})
    with pytest.raises(ValueError, match=r"other\.npz: not a refconf file .*without"):
        load_model(path)
    write_npz(path, {"__refconf__.json": json_member({"format": "someone-else"})})
    with pytest.raises(ValueError, match=r"other\.npz: not a refconf file \(format 'someone"):
        load_model(path)
    write_npz(path, {"__refconf__.json": np.frombuffer(b"{not json", dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"other\.npz: corrupt '__refconf__.json'"):
        load_model(path)
    write_npz(path, {"__refconf__.json": json_member([1, 2])})
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_model(path)


def test_load_newer_format_version(tmp_path):
    path = tmp_path / "future.npz"
    document = {"format": "refconf-model", "format_version": 2, "refconf_version": "9.0",
                "spec": {}, "metadata": {}, "params": {"dict": []}}
    write_npz(path, {"__refconf__.json": json_member(document)})
    with pytest.raises(ValueError, match=r"future\.npz: format_version 2 .*newer refconf"):
        load_model(path)
    document["format_version"] = "1"
    write_npz(path, {"__refconf__.json": json_member(document)})
    with pytest.raises(ValueError, match="corrupt document: format_version"):
        load_model(path)


def test_load_inconsistent_document(tmp_path):
    path = tmp_path / "broken.npz"
    header = {"format": "refconf-model", "format_version": 1, "spec": {}, "metadata": {}}
    missing = dict(header, params={"dict": [["W", {"array": "params/W"}]]})
    write_npz(path, {"__refconf__.json": json_member(missing)})
    with pytest.raises(ValueError, match=r"broken\.npz: corrupt tree structure"):
        load_model(path)
    unknown = dict(header, params={"set": []})
    write_npz(path, {"__refconf__.json": json_member(unknown)})
    with pytest.raises(ValueError, match="corrupt tree structure"):
        load_model(path)
    extra = dict(header, params={"dict": [["W", {"array": "params/W"}]]})
    write_npz(path, {"__refconf__.json": json_member(extra), "params/W": np.ones(2),
                     "params/V": np.ones(2)})
    with pytest.raises(ValueError, match=r"arrays not described .*params/V"):
        load_model(path)


def test_model_and_checkpoint_are_not_interchangeable(tmp_path, good_model):
    with pytest.raises(ValueError, match=r"good\.npz: is a 'refconf-model' file.*load_model"):
        load_checkpoint(good_model)
    ckpt = tmp_path / "ckpt.npz"
    save_checkpoint(ckpt, {"step": 1})
    with pytest.raises(ValueError, match=r"ckpt\.npz: is a 'refconf-checkpoint'.*load_checkpoint"):
        load_model(ckpt)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")


# --- atomic writes -----------------------------------------------------------------------


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path, good_model, monkeypatch):
    before = good_model.read_bytes()

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_model(good_model, {"W": np.zeros(4)}, {"kind": "new"})
    monkeypatch.undo()
    assert good_model.read_bytes() == before
    assert os.listdir(good_model.parent) == ["good.npz"]
    assert load_model(good_model)[1] == {"kind": "toy"}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_crash_mid_write_keeps_old_file_and_removes_temp(tmp_path, good_model, monkeypatch,
                                                         error):
    before = good_model.read_bytes()
    real_savez = np.savez

    def half_write(file, *args, **kwargs):
        real_savez(file, *args, **kwargs)
        file.truncate(file.tell() // 2)
        raise error("killed")

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(error, match="killed"):
        save_checkpoint(good_model, {"x": np.ones(100)})
    monkeypatch.undo()
    assert good_model.read_bytes() == before
    assert os.listdir(good_model.parent) == ["good.npz"]


# --- checkpoints -------------------------------------------------------------------------


def test_checkpoint_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(123)
    rng.normal(size=10)
    mt = np.random.Generator(np.random.MT19937(5))
    state = {
        "x": rng.normal(size=17), "m": rng.normal(size=17).astype(np.float32),
        "step": 12345, "epoch": 3, "done": False, "name": None,
        "best_val_loss": float("inf"), "worst": float("-inf"), "odd": float("nan"),
        "zero": -0.0, "lr": 0.1 * 0.9**3,
        "rng_state": rng.bit_generator.state, "mt_state": mt.bit_generator.state,
        "history": [{"epoch": 1, "train_loss": 1.0 / 3.0, "val_loss": None}],
        "params": random_params(3),
    }
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    nan = loaded.pop("odd")
    assert np.isnan(nan) and type(nan) is float
    expected = {k: v for k, v in state.items() if k != "odd"}
    # the restored generator states continue the original streams
    for key, original, bit_generator in (("rng_state", rng, np.random.PCG64),
                                         ("mt_state", mt, np.random.MT19937)):
        restored = np.random.Generator(bit_generator())
        restored.bit_generator.state = loaded[key]
        np.testing.assert_array_equal(restored.integers(0, 2**62, size=5),
                                      original.integers(0, 2**62, size=5))
    assert loaded["rng_state"] == state["rng_state"]
    assert_identical({k: v for k, v in expected.items() if k != "mt_state"},
                     {k: v for k, v in loaded.items() if k != "mt_state"})
    np.testing.assert_array_equal(loaded["mt_state"]["state"]["key"],
                                  state["mt_state"]["state"]["key"])


def test_checkpoint_rejects_unsupported_values(tmp_path):
    with pytest.raises(ValueError, match="state must be a dict"):
        save_checkpoint(tmp_path / "c.npz", [1, 2])
    with pytest.raises(ValueError, match=r"state/s: cannot save a set"):
        save_checkpoint(tmp_path / "c.npz", {"s": {1, 2}})
    with pytest.raises(ValueError, match="object arrays"):
        save_checkpoint(tmp_path / "c.npz", {"o": np.array([None, 1])})
    assert os.listdir(tmp_path) == []
