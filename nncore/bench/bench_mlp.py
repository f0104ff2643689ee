"""The headline benchmark: one training step of the 784-128-64-10 ReLU MLP, batch 64, Adam,
float32 — nncore against the NumPy baseline (and torch when installed), same weights, same
batch, at each thread count in its own process.

    python -m nncore.bench.bench_mlp [--threads 1,2] [--repeat 7] [--quick]
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any

from nncore.bench import harness
from nncore.bench.numpy_baseline import (
    MLP_SIZES,
    NumpyAdam,
    NumpyMLP,
    init_mlp_weights,
    make_batch,
    train_step,
)
from nncore.bench.training_step import adam_step

__all__ = ["BATCH", "compare_step_in_process", "make_step", "mlp_step_figures", "mlp_worker"]

BATCH = 64
CASE = f"step {'-'.join(map(str, MLP_SIZES))} b{BATCH} adam"


def _numpy_step(state: dict, x: Any, y: Any, threads: int) -> Callable[[], Any]:
    model = NumpyMLP(MLP_SIZES).load_from(state)
    opt = NumpyAdam(model.parameters(), lr=1e-3)
    return lambda: train_step(model, opt, x, y)


def _mlp(lib: Any) -> Any:
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def _nncore_step(state: dict, x: Any, y: Any, threads: int) -> Callable[[], Any]:
    return adam_step("nncore", _mlp, state, x, y, threads)


def _torch_step(state: dict, x: Any, y: Any, threads: int) -> Callable[[], Any]:
    return adam_step("torch", _mlp, state, x, y, threads)


_BUILDERS = {"nncore": _nncore_step, "numpy": _numpy_step, "torch": _torch_step}


def make_step(backend: str, threads: int, seed: int = 0, batch: int = BATCH) -> Callable:
    """A zero-argument training-step callable for `backend`, from the shared weights/batch."""
    if backend not in _BUILDERS:
        raise ValueError(f"make_step: unknown backend {backend!r}, expected one of "
                         f"{sorted(_BUILDERS)}")
    state = init_mlp_weights(MLP_SIZES, seed)
    x, y = make_batch(batch, MLP_SIZES[0], MLP_SIZES[-1])
    return _BUILDERS[backend](state, x, y, threads)


def mlp_worker(backends: Sequence[str], threads: int, repeats: int = 7,
               min_time: float = 0.2, warmup: int = 3) -> list[dict]:
    """Measure the step for each backend in this process; one record per backend.

    NumPy's BLAS thread count is fixed when NumPy loads, so the caller sets
    OPENBLAS_NUM_THREADS (run_worker does) for the numpy figure to mean `threads`.
    """
    records = []
    for backend in backends:
        try:
            step = make_step(backend, threads)
            stats = harness.measure(step, repeats=repeats, min_time=min_time, warmup=warmup)
            records.append(harness.record("mlp", CASE, backend, threads, stats, "ms",
                                          batch=BATCH))
            if not backend.startswith("torch"):  # tracemalloc cannot see torch's allocator
                records.append(harness.memory_record("mlp", "step", backend, threads,
                                                     harness.peak_memory_mb(step)))
        except Exception:
            records.append(harness.error_record("mlp", CASE, backend, threads,
                                                traceback.format_exc()))
    return records


def mlp_step_figures(threads: Sequence[int] = (1, 2), repeats: int = 7,
                     min_time: float = 0.2, backends: Sequence[str] | None = None) -> dict:
    """{threads: {backend: {"ms", "samples_per_s", "spread"}, "numpy/nncore": ratio}}.

    Each (backend, threads) runs in its own child process with the thread variables set.
    """
    backends = list(backends or harness.available_backends())
    args = ["--repeat", str(repeats), "--min-time", str(min_time)]
    records = harness.collect("bench_mlp", threads, backends, args)
    figures: dict = {}
    for r in records:
        if "median" not in r:
            continue
        figures.setdefault(r["threads"], {})[r["backend"]] = {
            "ms": r["median"] * 1e3, "samples_per_s": BATCH / r["median"],
            "spread": r["spread"]}
    for row in figures.values():
        if "nncore" in row:
            for b in backends:
                if b != "nncore" and b in row:
                    row[f"{b}/nncore"] = row[b]["ms"] / row["nncore"]["ms"]
    return figures


def compare_step_in_process(repeats: int = 7, min_time: float = 0.2) -> dict:
    """nncore and NumPy step times in this process, at nncore's current thread count.

    For examples: quick, but NumPy's BLAS uses whatever thread count it loaded with.
    """
    import nncore as nc

    threads = nc.get_num_threads()
    out: dict = {"threads": threads}
    for backend in ("nncore", "numpy"):
        stats = harness.measure(make_step(backend, threads), repeats=repeats,
                                min_time=min_time)
        out[f"{backend}_ms"] = stats["median"] * 1e3
        out[f"{backend}_spread"] = stats["spread"]
    out["ratio"] = out["numpy_ms"] / out["nncore_ms"]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    harness.family_main("bench_mlp", mlp_worker, __doc__, argv)


if __name__ == "__main__":
    main()
