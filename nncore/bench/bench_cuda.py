"""nncore on a GPU against nncore on the same machine's CPU: the LeNet-5 CIFAR training step
(bench_cnn: batch 64, Adam; and batch 256, where the GPU has more work per launch) and the
LSTM language-model step (bench_lm: V 10,000, E 128, H 256, batch 32 x 35, Adam), same
weights and data on both devices; plus GEMM GFLOP/s of nncore's tile kernel. PyTorch on the
same GPU (cuBLAS/cuDNN, TF32 off) is shown as a reference where it is installed with CUDA.
Needs the CUDA build (NNCORE_CUDA=1) and a GPU.

Each figure is the median of `--repeat` timed runs of a calibrated number of steps after a
warm-up; GPU runs end with a synchronize, so they count the kernels, not just their launch.

    python -m nncore.bench.bench_cuda [--repeat 7] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncore.bench import bench_cnn, bench_lm
from nncore.bench.training_step import adam_step


def time_step(step: Callable[[], Any], sync: Callable[[], None], repeats: int,
              min_time: float = 0.2) -> float:
    """Median seconds per call of `step` (calls batched so each timed run lasts >= min_time)."""
    for _ in range(3):
        step()
    sync()
    n, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or n >= 4096:
            break
        n *= 2 if elapsed <= 0 else max(2, min(16, int(min_time / elapsed) + 1))
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


def _phases(model_fn: Callable, state: dict, x: np.ndarray, y: np.ndarray,
            repeats: int) -> dict[str, float]:
    """GPU milliseconds of the step's forward (loss), forward + backward, and the whole step,
    each timed alone, to show where a step's time goes."""
    import nncore as nc
    import nncore.cuda as cuda

    model = model_fn(nc)
    model.load_state_dict(state)
    model.to("cuda")
    opt = nc.optim.Adam(model.parameters(), lr=1e-3)
    xt = nc.from_numpy(x).to("cuda")

    def forward() -> Any:
        return nc.nn.functional.cross_entropy(model(xt), y)

    def forward_backward() -> None:
        opt.zero_grad()
        forward().backward()

    def step() -> None:
        forward_backward()
        opt.step()

    return {name: time_step(fn, cuda.synchronize, repeats) * 1e3
            for name, fn in (("forward", forward), ("forward+backward", forward_backward),
                             ("step", step))}


def _torch_step(model_fn: Callable, state: dict, x: np.ndarray,
                y: np.ndarray) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return adam_step("torch", model_fn, state, x, y, device="cuda")


def _torch_sync() -> None:
    import torch

    torch.cuda.synchronize()


def _cases() -> dict[str, tuple]:
    x, y = bench_cnn.make_batch()
    big = [bench_cnn.make_batch(seed) for seed in range(1, 5)]        # batch 4 x 64
    x4, y4 = np.concatenate([b[0] for b in big]), np.concatenate([b[1] for b in big])
    tokens, targets = bench_lm.make_tokens()
    lm_state = bench_lm.init_lm_weights()
    lenet, lenet_state = (lambda lib: bench_cnn._lenet(lib.nn)), bench_cnn.init_lenet_weights()
    return {
        bench_cnn.CASE: (lenet, lenet_state, x, y, bench_cnn.BATCH, "images"),
        bench_cnn.CASE.replace(f"b{bench_cnn.BATCH}", f"b{len(y4)}"):
            (lenet, lenet_state, x4, y4, len(y4), "images"),
        bench_lm.CASE: (lambda lib: bench_lm._model(lib, lm_state), lm_state, tokens,
                        targets.reshape(-1), bench_lm.TOKENS, "tokens"),
    }


def gemm_gflops(repeats: int) -> list[dict]:
    import nncore.cuda as cuda
    from nncore.cuda import ops

    rows = []
    for dtype in (np.float32, np.float64):
        for n in (1024, 2048, 4096):
            rng = np.random.default_rng(n)
            a = ops.DeviceArray.from_numpy(rng.standard_normal((n, n)).astype(dtype))
            b = ops.DeviceArray.from_numpy(rng.standard_normal((n, n)).astype(dtype))
            out = ops.DeviceArray((n, n), dtype)
            sec = time_step(lambda a=a, b=b, out=out: ops.gemm(a, b, out), cuda.synchronize,
                            repeats)
            row = {"case": f"gemm {n}x{n}x{n}", "dtype": np.dtype(dtype).name,
                   "nncore_gflops": 2 * n ** 3 / sec / 1e9}
            try:
                import torch

                if torch.cuda.is_available():
                    torch.backends.cuda.matmul.allow_tf32 = False
                    ta = torch.from_numpy(a.numpy()).cuda()
                    tb = torch.from_numpy(b.numpy()).cuda()
                    tsec = time_step(lambda ta=ta, tb=tb: torch.mm(ta, tb), _torch_sync,
                                     repeats)
                    row["torch_gflops"] = 2 * n ** 3 / tsec / 1e9
            except ImportError:
                pass
            rows.append(row)
    return rows


def run(repeats: int = 7, cpu_threads: int | None = None) -> dict:
    import nncore as nc
    import nncore.cuda as cuda

    if not cuda.is_available():
        raise SystemExit("bench_cuda: needs nncore built with NNCORE_CUDA=1 and a GPU")
    threads = cpu_threads or os.cpu_count() or 1
    nc.set_num_threads(threads)
    result: dict[str, Any] = {"gpu": cuda.get_device_name(), "cpu": platform.processor() or
                              platform.machine(), "cpu_threads": threads, "steps": []}
    cases = _cases()
    # The CPU steps first, before the GPU and torch ever run in this process, so no other
    # thread pool or driver thread competes with nncore's CPU threads.
    cpu_ms = {}
    for case, (model_fn, state, x, y, _, _) in cases.items():
        nc.manual_seed(0)
        cpu_ms[case] = time_step(adam_step("nncore", model_fn, state, x, y), lambda: None,
                                 repeats) * 1e3
    for case, (model_fn, state, x, y, items, unit) in cases.items():
        nc.manual_seed(0)
        gpu = time_step(adam_step("nncore", model_fn, state, x, y, device="cuda"),
                        cuda.synchronize, repeats)
        row = {"case": case, "unit": unit, "nncore_cpu_ms": cpu_ms[case],
               "nncore_gpu_ms": gpu * 1e3, "gpu_speedup": cpu_ms[case] / (gpu * 1e3),
               f"gpu_{unit}_per_s": items / gpu}
        row["gpu_phases_ms"] = _phases(model_fn, state, x, y, repeats)
        result["steps"].append(row)
    for row, (model_fn, state, x, y, _, _) in zip(result["steps"], cases.values()):
        torch_step = _torch_step(model_fn, state, x, y)
        if torch_step is not None:
            row["torch_gpu_ms"] = time_step(torch_step, _torch_sync, repeats) * 1e3
    result["gemm"] = gemm_gflops(repeats)
    return result


def report(result: dict) -> str:
    lines = [f"GPU: {result['gpu']}; CPU: {result['cpu']} with {result['cpu_threads']} "
             f"nncore threads", "",
             "| training step | nncore CPU ms | nncore GPU ms | GPU speed-up | torch GPU ms |",
             "|---|---:|---:|---:|---:|"]
    for r in result["steps"]:
        torch_ms = f"{r['torch_gpu_ms']:.2f}" if "torch_gpu_ms" in r else "-"
        lines.append(f"| {r['case']} | {r['nncore_cpu_ms']:.2f} | {r['nncore_gpu_ms']:.2f} | "
                     f"{r['gpu_speedup']:.1f}x | {torch_ms} |")
    phases = [f"{r['case']}: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                           r["gpu_phases_ms"].items())
              for r in result["steps"] if "gpu_phases_ms" in r]
    if phases:
        lines += ["", "GPU time by phase (ms): " + "; ".join(phases)]
    lines += ["", "| GEMM | dtype | nncore GFLOP/s | torch (cuBLAS, no TF32) GFLOP/s |",
              "|---|---|---:|---:|"]
    for r in result["gemm"]:
        torch_g = f"{r['torch_gflops']:,.0f}" if "torch_gflops" in r else "-"
        lines.append(f"| {r['case']} | {r['dtype']} | {r['nncore_gflops']:,.0f} | "
                     f"{torch_g} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="nncore CPU threads (default: all)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    result = run(args.repeat, args.threads)
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
