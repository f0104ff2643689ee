"""The activation part of nncore.cuda.ops: forward and backward of relu, leaky_relu, sigmoid,
tanh and gelu (see ops.py)."""
from __future__ import annotations

from nncore._kernels._checks import check_same_dtype, check_shape

from ._ops_base import DeviceArray, _dev, _ext, _out

RELU, LEAKY_RELU, SIGMOID, TANH, GELU, GELU_TANH = range(6)


# ------------------------------------------------------------------------- activations

def _act_fwd(op: int, x, out, fn: str, p: float = 0.0) -> DeviceArray:
    x = _dev(x, "x")
    y = _out(out, x.shape, x.dtype, fn)
    _ext.activation_forward(op, y, x, p)
    return y


def _act_bwd(op: int, dout, cache, cache_name: str, out, fn: str, p: float = 0.0):
    dout, cache = _dev(dout, "dout"), _dev(cache, cache_name)
    check_same_dtype(dout=dout, **{cache_name: cache})
    check_shape(cache, dout.shape, cache_name)
    dx = _out(out, dout.shape, dout.dtype, fn)
    _ext.activation_backward(op, dx, dout, cache, p)
    return dx


def relu_forward(x, out=None) -> DeviceArray:
    return _act_fwd(RELU, x, out, "relu_forward")


def relu_backward(dout, y, out=None) -> DeviceArray:
    return _act_bwd(RELU, dout, y, "y", out, "relu_backward")


def leaky_relu_forward(x, negative_slope: float = 0.01, out=None) -> DeviceArray:
    return _act_fwd(LEAKY_RELU, x, out, "leaky_relu_forward", negative_slope)


def leaky_relu_backward(dout, x, negative_slope: float = 0.01, out=None) -> DeviceArray:
    return _act_bwd(LEAKY_RELU, dout, x, "x", out, "leaky_relu_backward", negative_slope)


def sigmoid_forward(x, out=None) -> DeviceArray:
    return _act_fwd(SIGMOID, x, out, "sigmoid_forward")


def sigmoid_backward(dout, y, out=None) -> DeviceArray:
    return _act_bwd(SIGMOID, dout, y, "y", out, "sigmoid_backward")


def tanh_forward(x, out=None) -> DeviceArray:
    return _act_fwd(TANH, x, out, "tanh_forward")


def tanh_backward(dout, y, out=None) -> DeviceArray:
    return _act_bwd(TANH, dout, y, "y", out, "tanh_backward")


def _gelu_op(approximate: str, fn: str) -> int:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{fn}: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU if approximate == "none" else GELU_TANH


def gelu_forward(x, approximate: str = "none", out=None) -> DeviceArray:
    return _act_fwd(_gelu_op(approximate, "gelu_forward"), x, out, "gelu_forward")


def gelu_backward(dout, x, approximate: str = "none", out=None) -> DeviceArray:
    op = _gelu_op(approximate, "gelu_backward")
    return _act_bwd(op, dout, x, "x", out, "gelu_backward")
