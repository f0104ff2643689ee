"""End-to-end CNN benchmark: one LeNet-5 training step on CIFAR-sized input (batch 64, Adam,
float32) — nncore against a NumPy baseline (im2col + matmul, strided-window pooling) and torch,
same weights, same batch; plus the peak Python-heap memory of one step (tracemalloc: counts
NumPy-allocated arrays, so it is reported for nncore and NumPy, not torch).

    python -m nncore.bench.bench_cnn [--threads 1,2] [--repeat 7] [--quick]
    python -m nncore.bench --only cnn
"""
from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import baseline_conv as bc
from nncore.bench import harness
from nncore.bench.numpy_baseline import NumpyAdam, softmax_cross_entropy
from nncore.bench.training_step import adam_step

__all__ = ["BATCH", "CASE", "cnn_worker", "init_lenet_weights", "make_step"]

BATCH = 64
CASE = f"lenet5 step 3x32x32 b{BATCH} adam"
# (name, shape) of every parameter, keyed like nn.Sequential(conv, relu, pool, conv, relu,
# pool, flatten, linear, relu, linear, relu, linear)
SHAPES = [("0.weight", (6, 3, 5, 5)), ("0.bias", (6,)), ("3.weight", (16, 6, 5, 5)),
          ("3.bias", (16,)), ("7.weight", (120, 400)), ("7.bias", (120,)),
          ("9.weight", (84, 120)), ("9.bias", (84,)), ("11.weight", (10, 84)),
          ("11.bias", (10,))]


def init_lenet_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch-style U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, float32."""
    rng = np.random.default_rng(seed)
    state = {}
    fan_in = 1
    for name, shape in SHAPES:
        if name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
        bound = 1 / math.sqrt(fan_in)
        state[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return state


def make_batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, 3, 32, 32)).astype(np.float32)
    return x, rng.integers(0, 10, BATCH).astype(np.int64)


def _numpy_step(state: dict, x: np.ndarray, y: np.ndarray, threads: int) -> Callable[[], Any]:
    params = [state[name].copy() for name, _ in SHAPES]
    opt = NumpyAdam(params, lr=1e-3)

    def step() -> float:
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = params
        c1, cols1 = bc.conv2d_forward(x, w1, b1)
        r1 = np.maximum(c1, 0)
        p1, a1 = bc.maxpool2d_forward(r1, 2)
        c2, cols2 = bc.conv2d_forward(p1, w2, b2)
        r2 = np.maximum(c2, 0)
        p2, a2 = bc.maxpool2d_forward(r2, 2)
        f = p2.reshape(len(x), -1)
        h3 = np.maximum(f @ w3.T + b3, 0)
        h4 = np.maximum(h3 @ w4.T + b4, 0)
        loss, dl = softmax_cross_entropy(h4 @ w5.T + b5, y)
        dw5, db5 = dl.T @ h4, dl.sum(0)
        dh4 = (dl @ w5) * (h4 > 0)
        dw4, db4 = dh4.T @ h3, dh4.sum(0)
        dh3 = (dh4 @ w4) * (h3 > 0)
        dw3, db3 = dh3.T @ f, dh3.sum(0)
        dr2 = bc.maxpool2d_backward((dh3 @ w3).reshape(p2.shape), a2, r2.shape, 2)
        dp1, dw2, db2 = bc.conv2d_backward(dr2 * (c2 > 0), cols2, p1.shape, w2)
        dc1 = bc.maxpool2d_backward(dp1, a1, r1.shape, 2) * (c1 > 0)
        d2 = dc1.transpose(0, 2, 3, 1).reshape(-1, w1.shape[0])  # first layer: no dx needed
        dw1, db1 = (d2.T @ cols1).reshape(w1.shape), d2.sum(0)
        opt.step([dw1, db1, dw2, db2, dw3, db3, dw4, db4, dw5, db5])
        return loss

    step.params = params  # for tests
    return step


def _lenet(nn: Any) -> Any:
    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120),
                         nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def _nncore_step(state: dict, x: np.ndarray, y: np.ndarray, threads: int) -> Callable[[], Any]:
    return adam_step("nncore", lambda lib: _lenet(lib.nn), state, x, y, threads)


def _torch_step(state: dict, x: np.ndarray, y: np.ndarray, threads: int) -> Callable[[], Any]:
    return adam_step("torch", lambda lib: _lenet(lib.nn), state, x, y, threads)


_BUILDERS = {"nncore": _nncore_step, "numpy": _numpy_step, "torch": _torch_step}


def make_step(backend: str, threads: int, seed: int = 0) -> Callable[[], Any]:
    """A zero-argument LeNet-5 training step for `backend` from the shared weights/batch."""
    if backend not in _BUILDERS:
        raise ValueError(f"make_step: unknown backend {backend!r}, expected one of "
                         f"{sorted(_BUILDERS)}")
    x, y = make_batch()
    return _BUILDERS[backend](init_lenet_weights(seed), x, y, threads)


def cnn_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
               warmup: int = 3) -> list[dict]:
    """Time the step (and its peak memory, except for torch) for each backend."""
    records = []
    for backend in backends:
        try:
            step = make_step(backend, threads)
            stats = harness.measure(step, repeats=repeats, min_time=min_time, warmup=warmup)
            records.append(harness.record("cnn", CASE, backend, threads, stats, "ms",
                                          batch=BATCH))
            if not backend.startswith("torch"):
                records.append(harness.memory_record("cnn", "lenet5 step", backend, threads,
                                                     harness.peak_memory_mb(step)))
        except Exception:
            records.append(harness.error_record("cnn", CASE, backend, threads,
                                                traceback.format_exc()))
    return records


def main(argv: Sequence[str] | None = None) -> None:
    harness.family_main("bench_cnn", cnn_worker, __doc__, argv)


if __name__ == "__main__":
    main()
