"""Optimizer step throughput: Adam and SGD-momentum on float32 parameters, in GB/s.

Cases: one tensor of 1M and of 10M elements, and a 20-tensor model (10 x Linear(1024, 1024):
10 weights + 10 biases, 10.5M elements), each stepped in place with fixed gradients.
Backends: nncore (one fused multi-tensor kernel call per step), an in-place NumPy baseline
(what a careful NumPy programmer writes: no temporaries beyond one scratch buffer per
tensor), torch's default CPU path (single-tensor for-loop) and torch with fused=True
(backend "torch_fused", measured in the same worker process as "torch").
GB/s counts the bytes an ideal one-pass step moves: Adam reads p, g, m, v and writes p, m, v
(28 B/element); SGD with momentum reads p, g, buf and writes p, buf (20 B/element).

    python -m nncore.bench.bench_optim [--threads 1,2] [--repeat 7] [--quick]
    python -m nncore.bench --only optim
"""
from __future__ import annotations

import argparse
import json
import os
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import harness
from nncore.bench import numpy_baseline as nb
from nncore.bench.tables import errors_footer, ratio_cells

__all__ = ["CASES", "NumpySGD", "make_step", "optim_worker"]

BACKENDS = ("nncore", "numpy", "torch", "torch_fused")
BYTES_PER_ELEMENT = {"adam": 28, "sgd": 20}
MODEL_20 = [(1024, 1024), (1024,)] * 10


class NumpySGD:
    """SGD with momentum (torch's formula, dampening 0), every update in place.

    buf = momentum * buf + g (buf = g on the first step);  p -= lr * buf.
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3,
                 momentum: float = 0.9) -> None:
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.bufs: list[np.ndarray | None] = [None] * len(self.params)
        self._scratch = [np.empty_like(p) for p in self.params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        for i, (p, g, tmp) in enumerate(zip(self.params, grads, self._scratch)):
            buf = self.bufs[i]
            if buf is None:
                self.bufs[i] = buf = g.copy()
            else:
                buf *= self.momentum
                buf += g
            np.multiply(buf, self.lr, out=tmp)
            p -= tmp


def _shapes(case: str) -> list[tuple[int, ...]]:
    size = case.split()[1]
    if size == "20-tensor":
        return list(MODEL_20)
    return [(int(size.rstrip("M")) * 1_000_000,)]


def _arrays(shapes: Sequence[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32) for s in shapes]


def make_step(case: str, backend: str) -> Callable[[], Any]:
    """A zero-argument callable doing one optimizer step of `case` on `backend`."""
    kind = case.split()[0]
    shapes = _shapes(case)
    params = _arrays(shapes, 0)
    grads = [g * np.float32(1e-2) for g in _arrays(shapes, 1)]
    if backend == "numpy":
        opt: Any = (nb.NumpyAdam(params, lr=1e-3) if kind == "adam"
                    else NumpySGD(params, lr=1e-3, momentum=0.9))
        return lambda: opt.step(grads)
    if backend == "nncore":
        import nncore

        ps = [nncore.nn.Parameter(p) for p in params]
        for p, g in zip(ps, grads):
            p.grad = nncore.Tensor(g)
        opt = (nncore.optim.Adam(ps, lr=1e-3) if kind == "adam"
               else nncore.optim.SGD(ps, lr=1e-3, momentum=0.9))
        return opt.step
    import torch

    extra = {"fused": True} if backend == "torch_fused" else {}
    ts = [torch.nn.Parameter(torch.from_numpy(p)) for p in params]
    for t, g in zip(ts, grads):
        t.grad = torch.from_numpy(g)
    opt = (torch.optim.Adam(ts, lr=1e-3, **extra) if kind == "adam"
           else torch.optim.SGD(ts, lr=1e-3, momentum=0.9, **extra))
    opt.step()  # fails here if this torch build has no fused CPU kernel
    return opt.step


CASES = [f"{kind} {size}" for kind in ("adam", "sgd") for size in ("1M", "10M", "20-tensor")]


def _elements(case: str) -> int:
    return sum(int(np.prod(s)) for s in _shapes(case))


def optim_worker(backends: Sequence[str], threads: int, repeats: int = 7,
                 min_time: float = 0.2, warmup: int = 3,
                 cases: Sequence[str] | None = None) -> list[dict]:
    """Measure every case for each backend in this process; one record per (case, backend)."""
    if "nncore" in backends:
        try:
            import nncore

            nncore.set_num_threads(threads)
        except Exception:
            pass
    if {"torch", "torch_fused"} & set(backends):
        try:
            import torch

            torch.set_num_threads(threads)
        except Exception:
            pass
    backends = list(backends)
    if "torch" in backends and "torch_fused" not in backends:
        backends.append("torch_fused")  # run.py asks for "torch": report both torch paths
    records = []
    for backend in backends:
        for case in CASES:
            if cases is not None and case not in cases:
                continue
            try:
                stats = harness.measure(make_step(case, backend), repeats=repeats,
                                        min_time=min_time, warmup=warmup)
                work = float(_elements(case) * BYTES_PER_ELEMENT[case.split()[0]])
                rec = harness.record("optim", case, backend, threads, stats, "ms", work=work)
                rec["gb_per_s"] = work / stats["median"] / 1e9  # work = ideal bytes per step
                records.append(rec)
            except Exception:
                records.append(harness.error_record("optim", case, backend, threads,
                                                    traceback.format_exc()))
    return records


def gbps_table(records: Sequence[dict]) -> str:
    """GB/s per (case, threads) and backend, then nncore's speed-up over the others."""
    good = [r for r in records if "median" in r]
    backends = [b for b in BACKENDS if any(r["backend"] == b for r in good)]
    rows: dict[tuple, dict] = {}
    for r in good:
        rows.setdefault((r["case"], r["threads"]), {})[r["backend"]] = r
    others = [b for b in backends if b != "nncore"]
    headers = ["case", "threads", *[f"{b} GB/s" for b in backends],
               *[f"vs {b}" for b in others]]
    table = []
    for (case, threads), cells in rows.items():
        row: list[Any] = [case, threads]
        for b in backends:
            rec = cells.get(b)
            row.append("-" if rec is None else
                       harness.format_cell(rec["work"] / rec["median"] / 1e9, rec["spread"],
                                           "{:.2f}"))
        row.extend(ratio_cells(cells, others))
        table.append(row)
    return harness.format_table(headers, table, left=1) + errors_footer(records, False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_worker_args(parser)
    parser.add_argument("--cases", default=None, help="comma list of cases (default: all)")
    parser.add_argument("--out", default=None, help="write records + machine info as JSON")
    args = parser.parse_args(argv)
    backends = harness.parse_list(args.backends) or harness.available_backends()
    if "torch" in backends and "torch_fused" in backends:
        backends.remove("torch_fused")  # the torch worker measures both torch paths
    opts = harness.measure_options(args)
    cases = harness.parse_list(args.cases)
    if args.worker:
        threads = int(args.threads.split(",")[0])
        records = optim_worker(backends, threads, cases=cases, **opts)
        print(json.dumps({"records": records, "pid": os.getpid()}))
        return
    worker_args = ["--repeat", str(opts["repeats"]), "--min-time", str(opts["min_time"]),
                   "--warmup", str(opts["warmup"])]
    if args.cases:
        worker_args += ["--cases", args.cases]
    records = harness.collect("bench_optim", harness.parse_list(args.threads, int), backends,
                              worker_args, rounds=args.rounds)
    print("GB/s = ideal bytes moved per step / median step time; 'vs X' = X time / nncore "
          "time (>1: nncore faster); ~ = spread > 10%")
    print(gbps_table(records))
    if args.out:
        harness.write_json(args.out, records, harness.machine_info())


if __name__ == "__main__":
    main()
