"""MNIST: a validating IDX reader (`load_mnist`) and a torchvision-like `MNIST` dataset.

The reader checks everything in the header against the bytes actually present before it
allocates anything sized by the header, so a truncated, padded or tampered file fails with a
`ValueError` that names the file, never with a crash or a huge allocation.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Callable, Union

import numpy as np

from .dataset import Dataset

__all__ = ["MNIST", "load_mnist", "MNIST_MEAN", "MNIST_STD", "SUBSET_DIR"]

SUBSET_DIR = Path(__file__).resolve().parent / "mnist_subset"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of all 60,000 training pixels scaled to [0, 1]

_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
_ROWS = _COLS = 28
_CHUNK = 1 << 20

PathLike = Union[str, os.PathLike]


def _find(root: Path, stem: str) -> Path:
    """`stem`.gz if present, else the uncompressed `stem`; FileNotFoundError lists both."""
    candidates = [root / f"{stem}.gz", root / stem]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"MNIST file not found; looked for: {looked}")


def _read_idx(path: Path, magic: int, ndim: int) -> tuple[tuple[int, ...], bytes]:
    """Read and validate one IDX file; return (dims, payload bytes)."""
    header_len = 4 + 4 * ndim
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            header = f.read(header_len)
            if len(header) < header_len:
                raise ValueError(f"{path}: file too short for an IDX header: expected "
                                 f"{header_len} header bytes, got {len(header)}")
            got_magic, *dims = struct.unpack(f">{1 + ndim}I", header)
            if got_magic != magic:
                raise ValueError(f"{path}: bad magic number {got_magic}, expected {magic}")
            if ndim == 3 and (dims[1], dims[2]) != (_ROWS, _COLS):
                raise ValueError(f"{path}: image size {dims[1]}x{dims[2]}, expected "
                                 f"{_ROWS}x{_COLS}")
            expected = math.prod(dims)  # Python int: no overflow
            # Read in chunks, never more than expected + 1 bytes: the header count is not
            # trusted for any allocation until the data proves it.
            chunks, got = [], 0
            while got <= expected:
                chunk = f.read(min(_CHUNK, expected + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            if got != expected:
                while True:  # count the rest (without keeping it) to report the real size
                    chunk = f.read(_CHUNK)
                    if not chunk:
                        break
                    got += len(chunk)
                raise ValueError(
                    f"{path}: header says {dims[0]} items, so the data should be "
                    f"{header_len + expected} bytes, but it is {header_len + got} bytes")
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt gzip data ({err})") from err
    return tuple(dims), b"".join(chunks)


def load_mnist(root: PathLike | None = None,
               train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images (N, 28, 28) uint8 and labels (N,) uint8 from IDX files.

    `root` is a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each gzip'd with ``.gz`` or raw);
    None loads the subset shipped with nncore (6,000 train / 1,000 test images).

    Raises FileNotFoundError for a missing file and ValueError for a corrupt one (bad gzip,
    bad magic, wrong image size, data length not matching the header count, image and label
    counts differing, labels outside 0..9).

    >>> x, y = load_mnist(train=False)
    >>> x.shape, y[:3].tolist()
    ((1000, 28, 28), [7, 2, 1])
    """
    base = SUBSET_DIR if root is None else Path(root)
    prefix = "train" if train else "t10k"
    img_path = _find(base, f"{prefix}-images-idx3-ubyte")
    lab_path = _find(base, f"{prefix}-labels-idx1-ubyte")
    (n_img, rows, cols), img_bytes = _read_idx(img_path, _IMAGE_MAGIC, 3)
    (n_lab,), lab_bytes = _read_idx(lab_path, _LABEL_MAGIC, 1)
    if n_img != n_lab:
        raise ValueError(f"{img_path} has {n_img} images but {lab_path} has {n_lab} labels")
    images = np.frombuffer(img_bytes, np.uint8).reshape(n_img, rows, cols).copy()
    labels = np.frombuffer(lab_bytes, np.uint8).copy()
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{lab_path}: label {labels[bad]} at index {bad} is outside 0..9")
    return images, labels


class MNIST(Dataset):
    """MNIST digits as a Dataset, like torchvision's ``MNIST`` with ``ToTensor`` (+ ``Normalize``).

    Item ``i`` is ``(image, label)``: image float32 (1, 28, 28) scaled to [0, 1] and, when
    `normalize`, standardised as ``(x - 0.1307) / 0.3081``; then `transform` is applied to it.
    The label is an int64 scalar. ``.data`` (N, 28, 28) uint8 and ``.targets`` (N,) int64
    hold the raw arrays. For training, ``arrays()`` gives the whole split at once.

    >>> ds = MNIST(train=False)
    >>> x, y = ds[0]
    >>> x.shape, x.dtype, int(y)
    ((1, 28, 28), dtype('float32'), 7)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, root: PathLike | None = None, train: bool = True,
                 transform: Callable[[np.ndarray], object] | None = None,
                 normalize: bool = True) -> None:
        self.root = SUBSET_DIR if root is None else Path(root)
        self.train = train
        self.transform = transform
        self.normalize = normalize
        images, labels = load_mnist(self.root, train)
        self.data = images
        self.targets = labels.astype(np.int64)

    def _scale(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32)
        x /= np.float32(255.0)  # as torchvision's ToTensor, then Normalize
        if self.normalize:
            x -= np.float32(MNIST_MEAN)
            x /= np.float32(MNIST_STD)
        return x

    def arrays(self, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """All images as float32 (N, 1, 28, 28), or (N, 784) with `flatten`, and int64 labels.

        Scaled (and normalised) like ``__getitem__``; `transform` is not applied.
        """
        x = self._scale(self.data)
        shape = (len(x), _ROWS * _COLS) if flatten else (len(x), 1, _ROWS, _COLS)
        return x.reshape(shape), self.targets.copy()

    def __getitem__(self, index: int) -> tuple[object, np.int64]:
        image = self._scale(self.data[index]).reshape(1, _ROWS, _COLS)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"MNIST({split}, {len(self)} images, root={str(self.root)!r})"
