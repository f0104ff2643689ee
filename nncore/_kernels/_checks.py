"""Shared validation for kernel wrappers: dtype, ndim, contiguity and shape checks, `out=`
buffers, and the level a module's `_cap_simd` test hook sets.

Every `def` wrapper in `_kernels/` calls these before releasing the GIL, so bad input becomes a
Python exception that names the argument and its shape, never a crash.
"""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def int_pair(v, name: str, fn: str) -> tuple[int, int]:
    """(a, b) from an int, a 1-sequence or a 2-sequence of ints (kernel sizes, strides,
    padding, dilation); ValueError naming `fn` and `name` otherwise."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    t = tuple(int(x) for x in v)
    if len(t) == 1:
        return t[0], t[0]
    if len(t) != 2:
        raise ValueError(f"{fn}: {name} must be an int or a pair of ints, got {v!r}")
    return t


def as_float_array(x, name: str, ndim: int | None = None, dtype=None) -> np.ndarray:
    """Return `x` as a C-contiguous float32/float64 ndarray, or raise TypeError/ValueError.

    Non-contiguous input is copied (kernels read contiguous memory); integer or other dtypes
    are rejected rather than silently converted, so a dtype mistake is visible.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got dtype {x.dtype}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def check_float_4d(x, name: str, fn: str, layout: str = "") -> None:
    """Raise TypeError/ValueError unless `x` is a 4-D float32/float64 ndarray; messages start
    with `fn` and name the argument (and its `layout`, e.g. " (N, C, H, W)", when given)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{fn}: {name} must be float32 or float64, got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{fn}: {name} must be 4-D{layout}, got shape {x.shape}")


def check_same_dtype(**arrays: np.ndarray) -> np.dtype:
    """Raise TypeError unless all arrays share one dtype; return it."""
    items = list(arrays.items())
    first_name, first = items[0]
    for name, arr in items[1:]:
        if arr.dtype != first.dtype:
            raise TypeError(
                f"dtype mismatch: {first_name} is {first.dtype} but {name} is {arr.dtype}"
            )
    return first.dtype


def check_shape(x: np.ndarray, shape: tuple, name: str) -> None:
    """Raise ValueError unless x.shape == shape."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(x.shape)}")


def as_index_array(x, name: str, ndim: int | None = None) -> np.ndarray:
    """Return integer class/token indices as a C-contiguous int64 array, or raise TypeError."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {x.shape}")
    if x.dtype == np.int64 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.int64).reshape(x.shape)


def prepare_out(out, like: np.ndarray, fn: str) -> np.ndarray:
    """A new array like `like` when `out` is None, else `out` once checked to be a writeable
    C-contiguous array of like's dtype and shape (it may be an input: kernels allow aliasing)."""
    if out is None:
        return np.empty_like(like, order="C")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != like.dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {like.dtype}")
    check_shape(out, like.shape, f"{fn}: out")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{fn}: out must be a writeable C-contiguous array")
    return out


def grad_inputs(dout, cache, cache_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(dout, cache) as C-contiguous float arrays of one dtype and shape, for a backward kernel
    that reads the forward's output or input (`cache`, named `cache_name` in errors)."""
    dout = as_float_array(dout, "dout")
    cache = as_float_array(cache, cache_name)
    check_same_dtype(dout=dout, **{cache_name: cache})
    check_shape(cache, dout.shape, cache_name)
    return dout, cache


SIMD_LEVELS = {"portable": 0, "avx2": 1, "avx512": 2}


def capped_simd_level(level: str | None, detected: int) -> int:
    """The level a module's `_cap_simd(level)` test hook sets: `detected` for None, else
    `level` ('portable', 'avx2', 'avx512') but never above `detected`."""
    if level is None:
        return detected
    if level not in SIMD_LEVELS:
        raise ValueError(f"_cap_simd: level must be one of {sorted(SIMD_LEVELS)} or None, "
                         f"got {level!r}")
    return min(detected, SIMD_LEVELS[level])


# ---------------------------------------------------------------------------------------------
# Shape and option rules shared by the CPU kernels and nncore.cuda.ops: they read only
# `.shape` (any array type), so both backends raise the same errors for the same mistakes.

def check_conv_shapes(input_shape: tuple, weight_shape: tuple, groups) -> int:
    """Input (N, C, H, W) against weight (OC, C/groups, KH, KW); returns groups as an int."""
    C = input_shape[1]
    OC, Cg, KH, KW = weight_shape
    G = int(groups)
    if G <= 0:
        raise ValueError(f"conv2d: groups must be positive, got {groups}")
    if OC % G != 0:
        raise ValueError(f"conv2d: out_channels ({OC}, weight shape {weight_shape}) must be "
                         f"divisible by groups={G}")
    if C != Cg * G:
        raise ValueError(
            f"conv2d: input shape {input_shape} has {C} channels but weight shape "
            f"{weight_shape} with groups={G} expects {Cg * G} (= weight.shape[1] * groups)")
    if KH <= 0 or KW <= 0 or OC <= 0:
        raise ValueError(f"conv2d: weight shape {weight_shape} has an empty dimension")
    return G


def check_rnn_shapes(x, w_ih, w_hh, gate_mult: int, fn: str) -> tuple[int, int]:
    """(T, B, I) input against (G, I) / (G, H) weights, G = gate_mult * H; returns (G, H).
    Reads only `.shape`, so it serves any array type."""
    H = w_hh.shape[1]
    G = gate_mult * H
    if H < 1:
        raise ValueError(f"{fn}: hidden size must be >= 1, got weight_hh of shape {w_hh.shape}")
    check_shape(w_hh, (G, H), f"{fn}: weight_hh")
    if w_ih.shape != (G, x.shape[2]):
        raise ValueError(f"{fn}: weight_ih must have shape {(G, x.shape[2])} for input of shape "
                         f"{x.shape}, got {w_ih.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{fn}: empty sequence: input of shape {x.shape} has 0 time steps")
    return G, H


def check_batch_norm_options(input_shape: tuple, N: int, S: int, training: bool,
                             running_mean, running_var, eps) -> None:
    """The option rules of batch_norm (PyTorch's): running stats both or neither, required in
    eval mode, more than one value per channel when training, eps >= 0."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or "
                         "both be None")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are required when "
                         "training=False")
    if training and N * S <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {input_shape}")
    if not eps >= 0:
        raise ValueError(f"batch_norm: eps must be >= 0, got {eps}")
