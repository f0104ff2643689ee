"""CIFAR-10: a validating reader of the binary version (`load_cifar10`), batch augmentation
(`random_crop_flip`) and a torchvision-like `CIFAR10` dataset.

A binary batch is N records of 3,073 bytes: one label byte (0..9), then 1,024 red, 1,024
green and 1,024 blue pixel bytes (32x32, row-major). Files may be raw, ``.gz`` or ``.xz``.
The reader checks the size is a whole number of records and every label is in 0..9, so a
truncated, padded or tampered file fails with a `ValueError` naming the file.
"""
from __future__ import annotations

import gzip
import lzma
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Union

import numpy as np

from .. import random as _random
from .dataset import Dataset

__all__ = ["CIFAR10", "load_cifar10", "read_cifar10_file", "random_crop_flip", "CIFAR10_MEAN",
           "CIFAR10_STD", "CIFAR10_CLASSES", "SUBSET_DIR"]

SUBSET_DIR = Path(__file__).resolve().parent / "cifar_subset"
# of all 50,000 training images, pixels scaled to [0, 1] (R, G, B)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

_RECORD = 3073
_SIDE = 32
_SUFFIXES = (".bin", ".bin.gz", ".bin.xz")

PathLike = Union[str, os.PathLike]


def read_cifar10_file(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch -> images uint8 (N, 3, 32, 32) and labels int64 (N,).

    Raises FileNotFoundError when missing, ValueError when the size is not a multiple of
    3,073 bytes, a label is outside 0..9, or compressed data is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file not found: {path}")
    name = path.name
    try:
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        elif name.endswith(".xz"):
            with lzma.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError) as err:
        raise ValueError(f"{path}: corrupt compressed data ({err})") from err
    if len(raw) == 0 or len(raw) % _RECORD:
        raise ValueError(f"{path}: size {len(raw)} bytes is not a positive multiple of the "
                         f"{_RECORD}-byte record (1 label + 3072 pixels); truncated or corrupt "
                         f"({len(raw) // _RECORD} whole records + {len(raw) % _RECORD} bytes)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: label {labels[bad]} of record {bad} is outside 0..9")
    images = records[:, 1:].reshape(-1, 3, _SIDE, _SIDE).copy()
    return images, labels


def _batch_files(root: Path, train: bool) -> list[Path]:
    stem = "data_batch_" if train else "test_batch"
    files = sorted(p for p in root.iterdir()
                   if p.name.startswith(stem) and p.name.endswith(_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no CIFAR-10 {'training' if train else 'test'} batches in "
                                f"{root}: looked for {stem}*{{.bin,.bin.gz,.bin.xz}}")
    return files


def load_cifar10(root: PathLike | None = None, train: bool = True,
                 files: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-10 images uint8 (N, 3, 32, 32) and labels int64 (N,) from binary batches.

    `root` holds ``data_batch_*.bin`` (train=True) and ``test_batch*.bin`` (train=False), raw,
    ``.gz`` or ``.xz``; all matching files are concatenated in name order. `files` names the
    files to read instead (e.g. ``["data_batch_2.bin"]``). None loads the subset shipped with
    nncore (2,000 train / 500 test images).

    >>> x, y = load_cifar10()
    >>> x.shape, y[:10].tolist()
    ((2000, 3, 32, 32), [6, 9, 9, 4, 1, 1, 2, 7, 8, 3])
    """
    base = SUBSET_DIR if root is None else Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"CIFAR-10 directory not found: {base}")
    paths = [base / f for f in files] if files is not None else _batch_files(base, train)
    parts = [read_cifar10_file(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def random_crop_flip(images: np.ndarray, padding: int = 4, flip: bool = True,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """Standard CIFAR augmentation of a batch (N, C, H, W): zero-pad by `padding`, crop a
    random H x W window, and mirror left-right with probability 1/2 (when `flip`), each image
    independently. `rng` defaults to nncore.random's generator (seed with manual_seed)."""
    if images.ndim != 4:
        raise ValueError(f"random_crop_flip: expected (N, C, H, W) images, got shape "
                         f"{images.shape}")
    if padding < 0:
        raise ValueError(f"random_crop_flip: padding must be >= 0, got {padding}")
    rng = _random.default_generator() if rng is None else rng
    n, c, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oy = rng.integers(0, 2 * padding + 1, size=n)
    ox = rng.integers(0, 2 * padding + 1, size=n)
    cols = np.arange(w)
    if flip:
        flips = rng.random(n) < 0.5
        cols = np.where(flips[:, None], cols[::-1], cols)
    else:
        cols = np.broadcast_to(cols, (n, w))
    rows = oy[:, None] + np.arange(h)
    cols = ox[:, None] + cols
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


class CIFAR10(Dataset):
    """CIFAR-10 as a Dataset, like torchvision's ``CIFAR10`` with ``ToTensor`` (+
    ``Normalize``).

    Item ``i`` is ``(image, label)``: image float32 (3, 32, 32) scaled to [0, 1] and, when
    `normalize`, standardised per channel with CIFAR10_MEAN / CIFAR10_STD; with `augment`,
    randomly cropped (pad 4) and flipped first (nncore.random draws); then `transform`.
    ``.data`` (N, 3, 32, 32) uint8 and ``.targets`` (N,) int64 hold the raw arrays;
    ``arrays()`` gives the whole split at once (no augmentation), ``augment_batch`` augments a
    uint8 batch for fast training loops.
    """

    classes = CIFAR10_CLASSES

    def __init__(self, root: PathLike | None = None, train: bool = True,
                 transform: Callable[[np.ndarray], object] | None = None,
                 normalize: bool = True, augment: bool = False,
                 files: Sequence[str] | None = None) -> None:
        self.root = SUBSET_DIR if root is None else Path(root)
        self.train = train
        self.transform = transform
        self.normalize = normalize
        self.augment = augment
        self.data, self.targets = load_cifar10(self.root, train, files)

    def scale(self, images: np.ndarray) -> np.ndarray:
        """uint8 (..., 3, 32, 32) -> float32 in [0, 1], standardised when `normalize`."""
        x = images.astype(np.float32)
        x /= np.float32(255.0)
        if self.normalize:
            mean = np.asarray(CIFAR10_MEAN, np.float32).reshape(3, 1, 1)
            std = np.asarray(CIFAR10_STD, np.float32).reshape(3, 1, 1)
            x -= mean
            x /= std
        return x

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images float32 (N, 3, 32, 32), scaled like ``__getitem__`` without augmentation
        or `transform`, and int64 labels (N,)."""
        return self.scale(self.data), self.targets.copy()

    def augment_batch(self, images: np.ndarray) -> np.ndarray:
        """Random crop (pad 4) + flip of a uint8 batch, then scaling: float32 (N, 3, 32, 32)."""
        return self.scale(random_crop_flip(images, 4))

    def __getitem__(self, index: int) -> tuple[object, np.int64]:
        image = self.data[index]
        if self.augment:
            image = random_crop_flip(image[None], 4)[0]
        image = self.scale(image)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"CIFAR10({split}, {len(self)} images, root={str(self.root)!r})"
