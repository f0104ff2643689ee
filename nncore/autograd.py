"""Define-by-run autograd: Function/Context and grad mode; `backward` and `grad` come from the
engine (`_backward_engine.py`) and are re-exported here.

A `Function` computes on plain ndarrays. `Function.apply` unwraps Tensor arguments, runs
`forward`, and links the output Tensor(s) to the graph only when grad mode is on and some input
requires a gradient.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ._backward_engine import FREED_GRAPH_MESSAGE, backward, grad
from ._backward_hooks import queue_callback
from ._device_dispatch import cuda_function, register_cuda
from .tensor import Tensor

__all__ = [
    "Context",
    "Function",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "backward",
    "grad",
    "queue_callback",
    "register_cuda",
]

class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations record the graph for backward."""
    return _mode.enabled


class set_grad_enabled:
    """Context manager (and decorator) that sets grad mode on or off."""

    def __init__(self, mode: bool) -> None:
        self.prev = _mode.enabled
        _mode.enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        _mode.enabled = self.prev


class _GradModeContext:
    _value = True

    def __enter__(self) -> None:
        self.prev = _mode.enabled
        _mode.enabled = self._value

    def __exit__(self, *exc) -> None:
        _mode.enabled = self.prev

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager / decorator: operations inside do not record the graph."""

    _value = False


class enable_grad(_GradModeContext):
    """Context manager / decorator: turn grad mode back on inside a `no_grad` block."""

    _value = True


class Context:
    """Per-call state a Function's forward leaves for its backward.

    `save_for_backward(*arrays)` stores what backward needs; `saved_tensors` reads it back;
    `needs_input_grad[i]` tells whether input i needs a gradient. Any other attribute may be set.
    """

    __slots__ = ("fn", "parents", "needs_input_grad", "n_outputs", "_saved", "_freed",
                 "__dict__")

    def __init__(self) -> None:
        self._saved: tuple = ()
        self._freed = False

    def save_for_backward(self, *arrays: Any) -> None:
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(FREED_GRAPH_MESSAGE)
        return self._saved


class Function:
    """Base class of differentiable operations.

    Subclasses define `forward(ctx, *args)` on ndarrays (returning an ndarray or a tuple of
    them) and `backward(ctx, *douts)` returning one gradient (ndarray or None) per forward
    argument. Call them with `MyFunction.apply(*args)`. When an input tensor is on the GPU,
    `apply` runs the Function registered for it with `register_cuda` instead (all tensor
    inputs must then be on the GPU), unless the class sets `device_agnostic`.
    """

    device_agnostic = False

    @staticmethod
    def forward(ctx: Context, *args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *douts: np.ndarray) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any) -> Any:
        ctx = Context()
        raw = []
        parents = []
        any_needs = False
        devices = 0                    # bit 1: an input on the CPU, bit 2: one on the GPU
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a.data)
                devices |= 1 if isinstance(a.data, np.ndarray) else 2
                if a._requires_grad:
                    parents.append(a)
                    any_needs = True
                    continue
            else:
                raw.append(a)
            parents.append(None)
        if devices & 2 and not cls.device_agnostic:
            if devices & 1:
                found = sorted({str(a.device) for a in args if isinstance(a, Tensor)})
                raise RuntimeError(f"Expected all tensors to be on the same device, but found "
                                   f"at least two devices, {found[1]} and {found[0]}! "
                                   f"({cls.__name__})")
            cls = cuda_function(cls)
        track = any_needs and _mode.enabled
        ctx.needs_input_grad = (tuple(p is not None for p in parents) if track
                                else (False,) * len(args))
        out = cls.forward(ctx, *raw)
        if type(out) is tuple:
            outputs = tuple(Tensor._make(o, track) for o in out)
        else:
            result = Tensor._make(out, track)
            if track:
                ctx.fn = cls
                ctx.parents = parents
                ctx.n_outputs = 1
                result._ctx = ctx
            else:
                ctx._saved = ()
            return result
        if track:
            ctx.fn = cls
            ctx.parents = parents
            ctx.n_outputs = len(outputs)
            ctx.output_meta = [(t.data.shape, t.data.dtype) for t in outputs]
            for i, t in enumerate(outputs):
                t._ctx = ctx
                t._out_index = i
        else:
            ctx._saved = ()
        return outputs
