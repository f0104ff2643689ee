"""DistributedSampler: each rank's shard of a dataset, reshuffled per epoch with a shared seed.

Mirrors ``torch.utils.data.distributed.DistributedSampler``: every rank draws the same
permutation (seeded by ``seed + epoch``), pads it by wrapping around so it divides evenly (or
drops the tail with ``drop_last``), and takes every ``num_replicas``-th index starting at its
rank. So the ranks' shards are disjoint (apart from the padding) and together cover the data
set, and with per-rank batch ``B / N`` the N ranks' k-th batches together are exactly the k-th
batch of a single process with batch ``B`` reading ``permutation`` in order.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """Indices of this rank's shard of `dataset`; call `set_epoch(e)` before each epoch.

    num_replicas / rank default to ``nncore.distributed``'s world size and rank (1 and 0 when
    it is not initialized).
    """

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ..distributed import get_rank, get_world_size

            num_replicas = get_world_size() if num_replicas is None else num_replicas
            rank = get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use a new permutation for `epoch` (the same on every rank)."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n, dtype=np.int64)
        if self.total_size > n:  # pad by wrapping around (repeatedly if n < num_replicas)
            order = np.resize(order, self.total_size)
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
