"""The safetensors file format, written and read in pure Python + NumPy (no pickle): the
engine of nncore.io.save / load / load_metadata, which re-exports them.

Layout: 8 bytes little-endian header length N, then N bytes of JSON ``{name: {"dtype",
"shape", "data_offsets": [b, e]}, "__metadata__": {str: str}}`` padded with spaces, then the
raw little-endian tensor bytes; offsets are relative to the end of the header. Loading never
runs code, and every header field is checked against the file's real size before anything is
allocated, so a truncated, tampered or absurd file raises ValueError. Files are written to a
temporary file in the same folder, flushed, fsync'ed and renamed over the target.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, BinaryIO, Callable

import numpy as np

from . import _device
from .tensor import Tensor

__all__ = ["save", "load", "load_metadata", "MAX_HEADER_BYTES"]

MAX_HEADER_BYTES = 100 * 1024 * 1024
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
           "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_CODES = {np.dtype(v).newbyteorder("=") if np.dtype(v).byteorder != "|" else np.dtype(v): k
          for k, v in _DTYPES.items()}


# ------------------------------------------------------------------------------ writing
def _as_array(name: str, value: Any) -> np.ndarray:
    arr = value.data if isinstance(value, Tensor) else value
    if _device.is_device_array(arr):       # GPU tensors are saved from a host copy
        arr = _device.move(arr, _device.CPU)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"save: value for {name!r} must be a Tensor or numpy.ndarray, got "
                        f"{type(value).__name__}")
    if arr.dtype.newbyteorder("=") not in _CODES:
        raise TypeError(f"save: {name!r} has dtype {arr.dtype}, which safetensors cannot hold "
                        f"(supported: {', '.join(sorted(_DTYPES))})")
    return arr


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temp file in the target's folder, fsync it, rename it over `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; not possible on Windows)
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def save(obj: Mapping[str, Any], path: str | os.PathLike,
         metadata: Mapping[str, str] | None = None) -> None:
    """Save a flat {name: Tensor or ndarray} mapping (e.g. a state_dict) as safetensors.

    `metadata` is an optional {str: str} map stored in the header. The write is atomic.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a mapping of names to tensors, got "
                        f"{type(obj).__name__}")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"save: tensor names must be str, got {name!r}")
        if name == "__metadata__":
            raise ValueError("save: '__metadata__' is reserved and cannot name a tensor")
        arrays[name] = _as_array(name, value)
    meta = {} if metadata is None else dict(metadata)
    for k, v in meta.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save: metadata must map str to str, got {k!r}: {type(v).__name__}")
    # Largest items first keeps every tensor aligned to its itemsize (as safetensors does).
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header: dict[str, Any] = {"__metadata__": meta} if meta else {}
    offset = 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": _CODES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-(8 + len(blob)) % 8)

    def write(f: BinaryIO) -> None:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for name in order:
            a = arrays[name]
            if a.size == 0:
                continue
            if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and
                                            np.little_endian is False):
                a = a.astype(a.dtype.newbyteorder("<"))
            f.write(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)

    _atomic_write(path, write)


# ------------------------------------------------------------------------------ reading
def _bad(path: Any, msg: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}: not a valid safetensors file: {msg}")


def _read_header(f: BinaryIO, path: Any, file_size: int) -> tuple[int, dict]:
    head = f.read(8)
    if len(head) < 8:
        raise _bad(path, f"file is {file_size} bytes, too short for the 8-byte header length")
    n = int.from_bytes(head, "little")
    if n > MAX_HEADER_BYTES:
        raise _bad(path, f"header claims {n} bytes (limit {MAX_HEADER_BYTES})")
    if n > file_size - 8:
        raise _bad(path, f"header claims {n} bytes but only {file_size - 8} follow "
                         "(truncated file?)")
    raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _bad(path, f"header is not valid UTF-8 JSON ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict):
        raise _bad(path, f"header must be a JSON object, got {type(header).__name__}")
    return 8 + n, header


def _parse_entries(header: dict, path: Any, data_size: int) -> tuple[list, dict[str, str]]:
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise _bad(path, "__metadata__ must map str to str")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise _bad(path, f"entry {name!r} must have exactly dtype, shape, data_offsets")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _DTYPES:
            raise _bad(path, f"entry {name!r} has unsupported dtype {code!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise _bad(path, f"entry {name!r} has invalid shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or \
                not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]:
            raise _bad(path, f"entry {name!r} has invalid data_offsets {offsets!r}")
        dtype = np.dtype(_DTYPES[code])
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        if offsets[1] - offsets[0] != nbytes:
            raise _bad(path, f"entry {name!r}: shape {shape} of {code} needs {nbytes} bytes, "
                             f"data_offsets {offsets} span {offsets[1] - offsets[0]}")
        if offsets[1] > data_size:
            raise _bad(path, f"entry {name!r}: data_offsets {offsets} run past the end of the "
                             f"data ({data_size} bytes; truncated file?)")
        entries.append((offsets[0], offsets[1], name, dtype, tuple(shape)))
    entries.sort()
    end = 0
    for begin, stop, name, _, _ in entries:
        if begin != end:
            kind = "overlaps the previous tensor" if begin < end else "leaves a gap before it"
            raise _bad(path, f"entry {name!r} at offset {begin} {kind} (expected {end})")
        end = stop
    if end != data_size:
        raise _bad(path, f"tensors cover {end} bytes but the data section has {data_size}")
    return entries, meta


def _read(path: str | os.PathLike) -> tuple[OrderedDict, dict[str, str]]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start, header = _read_header(f, path, size)
        entries, meta = _parse_entries(header, path, size - start)
        out: OrderedDict = OrderedDict()
        for begin, _, name, dtype, shape in entries:
            arr = np.empty(shape, dtype.newbyteorder("=") if dtype.byteorder != "|" else dtype)
            if arr.size:
                f.seek(start + begin)
                view = arr.reshape(-1).view(np.uint8)
                if f.readinto(memoryview(view)) != arr.nbytes:
                    raise _bad(path, f"entry {name!r}: file ended early")
                if not np.little_endian and dtype.itemsize > 1:
                    arr.byteswap(inplace=True)
                if dtype.kind == "b" and np.any(view > 1):
                    raise _bad(path, f"entry {name!r}: BOOL bytes other than 0 and 1")
            out[name] = arr
    return out, meta


def load(path: str | os.PathLike) -> OrderedDict:
    """Load a safetensors file as {name: Tensor} (in file order). Never unpickles anything.

    Raises ValueError for a malformed file (bad header, dtype, shape or offsets).
    """
    arrays, _ = _read(path)
    return OrderedDict((k, Tensor(v)) for k, v in arrays.items())


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The "__metadata__" map of a safetensors file (the header is fully validated)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start, header = _read_header(f, path, size)
        return _parse_entries(header, path, size - start)[1]
