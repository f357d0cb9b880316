"""Parameter pytrees: flattening, mapping, and the model and checkpoint file format.

A parameter pytree is a nesting of ``dict`` (string keys), ``list`` and ``tuple`` whose
leaves are floating-point ndarrays or Python floats, e.g.
``{"steps": [{"conditioner": {"W0": ..., "b0": ...}, "alpha": 0.5}]}``. Models are pure
functions of such a tree, so autograd differentiates them directly.

File format
-----------
Model files and training checkpoints share one format: a single ``.npz`` archive (a zip
of ``.npy`` members, readable by ``numpy.load(path, allow_pickle=False)``) holding

* every array leaf under its path from the root of its tree, e.g.
  ``params/steps/0/conditioner/W0`` (dict keys and list/tuple indices joined by ``/``);
* one JSON document (UTF-8), stored as a ``uint8`` array under ``__refconf__.json``::

      {"format": "refconf-model" | "refconf-checkpoint",
       "format_version": 1,
       "refconf_version": "0.1.0",
       "spec": {...}, "metadata": {...}, "params": <tree>      (model files)
       "state": <tree>                                          (checkpoints)}

``<tree>`` records the nesting so that types and dict key order come back exactly: each
node is one of ``{"dict": [[key, node], ...]}``, ``{"list": [node, ...]}``,
``{"tuple": [node, ...]}``, ``{"array": npz_key}`` (an ndarray), ``{"scalar": npz_key}``
(a NumPy scalar, stored as a 0-d array), ``{"float": x}`` (a Python float; ``"nan"``,
``"inf"`` or ``"-inf"`` when not finite) or ``{"value": v}`` (a Python int, bool, str or
None). Array data live only in the ``.npy`` members, so the round trip is bit-exact.

One file rather than an npz plus a JSON sidecar: a single ``os.replace`` then publishes
arrays and description together, so a reader never sees one without the other. Files are
written to a temporary file in the target directory and renamed; nothing is unpickled on
load.
"""

import contextlib
import json
import math
import os
import tempfile
import zipfile

import numpy as np
from autograd.misc.flatten import flatten as _autograd_flatten

__all__ = [
    "FORMAT_VERSION",
    "atomic_write",
    "check_params",
    "flatten",
    "load_checkpoint",
    "load_model",
    "ravel",
    "save_checkpoint",
    "save_model",
    "tree_leaves",
    "tree_map",
]

FORMAT_VERSION = 1
_JSON_KEY = "__refconf__.json"
_MODEL = "refconf-model"
_CHECKPOINT = "refconf-checkpoint"
_CONTAINERS = (dict, list, tuple)


def _is_container(node):
    return type(node) in _CONTAINERS


def _children(node):
    """``(key, child)`` pairs of a container, in order."""
    return list(node.items()) if type(node) is dict else list(enumerate(node))


def _rebuild(node, children):
    if type(node) is dict:
        return dict(zip(node.keys(), children))
    return type(node)(children)


def flatten(params):
    """Concatenate every leaf of ``params`` into one vector.

    Parameters
    ----------
    params : pytree
        Nested dicts, lists and tuples of floating ndarrays or Python floats.

    Returns
    -------
    vector : ndarray, shape (n_params,)
        The raveled leaves, concatenated (dict entries in sorted key order), in NumPy's
        promoted dtype of the leaves.
    unflatten : callable
        ``unflatten(vector) -> params``; differentiable by autograd. It restores the
        structure and each leaf's dtype; Python float leaves come back as 0-d arrays.
        When every leaf has the vector's dtype (the usual case) the leaves are reshaped
        slices of the vector: two autograd nodes per leaf instead of autograd's container
        nodes, which halves a training step's time (validation/bench_engines.py).

    Examples
    --------
    >>> import numpy as np
    >>> vector, unflatten = flatten({"W": np.ones((2, 2)), "b": [np.zeros(3), 0.5]})
    >>> vector.shape
    (8,)
    >>> unflatten(2 * vector)["b"][1]
    array(1.)
    """
    vector, container_unflatten = _autograd_flatten(params)
    leaves = tree_leaves(params)
    if any(np.result_type(leaf) != vector.dtype for leaf in leaves):
        return vector, container_unflatten
    return vector, _builder(params, 0)[0]


def _builder(node, offset):
    """``(build, end)``: ``build(x)`` makes the subtree ``node`` from the entries of the
    vector ``x`` that start at ``offset`` (autograd's flatten order), ``end`` the offset
    after them. The walk over ``node`` (key order, sizes, shapes) is done here, once, so
    that a call of ``build`` only slices and reshapes."""
    if isinstance(node, dict):
        parts = {}
        for key in sorted(node):  # autograd's flatten order
            parts[key], offset = _builder(node[key], offset)
        items = [(key, parts[key]) for key in node]
        return (lambda x: {key: build(x) for key, build in items}), offset
    if isinstance(node, (list, tuple)):
        builds = []
        for item in node:
            build, offset = _builder(item, offset)
            builds.append(build)
        container = type(node)
        return (lambda x: container([build(x) for build in builds])), offset
    start, end, shape = offset, offset + int(np.size(node)), np.shape(node)
    # the method: no autograd wrapper call for a plain array, a node for a box
    return (lambda x: x[start:end].reshape(shape)), end


def ravel(tree):
    """The vector :func:`flatten` makes of ``tree`` (leaves raveled and concatenated, dict
    entries in sorted key order), without autograd: for trees of arrays, such as a
    gradient computed outside autograd (:mod:`refconf.engines.model_pass`).

    Examples
    --------
    >>> import numpy as np
    >>> tree = {"b": [np.zeros(3), 0.5], "W": np.ones((2, 2))}
    >>> bool(np.array_equal(ravel(tree), flatten(tree)[0]))
    True
    """
    leaves = []

    def collect(node):
        if isinstance(node, dict):
            for key in sorted(node):
                collect(node[key])
        elif isinstance(node, (list, tuple)):
            for item in node:
                collect(item)
        else:
            leaves.append(node)

    collect(tree)
    return np.concatenate(leaves, axis=None)  # axis=None ravels each leaf


def tree_map(function, tree, *rest):
    """Apply ``function`` to every leaf, keeping the structure.

    With extra trees, ``function(leaf, *leaves)`` receives the matching leaves of each;
    the trees must have the same structure.

    Examples
    --------
    >>> import numpy as np
    >>> tree_map(lambda a, b: a + b, {"w": [1.0, np.ones(2)]}, {"w": [2.0, np.ones(2)]})
    {'w': [3.0, array([2., 2.])]}
    """
    if not _is_container(tree):
        return function(tree, *rest)
    for other in rest:
        if type(other) is not type(tree) or len(other) != len(tree) or (
            type(tree) is dict and list(other.keys()) != list(tree.keys())
        ):
            raise ValueError(
                f"tree_map: trees differ in structure: a {type(tree).__name__} of "
                f"{len(tree)} entries against {type(other).__name__} {other!r:.80}"
            )
    children = [
        tree_map(function, child, *(_children(other)[i][1] for other in rest))
        for i, (_, child) in enumerate(_children(tree))
    ]
    return _rebuild(tree, children)


def _walk(tree, path=()):
    """Yield ``(path, leaf)`` for every leaf, in order, checking dict keys."""
    if not _is_container(tree):
        yield path, tree
        return
    for key, child in _children(tree):
        if type(tree) is dict:
            _check_key(key, path)
        yield from _walk(child, (*path, key))


def _check_key(key, path):
    if not isinstance(key, str) or not key or "/" in key:
        raise ValueError(
            f"dict key {key!r} at {_where(path)}: expected a non-empty string without '/' "
            "(keys name the arrays in the file)"
        )


def _where(path):
    return "/".join(map(str, path)) or "the root"


def tree_leaves(tree):
    """The leaves of ``tree`` in order (dict entries in insertion order).

    Examples
    --------
    >>> tree_leaves({"a": [1.0, 2.0], "b": (3.0,)})
    [1.0, 2.0, 3.0]
    """
    return [leaf for _, leaf in _walk(tree)]


def check_params(params, name="params", finite=False):
    """Raise ``ValueError`` unless ``params`` is a parameter pytree.

    Every leaf must be a floating-point ndarray (or NumPy floating scalar) or a Python
    float, every container a dict with string keys, a list or a tuple; with
    ``finite=True`` every value must also be finite. An empty tree is rejected.
    """
    leaves = list(_walk(params))
    if not leaves:
        raise ValueError(f"{name}: expected at least one parameter array, got {params!r:.80}")
    for path, leaf in leaves:
        is_float = type(leaf) is float or (
            isinstance(leaf, (np.ndarray, np.generic)) and np.issubdtype(leaf.dtype, np.floating)
        )
        if not is_float:
            raise ValueError(
                f"{name}: leaf {_where(path)} is {type(leaf).__name__}"
                f"{' of dtype ' + str(leaf.dtype) if hasattr(leaf, 'dtype') else ''}; "
                "expected a floating-point ndarray or a Python float"
            )
        if finite and not np.all(np.isfinite(leaf)):
            raise ValueError(f"{name}: leaf {_where(path)} has NaN or infinite values")


def _encode(tree, path, arrays):
    """JSON node for ``tree``; its arrays are added to ``arrays`` under their paths."""
    if _is_container(tree):
        items = _children(tree)
        if type(tree) is dict:
            for key, _ in items:
                _check_key(key, path)
        nodes = [_encode(child, (*path, key), arrays) for key, child in items]
        if type(tree) is dict:
            return {"dict": [[key, node] for (key, _), node in zip(items, nodes)]}
        return {type(tree).__name__: nodes}
    if isinstance(tree, (np.ndarray, np.generic)):
        if tree.dtype.hasobject:
            raise ValueError(f"{_where(path)}: object arrays cannot be saved (no pickle)")
        key = "/".join(map(str, path))
        arrays[key] = np.asarray(tree)
        return {"array" if isinstance(tree, np.ndarray) else "scalar": key}
    if type(tree) is float:
        return {"float": tree if math.isfinite(tree) else repr(tree)}
    if tree is None or type(tree) in (bool, int, str):
        return {"value": tree}
    raise ValueError(
        f"{_where(path)}: cannot save a {type(tree).__name__}; expected dict, list, tuple, "
        "ndarray, NumPy scalar, float, int, bool, str or None"
    )


def _decode(node, arrays, used):
    """Inverse of ``_encode``. Raises ``KeyError``/``TypeError``/``ValueError`` on a
    malformed node; the caller reports them as a corrupt file."""
    (kind, value), = node.items()
    if kind == "dict":
        return {key: _decode(child, arrays, used) for key, child in value}
    if kind in ("list", "tuple"):
        children = [_decode(child, arrays, used) for child in value]
        return children if kind == "list" else tuple(children)
    if kind in ("array", "scalar"):
        used.add(value)
        array = arrays[value]
        return array if kind == "array" else array[()]
    if kind == "float":
        return float(value)
    if kind == "value":
        return value
    raise ValueError(f"unknown node type {kind!r}")


def _json_document(value, name):
    """Check that a caller's value is JSON (NumPy scalars are converted)."""

    def numpy_scalar(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")

    try:
        return json.loads(json.dumps(value, allow_nan=False, default=numpy_scalar))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be JSON-serialisable (dicts, lists, str, finite numbers, bool, "
            f"None): {err}"
        ) from None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file next to ``path`` for binary writing; on success it is
    flushed to disk and renamed onto ``path``, on any error it is removed and ``path``
    is left as it was.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "out.txt")
    ...     with atomic_write(path) as f:
    ...         _ = f.write(b"done")
    ...     print(open(path, "rb").read(), os.listdir(tmp))
    b'done' ['out.txt']
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _write_archive(path, document, arrays):
    blob = json.dumps(document, allow_nan=False).encode("utf-8")
    members = dict(arrays)
    members[_JSON_KEY] = np.frombuffer(blob, dtype=np.uint8)
    # Every key contains "/" or is _JSON_KEY, so none collides with savez's own arguments;
    # object arrays were refused by _encode, so nothing is pickled.
    with atomic_write(path) as f:
        np.savez(f, **members)


def _read_archive(path, expected_format):
    """Open and validate a refconf file: returns ``(document, arrays)``."""
    path = os.fspath(path)
    with open(path, "rb") as f:  # FileNotFoundError and PermissionError pass through
        magic = f.read(4)

    def bad(problem):
        return ValueError(f"{path}: {problem}")

    if magic != b"PK\x03\x04":
        what = "a single .npy array" if magic == b"\x93NUM" else "not a zip archive"
        raise bad(f"not a refconf file ({what}; expected an .npz archive)")
    if not zipfile.is_zipfile(path):
        raise bad("truncated or corrupt .npz archive (no zip directory at the end)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"corrupt .npz archive: {err}") from None
    blob = members.pop(_JSON_KEY, None)
    if blob is None:
        raise bad(f"not a refconf file (an .npz archive without {_JSON_KEY!r})")
    try:
        document = json.loads(np.asarray(blob, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise bad(f"corrupt {_JSON_KEY!r} document: {err}") from None
    if not isinstance(document, dict):
        raise bad(f"corrupt {_JSON_KEY!r} document: expected a JSON object")
    found = document.get("format")
    if found not in (_MODEL, _CHECKPOINT):
        raise bad(f"not a refconf file (format {found!r})")
    if found != expected_format:
        loader = "load_model" if found == _MODEL else "load_checkpoint"
        raise bad(f"is a {found!r} file, expected {expected_format!r}; use {loader}")
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise bad(f"corrupt document: format_version {version!r}")
    if version > FORMAT_VERSION:
        raise bad(
            f"format_version {version} was written by a newer refconf "
            f"({document.get('refconf_version')}); this one reads up to {FORMAT_VERSION}"
        )
    return document, members


def _decode_tree(path, node, arrays):
    used = set()
    try:
        tree = _decode(node, arrays, used)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{os.fspath(path)}: corrupt tree structure ({err!r})") from None
    return tree, used


def _check_all_used(path, arrays, used):
    extra = sorted(set(arrays) - used)
    if extra:
        raise ValueError(
            f"{os.fspath(path)}: corrupt file: arrays not described by its document: {extra[:5]}"
        )


def _header(kind):
    from . import __version__

    return {"format": kind, "format_version": FORMAT_VERSION, "refconf_version": __version__}


def save_model(path, params, spec, metadata=None):
    """Write a model file: parameters, architecture and training metadata in one ``.npz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; written atomically (temporary file, then ``os.replace``). The name is
        used as given (``.npz`` is conventional).
    params : pytree
        Floating ndarrays and Python floats in dicts (string keys without ``/``), lists
        and tuples.
    spec : dict
        JSON-serialisable description of the architecture, enough to rebuild the model.
    metadata : dict, optional
        JSON-serialisable training metadata (data, hyperparameters, losses).

    Notes
    -----
    The format is described in the module docstring. Arrays round-trip bit for bit,
    with their dtype, shape, nesting and dict key order. NumPy scalars inside ``spec``
    and ``metadata`` are stored as JSON numbers; non-finite floats there are rejected
    (JSON has none), use ``None`` instead.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> params = {"steps": [{"W": np.random.default_rng(0).normal(size=(3, 2))}], "a": 0.1}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.npz")
    ...     save_model(path, params, spec={"kind": "toy", "dim": 2}, metadata={"epochs": 5})
    ...     loaded, spec, metadata = load_model(path)
    >>> bool(np.array_equal(loaded["steps"][0]["W"], params["steps"][0]["W"])), loaded["a"]
    (True, 0.1)
    >>> spec, metadata
    ({'kind': 'toy', 'dim': 2}, {'epochs': 5})
    """
    check_params(params)
    for value, name in ((spec, "spec"), (metadata, "metadata")):
        if type(value) is not dict and not (name == "metadata" and value is None):
            raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    arrays = {}
    document = _header(_MODEL)
    document["spec"] = _json_document(spec, "spec")
    document["metadata"] = _json_document({} if metadata is None else metadata, "metadata")
    document["params"] = _encode(params, ("params",), arrays)
    _write_archive(path, document, arrays)


def load_model(path):
    """Read a file written by :func:`save_model`.

    Returns
    -------
    params : pytree
        The parameters, bit-identical to those saved.
    spec : dict
    metadata : dict

    Raises
    ------
    ValueError
        If the file is corrupt or truncated, is not a refconf model file (another
        ``.npz``, a checkpoint), or has a newer ``format_version``. The message names the
        file and the problem.
    """
    document, arrays = _read_archive(path, _MODEL)
    if "params" not in document:
        raise ValueError(f"{os.fspath(path)}: corrupt model file: no 'params' tree")
    params, used = _decode_tree(path, document["params"], arrays)
    _check_all_used(path, arrays, used)
    return params, document.get("spec"), document.get("metadata")


def save_checkpoint(path, state):
    """Write a training checkpoint atomically, in the model file's format.

    Parameters
    ----------
    path : str or os.PathLike
    state : dict
        Any tree of dicts (string keys), lists, tuples, ndarrays, NumPy scalars, Python
        floats, ints, bools, strings and None, e.g. the optimiser state of
        :func:`refconf.train.fit`. It round-trips exactly (non-finite floats included;
        the JSON-serialisable ``numpy.random.Generator.bit_generator.state`` dicts too).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> state = {"m": np.zeros(3), "step": 7, "best_val_loss": float("inf"),
    ...          "rng_state": rng.bit_generator.state}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_checkpoint(os.path.join(tmp, "ckpt.npz"), state)
    ...     restored = load_checkpoint(os.path.join(tmp, "ckpt.npz"))
    >>> restored["step"], restored["best_val_loss"], restored["rng_state"] == state["rng_state"]
    (7, inf, True)
    """
    if type(state) is not dict:
        raise ValueError(f"state must be a dict, got {type(state).__name__}")
    arrays = {}
    document = _header(_CHECKPOINT)
    document["state"] = _encode(state, ("state",), arrays)
    _write_archive(path, document, arrays)


def load_checkpoint(path):
    """Read a file written by :func:`save_checkpoint`; returns the ``state`` dict.

    Raises ``ValueError`` naming the file for a corrupt, truncated, foreign or
    newer-version file (as :func:`load_model`).
    """
    document, arrays = _read_archive(path, _CHECKPOINT)
    if "state" not in document:
        raise ValueError(f"{os.fspath(path)}: corrupt checkpoint: no 'state' tree")
    state, used = _decode_tree(path, document["state"], arrays)
    _check_all_used(path, arrays, used)
    return state
