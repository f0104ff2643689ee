"""DistributedDataParallel: one model replica per MPI rank, gradients averaged after backward."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from ..nn.module import Module
from . import _mpi
from ._reducer import GradientReducer

__all__ = ["DistributedDataParallel"]


class DistributedDataParallel(Module):
    """Wrap `module` so that ``loss.backward()`` leaves the gradient averaged over all ranks.

    At construction rank 0's parameters and buffers are broadcast to every rank (after checking
    that every rank holds the same parameter names, shapes and dtypes). During backward,
    gradients are packed into ~`bucket_cap_mb` buckets and all-reduced in place as soon as a
    bucket is complete, overlapping with the rest of backward (see `_reducer`). Each rank
    should see a different shard of each global batch (``DistributedSampler``); with per-rank
    batch ``B / N`` and a mean loss, N ranks train exactly like one process with batch ``B``.

    Mirrors ``torch.nn.parallel.DistributedDataParallel``: `module` is ``self.module`` (so
    ``state_dict`` keys start with ``module.``), `broadcast_buffers` re-broadcasts rank 0's
    buffers (BatchNorm running stats) before every forward, `find_unused_parameters` tolerates
    parameters that get no gradient in a pass, `no_sync()` accumulates locally. `process_group`
    is an mpi4py communicator (default: the one from ``nncore.distributed.init``).
    ``last_comm_seconds`` is the time the last step spent in MPI calls. With one rank the
    average is the gradient itself, so no hooks are installed and DDP costs nothing.
    """

    def __init__(self, module: Module, broadcast_buffers: bool = True,
                 process_group: Any = None, bucket_cap_mb: float = 25.0,
                 find_unused_parameters: bool = False,
                 gradient_as_bucket_view: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps an nn.Module, got "
                            f"{type(module).__name__}")
        if bucket_cap_mb <= 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        comm = _mpi._comm(process_group)
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.process_group = comm
        mpi = _mpi.mpi() if process_group is None else _mpi._import_mpi()
        self._mpi = mpi
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        _check_same_parameters(comm, named)
        for _, p in named:
            if not p.data.flags.c_contiguous:  # MPI and the buckets want flat buffers
                p.data = np.ascontiguousarray(p.data)
            _mpi.broadcast(p, 0, comm)
        self._sync_buffers()
        self.reducer = GradientReducer([p for _, p in named], comm, mpi, bucket_cap_mb,
                                       find_unused_parameters, gradient_as_bucket_view)

    @property
    def last_comm_seconds(self) -> float:
        """Seconds the last synchronised backward spent inside MPI (start, progress, wait)."""
        return self.reducer.last_comm_seconds

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.training:
            self._sync_buffers()
        return self.module(*args, **kwargs)

    def _sync_buffers(self) -> None:
        for _, b in self.module.named_buffers():
            if b is not None and b.data.size:
                if not b.data.flags.c_contiguous:
                    b.data = np.ascontiguousarray(b.data)
                _mpi.broadcast(b, 0, self.process_group)

    @contextmanager
    def no_sync(self):
        """Inside this block backward only accumulates local gradients; the first backward
        after it all-reduces the accumulated sum (gradient accumulation over micro-batches)."""
        previous = self.reducer.enabled
        self.reducer.enabled = False
        try:
            yield
        finally:
            self.reducer.enabled = previous

    def extra_repr(self) -> str:
        return (f"world_size={self.process_group.Get_size()}, "
                f"buckets={len(self.reducer.buckets)}")


def _check_same_parameters(comm: Any, named: list) -> None:
    """Fail on every rank, naming the first difference, if the replicas do not match."""
    mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in named]
    everyone = comm.allgather(mine)
    for rank, theirs in enumerate(everyone):
        if theirs != mine:
            diff = next(((a, b) for a, b in zip(mine, theirs) if a != b),
                        (f"{len(mine)} parameters", f"{len(theirs)} parameters"))
            raise ValueError(
                f"DistributedDataParallel: rank {comm.Get_rank()} and rank {rank} hold "
                f"different models: {diff[0]} vs {diff[1]}")
