"""Data-parallel training of the MNIST MLP over MPI ranks (nncore.distributed).

    mpirun -np 2 python examples/mnist_ddp.py                     # shipped subset, 2 ranks
    mpirun -np 1 python examples/mnist_ddp.py                     # the same run on 1 rank
    mpirun -np 2 python examples/mnist_ddp.py --data ../shared/data/mnist --epochs 20

The global batch (--batch-size) is split across the ranks, every rank reads its own shard of
each epoch (DistributedSampler, one shared seed) and DistributedDataParallel averages the
gradients, so N ranks follow the same trajectory as one process with the same global batch:
the final accuracy matches to float rounding. Each rank runs nncore with cores / ranks threads
unless OMP_NUM_THREADS says otherwise. As root (containers) Open MPI also wants
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1. See docs/distributed.md.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import nncore as nc
import nncore.distributed as dist
from nncore import nn
from nncore.data import MNIST, DataLoader, TensorDataset


def build_model() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


@nc.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy over (x, y): each rank scores its slice, one all-reduce adds the counts."""
    rank, world = dist.get_rank(), dist.get_world_size()
    model.eval()
    mine = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    logits = model(nc.from_numpy(x[mine]))
    counts = np.array([(logits.argmax(dim=1).numpy() == y[mine]).sum(), len(y[mine])],
                      dtype=np.float64)
    dist.all_reduce(counts)
    model.train()
    return counts[0] / counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="directory with the MNIST IDX files; "
                        "default: the subset shipped with nncore")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 8 on the shipped subset, 20 on full data")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="global batch, split evenly across the ranks")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None,
                        help="save a checkpoint here after every epoch (rank 0 writes)")
    args = parser.parse_args()
    epochs = args.epochs or (8 if args.data is None else 20)

    rank, world = dist.init()
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must divide by the {world} ranks")
    x_train, y_train = MNIST(args.data, train=True).arrays(flatten=True)
    x_test, y_test = MNIST(args.data, train=False).arrays(flatten=True)
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"{world} rank(s) x {nc.get_num_threads()} thread(s); MNIST from "
        f"{args.data or 'the shipped subset'}: {len(x_train)} train / {len(x_test)} test; "
        f"global batch {args.batch_size} = {world} x {args.batch_size // world}")

    nc.manual_seed(args.seed)  # same init everywhere (DDP also broadcasts rank 0's weights)
    model = dist.DistributedDataParallel(build_model())
    optimizer = nc.optim.Adam(model.parameters(), lr=args.lr)
    train_set = TensorDataset(x_train, y_train)
    sampler = dist.DistributedSampler(train_set, shuffle=True, seed=args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size // world, sampler=sampler)
    loss_fn = nn.CrossEntropyLoss()
    steps_total, step = epochs * len(loader), 0
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)
        start, comm, seen = time.perf_counter(), 0.0, 0
        for xb, yb in loader:
            for group in optimizer.param_groups:  # cosine decay, as examples/mnist_mlp.py
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / steps_total))
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()  # gradients averaged over the ranks when this returns
            optimizer.step()
            comm += model.last_comm_seconds
            seen += len(yb) * world
            step += 1
        elapsed = time.perf_counter() - start
        accuracy = evaluate(model.module, x_test, y_test)
        say(f"epoch {epoch:2d}  test acc {100 * accuracy:.2f}%  {seen / elapsed:,.0f} "
            f"samples/s  ({elapsed:.1f} s, all-reduce {1e3 * comm / len(loader):.3f} ms/step "
            f"on rank 0)")
        if args.checkpoint:
            dist.save_checkpoint(args.checkpoint, model, optimizer, epoch=epoch)
    say(f"final test accuracy {100 * accuracy:.2f}% on {world} rank(s)")


if __name__ == "__main__":
    main()
