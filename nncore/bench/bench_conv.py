"""Conv2d forward+backward timings: nncore against the NumPy im2col baseline (and torch).

Cases (float32, dinput, dweight and dbias all computed):
  LeNet conv1  64x3x32x32,  5x5 -> 6
  LeNet conv2  64x6x14x14,  5x5 -> 16
  3x3 pad 1    32x64x32x32, 3x3 -> 64

    python -m nncore.bench.bench_conv [--threads 1,2] [--repeat 7] [--quick]
    python -m nncore.bench --only conv
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import baseline_conv as bc
from nncore.bench import harness

__all__ = ["CASES", "make_op", "conv_worker"]


def _conv(backend: str, n: int, c: int, hw: int, oc: int, k: int,
          pad: int = 0) -> Callable[[], Any]:
    r = np.random.default_rng(0)
    x = r.standard_normal((n, c, hw, hw)).astype(np.float32)
    bound = 1 / np.sqrt(c * k * k)
    w = r.uniform(-bound, bound, (oc, c, k, k)).astype(np.float32)
    b = r.uniform(-bound, bound, oc).astype(np.float32)
    out_hw = hw + 2 * pad - k + 1
    dout = r.standard_normal((n, oc, out_hw, out_hw)).astype(np.float32)
    if backend == "numpy":
        return lambda: bc.conv2d_forward_backward(x, w, b, dout, 1, pad)
    m = harness.autograd_lib(backend)
    layer = m.nn.Conv2d(c, oc, k, padding=pad)
    layer.load_state_dict({"weight": m.from_numpy(w), "bias": m.from_numpy(b)})
    xt = m.from_numpy(x).requires_grad_(True)
    dt = m.from_numpy(dout)

    def step() -> None:
        layer.weight.grad = layer.bias.grad = xt.grad = None
        layer(xt).backward(dt)

    return step


# (case, unit, builder)
CASES: list[tuple[str, str, Callable[[str], Callable[[], Any]]]] = [
    ("conv fb LeNet1 64x3x32x32 k5->6", "ms", lambda be: _conv(be, 64, 3, 32, 6, 5)),
    ("conv fb LeNet2 64x6x14x14 k5->16", "ms", lambda be: _conv(be, 64, 6, 14, 16, 5)),
    ("conv fb 3x3p1 32x64x32x32->64", "ms", lambda be: _conv(be, 32, 64, 32, 64, 3, 1)),
]


def make_op(case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` (a name in CASES) for `backend`."""
    return harness.make_case(CASES, case, backend)


def conv_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
                warmup: int = 3, cases: Sequence[str] | None = None) -> list[dict]:
    """Records of every conv case for each backend at `threads` threads (run.py protocol)."""
    return harness.run_cases("conv", CASES, backends, threads, repeats, min_time, warmup, cases)


def main(argv: Sequence[str] | None = None, module: str = "bench_conv",
         worker: Callable[..., list[dict]] = conv_worker) -> None:
    harness.family_main(module, worker, __doc__, argv)


if __name__ == "__main__":
    main()
