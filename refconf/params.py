"""Parameter pytrees: one walk over them, flattening, mapping, checking, and their files.

A parameter pytree is a nesting of ``dict`` (string keys), ``list`` and ``tuple`` whose
leaves are floating-point ndarrays or Python floats, e.g.
``{"steps": [{"conditioner": {"W0": ..., "b0": ...}, "alpha": 0.5}]}``. Models are pure
functions of such a tree, so autograd differentiates them directly.

Traversal order
---------------
Every function here walks a tree with one traversal, :func:`_walk`: dict entries in
sorted key order, list and tuple entries in order. That is autograd's flatten order, so
:func:`flatten`, :func:`ravel` and :func:`tree_leaves` agree with each other and with
``autograd.misc.flatten`` (the layout of the flat vector that training and the explicit
gradient passes exchange). Rebuilt trees keep each dict's own key order.

File format
-----------
Model files and training checkpoints share one format, the archive of
:mod:`refconf.storage` (one ``.npz`` with a JSON document, written atomically) with

* every array leaf under its path from the root of its tree, e.g.
  ``params/steps/0/conditioner/W0`` (dict keys and list/tuple indices joined by ``/``);
* in the JSON document (format ``"refconf-model"``) ``"spec"``, ``"metadata"`` and
  ``"params": <tree>``, or (format ``"refconf-checkpoint"``) ``"state": <tree>``.

``<tree>`` records the nesting so that types and dict key order come back exactly: each
node is one of ``{"dict": [[key, node], ...]}``, ``{"list": [node, ...]}``,
``{"tuple": [node, ...]}``, ``{"array": npz_key}`` (an ndarray), ``{"scalar": npz_key}``
(a NumPy scalar, stored as a 0-d array), ``{"float": x}`` (a Python float; ``"nan"``,
``"inf"`` or ``"-inf"`` when not finite) or ``{"value": v}`` (a Python int, bool, str or
None). Array data live only in the ``.npy`` members, so the round trip is bit-exact.
"""

import math
import os

import autograd.numpy as anp
import numpy as np
from autograd.misc.flatten import flatten as _autograd_flatten

from .storage import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    MODEL_FORMAT,
    atomic_write,
    json_document,
    read_archive,
    write_archive,
)

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


def _rebuild(tree, items):
    """The container of ``tree``'s type holding the rebuilt children ``items``."""
    if type(tree) is dict:
        return dict(items)
    return type(tree)(child for _, child in items)


def _discard(tree, items):
    return None


def _walk(tree, leaf, node=_rebuild, path=(), check_keys=False):
    """The one traversal of a pytree.

    Calls ``leaf(path, value)`` for every leaf, in order: dict entries by sorted key
    (autograd's flatten order), list and tuple entries by index; ``path`` is the tuple of
    keys and indices from the root. Returns ``node(container, items)`` of the root, where
    ``items`` are ``(key, result)`` pairs of the container's children in its own order
    (a dict's insertion order): by default the tree rebuilt from the leaves' results.
    ``check_keys`` checks every dict key (a non-empty string without ``/``) first.
    """
    kind = type(tree)
    if kind is dict:
        if check_keys:
            for key in tree:
                _check_key(key, path)
        done = {key: _walk(tree[key], leaf, node, (*path, key), check_keys)
                for key in sorted(tree)}
        return node(tree, [(key, done[key]) for key in tree])
    if kind is list or kind is tuple:
        return node(tree, [(i, _walk(child, leaf, node, (*path, i), check_keys))
                           for i, child in enumerate(tree)])
    return leaf(path, tree)


def _check_key(key, path):
    if not isinstance(key, str) or not key or "/" in key:
        raise ValueError(
            f"dict key {key!r} at {_where(path)}: expected a non-empty string without '/' "
            "(keys name the arrays in the file)"
        )


def _where(path):
    return "/".join(map(str, path)) or "the root"


def tree_leaves(tree):
    """The leaves of ``tree`` in traversal order (dict entries by sorted key).

    Examples
    --------
    >>> tree_leaves({"b": (3.0,), "a": [1.0, 2.0]})
    [1.0, 2.0, 3.0]
    """
    leaves = []
    _walk(tree, lambda path, value: leaves.append(value), _discard)
    return leaves


def _structure(tree):
    """A comparable description of ``tree``'s containers, keys and key order."""
    return _walk(tree, lambda path, value: None,
                 lambda container, items: (type(container).__name__, tuple(items)))


def tree_map(function, tree, *rest):
    """Apply ``function`` to every leaf, keeping the structure.

    With extra trees, ``function(leaf, *leaves)`` receives the matching leaves of each;
    the trees must have the same structure (containers, keys and key order).

    Examples
    --------
    >>> import numpy as np
    >>> tree_map(lambda a, b: a + b, {"w": [1.0, np.ones(2)]}, {"w": [2.0, np.ones(2)]})
    {'w': [3.0, array([2., 2.])]}
    """
    others = []
    for other in rest:
        if _structure(other) != _structure(tree):
            raise ValueError(
                f"tree_map: trees differ in structure: {type(tree).__name__} "
                f"{tree!r:.80} against {type(other).__name__} {other!r:.80}"
            )
        others.append(iter(tree_leaves(other)))
    return _walk(tree, lambda path, value: function(value, *(next(o) for o in others)))


def flatten(params):
    """Concatenate every leaf of ``params`` into one vector.

    Parameters
    ----------
    params : pytree
        Nested dicts, lists and tuples of floating ndarrays or Python floats.

    Returns
    -------
    vector : ndarray, shape (n_params,)
        The raveled leaves, concatenated in traversal order (dict entries by sorted key),
        in NumPy's promoted dtype of the leaves.
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
    leaves = tree_leaves(params)
    vector = anp.concatenate([anp.ravel(leaf) for leaf in leaves])
    if any(np.result_type(leaf) != vector.dtype for leaf in leaves):
        return _autograd_flatten(params)  # mixed dtypes: autograd casts each leaf back
    return vector, _slicer(params)


def _slicer(params):
    """``build(x)``: the tree ``params`` made of reshaped slices of the vector ``x``. The
    walk (key order, sizes, shapes) is done here, once, so that a call only slices."""
    end = 0

    def leaf(path, value):
        nonlocal end
        start, end = end, end + int(np.size(value))
        stop, shape = end, np.shape(value)
        # the method: no autograd wrapper call for a plain array, a node for a box
        return lambda x: x[start:stop].reshape(shape)

    def node(container, items):
        if type(container) is dict:
            return lambda x: {key: build(x) for key, build in items}
        kind = type(container)
        return lambda x: kind([build(x) for _, build in items])

    return _walk(params, leaf, node)


def ravel(tree):
    """The vector :func:`flatten` makes of ``tree`` (leaves raveled and concatenated in
    traversal order), without autograd: for trees of arrays, such as a gradient computed
    outside autograd (:func:`refconf.engines.nll_and_grad`).

    Examples
    --------
    >>> import numpy as np
    >>> tree = {"b": [np.zeros(3), 0.5], "W": np.ones((2, 2))}
    >>> bool(np.array_equal(ravel(tree), flatten(tree)[0]))
    True
    """
    return np.concatenate(tree_leaves(tree), axis=None)  # axis=None ravels each leaf


def _is_float_leaf(value):
    return type(value) is float or (
        isinstance(value, (np.ndarray, np.generic)) and np.issubdtype(value.dtype, np.floating)
    )


def check_params(params, name="params", finite=False):
    """Raise ``ValueError`` unless ``params`` is a parameter pytree.

    Every leaf must be a floating-point ndarray (or NumPy floating scalar) or a Python
    float, every container a dict with string keys, a list or a tuple; with
    ``finite=True`` every value must also be finite. An empty tree is rejected.
    """
    leaves = []
    _walk(params, lambda path, value: leaves.append((path, value)), _discard, check_keys=True)
    if not leaves:
        raise ValueError(f"{name}: expected at least one parameter array, got {params!r:.80}")
    for path, value in leaves:
        if not _is_float_leaf(value):
            raise ValueError(
                f"{name}: leaf {_where(path)} is {type(value).__name__}"
                f"{' of dtype ' + str(value.dtype) if hasattr(value, 'dtype') else ''}; "
                "expected a floating-point ndarray or a Python float"
            )
        if finite and not np.all(np.isfinite(value)):
            raise ValueError(f"{name}: leaf {_where(path)} has NaN or infinite values")


def _encode_leaf(path, value, arrays):
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.hasobject:
            raise ValueError(f"{_where(path)}: object arrays cannot be saved (no pickle)")
        key = "/".join(map(str, path))
        arrays[key] = np.asarray(value)
        return {"array" if isinstance(value, np.ndarray) else "scalar": key}
    if type(value) is float:
        return {"float": value if math.isfinite(value) else repr(value)}
    if value is None or type(value) in (bool, int, str):
        return {"value": value}
    raise ValueError(
        f"{_where(path)}: cannot save a {type(value).__name__}; expected dict, list, tuple, "
        "ndarray, NumPy scalar, float, int, bool, str or None"
    )


def _encode_node(container, items):
    if type(container) is dict:
        return {"dict": [[key, child] for key, child in items]}
    return {type(container).__name__: [child for _, child in items]}


def _encode(tree, root, arrays):
    """JSON node of ``tree``; its arrays are added to ``arrays`` under their paths."""
    return _walk(tree, lambda path, value: _encode_leaf(path, value, arrays), _encode_node,
                 (root,), check_keys=True)


def _decode(node, arrays, used):
    """Inverse of ``_encode`` (a walk over the file's JSON nodes, not over a pytree).
    Raises ``KeyError``/``TypeError``/``ValueError`` on a malformed node; the caller
    reports them as a corrupt file."""
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


def _decode_tree(path, document, key, arrays, what):
    """The tree ``document[key]``, checking that it uses every array of the file."""
    if key not in document:
        raise ValueError(f"{os.fspath(path)}: corrupt {what}: no {key!r} tree")
    used = set()
    try:
        tree = _decode(document[key], arrays, used)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{os.fspath(path)}: corrupt tree structure ({err!r})") from None
    extra = sorted(set(arrays) - used)
    if extra:
        raise ValueError(
            f"{os.fspath(path)}: corrupt file: arrays not described by its document: {extra[:5]}"
        )
    return tree


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
    document = {"spec": json_document(spec, "spec"),
                "metadata": json_document({} if metadata is None else metadata, "metadata"),
                "params": _encode(params, "params", arrays)}
    write_archive(path, MODEL_FORMAT, document, arrays)


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
    document, arrays = read_archive(path, MODEL_FORMAT)
    params = _decode_tree(path, document, "params", arrays, "model file")
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
    document = {"state": _encode(state, "state", arrays)}
    write_archive(path, CHECKPOINT_FORMAT, document, arrays)


def load_checkpoint(path):
    """Read a file written by :func:`save_checkpoint`; returns the ``state`` dict.

    Raises ``ValueError`` naming the file for a corrupt, truncated, foreign or
    newer-version file (as :func:`load_model`).
    """
    document, arrays = read_archive(path, CHECKPOINT_FORMAT)
    return _decode_tree(path, document, "state", arrays, "checkpoint")
