"""nncore.memory: the caching host allocator behind NumPy arrays (NEP 49 hook)."""
import os
import resource
import subprocess
import sys
import threading

import numpy as np
import pytest

import nncore as nc
from nncore import memory

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name


@pytest.fixture(autouse=True)
def _caching():
    before = memory.host_allocator()
    memory.set_host_allocator("caching")
    yield
    memory.set_host_cache_limit(1024)
    memory.set_host_allocator(before)


def test_installed_by_import_and_switchable():
    assert get_handler_name() == "nncore_caching_host_allocator"
    a = np.ones(10)
    memory.set_host_allocator("numpy")
    assert memory.host_allocator() == "numpy" and get_handler_name() == "default_allocator"
    b = np.ones(10)
    memory.set_host_allocator("caching")
    assert get_handler_name(a) == "nncore_caching_host_allocator"
    assert get_handler_name(b) == "default_allocator"
    del a, b  # each freed by the allocator that made it
    with pytest.raises(ValueError, match="kind must be one of"):
        memory.set_host_allocator("jemalloc")


@pytest.mark.parametrize("n", [0, 1, 7, 4095, 65_537, 262_143, 262_144, 1_000_003, 3 << 20])
def test_arrays_of_every_size_hold_their_data(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    copy = a.copy()
    np.testing.assert_array_equal(a, copy)
    if a.nbytes >= memory.host_memory_stats()["min_cached_block_bytes"]:
        assert a.ctypes.data % 64 == 0


def test_blocks_of_2mib_and_more_start_on_a_huge_page_boundary():
    memory.empty_host_cache()
    big = np.empty(3 << 20, np.uint8)         # its block starts on a 2 MiB boundary
    small = np.empty(1 << 20, np.uint8)       # 64-byte alignment only
    assert big.ctypes.data % (2 << 20) == 64  # the data follows the 64-byte block header
    assert small.ctypes.data % 64 == 0
    big[:] = 1
    assert big.sum() == 3 << 20


def test_freed_large_blocks_are_reused_and_zeros_are_zero():
    memory.empty_host_cache()
    a = np.full(1 << 20, 7.0, np.float32)  # 4 MiB
    del a
    hits = memory.host_memory_stats()["hits"]
    b = np.zeros(1 << 20, np.float32)      # same class: the dirty block comes back, zeroed
    assert memory.host_memory_stats()["hits"] == hits + 1
    assert not b.any()
    c = np.empty(1 << 20, np.float32)
    c[:] = 3
    assert (c == 3).all() and not b.any()


def test_mid_size_blocks_are_cached_too():
    """Blocks from 32 KiB on are cached: a 200 KB gradient freed and allocated again every
    step (Linear(784, 128)'s input gradient at batch 64) had made glibc fault its pages back
    in each time (78 faults per step) when only blocks of >= 256 KiB were cached."""
    assert memory.host_memory_stats()["min_cached_block_bytes"] == 32 << 10
    memory.empty_host_cache()
    a = np.empty(50_000, np.float32)       # 200 KB
    del a
    hits = memory.host_memory_stats()["hits"]
    b = np.empty(50_000, np.float32)
    assert memory.host_memory_stats()["hits"] == hits + 1
    small = np.empty((32 << 10) // 4 - 64, np.float32)   # just under 32 KiB: plain malloc
    del small
    assert memory.host_memory_stats()["hits"] == hits + 1
    del b


def test_resize_realloc_keeps_contents():
    a = np.arange(10.0)
    a.resize(300_000, refcheck=False)      # small -> large block
    assert a[:10].tolist() == list(range(10)) and not a[10:].any()
    a.resize(310_000, refcheck=False)      # same class: in place
    a.resize(5, refcheck=False)            # large -> small
    assert a.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_limit_and_empty_cache():
    memory.empty_host_cache()
    memory.set_host_cache_limit(0)
    before = memory.host_memory_stats()
    a = np.ones(1 << 20)
    del a
    after = memory.host_memory_stats()
    assert after["cached_bytes"] == 0
    assert after["released_over_limit"] == before["released_over_limit"] + 1
    memory.set_host_cache_limit(64)
    a = np.ones(1 << 20)
    del a
    assert memory.host_memory_stats()["cached_bytes"] == 8 << 20
    assert memory.empty_host_cache() == 8 << 20
    assert memory.host_memory_stats()["cached_bytes"] == 0
    with pytest.raises(ValueError, match=">= 0"):
        memory.set_host_cache_limit(-1)


def test_arrays_freed_in_other_threads():
    arrays = [np.ones(300_000) for _ in range(8)]
    errors = []

    def drop(chunk):
        try:
            for a in chunk:
                assert a.sum() == 300_000
            chunk.clear()
            local = np.ones(400_000)  # other threads use NumPy's default allocator
            assert get_handler_name(local) == "default_allocator"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=drop, args=(arrays[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_lstm_training_step_stops_page_faulting():
    """The reason for the allocator: steady-state steps reuse cached blocks instead of
    faulting in fresh pages (~2,400 faults per LSTM forward with glibc's trimming)."""
    lstm = nc.nn.LSTM(128, 256)
    x = nc.randn(35, 32, 128)
    for _ in range(3):
        lstm(x)[0].sum().backward()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        lstm(x)[0].sum().backward()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 5
    assert faults < 200, f"{faults:.0f} minor page faults per LSTM step"


def test_environment_selects_the_allocator():
    code = ("import nncore, numpy\nfrom nncore import memory\n"
            "print(memory.host_allocator(), memory.host_memory_stats()['cache_limit_bytes'])")
    env = dict(os.environ, NNCORE_HOST_ALLOCATOR="numpy", NNCORE_HOST_CACHE_MB="16")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["numpy", str(16 << 20)]
    env["NNCORE_HOST_ALLOCATOR"] = "tcmalloc"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "NNCORE_HOST_ALLOCATOR must be one of" in bad.stderr
