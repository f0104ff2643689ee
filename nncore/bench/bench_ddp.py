"""Data-parallel scaling on this machine: samples/s of 1 rank x T threads vs R ranks x 1 thread
(nncore.distributed over MPI), and the all-reduce time per step.

    python -m nncore.bench.bench_ddp [--repeat 5] [--json docs/bench_results/ddp.json]

Each configuration is its own ``mpirun`` job (started here, `--bind-to none`, OMP_NUM_THREADS
per rank). Models: the MNIST MLP (784-128-64-10, 109k parameters) and LeNet-5 on CIFAR shapes
(62k parameters, far more compute per parameter), Adam, float32, fixed global batch split over
the ranks. A cell is the median over repeats of (global samples / wall time of K steps), with a
barrier before and after each repeat. Comm is what rank 0 spent inside MPI per step during
backward (start, progress and wait for its buckets, so it includes waiting for the slower
rank); pure all-reduce is a blocking Allreduce of the same gradient size, barrier first.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nncore.bench import harness

CONFIGS = [(1, 2, True), (2, 1, True), (1, 1, True)]  # ranks, threads, DDP (1 rank: a no-op)
MODELS = {"mlp": 256, "lenet": 64}  # model -> global batch


def _model_and_batch(name: str, batch: int, seed: int = 0) -> tuple[Any, Any, Any]:
    import nncore as nc
    from nncore import nn

    nc.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                              nn.Linear(64, 10))
        x = rng.random((batch, 784), dtype=np.float32)
    else:
        from nncore.bench.bench_cnn import _lenet

        model = _lenet(nn)
        x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    return model, nc.from_numpy(x), y


def worker(model_name: str, global_batch: int, use_ddp: bool, repeats: int,
           min_time: float) -> dict | None:
    """Runs inside each rank; returns the figures on rank 0 (None elsewhere)."""
    import nncore as nc
    import nncore.distributed as dist
    from nncore import nn

    rank, world = dist.init()
    comm = dist._mpi._comm()
    model, x, y = _model_and_batch(model_name, global_batch // world, seed=rank)
    if use_ddp:
        model = dist.DistributedDataParallel(model)
    opt = nc.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    comm_total = [0.0]

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if use_ddp:
            comm_total[0] += model.last_comm_seconds

    for _ in range(5):
        step()
    steps = 1
    while True:  # calibrate on rank 0, agree on the count
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        elapsed = comm.bcast(time.perf_counter() - t0, root=0)
        if elapsed >= min_time:
            break
        steps *= 2
    rates, comm_total[0] = [], 0.0
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        comm.Barrier()
        rates.append(global_batch * steps / (time.perf_counter() - t0))
    grads = sum(p.data.size for p in model.parameters())
    buf = np.ones(grads, np.float32)
    pure = []
    for _ in range(50):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(dist._mpi._in_place(), buf)
        pure.append(time.perf_counter() - t0)
    if rank:
        return None
    return {"model": model_name, "global_batch": global_batch, "ranks": world,
            "threads": nc.get_num_threads(), "ddp": use_ddp, "parameters": grads,
            "samples_per_s": float(np.median(rates)),
            "spread": float((max(rates) - min(rates)) / np.median(rates)),
            "step_ms": 1e3 * global_batch / float(np.median(rates)),
            "comm_ms_per_step": (1e3 * comm_total[0] / (repeats * steps)
                                 if use_ddp and world > 1 else None),
            "pure_allreduce_ms": 1e3 * float(np.median(pure)) if world > 1 else None}


def run_all(repeats: int, min_time: float, models: Sequence[str]) -> list[dict]:
    from nncore.distributed.launch import run_mpi

    records = []
    for name in models:
        for ranks, threads, use_ddp in CONFIGS:
            argv = ["-m", "nncore.bench.bench_ddp", "--worker", name, "--repeat", str(repeats),
                    "--min-time", str(min_time)] + ([] if use_ddp else ["--no-ddp"])
            print(f"[bench_ddp] {name}: {ranks} rank(s) x {threads} thread(s)"
                  f"{'' if use_ddp else ' (no DDP)'}", file=sys.stderr, flush=True)
            done = run_mpi(ranks, argv, timeout=600, threads_per_rank=threads)
            if done.returncode:
                raise RuntimeError(f"bench_ddp worker failed:\n{done.stderr[-3000:]}")
            records.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return records


def ddp_table(records: Sequence[dict]) -> str:
    """Rows per (model, configuration) with samples/s and the ratio to 1 rank x 2 threads."""
    base = {r["model"]: r["samples_per_s"] for r in records
            if r["ranks"] == 1 and r["threads"] == 2 and r["ddp"]}
    rows = []
    for r in records:
        config = f"{r['ranks']} x {r['threads']}" + ("" if r["ddp"] else " (no DDP)")
        rows.append([f"{r['model']} b{r['global_batch']}", config,
                     harness.format_cell(r["samples_per_s"], r["spread"], "{:,.0f}"),
                     f"{r['step_ms']:.3f}",
                     "-" if r["comm_ms_per_step"] is None or r["ranks"] == 1
                     else f"{r['comm_ms_per_step']:.3f}",
                     "-" if r["pure_allreduce_ms"] is None else f"{r['pure_allreduce_ms']:.3f}",
                     f"{r['samples_per_s'] / base[r['model']]:.2f}x"])
    return harness.format_table(
        ["model", "ranks x threads", "samples/s", "ms/step", "comm ms/step",
         "pure all-reduce ms", "vs 1 x 2 DDP"], rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--no-ddp", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--json", default=None, help="write machine facts + records here")
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker, MODELS[args.worker], not args.no_ddp, args.repeat,
                        args.min_time)
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    models = harness.parse_list(args.models)
    records = run_all(args.repeat, args.min_time, models)
    print(ddp_table(records))
    if args.json:
        machine = harness.machine_info()
        machine["settings"] = {"repeats": args.repeat, "min_time": args.min_time,
                               "date": time.strftime("%Y-%m-%d")}
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "ddp": records}, f, indent=1)


if __name__ == "__main__":
    main()
