"""nncore.data: the MNIST reader and its shipped subset, datasets, DataLoader."""
from __future__ import annotations

import gzip
import hashlib
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncore.data import (
    MNIST,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    load_mnist,
    random_split,
)
from nncore.data.mnist import SUBSET_DIR
from tests.helpers import shared_data_dir

REPO = Path(__file__).resolve().parents[1]
FULL_MNIST = (shared_data_dir() or Path("/nonexistent")) / "mnist"
needs_full = pytest.mark.skipif(not FULL_MNIST.is_dir(), reason="full MNIST not present")

TRAIN_FIRST10 = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
TEST_FIRST10 = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _tensor_array(x):
    """The ndarray behind a batch entry (an nncore Tensor)."""
    from nncore.tensor import Tensor
    assert isinstance(x, Tensor), type(x)
    return x.data


# ---------------------------------------------------------------- IDX writing helpers

def idx_images(images: np.ndarray, count: int | None = None, magic: int = 2051) -> bytes:
    n, r, c = images.shape
    return struct.pack(">4I", magic, n if count is None else count, r, c) + images.tobytes()


def idx_labels(labels: np.ndarray, count: int | None = None, magic: int = 2049) -> bytes:
    n = len(labels)
    return struct.pack(">2I", magic, n if count is None else count) + labels.tobytes()


def write_split(root: Path, img: bytes, lab: bytes, prefix: str = "train", gz: bool = True):
    root.mkdir(parents=True, exist_ok=True)
    for kind, payload in (("images-idx3", img), ("labels-idx1", lab)):
        name = f"{prefix}-{kind}-ubyte"
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(payload, mtime=0))
        else:
            (root / name).write_bytes(payload)
    return root


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), np.arange(7, dtype=np.uint8)


# ---------------------------------------------------------------- shipped subset

def test_subset_train_and_test():
    x, y = load_mnist(train=True)
    assert x.shape == (6000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (6000,) and y.tolist()[:10] == TRAIN_FIRST10
    assert np.bincount(y).tolist() == [592, 671, 581, 608, 623, 514, 608, 651, 551, 601]
    x, y = load_mnist(train=False)
    assert x.shape == (1000, 28, 28) and y.tolist()[:10] == TEST_FIRST10
    assert np.bincount(y).tolist() == [85, 126, 116, 107, 110, 87, 87, 99, 89, 94]
    assert 0 < x.mean() < 255 and x.max() == 255
    x[0, 0, 0] = 1  # arrays are writable copies


def test_subset_readme_lists_shipped_sha256_and_size():
    readme = (SUBSET_DIR / "README.md").read_text()
    total = 0
    for name in NAMES:
        path = SUBSET_DIR / f"{name}.gz"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert re.search(rf"`{name}\.gz`.*`{digest}`", readme), name
        total += path.stat().st_size
    assert total < 1_600_000


@needs_full
def test_full_mnist_and_subset_is_its_prefix():
    for train, n, sub_n in ((True, 60000, 6000), (False, 10000, 1000)):
        x, y = load_mnist(FULL_MNIST, train=train)
        assert x.shape == (n, 28, 28) and y.shape == (n,)
        xs, ys = load_mnist(train=train)
        np.testing.assert_array_equal(xs, x[:sub_n])
        np.testing.assert_array_equal(ys, y[:sub_n])
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_full
def test_make_subset_tool_is_reproducible(tmp_path):
    subprocess.run([sys.executable, str(REPO / "tools" / "make_mnist_subset.py"),
                    "--src", str(FULL_MNIST), "--dst", str(tmp_path)],
                   check=True, capture_output=True)
    for name in NAMES:
        assert (tmp_path / f"{name}.gz").read_bytes() == (SUBSET_DIR / f"{name}.gz").read_bytes()


# ---------------------------------------------------------------- reader validation

def test_raw_uncompressed_files(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs), idx_labels(labs), gz=False)
    x, y = load_mnist(root)
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, labs)


def test_truncated_file(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs)[:-5], idx_labels(labs))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*5504 bytes.*5499 bytes"):
        load_mnist(root)


def test_oversized_file(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs), idx_labels(labs) + b"\0\0\0")
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz.*15 bytes.*18 bytes"):
        load_mnist(root)


def test_absurd_header_count_is_not_allocated(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs, count=0xFFFFFFFF), idx_labels(labs),
                       gz=False)
    expected = 16 + 0xFFFFFFFF * 784
    with pytest.raises(ValueError, match=rf"4294967295 items.*{expected} bytes.*5504 bytes"):
        load_mnist(root)


def test_wrong_magic(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs), idx_labels(labs, magic=2051))
    with pytest.raises(ValueError, match=r"train-labels.*magic number 2051, expected 2049"):
        load_mnist(root)


def test_wrong_image_size(tmp_path):
    imgs = np.zeros((3, 32, 32), np.uint8)
    root = write_split(tmp_path, idx_images(imgs), idx_labels(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="32x32, expected 28x28"):
        load_mnist(root)


def test_header_too_short(tmp_path):
    root = write_split(tmp_path, b"\0\0\x08", idx_labels(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="too short"):
        load_mnist(root)


def test_mismatched_counts(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs), idx_labels(labs[:5]))
    with pytest.raises(ValueError, match="7 images.*5 labels"):
        load_mnist(root)


def test_label_out_of_range(tmp_path, small):
    imgs, labs = small
    labs = labs.copy()
    labs[4] = 10
    root = write_split(tmp_path, idx_images(imgs), idx_labels(labs))
    with pytest.raises(ValueError, match="label 10 at index 4"):
        load_mnist(root)


def test_bad_gzip(tmp_path, small):
    imgs, labs = small
    root = write_split(tmp_path, idx_images(imgs), idx_labels(labs))
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*gzip"):
        load_mnist(root)
    good = gzip.compress(idx_images(imgs), mtime=0)
    (root / "train-images-idx3-ubyte.gz").write_bytes(good[: len(good) // 2])  # cut stream
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*gzip"):
        load_mnist(root)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF  # CRC of the member
    (root / "train-images-idx3-ubyte.gz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz"):
        load_mnist(root)


def test_missing_files(tmp_path, small):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*"
                                                r"train-images-idx3-ubyte\b"):
        load_mnist(tmp_path / "nowhere")
    imgs, labs = small
    root = write_split(tmp_path / "d", idx_images(imgs), idx_labels(labs))
    (root / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(root)
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_mnist(root, train=False)


# ---------------------------------------------------------------- MNIST dataset

def test_mnist_dataset():
    ds = MNIST(train=False)
    assert len(ds) == 1000
    assert ds.data.shape == (1000, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64 and ds.targets[:10].tolist() == TEST_FIRST10
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and int(y) == 0
    ref = (ds.data[3].astype(np.float32) / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(x[0], ref, rtol=1e-5, atol=1e-5)
    xa, ya = ds.arrays()
    assert xa.shape == (1000, 1, 28, 28) and xa.dtype == np.float32 and ya.dtype == np.int64
    np.testing.assert_array_equal(xa[3], x)
    xf, _ = ds.arrays(flatten=True)
    assert xf.shape == (1000, 784)
    np.testing.assert_array_equal(xf[3], x.ravel())
    raw = MNIST(train=False, normalize=False, transform=lambda im: im * 2)
    xr, _ = raw[3]
    np.testing.assert_allclose(xr[0], ds.data[3] / 255 * 2, rtol=1e-6)


def test_mnist_through_generic_loader():
    ds = MNIST(train=False)
    x, y = next(iter(DataLoader(ds, batch_size=5)))
    assert _tensor_array(x).shape == (5, 1, 28, 28) and _tensor_array(x).dtype == np.float32
    assert _tensor_array(y).dtype == np.int64 and _tensor_array(y).tolist() == TEST_FIRST10[:5]


# ---------------------------------------------------------------- datasets

def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()


def test_tensor_dataset():
    from nncore.tensor import Tensor
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ds = TensorDataset(Tensor(x), np.arange(10))
    assert len(ds) == 10 and ds.arrays[0] is x
    a, b = ds[3]
    np.testing.assert_array_equal(a, [6, 7])
    assert int(b) == 3
    with pytest.raises(ValueError, match=r"\[10, 9\]"):
        TensorDataset(x, np.arange(9))
    with pytest.raises(ValueError):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(1.0))


def test_subset_and_random_split():
    ds = TensorDataset(np.arange(10))
    sub = Subset(ds, [4, 2])
    assert len(sub) == 2 and int(sub[1][0]) == 2
    parts = random_split(ds, [3, 7], generator=1)
    assert [len(p) for p in parts] == [3, 7]
    items = sorted(int(p[i][0]) for p in parts for i in range(len(p)))
    assert items == list(range(10))
    again = random_split(ds, [3, 7], generator=np.random.default_rng(1))
    assert [list(p.indices) for p in again] == [list(p.indices) for p in parts]
    assert [len(p) for p in random_split(ds, [0.33, 0.33, 0.34], generator=0)] == [4, 3, 3]
    assert [len(p) for p in random_split(ds, [0.5, 0.5])] == [5, 5]
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [4, 5])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.6])
    with pytest.raises(ValueError, match="negative"):
        random_split(ds, [-1, 11])


# ---------------------------------------------------------------- DataLoader

def _labels(loader) -> list[list[int]]:
    return [_tensor_array(y).tolist() for _, y in loader]


def _arange_ds(n: int) -> TensorDataset:
    return TensorDataset(np.arange(n, dtype=np.float32).reshape(n, 1) * 2, np.arange(n))


def test_loader_len_and_drop_last():
    ds = _arange_ds(10)
    for bs, drop, expect in ((3, False, 4), (3, True, 3), (5, False, 2), (5, True, 2),
                             (11, False, 1), (11, True, 0), (1, True, 10)):
        loader = DataLoader(ds, batch_size=bs, drop_last=drop, shuffle=True, generator=0)
        assert len(loader) == expect
        assert len(list(loader)) == expect
    assert _labels(DataLoader(ds, batch_size=4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert _labels(DataLoader(ds, batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_loader_batches_are_tensors_with_right_dtypes():
    xs = np.random.default_rng(0).standard_normal((13, 3, 4)).astype(np.float32)
    ds = TensorDataset(xs, np.arange(13, dtype=np.int64))
    batches = list(DataLoader(ds, batch_size=5, shuffle=True, generator=3))
    assert [_tensor_array(x).shape for x, _ in batches] == [(5, 3, 4), (5, 3, 4), (3, 3, 4)]
    for x, y in batches:
        assert _tensor_array(x).dtype == np.float32 and _tensor_array(y).dtype == np.int64
        np.testing.assert_array_equal(_tensor_array(x), xs[_tensor_array(y)])
    x, _ = next(iter(DataLoader(ds, batch_size=5)))
    _tensor_array(x)[:] = 0  # a sequential batch is a copy, not a view of the dataset
    assert np.abs(xs[:5]).sum() > 0


def test_shuffle_covers_epoch_repeats_with_seed_and_varies_by_epoch():
    ds = _arange_ds(97)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=42)
    epoch1 = sum(_labels(loader), [])
    epoch2 = sum(_labels(loader), [])
    assert sorted(epoch1) == list(range(97)) and sorted(epoch2) == list(range(97))
    assert epoch1 != epoch2 and epoch1 != list(range(97))
    twin = DataLoader(ds, batch_size=8, shuffle=True, generator=42)
    assert sum(_labels(twin), []) == epoch1 and sum(_labels(twin), []) == epoch2
    dropped = sum(_labels(DataLoader(ds, batch_size=8, shuffle=True, drop_last=True)), [])
    assert len(dropped) == 96 and len(set(dropped)) == 96


def test_default_generator_follows_nncore_seed():
    nn_random = pytest.importorskip("nncore.random")
    ds = _arange_ds(50)
    loader = DataLoader(ds, batch_size=50, shuffle=True)
    nn_random.manual_seed(7)
    first = _labels(loader)
    nn_random.manual_seed(7)
    assert _labels(loader) == first


def test_default_generator_hook(monkeypatch):
    """With generator=None the loader asks nncore.random.default_generator() every epoch."""
    import types

    import nncore
    fake = types.ModuleType("nncore.random")
    fake.default_generator = lambda: np.random.default_rng(7)
    monkeypatch.setitem(sys.modules, "nncore.random", fake)
    monkeypatch.setattr(nncore, "random", fake, raising=False)
    loader = DataLoader(_arange_ds(30), batch_size=30, shuffle=True)
    expect = [np.random.default_rng(7).permutation(30).tolist()]
    assert _labels(loader) == expect and _labels(loader) == expect


def test_generic_path_custom_dataset_and_collate():
    class Squares(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return {"x": np.full((2, 3), i, np.float32), "y": i * i, "w": 0.5, "name": str(i)}

    batches = list(DataLoader(Squares(), batch_size=3, shuffle=True, generator=0))
    assert len(batches) == 3
    b = batches[0]
    assert _tensor_array(b["x"]).shape == (3, 2, 3) and _tensor_array(b["x"]).dtype == np.float32
    y = _tensor_array(b["y"])
    assert y.dtype == np.int64 and _tensor_array(b["w"]).dtype == np.float64
    np.testing.assert_array_equal(y, _tensor_array(b["x"])[:, 0, 0].astype(np.int64) ** 2)
    assert b["name"] == [str(int(v)) for v in _tensor_array(b["x"])[:, 0, 0]]
    seen = sorted(int(v) for b in batches for v in _tensor_array(b["x"])[:, 0, 0])
    assert seen == list(range(7))
    sums = list(DataLoader(Squares(), batch_size=4, collate_fn=lambda s: sum(d["y"] for d in s)))
    assert sums == [0 + 1 + 4 + 9, 16 + 25 + 36]


def test_fast_and_generic_paths_agree_including_subsets():
    ds = _arange_ds(23)
    sub = Subset(Subset(ds, np.arange(23)[::-1]), [0, 5, 7, 11, 2, 3, 19])
    for data in (ds, sub):
        fast = DataLoader(data, batch_size=3, shuffle=True, generator=5)
        slow = DataLoader(data, batch_size=3, shuffle=True, generator=5,
                          collate_fn=default_collate)
        assert fast._fast is not None and slow._fast is None
        for (fx, fy), (sx, sy) in zip(fast, slow):
            np.testing.assert_array_equal(_tensor_array(fx), _tensor_array(sx))
            np.testing.assert_array_equal(_tensor_array(fy), _tensor_array(sy))
    assert _labels(DataLoader(sub, batch_size=4)) == [[22, 17, 15, 11], [20, 19, 3]]


def test_sampler_and_argument_errors():
    ds = _arange_ds(10)
    loader = DataLoader(ds, batch_size=2, sampler=[9, 1, 4])
    assert len(loader) == 2 and _labels(loader) == [[9, 1], [4]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=[1], shuffle=True)
    for bad in (0, -1, 2.5, None, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bad)
    with pytest.raises(TypeError, match="generator"):
        DataLoader(ds, shuffle=True, generator="seed")
