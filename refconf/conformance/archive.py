"""Byte-deterministic, pickle-free ``.npz`` archives.

``numpy.savez`` stamps each zip member with the current time, so two runs never give
the same bytes. Golden vectors are compared byte for byte between runs, so they are
written here member by member with a fixed timestamp and no compression; the result is
an ordinary ``.npz`` that ``numpy.load(path, allow_pickle=False)`` reads.
"""

import hashlib
import io
import zipfile

import numpy as np

from ..params import atomic_write

__all__ = ["npz_bytes", "read_npz", "write_npz"]

_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip header can store


def npz_bytes(arrays):
    """The ``.npz`` archive of ``arrays`` (a dict of name -> ndarray, in order) as bytes.

    Names may contain ``/``; each becomes the member ``<name>.npy``. Object arrays are
    rejected (they would need pickle).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            value = np.asarray(value)
            if value.dtype.hasobject:
                raise ValueError(f"{name}: object arrays cannot be written without pickle")
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_DATE_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
    return out.getvalue()


def write_npz(path, arrays):
    """Write :func:`npz_bytes` of ``arrays`` to ``path`` atomically; returns the bytes'
    SHA-256 hex digest."""
    blob = npz_bytes(arrays)
    with atomic_write(path) as f:
        f.write(blob)
    return hashlib.sha256(blob).hexdigest()


def read_npz(path):
    """Read every array of an ``.npz`` file without unpickling anything.

    Returns
    -------
    dict of name -> ndarray

    Raises
    ------
    ValueError
        If ``path`` is not a readable ``.npz`` archive of numeric or boolean arrays; the
        message says what was found instead (a lone ``.npy``, a truncated zip, an object
        array, a string array).
    """
    path = str(path)
    with open(path, "rb") as f:  # FileNotFoundError passes through
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        found = "a single .npy array" if magic == b"\x93NUM" else "not a zip archive"
        raise ValueError(f"{path}: not an .npz archive ({found})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        reason = str(err)
        if "allow_pickle" in reason:
            reason = "it holds an object array, which would need pickle; store numeric arrays"
        raise ValueError(f"{path}: unreadable .npz archive: {reason}") from None
    for name, value in arrays.items():
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
            raise ValueError(f"{path}: array {name!r} has dtype {value.dtype}; "
                             "expected numbers")
    return arrays
