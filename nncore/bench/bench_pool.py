"""MaxPool2d forward+backward timings: nncore against the NumPy strided-window baseline (and
torch). Cases (float32, 2x2 stride 2): 64x6x28x28 (LeNet) and 32x64x32x32.

    python -m nncore.bench.bench_pool [--threads 1,2] [--repeat 7] [--quick]
    python -m nncore.bench --only pool
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import baseline_conv as bc
from nncore.bench import harness
from nncore.bench.bench_conv import main

__all__ = ["CASES", "make_op", "pool_worker"]


def _maxpool(backend: str, n: int, c: int, hw: int, k: int = 2) -> Callable[[], Any]:
    r = np.random.default_rng(0)
    x = r.standard_normal((n, c, hw, hw)).astype(np.float32)
    dout = r.standard_normal((n, c, hw // k, hw // k)).astype(np.float32)
    if backend == "numpy":
        return lambda: bc.maxpool2d_forward_backward(x, dout, k)
    m = harness.autograd_lib(backend)
    xt = m.from_numpy(x).requires_grad_(True)
    dt = m.from_numpy(dout)
    pool = m.nn.functional.max_pool2d

    def step() -> None:
        xt.grad = None
        pool(xt, k).backward(dt)

    return step


CASES: list[tuple[str, str, Callable[[str], Callable[[], Any]]]] = [
    ("maxpool2 fb 64x6x28x28", "ms", lambda be: _maxpool(be, 64, 6, 28)),
    ("maxpool2 fb 32x64x32x32", "ms", lambda be: _maxpool(be, 32, 64, 32)),
]


def make_op(case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` (a name in CASES) for `backend`."""
    return harness.make_case(CASES, case, backend)


def pool_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
                warmup: int = 3, cases: Sequence[str] | None = None) -> list[dict]:
    """Records of every pooling case for each backend at `threads` threads (run.py protocol)."""
    return harness.run_cases("pool", CASES, backends, threads, repeats, min_time, warmup, cases)


if __name__ == "__main__":
    main(module="bench_pool", worker=pool_worker)
