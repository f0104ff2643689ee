"""Which Function runs when an op's inputs live on the GPU.

`Function.apply` (autograd.py) asks `cuda_function(cls)` for the class to run in place of the
CPU Function `cls`. nncore/cuda/_functions*.py fill the registry with `register_cuda` when the
first GPU tensor meets an op; a CPU Function whose code is device-neutral is registered as
its own implementation.
"""
from __future__ import annotations

from . import _device

__all__ = ["register_cuda", "cuda_function"]

# CPU Function class -> the Function class that runs it on the GPU
_registry: dict = {}


def register_cuda(cpu_function: type):
    """Class decorator: the decorated Function runs in place of `cpu_function` whenever an
    input tensor lives on the GPU (same arguments, DeviceArrays instead of ndarrays)."""
    def decorate(cuda_function: type) -> type:
        _registry[cpu_function] = cuda_function
        return cuda_function

    return decorate


def cuda_function(cls: type) -> type:
    """The GPU implementation of `cls`, loading the registrations on first use;
    NotImplementedError naming the op when there is none."""
    impl = _registry.get(cls)
    if impl is None and not _registry:
        _device.ops_for_device()          # a clear error without a CUDA build or GPU
        import nncore.cuda._functions  # noqa: F401  (fills the registry)

        impl = _registry.get(cls)
    if impl is None:
        raise NotImplementedError(
            f"{cls.__name__} has no CUDA implementation yet; move its inputs to the CPU with "
            f".cpu() (supported on cuda: see docs/cuda.md)")
    return impl
