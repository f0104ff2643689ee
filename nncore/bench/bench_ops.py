"""Per-op-family timings, nncore against the NumPy baseline (and torch when installed).

Cases: Linear+ReLU forward+backward (64x784 -> 128), softmax cross-entropy forward+backward
(64x10, 4096x1000), one Adam step over the MLP's parameters, ReLU forward on 1M floats,
GEMM 1024^3 (GFLOP/s), and the per-op Python overhead of a tiny Linear(4, 4) on a (1, 4)
input (µs per call).

    python -m nncore.bench.bench_ops [--threads 1,2] [--repeat 7] [--quick]
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import harness
from nncore.bench import numpy_baseline as nb

__all__ = ["CASES", "make_op", "ops_worker"]

GEMM_N = 1024


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _randn(*shape: int, seed: int = 0) -> np.ndarray:
    return _rng(seed).standard_normal(shape).astype(np.float32)


# -------------------------------------------------------------- per-backend op builders
# Each builder returns a zero-argument callable doing the work once.

def _linear_relu(backend: str, n: int = 64, d_in: int = 784, d_out: int = 128,
                 relu: bool = True) -> Callable[[], Any]:
    x, dout = _randn(n, d_in, seed=1), _randn(n, d_out, seed=2)
    bound = 1 / np.sqrt(d_in)
    w = _rng(3).uniform(-bound, bound, (d_out, d_in)).astype(np.float32)
    b = _rng(4).uniform(-bound, bound, d_out).astype(np.float32)
    if backend == "numpy":
        return lambda: nb.linear_relu_forward_backward(x, w, b, dout, relu=relu)
    lib = harness.autograd_lib(backend)
    layer = lib.nn.Linear(d_in, d_out)
    layer.load_state_dict({"weight": _wrap(lib, w), "bias": _wrap(lib, b)})
    xt = _wrap(lib, x).requires_grad_(True)
    dt = _wrap(lib, dout)
    act = lib.nn.functional.relu

    def step() -> None:
        layer.weight.grad = layer.bias.grad = xt.grad = None
        y = layer(xt)
        (act(y) if relu else y).backward(dt)

    return step


def _cross_entropy(backend: str, n: int, c: int) -> Callable[[], Any]:
    logits = _randn(n, c, seed=5)
    labels = _rng(6).integers(0, c, n, dtype=np.int64)
    if backend == "numpy":
        return lambda: nb.cross_entropy_forward_backward(logits, labels)
    lib = harness.autograd_lib(backend)
    lt = _wrap(lib, logits).requires_grad_(True)
    yt = _wrap(lib, labels) if backend == "torch" else labels
    ce = lib.nn.functional.cross_entropy

    def step() -> None:
        lt.grad = None
        ce(lt, yt).backward()

    return step


def _adam(backend: str) -> Callable[[], Any]:
    state = nb.init_mlp_weights(nb.MLP_SIZES, seed=0)
    params = list(state.values())
    grads = [_randn(*p.shape, seed=10 + i) * 1e-2 for i, p in enumerate(params)]
    if backend == "numpy":
        params = [p.copy() for p in params]
        opt = nb.NumpyAdam(params, lr=1e-3)
        return lambda: opt.step(grads)
    lib = harness.autograd_lib(backend)
    tparams = [lib.nn.Parameter(_wrap(lib, p.copy())) for p in params]
    for p, g in zip(tparams, grads):
        p.grad = _wrap(lib, g)
    opt = lib.optim.Adam(tparams, lr=1e-3)
    return opt.step


def _relu(backend: str, n: int = 1 << 20) -> Callable[[], Any]:
    x = _randn(n, seed=7)
    if backend == "numpy":
        return lambda: nb.relu_forward(x)
    lib = harness.autograd_lib(backend)
    xt = _wrap(lib, x)
    relu = lib.nn.functional.relu
    return lambda: relu(xt)


def _relu_fb(backend: str, n: int = 1 << 20) -> Callable[[], Any]:
    x, dout = _randn(n, seed=7), _randn(n, seed=17)
    if backend == "numpy":
        return lambda: nb.relu_forward_backward(x, dout)
    lib = harness.autograd_lib(backend)
    xt, dt = _wrap(lib, x), _wrap(lib, dout)
    xt.requires_grad_(True)
    relu = lib.nn.functional.relu

    def step() -> None:
        xt.grad = None
        relu(xt).backward(dt)

    return step


def _gemm(backend: str, n: int = GEMM_N) -> Callable[[], Any]:
    a, b = _randn(n, n, seed=8), _randn(n, n, seed=9)
    if backend == "numpy":
        return lambda: a @ b
    if backend == "nncore":
        from nncore._kernels.gemm import gemm

        return lambda: gemm(a, b)
    import torch

    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.mm(at, bt)


def _tiny_linear_forward(backend: str) -> Callable[[], Any]:
    x = _randn(1, 4, seed=11)
    w, b = _randn(4, 4, seed=12), _randn(4, seed=13)
    if backend == "numpy":
        def forward() -> np.ndarray:
            y = x @ w.T
            y += b
            return y

        return forward
    lib = harness.autograd_lib(backend)
    layer = lib.nn.Linear(4, 4)
    layer.load_state_dict({"weight": _wrap(lib, w), "bias": _wrap(lib, b)})
    xt = _wrap(lib, x)

    def forward() -> Any:
        with lib.no_grad():
            return layer(xt)

    return forward


def _embedding(backend: str, vocab: int = 10_000, dim: int = 128,
               n_ids: int = 32 * 35) -> Callable[[], Any]:
    """Embedding lookup forward + backward (the LM's input layer): gather, then scatter-add."""
    weight = _randn(vocab, dim, seed=14)
    ids = _rng(15).integers(0, vocab, n_ids, dtype=np.int64)
    dout = _randn(n_ids, dim, seed=16)
    if backend == "numpy":
        def step() -> np.ndarray:
            out = weight[ids]
            dweight = np.zeros_like(weight)
            np.add.at(dweight, ids, dout)  # repeated ids accumulate
            return out, dweight

        return step
    lib = harness.autograd_lib(backend)
    wt = _wrap(lib, weight).requires_grad_(True)
    idt = _wrap(lib, ids)
    dt = _wrap(lib, dout)
    emb = lib.nn.functional.embedding

    def step() -> None:
        wt.grad = None
        emb(idt, wt).backward(dt)

    return step


def _wrap(lib: Any, arr: np.ndarray) -> Any:
    return lib.from_numpy(np.ascontiguousarray(arr))


_MLP_PARAMS = sum(int(np.prod(p.shape)) for p in nb.init_mlp_weights(nb.MLP_SIZES).values())

# (case, unit, work: FLOP for GFLOP/s, bytes moved for GB/s, else None, builder)
CASES: list[tuple[str, str, float | None, Callable[[str], Callable[[], Any]]]] = [
    ("linear+relu fb 64x784->128", "ms", None, _linear_relu),
    ("softmax-ce fb 64x10", "us", None, lambda be: _cross_entropy(be, 64, 10)),
    ("softmax-ce fb 4096x1000", "ms", None, lambda be: _cross_entropy(be, 4096, 1000)),
    # Adam reads param, grad, m, v and writes param, m, v: 7 float32 per parameter
    ("adam step mlp params", "GB/s", 7.0 * 4 * _MLP_PARAMS, _adam),
    ("relu fwd 1M", "GB/s", 2.0 * 4 * (1 << 20), _relu),
    # forward reads x, writes y; backward reads dout, y and writes dx: 5 float32 per element
    ("relu fwd+bwd 1M", "GB/s", 5.0 * 4 * (1 << 20), _relu_fb),
    ("embedding fb 1120 ids V10000 D128", "us", None, _embedding),
    (f"gemm {GEMM_N}^3", "GFLOP/s", 2.0 * GEMM_N ** 3, _gemm),
    ("tiny linear(4,4) fwd", "us", None, _tiny_linear_forward),
    ("tiny linear(4,4) fwd+bwd", "us", None,
     lambda be: _linear_relu(be, 1, 4, 4, relu=False)),
]


def make_op(case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` (a name in CASES) for `backend`."""
    return harness.make_case(CASES, case, backend)


def ops_worker(backends: Sequence[str], threads: int, repeats: int = 7, min_time: float = 0.2,
               warmup: int = 3, cases: Sequence[str] | None = None) -> list[dict]:
    """Measure every case for each backend in this process; one record per (case, backend)."""
    return harness.run_cases("ops", CASES, backends, threads, repeats, min_time, warmup,
                             cases)


def main(argv: Sequence[str] | None = None) -> None:
    harness.family_main("bench_ops", ops_worker, __doc__, argv)


if __name__ == "__main__":
    main()
