"""Data-parallel training over MPI: ``mpirun -np N python train.py``.

    import nncore.distributed as dist
    rank, world = dist.init()                       # mpi4py is imported here, not before
    model = dist.DistributedDataParallel(model)     # rank 0's weights everywhere
    sampler = dist.DistributedSampler(train_set, shuffle=True, seed=0)
    loader = nc.data.DataLoader(train_set, batch_size=global_batch // world, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()   # grads averaged
    dist.save_checkpoint("ckpt.safetensors", model, opt)                   # rank 0 writes

Importing this package needs nothing beyond NumPy; `init()` needs mpi4py and an MPI library
(``pip install 'nncore[distributed]'``). See docs/distributed.md.
"""
from ..data.distributed import DistributedSampler
from ._mpi import (
    all_reduce,
    barrier,
    broadcast,
    get_rank,
    get_world_size,
    init,
    is_available,
    is_initialized,
)
from .checkpoint import save_checkpoint
from .ddp import DistributedDataParallel

__all__ = [
    "DistributedDataParallel", "DistributedSampler", "all_reduce", "barrier", "broadcast",
    "get_rank", "get_world_size", "init", "is_available", "is_initialized", "save_checkpoint",
]
