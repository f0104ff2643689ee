"""Moving tensors between host and GPU memory, differentiably: `to_device` backs
``Tensor.to("cuda")`` / ``.cpu()``; the gradient flows back to the source device."""
from __future__ import annotations

from typing import Any

from .. import _device
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["to_device"]


class ToDevice(Function):
    device_agnostic = True        # takes an input on one device and returns it on another

    @staticmethod
    def forward(ctx: Context, x: Any, target: _device.device) -> Any:
        ctx.source = _device.device_of(x)
        return _device.move(x, target)

    @staticmethod
    def backward(ctx: Context, dout: Any) -> tuple:
        return _device.move(dout, ctx.source), None


def to_device(input: Tensor, device: Any) -> Tensor:  # noqa: A002
    """`input` copied to `device` ("cpu", "cuda", "cuda:0"); differentiable."""
    return ToDevice.apply(input, _device.as_device(device))
