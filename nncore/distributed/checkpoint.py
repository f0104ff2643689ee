"""Checkpoints in a multi-rank job: rank 0 writes (atomically), every rank waits for it."""
from __future__ import annotations

import os
from typing import Any

from .. import io
from . import _mpi


def save_checkpoint(path: str | os.PathLike, model: Any = None, optimizer: Any = None,
                    scheduler: Any = None, epoch: int | None = None, rng: bool = True,
                    extra: Any = None, comm: Any = None) -> None:
    """``nncore.io.save_checkpoint`` on rank 0 only, then a barrier so no rank reads a file
    that is not finished. A ``DistributedDataParallel`` model is saved unwrapped (keys without
    ``module.``) so the checkpoint loads into a plain model, single-process or not. The write is
    atomic (temporary file + rename), so a job killed mid-save keeps the previous checkpoint.
    """
    from .ddp import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        model = model.module
    if _mpi.get_rank(comm) == 0:
        io.save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler,
                           epoch=epoch, rng=rng, extra=extra)
    _mpi.barrier(comm)
