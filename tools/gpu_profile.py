"""Where the time of nncore's GPU training steps goes (a developer tool, run on a GPU machine
with the CUDA build): for the LeNet-5 steps at batch 64 and 256 and the LSTM LM step of
nncore.bench.bench_cuda it prints

1. the kernels on the GPU, from torch.profiler (CUPTI sees every kernel of the process,
   nncore's included), when torch with CUDA is installed: total and mean time per kernel;
2. every call into the CUDA extension (nncore._cuda._ext), timed with a synchronize before and
   after: launch cost plus kernel time, per function, and how many calls a step makes;
3. the host's Python time per function (cProfile).

    python tools/gpu_profile.py [--steps 20] [--cases lenet64,lenet256,lm]
"""
from __future__ import annotations

import argparse
import collections
import time

import numpy as np


def _cases() -> dict:
    from nncore.bench import bench_cnn, bench_lm

    x, y = bench_cnn.make_batch()
    big = [bench_cnn.make_batch(seed) for seed in range(1, 5)]
    x4, y4 = np.concatenate([b[0] for b in big]), np.concatenate([b[1] for b in big])
    tokens, targets = bench_lm.make_tokens()
    lm_state = bench_lm.init_lm_weights()
    lenet, lenet_state = (lambda lib: bench_cnn._lenet(lib.nn)), bench_cnn.init_lenet_weights()
    return {"lenet64": (lenet, lenet_state, x, y),
            "lenet256": (lenet, lenet_state, x4, y4),
            "lm": (lambda lib: bench_lm._model(lib, lm_state), lm_state, tokens,
                   targets.reshape(-1))}


def _torch_kernels(step, steps: int) -> None:
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        print("  (torch not installed: no kernel table)")
        return
    if not torch.cuda.is_available():
        print("  (torch without CUDA: no kernel table)")
        return
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        import nncore.cuda as cuda

        cuda.synchronize()
    print(f"  (totals over {steps} steps)")
    for key in ("self_device_time_total", "self_cuda_time_total"):
        try:
            print(prof.key_averages().table(sort_by=key, row_limit=24, max_name_column_width=70))
            return
        except Exception as exc:  # noqa: BLE001  (the sort key was renamed between versions)
            err = exc
    print(f"  (no kernel table: {err})")


_QUERIES = {"synchronize", "device_count", "device_count_error", "device_name", "set_device",
            "runtime_version", "empty_cache", "memory_stats", "reset_peak_memory_stats"}


def _python_profile(step, steps: int) -> None:
    import cProfile
    import pstats

    import nncore.cuda as cuda

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    cuda.synchronize()
    prof.disable()
    print(f"  host Python, {steps} steps, top functions by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(18)


def _ext_calls(step, steps: int) -> None:
    import nncore.cuda as cuda
    from nncore._cuda import _ext

    stats = collections.defaultdict(lambda: [0, 0.0])
    originals = {}
    sync = _ext.synchronize
    for name in dir(_ext):
        fn = getattr(_ext, name)
        if (name.startswith("_") or name in _QUERIES or not callable(fn)
                or isinstance(fn, type)):
            continue

        def timed(*a, _fn=fn, _name=name, **k):
            sync()
            t0 = time.perf_counter()
            out = _fn(*a, **k)
            sync()
            s = stats[_name]
            s[0] += 1
            s[1] += time.perf_counter() - t0
            return out

        originals[name] = fn
        setattr(_ext, name, timed)
    try:
        for _ in range(steps):
            step()
        cuda.synchronize()
    finally:
        for name, fn in originals.items():
            setattr(_ext, name, fn)
    total = sum(s[1] for s in stats.values())
    print(f"  _ext calls, each synchronized: {total / steps * 1e3:.3f} ms/step in "
          f"{sum(s[0] for s in stats.values()) / steps:.0f} calls")
    for name, (n, sec) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:18]:
        print(f"  {sec / steps * 1e6:9.1f} us/step {n / steps:5.1f}x  {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cases", default="lenet64,lenet256,lm")
    args = p.parse_args()
    import nncore as nc
    import nncore.cuda as cuda
    from nncore.bench.training_step import adam_step

    cases = _cases()
    for case in args.cases.split(","):
        build, state, x, y = cases[case]
        nc.manual_seed(0)
        step = adam_step("nncore", build, state, x, y, device="cuda")
        for _ in range(5):
            step()
        cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        cuda.synchronize()
        print(f"== {case}: {(time.perf_counter() - t0) / args.steps * 1e3:.3f} ms/step")
        _torch_kernels(step, args.steps)
        _ext_calls(step, args.steps)
        _python_profile(step, args.steps)


if __name__ == "__main__":
    main()
