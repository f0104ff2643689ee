"""Datasets: the `Dataset` protocol, `TensorDataset`, `Subset` and `random_split` (PyTorch names
and semantics; arrays are NumPy, nncore Tensors are unwrapped to their ``.data``)."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "as_generator"]

GeneratorLike = Union[np.random.Generator, int, None]


def as_generator(generator: GeneratorLike) -> np.random.Generator:
    """A `numpy.random.Generator` from a Generator (returned as is), an int seed, or None.

    None means nncore's global generator (`nncore.random.default_generator()`, seeded by
    `nncore.random.manual_seed`) where that module exists, else a fresh unseeded one.
    """
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        try:
            from .. import random as nn_random  # lazy: the module may not exist yet
        except ImportError:
            nn_random = None
        default = getattr(nn_random, "default_generator", None)
        return default() if default is not None else np.random.default_rng()
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy.random.Generator, an int seed or None, "
                    f"got {type(generator).__name__}")


class Dataset(ABC):
    """A map-style dataset: ``len(ds)`` items, ``ds[i]`` for ``0 <= i < len(ds)``."""

    @abstractmethod
    def __getitem__(self, index: int) -> Any:
        """Item `index`."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of items."""


class TensorDataset(Dataset):
    """Item ``i`` is ``tuple(a[i] for a in arrays)``; every array has the same first dim.

    Accepts nncore Tensors or anything ``np.asarray`` takes; ``.arrays`` holds the ndarrays
    (Tensors share memory with them). DataLoader batches it by fancy-indexing these arrays.

    >>> ds = TensorDataset(np.zeros((5, 3)), np.arange(5))
    >>> len(ds), ds[2][1]
    (5, np.int64(2))
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        arrays = []
        for i, t in enumerate(tensors):
            a = t.data if hasattr(t, "data") and isinstance(t.data, np.ndarray) else t
            a = np.asarray(a)
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is 0-d; each needs a first dim")
            arrays.append(a)
        sizes = [a.shape[0] for a in arrays]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: all arrays must have the same first dimension, "
                             f"got sizes {sizes}")
        self.tensors = tensors
        self.arrays: tuple[np.ndarray, ...] = tuple(arrays)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def _split_lengths(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Integer lengths summing to `n` from ints or fractions (remainder dealt round-robin)."""
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    if all(isinstance(x, (int, np.integer)) for x in lengths):
        out = [int(x) for x in lengths]
    else:
        fracs = [float(x) for x in lengths]
        if any(f < 0 or f > 1 for f in fracs) or not math.isclose(sum(fracs), 1.0,
                                                                      abs_tol=1e-9):
            raise ValueError(f"random_split: fractions must lie in [0, 1] and sum to 1, "
                             f"got {list(lengths)}")
        out = [int(math.floor(n * f)) for f in fracs]
        for i in range(n - sum(out)):
            out[i % len(out)] += 1
    if any(x < 0 for x in out):
        raise ValueError(f"random_split: negative length in {out}")
    if sum(out) != n:
        raise ValueError(f"random_split: lengths {out} sum to {sum(out)}, "
                         f"but the dataset has {n} items")
    return out


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: GeneratorLike = None) -> list[Subset]:
    """Split `dataset` into non-overlapping random `Subset`s of the given lengths.

    `lengths` are ints summing to ``len(dataset)``, or fractions summing to 1 (floor of each
    share, the remainder given one by one to the first splits, as PyTorch does). `generator`
    is a numpy Generator, an int seed, or None for nncore's global generator.

    >>> a, b = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], generator=0)
    >>> len(a), len(b)
    (8, 2)
    """
    sizes = _split_lengths(len(dataset), lengths)
    perm = as_generator(generator).permutation(len(dataset)).astype(np.int64)
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, perm[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
