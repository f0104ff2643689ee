"""Benchmark nncore's GEMM against numpy.matmul (OpenBLAS) in one process.

Run with a fixed thread count for both libraries, e.g.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gemm.py
    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 python benchmarks/bench_gemm.py --json gemm.json

Each figure is the median of the repeats after a warm-up; each library is timed in its own
block after a short pause (see _time_pair). The 1-minute load average is printed as a caveat:
on a machine shared with other jobs, multi-threaded figures are unreliable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

# run from a source checkout without installing: the repository root goes on the path
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nncore._kernels import gemm as G  # noqa: E402
from nncore._kernels._parallel import get_num_threads  # noqa: E402

_SETTLE_S = 0.3

# (label, stored shape of a, stored shape of b, trans_a, trans_b, dtype)
SQUARE = [(f"{n}x{n} @ {n}x{n}", (n, n), (n, n), False, False, np.float32)
          for n in (256, 512, 1024, 2048)]
MLP = [
    ("x @ W.T   64x784, W 128x784", (64, 784), (128, 784), False, True, np.float32),
    ("64x784 @ 784x128", (64, 784), (784, 128), False, False, np.float32),
    ("x.T @ dout 784x64 @ 64x128", (64, 784), (64, 128), True, False, np.float32),
    ("dout @ W  64x128 @ 128x784", (64, 128), (128, 784), False, False, np.float32),
    ("64x128 @ 128x64", (64, 128), (128, 64), False, False, np.float32),
    ("h @ W2.T  64x128, W2 64x128", (64, 128), (64, 128), False, True, np.float32),
    ("64x64 @ 64x10", (64, 64), (64, 10), False, False, np.float32),
    ("h @ W3.T  64x64, W3 10x64", (64, 64), (10, 64), False, True, np.float32),
    ("h.T @ dout 64x64 @ 64x10", (64, 64), (64, 10), True, False, np.float32),
    ("1024 float64", (1024, 1024), (1024, 1024), False, False, np.float64),
]


def _time(f, flops: float, repeats: int) -> float:
    """Median seconds per call of f over `repeats` samples, after a warm-up."""
    inner = max(1, int(2e7 / max(flops, 1.0)))  # ~ >= 0.2 ms per sample
    for _ in range(inner):
        f()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            f()
        samples.append((time.perf_counter() - t0) / inner)
    return float(np.median(samples))


def _time_pair(f_nn, f_np, flops: float, repeats: int) -> tuple[float, float]:
    """Median seconds per call of f_nn and f_np. Each library is timed in its own block, after
    a pause: OpenBLAS and OpenMP worker threads spin for a while after a call, and with both
    libraries interleaved call by call each one's spinning threads steal the other's cores."""
    time.sleep(_SETTLE_S)
    t_nn = _time(f_nn, flops, repeats)
    time.sleep(_SETTLE_S)
    t_np = _time(f_np, flops, repeats)
    return t_nn, t_np


def run(cases, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for label, sa, sb, ta, tb, dtype in cases:
        a = rng.standard_normal(sa).astype(dtype)
        b = rng.standard_normal(sb).astype(dtype)
        a_op, b_op = (a.T if ta else a), (b.T if tb else b)
        M, K = a_op.shape
        N = b_op.shape[1]
        out_nn = np.empty((M, N), dtype)
        out_np = np.empty((M, N), dtype)
        np.testing.assert_allclose(G.gemm(a, b, out_nn, trans_a=ta, trans_b=tb),
                                   np.matmul(a_op, b_op), rtol=1e-3, atol=1e-3 * np.sqrt(K))
        flops = 2.0 * M * N * K
        t_nn, t_np = _time_pair(lambda: G.gemm(a, b, out_nn, trans_a=ta, trans_b=tb),  # noqa: B023
                                lambda: np.matmul(a_op, b_op, out=out_np),  # noqa: B023
                                flops, repeats)
        rows.append(dict(case=label, dtype=np.dtype(dtype).name, M=M, N=N, K=K,
                         nncore_us=t_nn * 1e6, numpy_us=t_np * 1e6,
                         nncore_gflops=flops / t_nn / 1e9, numpy_gflops=flops / t_np / 1e9,
                         ratio=t_np / t_nn))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median taken)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--quick", action="store_true", help="skip the 2048 case")
    args = parser.parse_args()
    cases = SQUARE + MLP
    if args.quick:
        cases = [c for c in cases if c[1] != (2048, 2048)]
    threads = get_num_threads()
    print(f"nncore gemm kernel: {G.dispatched_simd()}   nncore threads: {threads}   "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}   "
          f"load average (1 min): {os.getloadavg()[0]:.2f}")
    rows = run(cases, max(5, args.repeats))
    print(f"{'case':32s} {'nncore us':>10s} {'GFLOP/s':>8s} {'numpy us':>10s} {'GFLOP/s':>8s}"
          f" {'ratio':>6s}")
    for r in rows:
        print(f"{r['case']:32s} {r['nncore_us']:10.1f} {r['nncore_gflops']:8.1f} "
              f"{r['numpy_us']:10.1f} {r['numpy_gflops']:8.1f} {r['ratio']:6.2f}")
    print("ratio = numpy time / nncore time (> 1: nncore faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(threads=threads, kernel=G.dispatched_simd(), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
