"""`DataLoader`: batches of a dataset as nncore Tensors, with PyTorch's semantics.

Two paths. A `TensorDataset` (or a `Subset` of one) with the default collate is batched by
fancy-indexing its arrays once per batch: no Python loop over samples. Any other dataset is
read item by item and collated with `default_collate` (np.stack, field by field).
Shuffling draws one permutation per epoch from a `numpy.random.Generator`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, Optional

import numpy as np

from .dataset import GeneratorLike, Subset, TensorDataset, as_generator

__all__ = ["DataLoader", "default_collate"]


def _to_tensor(array: np.ndarray) -> Any:
    """Wrap an ndarray as an nncore Tensor (zero copy)."""
    try:
        from ..tensor import Tensor
    except ModuleNotFoundError as err:  # only while nncore.tensor is not written yet
        if err.name != "nncore.tensor":
            raise
        return array
    return Tensor(array)


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, keeping the sample's structure.

    Tuples/lists are collated field by field, dicts key by key; arrays and Tensors are
    stacked along a new first axis; Python ints become int64, floats float64 (as PyTorch),
    bools bool; strings and other objects are returned as a list. Arrays come back as Tensors.
    """
    first = batch[0]
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        sizes = {len(sample) for sample in batch}
        if len(sizes) != 1:
            raise ValueError(f"default_collate: samples have different lengths {sorted(sizes)}")
        fields = [default_collate(list(column)) for column in zip(*batch)]
        return tuple(fields) if isinstance(first, tuple) else fields
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, bool):
        return _to_tensor(np.asarray(batch, dtype=np.bool_))
    if isinstance(first, int):
        return _to_tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(first, float):
        return _to_tensor(np.asarray(batch, dtype=np.float64))
    if isinstance(first, (np.ndarray, np.generic)):
        return _to_tensor(np.stack(batch))
    data = getattr(first, "data", None)
    if isinstance(data, np.ndarray):  # nncore Tensor
        return _to_tensor(np.stack([sample.data for sample in batch]))
    return list(batch)


_FastSource = tuple[tuple[np.ndarray, ...], Optional[np.ndarray]]  # (arrays, index map)


def _resolve_tensor_dataset(dataset: Any) -> _FastSource | None:
    """(arrays, index map or None) when `dataset` is a TensorDataset or nested Subsets of one."""
    index_map = None
    while isinstance(dataset, Subset):
        idx = np.asarray(dataset.indices, dtype=np.int64)
        index_map = idx if index_map is None else idx[index_map]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset):
        return dataset.arrays, index_map
    return None


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`.

    shuffle: a new random order each epoch (iteration), drawn from `generator`: a numpy
    Generator, an int seed (a Generator is made once, so epochs differ and the same seed
    repeats the same sequence of epochs), or None for nncore's global generator (so
    ``nncore.random.manual_seed`` makes runs repeatable). `sampler`: an iterable of indices
    (with ``len``) used instead of `shuffle`. `drop_last` drops a final short batch.
    `collate_fn` turns a list of samples into a batch (default `default_collate`).

    >>> ds = TensorDataset(np.zeros((10, 3), np.float32), np.arange(10))
    >>> [tuple(x.shape) for x, y in DataLoader(ds, batch_size=4)]
    [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 sampler: Iterable[int] | None = None, drop_last: bool = False,
                 collate_fn: Callable[[list], Any] | None = None,
                 generator: GeneratorLike = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler and shuffle=True are mutually exclusive")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        # An explicit generator/seed is turned into one Generator now; None is resolved at
        # each epoch so that manual_seed() called after construction still takes effect.
        self.generator = None if generator is None else as_generator(generator)
        self._fast = _resolve_tensor_dataset(dataset) if collate_fn is None else None

    def _num_samples(self) -> int:
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        n = self._num_samples()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray | None:
        """The epoch's int64 index order, or None for 0..n-1 in sequence."""
        if self.sampler is not None:
            as_array = getattr(self.sampler, "indices", None)  # DistributedSampler: no Python loop
            if callable(as_array):
                return np.asarray(as_array(), dtype=np.int64)
            return np.fromiter((int(i) for i in self.sampler), dtype=np.int64)
        if self.shuffle:
            gen = self.generator if self.generator is not None else as_generator(None)
            return gen.permutation(len(self.dataset)).astype(np.int64, copy=False)
        return None

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        n = len(order) if order is not None else len(self.dataset)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, n)
            if order is not None:
                idx: Any = order[start:end]
            else:
                idx = slice(start, end) if self._fast is not None else range(start, end)
            yield self._fetch(idx)

    def _fetch(self, idx: Any) -> Any:
        if self._fast is not None:
            arrays, index_map = self._fast
            if index_map is not None:
                if isinstance(idx, slice):
                    idx = np.arange(idx.start, idx.stop, dtype=np.int64)
                idx = index_map[idx]
            if isinstance(idx, slice):  # sequential: a contiguous copy, never a view
                return tuple(_to_tensor(a[idx].copy()) for a in arrays)
            return tuple(_to_tensor(a[idx]) for a in arrays)
        samples = [self.dataset[int(i)] for i in idx]
        return (self.collate_fn or default_collate)(samples)

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, batches={len(self)})")
