"""Batch normalisation and dropout timings: nncore against a NumPy baseline (in this file) and
torch when installed.

Cases: BatchNorm2d forward+backward in training mode on 64x16x28x28 (batch statistics,
running-stat update, dinp/dweight/dbias), and dropout p=0.5 forward+backward on 1M floats.

    python -m nncore.bench.bench_norm [--threads 1,2] [--repeat 7] [--quick]
    python -m nncore.bench --only norm
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import harness

__all__ = ["CASES", "make_op", "norm_worker", "numpy_batch_norm_forward_backward",
           "numpy_dropout_forward_backward"]

BN_SHAPE = (64, 16, 28, 28)
DROPOUT_N = 1 << 20


# ------------------------------------------------------------------ NumPy baseline

def numpy_batch_norm_forward_backward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                                      running_mean: np.ndarray, running_var: np.ndarray,
                                      dout: np.ndarray, momentum: float = 0.1,
                                      eps: float = 1e-5) -> tuple:
    """Training-mode batch norm over (N, C, H, W), forward and backward, as a careful NumPy
    programmer writes it (axis reductions, broadcasting, the xhat cache reused).
    Updates the running statistics in place; returns (out, dinp, dweight, dbias)."""
    axes = (0, 2, 3)
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    xc = x - mean[None, :, None, None]
    var = np.einsum("nchw,nchw->c", xc, xc) / m
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * invstd[None, :, None, None]
    out = xhat * weight[None, :, None, None] + bias[None, :, None, None]
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * (m / (m - 1))
    dbias = dout.sum(axis=axes)
    dweight = np.einsum("nchw,nchw->c", dout, xhat)
    k = (weight * invstd)[None, :, None, None]
    dinp = k * (dout - (dbias / m)[None, :, None, None]
                - xhat * (dweight / m)[None, :, None, None])
    return out, dinp.astype(x.dtype, copy=False), dweight, dbias


def numpy_dropout_forward_backward(x: np.ndarray, dout: np.ndarray, p: float,
                                   rng: np.random.Generator) -> tuple:
    """Inverted dropout forward (mask from rng.random) and backward (the same mask)."""
    scale = np.float32(1.0 / (1.0 - p))
    mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(np.float32)
    mask *= scale
    return x * mask, dout * mask


# ------------------------------------------------------------------ per-backend builders

def _randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _batch_norm(backend: str, shape: tuple = BN_SHAPE) -> Callable[[], Any]:
    C = shape[1]
    x, dout = _randn(*shape, seed=1) * 2 + 0.5, _randn(*shape, seed=2)
    w, b = _randn(C, seed=3), _randn(C, seed=4)
    if backend == "numpy":
        rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
        return lambda: numpy_batch_norm_forward_backward(x, w, b, rm, rv, dout)
    lib = harness.autograd_lib(backend)
    layer = lib.nn.BatchNorm2d(C)
    layer.load_state_dict({**layer.state_dict(), "weight": lib.from_numpy(w),
                           "bias": lib.from_numpy(b)})
    xt = lib.from_numpy(x).requires_grad_(True)
    dt = lib.from_numpy(dout)

    def step() -> None:
        layer.weight.grad = layer.bias.grad = xt.grad = None
        layer(xt).backward(dt)

    return step


def _dropout(backend: str, n: int = DROPOUT_N, p: float = 0.5) -> Callable[[], Any]:
    x, dout = _randn(n, seed=5), _randn(n, seed=6)
    if backend == "numpy":
        rng = np.random.default_rng(0)
        return lambda: numpy_dropout_forward_backward(x, dout, p, rng)
    lib = harness.autograd_lib(backend)
    xt = lib.from_numpy(x).requires_grad_(True)
    dt = lib.from_numpy(dout)
    drop = lib.nn.functional.dropout

    def step() -> None:
        xt.grad = None
        drop(xt, p, True).backward(dt)

    return step


# (case, unit, work, builder)
CASES: list[tuple[str, str, float | None, Callable[[str], Callable[[], Any]]]] = [
    ("batchnorm2d fb 64x16x28x28", "ms", None, _batch_norm),
    ("dropout p=0.5 fb 1M", "ms", None, _dropout),
]


def make_op(case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` (a name in CASES) for `backend`."""
    return harness.make_case(CASES, case, backend)


def norm_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
                warmup: int = 3, cases: Sequence[str] | None = None) -> list[dict]:
    """Measure every case for each backend in this process; one record per (case, backend)."""
    return harness.run_cases("norm", CASES, backends, threads, repeats, min_time, warmup,
                             cases)


def main(argv: Sequence[str] | None = None) -> None:
    harness.family_main("bench_norm", norm_worker, __doc__, argv)


if __name__ == "__main__":
    main()
