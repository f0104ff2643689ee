"""TensorInterop: how a Tensor meets NumPy, DLPack and Python's built-in protocols.

A mixin of `nncore.tensor.Tensor` (which supplies `data`, `_requires_grad`, `_ctx`, `device`):
host exports (`numpy()`, `np.asarray(t)`, DLPack, `item()`, `tolist()`) and the dunders
behind `repr`, `len`, `bool`, `float`, `int`, `operator.index`, iteration and pickling.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _device

__all__ = ["TensorInterop"]


class TensorInterop:
    """NumPy / DLPack / Python-protocol methods of `Tensor`; no state of its own."""

    __slots__ = ()

    # ----------------------------------------------------------------- host exports
    def _host_data(self, what: str) -> np.ndarray:
        """`.data` as an ndarray; a clear TypeError for a cuda tensor (no silent copy)."""
        if isinstance(self.data, np.ndarray):
            return self.data
        if what in ("numpy", "DLPack"):
            raise TypeError(f"can't convert {self.device} device type tensor to {what}. Use "
                            f"Tensor.cpu() to copy the tensor to host memory first.")
        raise NotImplementedError(f"{what} is not supported on {self.device} tensors yet; use "
                                  f"Tensor.cpu() to copy the tensor to host memory first.")

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared memory)."""
        if self._requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead.")
        return self._host_data("numpy")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self._host_data("numpy")
        if dtype is None or np.dtype(dtype) == data.dtype:
            return data.copy() if copy else data
        return data.astype(dtype)

    def __dlpack__(self, **kwargs: Any) -> Any:
        """Export `.data` through DLPack (zero copy), like torch: not while requiring grad."""
        if self._requires_grad:
            raise RuntimeError("Can't export tensors that require gradient, use "
                               "tensor.detach()")
        return self._host_data("DLPack").__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple:
        return self._host_data("DLPack").__dlpack_device__()

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number (waits for the GPU)."""
        if self.data.size != 1:
            raise ValueError(
                f"a Tensor with {self.data.size} elements cannot be converted to Scalar")
        return _device.move(self.data, _device.CPU).item()

    def tolist(self) -> Any:
        return _device.move(self.data, _device.CPU).tolist()

    # ----------------------------------------------------------------- Python protocols
    def __repr__(self) -> str:
        host = _device.move(self.data, _device.CPU)
        body = np.array2string(host, separator=", ", prefix="tensor(")
        extra = "" if isinstance(self.data, np.ndarray) else f", device='{self.device}'"
        if self.data.dtype != np.float32 and self.data.dtype != np.int64:
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.fn.__name__}Backward>"
        elif self._requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getstate__(self) -> dict:
        state = {"data": _device.move(self.data, _device.CPU),
                 "requires_grad": self._requires_grad}
        if not isinstance(self.data, np.ndarray):
            state["device"] = str(self.device)
        return state

    def __setstate__(self, state: dict) -> None:
        data = state["data"]
        if "device" in state:
            data = _device.move(data, _device.as_device(state["device"]))
        self.__init__(data, requires_grad=state["requires_grad"])
