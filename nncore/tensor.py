"""Tensor: a NumPy array plus the autograd bookkeeping (grad, requires_grad, graph link).

The array lives in `.data` and is shared, never copied, in both directions: `Tensor(arr)`,
`nncore.from_numpy(arr)`, `t.numpy()` and `np.asarray(t)` all alias the same memory.
Operators and methods dispatch to `nncore.functional`, which records the graph
(`_tensor_methods` binds them); the NumPy / DLPack / Python-protocol methods come from
the `_tensor_interop.TensorInterop` mixin.

On a GPU (CUDA build, ``t.to("cuda")``) `.data` is an ``nncore.cuda.DeviceArray`` instead, and
reading it from the host needs an explicit ``.cpu()``, as in PyTorch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _device
from ._device import device as _device_type
from ._device import is_device_array as _is_device_array
from ._tensor_interop import TensorInterop

__all__ = ["Tensor"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to an ndarray with PyTorch's default dtypes (float32, int64)."""
    if isinstance(data, Tensor):
        data = data.data
    if _is_device_array(data):
        return data if dtype is None else _device.astype(data, dtype)
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    arr = np.asarray(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr


def _parse_to_args(args: tuple, dtype: Any, device: Any) -> tuple:
    """(dtype or None, device or None) from Tensor.to's torch-style arguments."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (str, _device_type)) and str(a).split(":")[0] in ("cpu", "cuda"):
            device = a
        elif a is not None:
            dtype = a
    return (None if dtype is None else np.dtype(dtype),
            None if device is None else _device.as_device(device))


class _HookHandle:
    """Returned by ``register_post_accumulate_grad_hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, tensor: Tensor) -> None:
        import weakref

        _HookHandle._next_id += 1
        self.id = _HookHandle._next_id
        self._tensor = weakref.ref(tensor)

    def remove(self) -> None:
        t = self._tensor()
        if t is not None and t._grad_hooks is not None:
            t._grad_hooks.pop(self.id, None)
            if not t._grad_hooks:
                t._grad_hooks = None


class Tensor(TensorInterop):
    """An n-dimensional array that can record operations for automatic differentiation.

    Example:
        >>> x = nncore.tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad.numpy()
        array([2., 4.], dtype=float32)
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_out_index", "_retains_grad",
                 "_grad_hooks", "__weakref__")
    __array_priority__ = 1000  # make `ndarray * Tensor` call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = _as_array(data, dtype)
        self.grad: Tensor | None = None
        self._ctx = None
        self._out_index = 0
        self._retains_grad = False
        self._requires_grad = False
        self._grad_hooks = None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool) -> Tensor:
        """Fast constructor for Function outputs (no conversion, no checks)."""
        t = object.__new__(Tensor)
        t.data = data if isinstance(data, np.ndarray) or _is_device_array(data) else \
            np.asarray(data)
        t.grad = None
        t._ctx = None
        t._out_index = 0
        t._retains_grad = False
        t._requires_grad = requires_grad
        t._grad_hooks = None
        return t

    # ----------------------------------------------------------------- autograd state
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.data.dtype not in _FLOAT_DTYPES:
            raise RuntimeError(
                f"only floating point tensors can require gradients (dtype is {self.data.dtype})")
        if not value and self._ctx is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        return None if self._ctx is None else self._ctx.fn

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor during backward."""
        self._retains_grad = True

    def register_post_accumulate_grad_hook(self, hook: Any) -> _HookHandle:
        """Call ``hook(tensor)`` once per backward pass, after this leaf's `.grad` is final.

        "Final" means every path from the roots to this leaf has been accumulated (a weight used
        twice fires once). The hook returns None; ``handle.remove()`` unregisters it. This is
        what ``nncore.distributed.DistributedDataParallel`` uses to start the all-reduce of a
        gradient bucket while the rest of backward still runs.
        """
        if self._ctx is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self._requires_grad:
            raise RuntimeError(
                "cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_hooks is None:
            self._grad_hooks = {}
        handle = _HookHandle(self)
        self._grad_hooks[handle.id] = hook
        return handle

    def backward(self, gradient: Any = None, retain_graph: bool = False,
                 inputs: Any = None) -> None:
        """Accumulate the gradient of this tensor into `.grad` of the leaves it depends on."""
        from .autograd import backward

        backward(self, gradient, retain_graph=retain_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """A new tensor sharing memory, cut from the graph."""
        return Tensor._make(self.data, False)

    def detach_(self) -> Tensor:
        self._ctx = None
        self._requires_grad = False
        return self

    def zero_(self) -> Tensor:
        if isinstance(self.data, np.ndarray):
            self.data[...] = 0
        else:
            self.data.zero_()
        return self

    # ----------------------------------------------------------------- array facts
    @property
    def shape(self) -> tuple:
        return self.data.shape

    def size(self, dim: int | None = None) -> Any:
        return self.data.shape if dim is None else self.data.shape[dim]

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    @property
    def device(self) -> _device_type:
        """Where the data lives: ``device(type='cpu')`` or ``device(type='cuda', index=0)``."""
        return _device.device_of(self.data)

    @property
    def is_cuda(self) -> bool:
        return not isinstance(self.data, np.ndarray)

    # ----------------------------------------------------------------- conversions
    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return Tensor._make(_device.astype(self.data, np.int64), False)

    def to(self, *args: Any, dtype: Any = None, device: Any = None,
           non_blocking: bool = False, copy: bool = False) -> Tensor:
        """This tensor on another device and/or dtype, as torch's ``Tensor.to``:
        ``t.to("cuda")``, ``t.to(nncore.float64)``, ``t.to("cuda", nncore.float64)``,
        ``t.to(other)``. Differentiable; returns `self` when nothing changes (unless copy).
        Devices other than "cpu" need the CUDA build (docs/cuda.md)."""
        dtype, device = _parse_to_args(args, dtype, device)
        out = self
        if device is not None and device != out.device and not (
                device.type == out.device.type and device.index is None):
            from .functional.device import to_device

            out = to_device(out, device)
        if dtype is not None and dtype != out.dtype:
            from .functional.elementwise import cast

            out = cast(out, dtype)
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype: Any = None) -> Any:
        if dtype is None:
            return f"nncore.{self.dtype}"
        return self.to(dtype=dtype)

    def cpu(self) -> Tensor:
        """This tensor in host memory (itself when it already is there)."""
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Tensor:
        """This tensor on the GPU (needs the CUDA build; see docs/cuda.md)."""
        return self.to("cuda" if device is None else _device.as_device(device))

    def clone(self) -> Tensor:
        from .functional.elementwise import clone

        return clone(self)

    def copy_(self, src: Any) -> Tensor:
        """Copy `src` (any device; broadcast on the host) into this tensor, in place."""
        src = src.data if isinstance(src, Tensor) else src
        if self.is_cuda and _is_device_array(src) and tuple(src.shape) == self.shape:
            self.data.copy_(_device.astype(src, self.dtype))       # device to device
            return self
        host_src = src.numpy() if _is_device_array(src) else src
        if isinstance(self.data, np.ndarray):
            np.copyto(self.data, host_src, casting="same_kind")
        else:                                                      # broadcast on the host
            host = np.empty(self.shape, self.dtype)
            np.copyto(host, host_src, casting="same_kind")
            self.data.copy_(_device.move(host, self.device))
        return self

    # identity hash: `==` is elementwise (bound in _tensor_methods), as in torch
    def __hash__(self) -> int:
        return id(self)
