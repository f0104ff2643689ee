"""The layer part of nncore.cuda.ops: convolution, pooling, embedding and batch norm (see
ops.py; the recurrent layers are in _ops_rnn.py)."""
from __future__ import annotations

import numpy as np

from nncore._kernels._checks import (
    check_batch_norm_options,
    check_same_dtype,
    check_shape,
)
from nncore._kernels._conv_geometry import conv2d_sizes
from nncore._kernels._pool_geometry import _pool_geometry, _Shape

from ._ops_base import (
    DeviceArray,
    _checked_index,
    _dev,
    _ext,
    _host_index,
    _like,
    _vector,
)

# ------------------------------------------------------------------------ convolution

_CONV_GEOM = ("N", "C", "H", "W", "OC", "OH", "OW", "KH", "KW", "sh", "sw", "pt", "pl", "dh",
              "dw", "G")     # the order of nncore_cuda_conv_geom


def _conv_geometry(inp, weight, stride, padding, dilation, groups) -> tuple:
    inp, weight = _dev(inp, "input", 4), _dev(weight, "weight", 4)
    check_same_dtype(input=inp, weight=weight)
    sizes = conv2d_sizes(inp.shape, weight.shape, stride, padding, dilation, groups)
    return tuple(sizes[k] for k in _CONV_GEOM)


def conv2d_forward(inp, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """out (N, OC, OH, OW) = conv2d(inp (N, C, H, W), weight (OC, C/groups, KH, KW)) + bias."""
    geom = _conv_geometry(inp, weight, stride, padding, dilation, groups)
    N, OC, OH, OW = geom[0], geom[4], geom[5], geom[6]
    bias = _vector(bias, "bias", OC, inp.dtype)
    out = _like(inp, (N, OC, OH, OW))
    _ext.conv2d_forward(out, inp, weight, bias, geom)
    return out


def conv2d_backward(dout, inp, weight, stride=1, padding=0, dilation=1, groups=1,
                    need_dinp=True, need_dweight=True, need_dbias=True) -> tuple:
    """(dinp, dweight, dbias) of conv2d_forward, None where not requested."""
    geom = _conv_geometry(inp, weight, stride, padding, dilation, groups)
    dout = _dev(dout, "dout", 4)
    check_same_dtype(input=inp, dout=dout)
    out_shape = (geom[0], geom[4], geom[5], geom[6])
    if dout.shape != out_shape:
        raise ValueError(f"conv2d_backward: dout shape {dout.shape} != output shape {out_shape}")
    dinp = _like(inp) if need_dinp else None
    dweight = _like(weight) if need_dweight else None
    dbias = _like(inp, (geom[4],)) if need_dbias else None
    _ext.conv2d_backward(dinp, dweight, dbias, dout, inp, weight, geom)
    return dinp, dweight, dbias


# ---------------------------------------------------------------------------- pooling

def _pool_tuple(g: dict) -> tuple:
    return tuple(int(g[k]) for k in ("P", "H", "W", "OH", "OW", "KH", "KW", "sh", "sw", "ph",
                                     "pw", "dh", "dw", "count_include_pad", "divisor"))


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(out (N, C, OH, OW), argmax int64 (N, C, OH, OW)) of 2-D max pooling."""
    x = _dev(x, "input", 4)
    g = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", True)
    shape = x.shape[:2] + (g["OH"], g["OW"])
    out, argmax = _like(x, shape), DeviceArray(shape, np.int64)
    _ext.maxpool2d_forward(out, argmax, x, _pool_tuple(g))
    return out, argmax


def maxpool2d_backward(dout, argmax, input_shape, kernel_size=None, stride=None, padding=0,
                       dilation=1, ceil_mode=False) -> DeviceArray:
    """dinp (input_shape) of max pooling. With the forward's kernel_size (and options) each
    input gathers its gradient in a fixed order; without, dout is scattered with atomics
    (deterministic when windows do not overlap)."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"max_pool2d_backward: input_shape must be 4-D, got {input_shape}")
    dout = _dev(dout, "dout", 4)
    if not isinstance(argmax, DeviceArray) or argmax.dtype != np.int64:
        raise TypeError("max_pool2d_backward: argmax must be an int64 DeviceArray")
    N, C, H, W = input_shape
    if dout.shape[:2] != (N, C) or argmax.shape != dout.shape:
        raise ValueError(f"max_pool2d_backward: dout {dout.shape} / argmax {argmax.shape} do "
                         f"not match input shape {input_shape}")
    if kernel_size is not None:
        g = _pool_geometry(_Shape(input_shape), kernel_size, stride, padding, dilation,
                           ceil_mode, "max_pool2d", True)
        if (g["OH"], g["OW"]) != dout.shape[2:]:
            raise ValueError(f"max_pool2d_backward: dout shape {dout.shape} does not match "
                             f"the window options (output {(g['OH'], g['OW'])})")
    else:
        g = dict(P=N * C, H=H, W=W, OH=dout.shape[2], OW=dout.shape[3], KH=1, KW=1, sh=1,
                 sw=1, ph=0, pw=0, dh=1, dw=1, count_include_pad=1, divisor=0)
    dinp = _like(dout, input_shape)
    _ext.maxpool2d_backward(dinp, dout, argmax, _pool_tuple(g), kernel_size is not None)
    return dinp


def _avg_geometry(shape_src, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override) -> dict:
    g = _pool_geometry(shape_src, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d",
                       False)
    g["count_include_pad"] = bool(count_include_pad)
    if divisor_override is not None:
        if int(divisor_override) <= 0:
            raise ValueError(f"avg_pool2d: divisor must be not zero, got {divisor_override}")
        g["divisor"] = int(divisor_override)
    return g


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None) -> DeviceArray:
    """out (N, C, OH, OW) of 2-D average pooling (PyTorch's divisor rules)."""
    x = _dev(x, "input", 4)
    g = _avg_geometry(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                      divisor_override)
    out = _like(x, x.shape[:2] + (g["OH"], g["OW"]))
    _ext.avgpool2d_forward(out, x, _pool_tuple(g))
    return out


def avgpool2d_backward(dout, input_shape, kernel_size, stride=None, padding=0,
                       ceil_mode=False, count_include_pad=True,
                       divisor_override=None) -> DeviceArray:
    """dinp (input_shape) of avgpool2d_forward with the same options."""
    dout = _dev(dout, "dout", 4)
    input_shape = tuple(int(s) for s in input_shape)
    g = _avg_geometry(_Shape(input_shape), kernel_size, stride, padding, ceil_mode,
                      count_include_pad, divisor_override)
    check_shape(dout, input_shape[:2] + (g["OH"], g["OW"]), "avg_pool2d_backward: dout")
    dinp = _like(dout, input_shape)
    _ext.avgpool2d_backward(dinp, dout, _pool_tuple(g))
    return dinp


# ------------------------------------------------------------------------ embedding

def embedding_forward(ids, weight) -> DeviceArray:
    """out (N, D) = weight[ids]; IndexError names the first id outside [0, V)."""
    weight = _dev(weight, "weight", 2)
    V, D = weight.shape
    ids, host_count = _checked_index(ids, "ids", V, "embedding: index")
    N = ids.shape[0]
    out = _like(weight, (N, D))
    _ext.embedding_forward(out, ids, weight, N, V, D, host_count >= 0)
    return out


def embedding_backward(dout, ids, num_embeddings: int, padding_idx: int | None = None,
                       scale_grad_by_freq: bool = False) -> DeviceArray:
    """dweight (V, D): row v sums dout over the positions whose id is v, in input order.

    The positions are grouped on the host (a stable sort of the ids, copied back once): the
    sums then run in the CPU kernel's order, with the same bits, on every run.
    """
    dout = _dev(dout, "dout", 2)
    V, N, D = int(num_embeddings), dout.shape[0], dout.shape[1]
    if V < 0:
        raise ValueError(f"embedding_backward: num_embeddings must be >= 0, got {V}")
    host_ids = ids.numpy() if isinstance(ids, DeviceArray) else np.asarray(ids)
    host_ids = _host_index(host_ids, "ids")
    if host_ids.ndim != 1 or host_ids.shape[0] != N:
        raise ValueError(f"embedding_backward: dout has {N} rows (shape {dout.shape}) but there "
                         f"are {host_ids.shape} ids")
    pad = -1
    if padding_idx is not None:
        if not 0 <= padding_idx < V:
            raise ValueError(f"embedding_backward: padding_idx {padding_idx} is out of range "
                             f"for a vocabulary of {V}")
        pad = int(padding_idx)
    bad = np.flatnonzero((host_ids < 0) | (host_ids >= V))
    if bad.size:
        raise IndexError(f"embedding: index {int(host_ids[bad[0]])} is out of range for a "
                         f"vocabulary of {V}")
    order = np.argsort(host_ids, kind="stable").astype(np.int64)
    starts = np.zeros(V + 1, np.int64)
    np.cumsum(np.bincount(host_ids, minlength=V), out=starts[1:])
    dweight = _like(dout, (V, D))
    _ext.embedding_backward(dweight, dout, DeviceArray.from_numpy(order),
                            DeviceArray.from_numpy(starts), V, D, pad, bool(scale_grad_by_freq))
    return dweight


# ------------------------------------------------------------------------ batch norm

def _ncs(x: DeviceArray, name: str) -> tuple:
    if x.ndim < 2:
        raise ValueError(f"{name}: expected an input of at least 2 dimensions (N, C, ...), "
                         f"got shape {x.shape}")
    return x.shape[0], x.shape[1], int(np.prod(x.shape[2:], dtype=np.int64))


def batch_norm_forward(inp, weight, bias, running_mean, running_var, training: bool,
                       momentum: float = 0.1, eps: float = 1e-5) -> tuple:
    """(out, save_mean, save_invstd) of batch norm over (N, C, *); see the CPU kernel.

    A training call with running statistics updates them in place; save_* are float64 (C,).
    """
    inp = _dev(inp, "input")
    N, C, S = _ncs(inp, "input")
    check_batch_norm_options(inp.shape, N, S, training, running_mean, running_var, eps)
    weight = _vector(weight, "weight", C, inp.dtype)
    bias = _vector(bias, "bias", C, inp.dtype)
    running_mean = _vector(running_mean, "running_mean", C, inp.dtype)
    running_var = _vector(running_var, "running_var", C, inp.dtype)
    out = _like(inp)
    save_mean = DeviceArray((C,), np.float64)
    save_invstd = DeviceArray((C,), np.float64)
    _ext.batch_norm_forward(out, save_mean, save_invstd, running_mean, running_var, inp,
                            weight, bias, N, C, S, training, running_mean is not None,
                            momentum, eps)
    return out, save_mean, save_invstd


def batch_norm_backward(dout, inp, save_mean, save_invstd, weight, training: bool,
                        need_dinp: bool = True) -> tuple:
    """(dinp or None, dweight, dbias) of `batch_norm_forward`."""
    inp, dout = _dev(inp, "input"), _dev(dout, "dout")
    check_same_dtype(input=inp, dout=dout)
    if dout.shape != inp.shape:
        raise ValueError(f"batch_norm_backward: dout shape {dout.shape} != input shape "
                         f"{inp.shape}")
    N, C, S = _ncs(inp, "input")
    weight = _vector(weight, "weight", C, inp.dtype)
    for name, v in (("save_mean", save_mean), ("save_invstd", save_invstd)):
        if not isinstance(v, DeviceArray) or v.dtype != np.float64 or v.shape != (C,):
            raise ValueError(f"batch_norm_backward: {name} must be a float64 DeviceArray of "
                             f"shape ({C},), got {v!r}")
    dinp = _like(inp) if need_dinp else None
    dweight, dbias = _like(inp, (C,)), _like(inp, (C,))
    if N * S == 0:
        for a in (dinp, dweight, dbias):
            if a is not None:
                a.zero_()
        return dinp, dweight, dbias
    _ext.batch_norm_backward(dinp, dweight, dbias, dout, inp, save_mean, save_invstd, weight,
                             N, C, S, training)
    return dinp, dweight, dbias
