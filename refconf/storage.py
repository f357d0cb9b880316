"""Files written whole or not at all, and refconf's archive: one ``.npz`` with a JSON document.

:func:`atomic_write` opens a temporary file next to the target and renames it onto the
target only when everything was written, so a reader (or a rerun after a crash) never
sees half a file. Reports, trial results, model files and checkpoints are all written
through it.

Archive format
--------------
Model files and training checkpoints (:mod:`refconf.params`) are one ``.npz`` archive (a
zip of ``.npy`` members, readable by ``numpy.load(path, allow_pickle=False)``) holding

* array members under names chosen by the writer (:mod:`refconf.params` uses each
  array's path in its tree, e.g. ``params/steps/0/conditioner/W0``);
* one JSON document (UTF-8), stored as a ``uint8`` array under ``__refconf__.json``::

      {"format": "refconf-model" | "refconf-checkpoint",
       "format_version": 1,
       "refconf_version": "0.1.0",
       ...}                              (the writer's own keys)

One file rather than an npz plus a JSON sidecar: a single ``os.replace`` then publishes
arrays and description together. Nothing is unpickled on load: object arrays are refused
on writing and ``allow_pickle=False`` on reading.
"""

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .version import __version__

__all__ = ["CHECKPOINT_FORMAT", "FORMAT_VERSION", "MODEL_FORMAT", "atomic_write",
           "json_document", "read_archive", "write_archive"]

FORMAT_VERSION = 1
MODEL_FORMAT = "refconf-model"
CHECKPOINT_FORMAT = "refconf-checkpoint"
_LOADERS = {MODEL_FORMAT: "load_model", CHECKPOINT_FORMAT: "load_checkpoint"}
_JSON_KEY = "__refconf__.json"


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


def json_document(value, name):
    """``value`` as plain JSON (NumPy scalars become numbers); ``ValueError`` naming
    ``name`` if it is not JSON-serialisable (non-finite floats included)."""

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


def write_archive(path, kind, document, arrays):
    """Write an archive of format ``kind`` atomically: the header (format, version,
    refconf's version), then ``document``'s keys, and the ``arrays`` (name -> ndarray,
    no object dtype; every name contains ``/``, so none collides with
    :func:`numpy.savez`'s own arguments)."""
    header = {"format": kind, "format_version": FORMAT_VERSION, "refconf_version": __version__}
    blob = json.dumps({**header, **document}, allow_nan=False).encode("utf-8")
    members = dict(arrays)
    members[_JSON_KEY] = np.frombuffer(blob, dtype=np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **members)


def _members(path, bad):
    """Every member of the archive at ``path``; ``bad(problem)`` makes the error."""
    with open(path, "rb") as f:  # FileNotFoundError and PermissionError pass through
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        what = "a single .npy array" if magic == b"\x93NUM" else "not a zip archive"
        raise bad(f"not a refconf file ({what}; expected an .npz archive)")
    if not zipfile.is_zipfile(path):
        raise bad("truncated or corrupt .npz archive (no zip directory at the end)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"corrupt .npz archive: {err}") from None


def _check_header(document, expected_format, bad):
    if not isinstance(document, dict):
        raise bad(f"corrupt {_JSON_KEY!r} document: expected a JSON object")
    found = document.get("format")
    if found not in _LOADERS:
        raise bad(f"not a refconf file (format {found!r})")
    if found != expected_format:
        raise bad(f"is a {found!r} file, expected {expected_format!r}; use {_LOADERS[found]}")
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise bad(f"corrupt document: format_version {version!r}")
    if version > FORMAT_VERSION:
        raise bad(
            f"format_version {version} was written by a newer refconf "
            f"({document.get('refconf_version')}); this one reads up to {FORMAT_VERSION}"
        )


def read_archive(path, expected_format):
    """Open and validate an archive of format ``expected_format``.

    Returns
    -------
    document : dict
        The JSON document, header included.
    arrays : dict
        The array members by name.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Naming the file: not a zip archive (a single ``.npy``, text), truncated or corrupt
        (bad CRC), no or a corrupt JSON document, another format, a newer
        ``format_version``.
    """
    path = os.fspath(path)

    def bad(problem):
        return ValueError(f"{path}: {problem}")

    members = _members(path, bad)
    blob = members.pop(_JSON_KEY, None)
    if blob is None:
        raise bad(f"not a refconf file (an .npz archive without {_JSON_KEY!r})")
    try:
        document = json.loads(np.asarray(blob, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise bad(f"corrupt {_JSON_KEY!r} document: {err}") from None
    _check_header(document, expected_format, bad)
    return document, members
