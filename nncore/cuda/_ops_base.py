"""Helpers and the dense part of nncore.cuda.ops: GEMM, elementwise arithmetic, sums, casts,
dropout (see ops.py). Activations are in _ops_activation.py, cross-entropy in _ops_loss.py."""
from __future__ import annotations

import math

import numpy as np

from nncore._kernels._checks import check_same_dtype, check_shape

from . import _require_ext

_ext = _require_ext()
DeviceArray = _ext.DeviceArray

_ACT = {"none": 0, "relu": 1, "gelu": 2, "gelu_tanh": 3}


# ------------------------------------------------------------------------------ helpers

def _dev(x, name: str, ndim: int | None = None, dtype=None) -> DeviceArray:
    """x as a float DeviceArray (TypeError/ValueError naming `name` otherwise)."""
    if not isinstance(x, DeviceArray):
        raise TypeError(f"{name}: expected a DeviceArray, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64, got dtype {x.dtype}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    return x


def _host_index(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.int64)


def _index(x, name: str, ndim: int = 1) -> DeviceArray:
    """Class/token indices as an int64 DeviceArray (NumPy integer arrays are uploaded)."""
    if isinstance(x, np.ndarray):
        x = DeviceArray.from_numpy(_host_index(x, name))
    if not isinstance(x, DeviceArray) or x.dtype != np.int64:
        raise TypeError(f"{name}: expected an int64 DeviceArray or an integer ndarray, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    return x


def _checked_index(x, name: str, n: int, what: str,
                   ignore_index: int | None = None) -> tuple[DeviceArray, int]:
    """1-D indices as an int64 DeviceArray, and how many are not `ignore_index`.

    Indices on the host (NumPy) are checked against [0, n) here, before the upload, with the
    same IndexError as the device check; the kernel then skips its check and the device sync
    that reporting it needs. Indices already on the device give -1: the kernel checks them.
    """
    if not isinstance(x, np.ndarray):
        return _index(x, name), -1
    host = _host_index(x, name)
    if host.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {host.shape}")
    kept = None if ignore_index is None else host != ignore_index
    bad = (host < 0) | (host >= n)
    if kept is not None:
        bad &= kept
    if bad.any():
        pos = int(np.argmax(bad))
        raise IndexError(f"{what} {int(host[pos])} at position {pos} is out of range "
                         f"[0, {n})")
    count = host.size if kept is None else int(np.count_nonzero(kept))
    return DeviceArray.from_numpy(host), count


def _out(out, shape: tuple, dtype, fn: str) -> DeviceArray:
    if out is None:
        return DeviceArray(shape, dtype)
    if not isinstance(out, DeviceArray):
        raise TypeError(f"{fn}: out must be a DeviceArray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {dtype}")
    check_shape(out, shape, f"{fn}: out")
    return out


def _like(x: DeviceArray, shape=None) -> DeviceArray:
    return DeviceArray(x.shape if shape is None else shape, x.dtype)


def _vector(v, name: str, n: int, dtype) -> DeviceArray | None:
    if v is None:
        return None
    v = _dev(v, name, 1)
    check_shape(v, (n,), name)
    if v.dtype != dtype:
        raise TypeError(f"{name}: dtype {v.dtype} does not match {dtype}")
    return v


# --------------------------------------------------------------------------------- GEMM

def gemm(a, b, out=None, *, trans_a: bool = False, trans_b: bool = False, alpha: float = 1.0,
         beta: float = 0.0, bias=None, activation: str = "none") -> DeviceArray:
    """out = act(alpha * op(a) @ op(b) + beta * out (+ bias)): nncore._kernels.gemm.gemm."""
    if activation not in _ACT:
        raise ValueError(f"gemm: activation must be one of {sorted(_ACT)}, got {activation!r}")
    a, b = _dev(a, "a", 2), _dev(b, "b", 2)
    check_same_dtype(a=a, b=b)
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    Kb, N = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if K != Kb:
        raise ValueError(f"gemm: inner dimensions do not match: op(a) is {(M, K)}, "
                         f"op(b) is {(Kb, N)}")
    bias = _vector(bias, "bias", N, a.dtype)
    if out is None and beta != 0:
        raise ValueError("gemm: beta != 0 needs an `out` array to read C from")
    c = _out(out, (M, N), a.dtype, "gemm")
    if c.ptr in (a.ptr, b.ptr) and c.size:
        raise ValueError("gemm: out must not alias a or b")
    _ext.gemm(trans_a, trans_b, M, N, K, alpha, a, max(a.shape[1], 1), b, max(b.shape[1], 1),
              beta, c, max(N, 1), bias, _ACT[activation])
    return c


def gemm_batched(a, b, *, trans_a: bool = False, trans_b: bool = False) -> DeviceArray:
    """out[i] = op(a[i]) @ op(b[i]) for a (Bt, M, K), b (Bt, K, N) -> (Bt, M, N)."""
    a, b = _dev(a, "a", 3), _dev(b, "b", 3)
    check_same_dtype(a=a, b=b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"gemm_batched: batch sizes differ: a is {a.shape}, b is {b.shape}")
    Bt = a.shape[0]
    M, K = (a.shape[2], a.shape[1]) if trans_a else a.shape[1:]
    Kb, N = (b.shape[2], b.shape[1]) if trans_b else b.shape[1:]
    if K != Kb:
        raise ValueError(f"gemm_batched: inner dimensions do not match: op(a) is {(Bt, M, K)}, "
                         f"op(b) is {(Bt, Kb, N)}")
    c = _like(a, (Bt, M, N))
    _ext.gemm_batched(trans_a, trans_b, Bt, M, N, K, a, max(a.shape[2], 1),
                      a.shape[1] * a.shape[2], b, max(b.shape[2], 1), b.shape[1] * b.shape[2],
                      c, max(N, 1), M * N)
    return c


# ------------------------------------------------------------------ elementwise helpers

def _binary(op: int, a, b, out, fn: str) -> DeviceArray:
    a, b = _dev(a, "a"), _dev(b, "b")
    check_same_dtype(a=a, b=b)
    check_shape(b, a.shape, "b")
    out = _out(out, a.shape, a.dtype, fn)
    _ext.binary(op, out, a, b)
    return out


def add(a, b, out=None) -> DeviceArray:
    """a + b elementwise (same shape)."""
    return _binary(0, a, b, out, "add")


def sub(a, b, out=None) -> DeviceArray:
    """a - b elementwise (same shape)."""
    return _binary(1, a, b, out, "sub")


def mul(a, b, out=None) -> DeviceArray:
    """a * b elementwise (same shape)."""
    return _binary(2, a, b, out, "mul")


def div(a, b, out=None) -> DeviceArray:
    """a / b elementwise (same shape)."""
    return _binary(3, a, b, out, "div")


def fill(x, value: float) -> DeviceArray:
    """Set every element of x to value, in place."""
    _ext.fill(_dev(x, "x"), value)
    return x


def sum_rows(x) -> DeviceArray:
    """Column sums of x (M, N) -> (N,) (bias gradients), in double, deterministic."""
    x = _dev(x, "x", 2)
    out = _like(x, (x.shape[1],))
    _ext.sum_rows(out, x, x.shape[0], x.shape[1])
    return out


def axpby(alpha: float, x, beta: float = 0.0, y=None, out=None) -> DeviceArray:
    """alpha * x + beta * y elementwise (alpha * x without y); out may alias x or y."""
    x = _dev(x, "x")
    if y is not None:
        y = _dev(y, "y")
        check_same_dtype(x=x, y=y)
        check_shape(y, x.shape, "y")
    out = _out(out, x.shape, x.dtype, "axpby")
    _ext.axpby(out, alpha, x, beta if y is not None else 0.0, y)
    return out


def affine(x, alpha: float = 1.0, beta: float = 0.0, out=None) -> DeviceArray:
    """alpha * x + beta elementwise (scalar alpha and beta); out may alias x."""
    x = _dev(x, "x")
    out = _out(out, x.shape, x.dtype, "affine")
    _ext.affine(out, alpha, x, beta)
    return out


def cast(x, dtype) -> DeviceArray:
    """x converted to `dtype` (float32, float64 or int64; float -> int truncates)."""
    dtype = np.dtype(dtype)
    if not isinstance(x, DeviceArray):
        raise TypeError(f"x: expected a DeviceArray, got {type(x).__name__}")
    out = DeviceArray(x.shape, dtype)        # (DeviceArray rejects other dtypes)
    _ext.cast(out, x)
    return out


def sum_all(x, square: bool = False) -> DeviceArray:
    """Sum of all elements of x (of x*x with square=True) as a 0-d array, summed in double in
    a fixed order (the same bits on every run)."""
    x = _dev(x, "x")
    scratch = DeviceArray((_ext.sum_all_scratch_size(),), np.float64)
    out = DeviceArray((), x.dtype)
    _ext.sum_all(out, scratch, x, bool(square))
    return out


def dropout_forward(inp, p: float, seed: int, group: int = 1) -> DeviceArray:
    """Inverted dropout with the CPU kernel's mask (nncore._kernels.dropout.dropout_forward):
    the same (p, seed, group) zeroes the same elements on both devices."""
    inp = _dev(inp, "input")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if group < 1 or inp.size % group:
        raise ValueError(f"dropout: group {group} must be >= 1 and divide the input size "
                         f"{inp.size} (shape {inp.shape})")
    out = _like(inp)
    if p == 1.0:
        return out.zero_()
    if p == 0.0:
        return out.copy_(inp)
    threshold = int(math.ceil(p * 9007199254740992.0))      # ceil(p * 2^53)
    _ext.dropout(out, inp, int(seed) % 2**64, threshold, 1.0 / (1.0 - p), int(group))
    return out
