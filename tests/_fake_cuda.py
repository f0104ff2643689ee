"""A host-memory stand-in for nncore's CUDA backend, for tests of the device plumbing on
machines without a GPU; never used by the library.

`FakeDeviceArray` has the Python API of nncore._cuda._ext.DeviceArray, its data in a NumPy
array (`_host`) that NumPy refuses to convert, so host/device mix-ups fail loudly. The fake
ops module has every public name of nncore.cuda.ops, with the same signatures, checks and
results, computed by the CPU kernels of nncore._kernels. `install(monkeypatch)`, or the
`fake_cuda` fixture (``from tests._fake_cuda import fake_cuda``), swaps both in for one test.
"""
from __future__ import annotations

import importlib
import inspect
import operator
import sys
import types
import weakref

import numpy as np
import pytest

import nncore._device_dispatch
import nncore.cuda
from nncore._cuda.errors import CudaError
from nncore._kernels import lstm, pool
from nncore._kernels._checks import as_float_array, check_same_dtype, check_shape, prepare_out
from nncore._kernels._pool_geometry import _pool_geometry, _Shape

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))
# Bytes of live owning arrays, their peak, and "reserved": as a caching allocator's, the
# high-water mark of allocated since the last empty_cache() (freed blocks stay cached).
_MEM = {"allocated": 0, "peak": 0, "reserved": 0}


def _account(nbytes: int) -> None:
    _MEM["allocated"] += nbytes
    _MEM["peak"] = max(_MEM["peak"], _MEM["allocated"])
    _MEM["reserved"] = max(_MEM["reserved"], _MEM["allocated"])


# ------------------------------------------------------------------------------ arrays

class FakeDeviceArray:
    """nncore._cuda._ext.DeviceArray in host memory (C-contiguous float32/float64/int64)."""

    __slots__ = ("_host", "_base", "__weakref__")

    def __init__(self, shape, dtype=np.float32):
        """Uninitialised array: NaN (floats) or INT64_MIN, so reads of unwritten memory show."""
        dt = np.dtype(dtype)
        if dt not in _DTYPES:
            raise TypeError(f"DeviceArray: dtype must be float32, float64 or int64, got {dt}")
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(
            int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"DeviceArray: negative dimension in shape {shape}")
        self._own(np.full(shape, np.nan if dt.kind == "f" else np.iinfo(dt).min, dt))

    def _own(self, host: np.ndarray) -> FakeDeviceArray:
        self._host, self._base = host, None
        _account(host.nbytes)
        weakref.finalize(self, _account, -host.nbytes)
        return self

    @classmethod
    def _adopt(cls, host: np.ndarray) -> FakeDeviceArray:
        """A kernel's result as a new owning array (copied unless it owns C-contiguous data)."""
        if not (host.flags.c_contiguous and host.flags.owndata and host.flags.writeable):
            host = np.array(host, order="C")
        return cls.__new__(cls)._own(host)

    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    nbytes = property(lambda self: self._host.nbytes)
    base = property(lambda self: self._base, doc="the owning array of a view, else None")
    ptr = property(lambda self: self._host.ctypes.data)
    size = property(lambda self: self._host.size)
    ndim = property(lambda self: self._host.ndim)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"FakeDeviceArray(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, *args, **kwargs):
        raise TypeError("FakeDeviceArray: device memory cannot be read by NumPy; use .numpy()")

    @staticmethod
    def from_numpy(arr) -> FakeDeviceArray:
        a = np.asarray(arr)
        out = FakeDeviceArray(a.shape, a.dtype)
        out._host[...] = a
        return out

    @staticmethod
    def zeros(shape, dtype=np.float32) -> FakeDeviceArray:
        return FakeDeviceArray(shape, dtype).zero_()

    def numpy(self) -> np.ndarray:
        return self._host.copy()

    def zero_(self) -> FakeDeviceArray:
        self._host[...] = 0
        return self

    def copy_(self, src: FakeDeviceArray) -> FakeDeviceArray:
        """Copy `src` (same dtype and number of elements) into this array."""
        if not isinstance(src, FakeDeviceArray):
            raise TypeError(f"Argument 'src' has incorrect type (expected FakeDeviceArray, got "
                            f"{type(src).__name__})")
        if src.dtype != self.dtype or src.nbytes != self.nbytes:
            raise ValueError(f"copy_: source {src!r} does not match {self!r}")
        self._host.reshape(-1)[...] = src._host.reshape(-1)
        return self

    def copy(self) -> FakeDeviceArray:
        return FakeDeviceArray(self.shape, self.dtype).copy_(self)

    def view(self, offset, shape) -> FakeDeviceArray:
        """The elements [offset, offset + prod(shape)) as an array of `shape` (shared)."""
        offset, shape = operator.index(offset), tuple(int(s) for s in shape)
        n = int(np.prod(shape, dtype=np.int64))
        if offset < 0 or n < 0 or (offset + n) * self.dtype.itemsize > self.nbytes:
            raise ValueError(f"view: elements [{offset}, {offset + n}) are outside {self!r}")
        out = FakeDeviceArray.__new__(FakeDeviceArray)
        out._host = self._host.reshape(-1)[offset:offset + n].reshape(shape)
        out._base = self if self._base is None else self._base
        return out

    def reshape(self, *shape) -> FakeDeviceArray:
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise ValueError(f"reshape: cannot reshape {self!r} to {shape}")
        return self.view(0, shape)

    def __getitem__(self, i) -> FakeDeviceArray:
        """Sub-array i along the first axis (a shared view)."""
        i = operator.index(i)
        if not self.shape:
            raise IndexError("a 0-d DeviceArray cannot be indexed")
        if i < 0:
            i += self.shape[0]
        if not 0 <= i < self.shape[0]:
            raise IndexError(f"index {i} is out of range for {self!r}")
        rest = self.shape[1:]
        return self.view(i * int(np.prod(rest, dtype=np.int64)), rest)


class LSTMCache:
    """What the fake lstm_forward leaves for lstm_backward (wraps the CPU kernel's cache)."""

    __slots__ = ("_cpu",)

    def __init__(self, cpu_cache):
        self._cpu = cpu_cache


# ------------------------------------------------------- host kernels for the glue ops
# Ops of nncore.cuda.ops without a CPU kernel, written on ndarrays like the CPU wrappers.

def _binary(ufunc, fn: str):
    def kernel(a, b, out=None):
        a, b = as_float_array(a, "a"), as_float_array(b, "b")
        check_same_dtype(a=a, b=b)
        check_shape(b, a.shape, "b")
        return ufunc(a, b, out=prepare_out(out, a, fn))
    return kernel


def _fill(x, value: float):
    as_float_array(x, "x")[...] = value
    return x


def _sum_rows(x):
    x = as_float_array(x, "x", 2)
    return x.sum(0, dtype=np.float64).astype(x.dtype)


def _axpby(alpha: float, x, beta: float = 0.0, y=None, out=None):
    x = as_float_array(x, "x")
    t = x.dtype.type
    if y is not None:
        y = as_float_array(y, "y")
        check_same_dtype(x=x, y=y)
        check_shape(y, x.shape, "y")
    out = prepare_out(out, x, "axpby")
    out[...] = t(alpha) * x if y is None else t(alpha) * x + t(beta) * y
    return out


def _affine(x, alpha: float = 1.0, beta: float = 0.0, out=None):
    x = as_float_array(x, "x")
    out = prepare_out(out, x, "affine")
    out[...] = x.dtype.type(alpha) * x + x.dtype.type(beta)
    return out


def _cast(x, dtype):
    dt = np.dtype(dtype)
    if dt not in _DTYPES:
        raise TypeError(f"DeviceArray: dtype must be float32, float64 or int64, got {dt}")
    return x.astype(dt)


def _sum_all(x, square: bool = False):
    x = as_float_array(x, "x")
    x64 = x.astype(np.float64)
    return np.array(np.sum(x64 * x64 if square else x64), x.dtype)


def _maxpool2d_backward(dout, argmax, input_shape, kernel_size=None, stride=None, padding=0,
                        dilation=1, ceil_mode=False):
    # (the real op takes the window options to gather instead of scatter: same result)
    dinp = pool.maxpool2d_backward(dout, argmax, input_shape)
    if kernel_size is not None:
        g = _pool_geometry(_Shape(input_shape), kernel_size, stride, padding, dilation,
                           ceil_mode, "max_pool2d", True)
        if (g["OH"], g["OW"]) != dout.shape[2:]:
            raise ValueError(f"max_pool2d_backward: dout shape {dout.shape} does not match "
                             f"the window options (output {(g['OH'], g['OW'])})")
    return dinp


# ------------------------------------------------------------------ argument checks
# Checks of the real ops that the CPU kernels do not make (run before unwrapping).

def _check_gemm(a, b, out, **_):
    if isinstance(out, FakeDeviceArray) and out.size and out.ptr in (
            getattr(a, "ptr", None), getattr(b, "ptr", None)):
        raise ValueError("gemm: out must not alias a or b")


def _check_ids(what: str, ids, x, axis: int, ignore=None) -> None:
    """The CUDA kernels' IndexError (wording included) for the first id outside [0, n), n =
    x.shape[axis]; malformed arguments are left to the CPU kernel's checks."""
    ids = ids._host if isinstance(ids, FakeDeviceArray) else ids
    if not (isinstance(x, FakeDeviceArray) and x.ndim == 2 and isinstance(ids, np.ndarray)
            and ids.dtype.kind in "iu" and ids.ndim == 1):
        return
    n = x.shape[axis]
    bad = (ids < 0) | (ids >= n)
    if ignore is not None:
        bad &= ids != ignore
    if bad.any() and (axis == 0 or len(ids) == x.shape[0]):
        i = int(np.argmax(bad))
        raise IndexError(f"{what} {int(ids[i])} at position {i} is out of range [0, {n})")


def _check_ce_backward(dloss, probs, target, reduction, ignore_index, **_):
    if reduction == "none" and not isinstance(dloss, FakeDeviceArray):
        raise TypeError(f"cross_entropy: dloss must be a DeviceArray for reduction 'none', "
                        f"got {type(dloss).__name__}")
    _check_ids("cross_entropy: target", target, probs, 1, ignore_index)


def _check_bn_backward(save_mean, save_invstd, **_):
    for name, v in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if not isinstance(v, FakeDeviceArray) or v.dtype != np.float64:
            raise ValueError(f"batch_norm_backward: {name} must be a float64 DeviceArray, got "
                             f"{v!r}")


# ------------------------------------------------------------------------ the ops table

_CPU_OPS = {  # the names of nncore.cuda.ops computed by a CPU kernel, by nncore._kernels module
    "gemm": "gemm gemm_batched",
    "activation": "relu_forward relu_backward leaky_relu_forward leaky_relu_backward "
                  "sigmoid_forward sigmoid_backward tanh_forward tanh_backward gelu_forward "
                  "gelu_backward",
    "loss": "cross_entropy_forward cross_entropy_backward",
    "conv": "conv2d_forward conv2d_backward",
    "pool": "maxpool2d_forward avgpool2d_forward avgpool2d_backward",
    "lstm": "lstm_forward lstm_backward lstm_cell_forward lstm_cell_backward",
    "gru": "gru_forward gru_backward gru_cell_forward gru_cell_backward",
    "embedding": "embedding_forward embedding_backward",
    "norm": "batch_norm_forward batch_norm_backward",
    "optim": "sgd_step adam_step sgd_step_multi adam_step_multi",
    "dropout": "dropout_forward",
}
_HOST_OPS = {
    "add": _binary(np.add, "add"), "sub": _binary(np.subtract, "sub"),
    "mul": _binary(np.multiply, "mul"), "div": _binary(np.divide, "div"), "fill": _fill,
    "sum_rows": _sum_rows, "axpby": _axpby, "affine": _affine, "cast": _cast,
    "sum_all": _sum_all, "maxpool2d_backward": _maxpool2d_backward,
}
_HOST_OK = {  # arguments that may be NumPy arrays (class / token ids; a reduced loss's dloss)
    "cross_entropy_forward": {"target"}, "cross_entropy_backward": {"target", "dloss"},
    "embedding_forward": {"ids"}, "embedding_backward": {"ids"},
}
_CHECKS = {
    "gemm": _check_gemm, "cross_entropy_backward": _check_ce_backward,
    "batch_norm_backward": _check_bn_backward,
    "cross_entropy_forward": lambda logits, target, ignore_index, **_: _check_ids(
        "cross_entropy: target", target, logits, 1, ignore_index),
    "embedding_forward": lambda ids, weight: _check_ids("embedding: index", ids, weight, 0),
}


def _to_host(value, arg: str, fn: str, host_ok, seen: dict):
    if isinstance(value, FakeDeviceArray):
        seen[id(value._host)] = value
        return value._host
    if isinstance(value, LSTMCache):
        return value._cpu
    if isinstance(value, (list, tuple)):             # the *_multi ops' lists of arrays
        return type(value)(_to_host(v, f"{arg}[{i}]", fn, host_ok, seen)
                           for i, v in enumerate(value))
    if isinstance(value, np.ndarray) and arg not in host_ok:
        raise TypeError(f"{fn}: {arg}: expected a DeviceArray, got {type(value).__name__}")
    if arg == "cache":
        raise TypeError(f"{fn}: cache must be the LSTMCache returned by the CUDA lstm_forward, "
                        f"got {type(value).__name__}")
    return value


def _to_device(result, seen: dict):
    if isinstance(result, tuple):
        return tuple(_to_device(r, seen) for r in result)
    if isinstance(result, np.ndarray):   # an input (out=, in place) maps back to its array
        return seen[id(result)] if id(result) in seen else FakeDeviceArray._adopt(result)
    return LSTMCache(result) if isinstance(result, lstm.LSTMCache) else result


def _make_op(name: str, kernel):
    sig, host_ok, check = inspect.signature(kernel), _HOST_OK.get(name, ()), _CHECKS.get(name)

    def op(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        if check is not None:
            check(**bound.arguments)
        seen: dict = {}
        for arg, value in bound.arguments.items():
            bound.arguments[arg] = _to_host(value, arg, name, host_ok, seen)
        with np.errstate(all="ignore"):            # (the GPU does not warn either)
            return _to_device(kernel(*bound.args, **bound.kwargs), seen)

    op.__name__ = op.__qualname__ = name
    op.__signature__ = sig
    op.__doc__ = f"Fake nncore.cuda.ops.{name} on host memory (see tests/_fake_cuda.py)."
    return op


_KERNELS = {n: getattr(importlib.import_module(f"nncore._kernels.{m}"), n)
            for m, names in _CPU_OPS.items() for n in names.split()}
_KERNELS.update(_HOST_OPS)

fake_ops = types.ModuleType("nncore.cuda.ops", "Fake nncore.cuda.ops (tests/_fake_cuda.py).")
vars(fake_ops).update({n: _make_op(n, k) for n, k in _KERNELS.items()},
                      DeviceArray=FakeDeviceArray, LSTMCache=LSTMCache)


# ------------------------------------------------------------------------- the runtime

def _check_device(device=0) -> None:
    if int(device) != 0:
        raise CudaError(f"invalid device ordinal {device} (the fake CUDA has one device)")


def _reset(key: str) -> None:
    _MEM[key] = _MEM["allocated"]


fake_ext = types.ModuleType("nncore._cuda._ext", "Fake nncore._cuda._ext (device queries).")
vars(fake_ext).update(
    DeviceArray=FakeDeviceArray, device_count=lambda: 1, device_count_error=lambda: "",
    device_name=lambda device=0: _check_device(device) or (
        "Fake CUDA device (host memory, tests only)"),
    set_device=_check_device, runtime_version=lambda: 0,
    synchronize=lambda: None, empty_cache=lambda: _reset("reserved"),
    memory_stats=lambda: (_MEM["allocated"], _MEM["peak"], _MEM["reserved"]),
    reset_peak_memory_stats=lambda: _reset("peak"),
)


def install(monkeypatch) -> types.ModuleType:
    """Swap the fake backend in for one test (undone by `monkeypatch`); returns fake ops."""
    monkeypatch.setattr(nncore.cuda, "_ext", fake_ext)
    monkeypatch.setitem(sys.modules, "nncore.cuda.ops", fake_ops)
    monkeypatch.setattr(nncore.cuda, "ops", fake_ops, raising=False)
    for name in [n for n in sys.modules if n.startswith("nncore.cuda._functions")]:
        monkeypatch.delitem(sys.modules, name)           # re-imported against the fake
        parent, _, child = name.rpartition(".")
        if parent == "nncore.cuda":                      # (and the package attribute restored)
            monkeypatch.delattr(nncore.cuda, child, raising=False)
    monkeypatch.setattr(nncore._device_dispatch, "_registry", {})
    return fake_ops


@pytest.fixture
def fake_cuda(monkeypatch):
    """The fake CUDA backend for one test; yields the fake nncore.cuda.ops."""
    yield install(monkeypatch)
