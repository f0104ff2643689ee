"""CIFAR-10 reader: shipped subset, the real batches (when present), augmentation, and
truncated / corrupted / mislabelled files."""
from __future__ import annotations

import gzip
import hashlib
import lzma

import numpy as np
import pytest

import nncore
from nncore.data import CIFAR10, load_cifar10, random_crop_flip
from nncore.data.cifar import CIFAR10_MEAN, SUBSET_DIR, read_cifar10_file
from tests.helpers import shared_data_dir

FIRST_TRAIN = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
FIRST_TEST = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]


def test_subset_loads():
    x, y = load_cifar10()
    assert x.shape == (2000, 3, 32, 32) and x.dtype == np.uint8
    assert y.shape == (2000,) and y.dtype == np.int64
    assert y[:10].tolist() == FIRST_TRAIN
    assert np.bincount(y, minlength=10).tolist() == [202, 191, 203, 195, 214, 183, 207, 199,
                                                     203, 203]
    xt, yt = load_cifar10(train=False)
    assert xt.shape == (500, 3, 32, 32)
    assert yt[:10].tolist() == FIRST_TEST


def test_subset_checksums_match_readme():
    readme = (SUBSET_DIR / "README.md").read_text()
    for path in sorted(SUBSET_DIR.glob("*.xz")):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, path.name


def test_subset_equals_real_batch_prefix():
    root = shared_data_dir()
    if root is None or not (root / "cifar10" / "data_batch_1.bin").is_file():
        pytest.skip("shared CIFAR-10 data not present")
    x, y = load_cifar10()
    x1, y1 = read_cifar10_file(root / "cifar10" / "data_batch_1.bin")
    assert x1.shape == (10000, 3, 32, 32)
    np.testing.assert_array_equal(x, x1[:2000])
    np.testing.assert_array_equal(y, y1[:2000])
    # pixel layout: R plane first; statistics from the data README
    means = (x1 / 255.0).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means, [0.4935, 0.4834, 0.4472], atol=6e-5)
    x2, y2 = load_cifar10(root / "cifar10", files=["data_batch_2.bin"])
    assert y2[:10].tolist() == [1, 6, 6, 8, 8, 3, 4, 6, 0, 6]
    xt, yt = load_cifar10(root / "cifar10", train=False)
    assert xt.shape == (1000, 3, 32, 32) and yt[:10].tolist() == FIRST_TEST


def test_dataset_items_and_arrays():
    ds = CIFAR10(train=False)
    img, label = ds[0]
    assert img.shape == (3, 32, 32) and img.dtype == np.float32 and int(label) == 3
    xs, ys = ds.arrays()
    np.testing.assert_array_equal(xs[0], img)
    expected = (ds.data[0, 0].astype(np.float32) / 255 - np.float32(CIFAR10_MEAN[0])) / np.float32(
        0.2470)
    np.testing.assert_allclose(xs[0, 0], expected, rtol=1e-6, atol=1e-6)
    raw = CIFAR10(train=False, normalize=False)
    assert 0.0 <= raw.arrays()[0].min() and raw.arrays()[0].max() <= 1.0
    assert len(ds) == 500 and "CIFAR10(test" in repr(ds)


def test_random_crop_flip():
    x = np.arange(2 * 3 * 32 * 32, dtype=np.int64).reshape(2, 3, 32, 32) % 251 + 1
    nncore.manual_seed(0)
    a = random_crop_flip(x)
    nncore.manual_seed(0)
    b = random_crop_flip(x)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape
    same = random_crop_flip(x, padding=0, flip=False)
    np.testing.assert_array_equal(same, x)
    # every crop is a shifted (possibly mirrored) window of the zero-padded image
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for n in range(2):
        found = False
        for dy in range(9):
            for dx in range(9):
                win = padded[n, :, dy:dy + 32, dx:dx + 32]
                if np.array_equal(win, a[n]) or np.array_equal(win[..., ::-1], a[n]):
                    found = True
        assert found
    ds = CIFAR10(train=False, augment=True)
    img, _ = ds[1]
    assert img.shape == (3, 32, 32)
    assert ds.augment_batch(ds.data[:8]).shape == (8, 3, 32, 32)


def _write_records(path, labels, fill=7):
    rec = np.full((len(labels), 3073), fill, np.uint8)
    rec[:, 0] = labels
    path.write_bytes(rec.tobytes())
    return rec


def test_truncated_file_raises(tmp_path):
    _write_records(tmp_path / "data_batch_1.bin", [1, 2, 3])
    data = (tmp_path / "data_batch_1.bin").read_bytes()
    (tmp_path / "data_batch_1.bin").write_bytes(data[:-100])
    with pytest.raises(ValueError, match="not a positive multiple of the 3073-byte record"):
        load_cifar10(tmp_path)
    (tmp_path / "data_batch_1.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="multiple"):
        load_cifar10(tmp_path)


def test_bad_label_raises(tmp_path):
    _write_records(tmp_path / "test_batch.bin", [1, 2, 10, 3])
    with pytest.raises(ValueError, match="label 10 of record 2 is outside 0..9"):
        load_cifar10(tmp_path, train=False)


def test_corrupt_compressed_raises(tmp_path):
    rec = _write_records(tmp_path / "x.bin", [0, 9])
    (tmp_path / "data_batch_1.bin.gz").write_bytes(gzip.compress(rec.tobytes())[:-20])
    with pytest.raises(ValueError, match="corrupt"):
        load_cifar10(tmp_path)
    (tmp_path / "data_batch_1.bin.gz").unlink()
    packed = bytearray(lzma.compress(rec.tobytes()))
    packed[len(packed) // 2] ^= 0xFF
    (tmp_path / "data_batch_1.bin.xz").write_bytes(bytes(packed))
    with pytest.raises(ValueError, match="corrupt"):
        load_cifar10(tmp_path)


def test_compressed_and_raw_agree(tmp_path):
    rec = _write_records(tmp_path / "data_batch_1.bin", [0, 9, 5], fill=200)
    (tmp_path / "data_batch_2.bin.gz").write_bytes(gzip.compress(rec.tobytes()))
    x, y = load_cifar10(tmp_path)
    assert x.shape == (6, 3, 32, 32) and y.tolist() == [0, 9, 5, 0, 9, 5]


def test_missing_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 training batches"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        read_cifar10_file(tmp_path / "data_batch_9.bin")
