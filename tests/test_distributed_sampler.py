"""DistributedSampler and the MPI-free parts of nncore.distributed (no mpirun needed)."""
import sys

import numpy as np
import pytest

import nncore as nc
import nncore.distributed as dist
from nncore.data import DataLoader, DistributedSampler, TensorDataset


def _shards(n, world, **kw):
    data = list(range(n))
    return [DistributedSampler(data, num_replicas=world, rank=r, **kw) for r in range(world)]


@pytest.mark.parametrize("n,world", [(12, 3), (10, 2), (7, 4), (1, 1), (97, 5)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_shards_cover_the_data_and_overlap_only_in_padding(n, world, shuffle):
    shards = [s.indices() for s in _shards(n, world, shuffle=shuffle, seed=3)]
    assert {len(s) for s in shards} == {-(-n // world)}
    everything = np.concatenate(shards)
    assert set(everything.tolist()) == set(range(n))
    assert len(everything) - n == (-n) % world  # duplicates: exactly the wrap-around padding


@pytest.mark.parametrize("n,world", [(12, 3), (10, 3), (97, 5)])
def test_drop_last_gives_disjoint_equal_shards(n, world):
    shards = [s.indices() for s in _shards(n, world, drop_last=True)]
    everything = np.concatenate(shards)
    assert len(set(everything.tolist())) == len(everything) == (n // world) * world
    assert all(len(s) == n // world for s in shards)


def test_epochs_reshuffle_identically_on_every_rank():
    a, b = _shards(40, 2, seed=5)
    first = np.concatenate([a.indices(), b.indices()])
    for s in (a, b):
        s.set_epoch(1)
    second = np.concatenate([a.indices(), b.indices()])
    assert not np.array_equal(first, second)
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(40))
    again = _shards(40, 2, seed=5)
    for s in again:
        s.set_epoch(1)
    assert np.array_equal(np.concatenate([s.indices() for s in again]), second)


def test_rank_batches_together_are_the_single_process_batch():
    x = np.arange(48, dtype=np.float32).reshape(48, 1)
    data = TensorDataset(x)
    single = DataLoader(data, batch_size=8, sampler=DistributedSampler(data, 1, 0, seed=9))
    ranks = [DataLoader(data, batch_size=4, sampler=DistributedSampler(data, 2, r, seed=9))
             for r in range(2)]
    for (whole,), (part0,), (part1,) in zip(single, *ranks):
        assert sorted(whole.data.ravel()) == sorted(np.r_[part0.data.ravel(),
                                                          part1.data.ravel()])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be >= 1"):
        DistributedSampler(range(4), num_replicas=0, rank=0)


def test_single_process_defaults_without_init():
    assert not dist.is_initialized()
    assert dist.get_rank() == 0 and dist.get_world_size() == 1
    dist.barrier()  # no-op
    s = DistributedSampler(range(5))
    assert (s.num_replicas, s.rank) == (1, 0)
    with pytest.raises(RuntimeError, match="call nncore.distributed.init"):
        dist.DistributedDataParallel(nc.nn.Linear(2, 2))


def test_missing_mpi4py_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert not dist.is_available()
    with pytest.raises(ImportError, match="apt-get install openmpi-bin"):
        dist.init()
    assert not dist.is_initialized()


def test_import_nncore_does_not_import_mpi():
    import subprocess

    code = "import sys, nncore, nncore.distributed; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
