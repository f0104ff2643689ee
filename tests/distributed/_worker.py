"""Programs the distributed tests run under mpirun: ``python -m tests.distributed._worker
SCENARIO OUTDIR``. Each checks what only a live multi-rank job can show and writes results
for the test to compare; a failed assert fails the job (non-zero exit)."""
from __future__ import annotations

import sys

import numpy as np

import nncore as nc
import nncore.distributed as dist
from nncore import nn

GLOBAL_BATCH = 16
N_SAMPLES = 96


def _data():
    rng = np.random.default_rng(42)
    x = rng.standard_normal((N_SAMPLES, 5))
    y = rng.integers(0, 3, N_SAMPLES)
    return nc.data.TensorDataset(x, y)


def _model(seed: int) -> nn.Module:
    nc.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(),
                         nn.Linear(8, 3)).double()


def _optimizer(name: str, params):
    if name.startswith("sgd"):
        return nc.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
    return nc.optim.Adam(params, lr=1e-2)


def _train(name: str, rank: int, world: int) -> nn.Module:
    """Two epochs at global batch 16 over 96 samples; rank r starts from its own weights
    (seed r) so the test also shows that DDP broadcasts rank 0's."""
    model = _model(seed=rank)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=200 / 2**20)  # several buckets
    assert len(ddp.reducer.buckets) > 1
    opt = _optimizer(name, ddp.parameters())
    data = _data()
    sampler = dist.DistributedSampler(data, shuffle=True, seed=7)
    micro = 2 if name.endswith("accum") else 1
    loader = nc.data.DataLoader(data, batch_size=GLOBAL_BATCH // world // micro,
                                sampler=sampler)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = iter(loader)
        for _ in range(len(loader) // micro):
            opt.zero_grad()
            for k in range(micro):
                x, y = next(batches)
                if k < micro - 1:
                    with ddp.no_sync():
                        (loss_fn(ddp(x), y) / micro).backward()
                else:
                    (loss_fn(ddp(x), y) / micro).backward()
            opt.step()
            if micro == 1 and world > 1:  # every bucket's all-reduce started from inside backward
                assert ddp.reducer.last_overlapped_buckets == len(ddp.reducer.buckets)
    return model


def _flat(model: nn.Module) -> np.ndarray:
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def equivalence(outdir: str) -> None:
    rank, world = dist.init()
    for name in ("sgd", "adam", "sgd_accum"):
        model = _train(name, rank, world)
        weights = _flat(model)
        everyone = dist._mpi._comm().allgather(weights)
        for other in everyone:  # every replica holds bit-identical weights
            assert np.array_equal(other, weights), f"{name}: replicas diverged"
        if rank == 0:
            np.save(f"{outdir}/{name}_world{world}.npy", weights)
    # rank 0 writes the checkpoint; after the barrier every rank reads the same weights
    ddp = dist.DistributedDataParallel(model)
    dist.save_checkpoint(f"{outdir}/ckpt.safetensors", ddp, epoch=1)
    fresh = _model(seed=123)
    nc.io.load_checkpoint(f"{outdir}/ckpt.safetensors", model=fresh)
    assert np.array_equal(_flat(fresh), _flat(model))


def unused(outdir: str) -> None:
    """A head only rank 0 uses, and one nobody uses."""
    rank, world = dist.init()

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(3, 4).double()
            self.head_a = nn.Linear(4, 1).double()
            self.head_b = nn.Linear(4, 1).double()
            self.never = nn.Linear(4, 1).double()

        def forward(self, x, use_b):
            h = self.body(x)
            return self.head_b(h) if use_b else self.head_a(h)

    nc.manual_seed(0)
    ddp = dist.DistributedDataParallel(TwoHeads(), find_unused_parameters=True)
    x = nc.tensor(np.full((2, 3), 1.0 + rank))
    ddp(x, use_b=(rank == 0)).sum().backward()
    m = ddp.module
    assert m.never.weight.grad is None, "a parameter no rank used must keep grad None"
    assert m.head_b.weight.grad is not None and m.head_a.weight.grad is not None
    # head_b's gradient is rank 0's contribution divided by the world size
    local = nc.tensor(np.full((2, 3), 1.0))
    h = m.body(local).detach()
    expected = h.data.sum(axis=0) / world
    np.testing.assert_allclose(m.head_b.weight.grad.data.ravel(), expected, rtol=1e-12)

    lin = nn.Linear(3, 4).double()
    lin.weight.data = np.asfortranarray(lin.weight.data)  # a non-contiguous parameter
    wrapped = dist.DistributedDataParallel(lin)
    assert lin.weight.data.flags.c_contiguous
    wrapped(x).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.data, np.full((4, 3), 1.5 * 2), rtol=1e-12)

    strict = dist.DistributedDataParallel(TwoHeads())
    try:
        strict(x, use_b=False).sum().backward()
    except RuntimeError as exc:
        assert "find_unused_parameters" in str(exc)
    else:
        raise AssertionError("unused parameters without find_unused_parameters must raise")


def rank_raises(outdir: str) -> None:
    rank, world = dist.init()
    buf = np.ones(4)
    if rank == world - 1:
        raise ValueError(f"boom from rank {rank}")
    dist.all_reduce(buf)  # the other ranks wait here for a rank that will never come
    print("unreachable: all_reduce returned", flush=True)


def mismatched_models(outdir: str) -> None:
    rank, _ = dist.init()
    dist.DistributedDataParallel(nn.Linear(4, 3 + rank))


if __name__ == "__main__":
    scenario, out = sys.argv[1], sys.argv[2]
    globals()[scenario](out)
