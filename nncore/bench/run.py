"""Run nncore's benchmark families and print one table of nncore vs NumPy (vs torch).

    python -m nncore.bench [--threads 1,2] [--repeat N] [--quick] [--only mlp,conv,...]
                           [--json FILE] [--plot DIR] [--no-compare-torch] [--shared-process]
                           [--rounds R]

Each (family, backend, thread count) runs in its own child process with OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set before import; a cell is the median time per
call over N calibrated repeats after warm-up; '~' marks a spread (max-min)/median above 10%.
Ratios are other/nncore times: above 1 means nncore is faster. Progress goes to stderr.
`--only ...,gemm` also runs nncore.bench.bench_gemm per thread count after the
table (its own output; not in the JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from nncore.bench import harness

FAMILIES = {"mlp": "bench_mlp", "ops": "bench_ops", "lm": "bench_lm", "conv": "bench_conv",
            "pool": "bench_pool", "norm": "bench_norm", "optim": "bench_optim",
            "rnn": "bench_rnn", "cnn": "bench_cnn"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts")
    parser.add_argument("--repeat", type=int, default=7, help="timed repeats per cell")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds each repeat lasts at least")
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats of >= 0.02 s, 1 warm-up call (under a minute)")
    parser.add_argument("--only", default=None,
                        help="comma list of families (default: all; with --quick: mlp,ops): "
                             + ", ".join([*FAMILIES, "gemm"]))
    parser.add_argument("--backends", default=None,
                        help="comma list (default nncore,numpy and torch if installed)")
    parser.add_argument("--compare-torch", action=argparse.BooleanOptionalAction,
                        default=True, help="include PyTorch when it is installed")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="write PNG bar charts of the ratios here (needs matplotlib)")
    parser.add_argument("--json", default=None, metavar="FILE", nargs="?", const="",
                        help="write every repeat and machine info here")
    parser.add_argument("--shared-process", action="store_true",
                        help="run all backends of a thread count in one process")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the sweep R times, backend order alternating, and report "
                             "the median over every repeat of every round")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> int:
    """Child side: every requested family for the given backends at one thread count."""
    from nncore.bench.bench_mlp import mlp_worker
    from nncore.bench.bench_ops import ops_worker

    backends = harness.parse_list(args.backends)
    threads = int(args.threads.split(",")[0])
    opts = {"repeats": args.repeat, "min_time": args.min_time, "warmup": args.warmup}
    records: list[dict] = []
    for family in harness.parse_list(args.only):
        run_family = {"mlp": mlp_worker, "ops": ops_worker}.get(family)
        if run_family is None and family in FAMILIES:  # bench_<x>.py exposing <x>_worker
            import importlib

            module = importlib.import_module(f"nncore.bench.{FAMILIES[family]}")
            run_family = getattr(module, f"{family}_worker", None)
        if run_family is not None:
            records += run_family(backends, threads, **opts)
    print(json.dumps({"records": records}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    threads = harness.parse_list(args.threads, int)
    if args.only is None:
        args.only = "mlp,ops" if args.quick else ",".join(FAMILIES)
    families = harness.parse_list(args.only)
    unknown = [f for f in families if f not in FAMILIES and f != "gemm"]
    if unknown:
        print(f"run.py: unknown families {unknown}; choose from {[*FAMILIES, 'gemm']}",
              file=sys.stderr)
        return 2
    backends = harness.parse_list(args.backends) or harness.available_backends()
    if not args.compare_torch:
        backends = [b for b in backends if not b.startswith("torch")]
    if args.quick:
        repeats, min_time, warmup = min(args.repeat, 3), 0.02, 1
    else:
        repeats, min_time, warmup = args.repeat, args.min_time, 3
    worker_args = ["--repeat", str(repeats), "--min-time", str(min_time),
                   "--warmup", str(warmup)]
    start = time.perf_counter()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    records: list[dict] = []
    benches = [f for f in families if f in FAMILIES]
    if benches:
        # one child per (backend, threads) runs every family: fewer interpreter/torch starts
        print(f"[{','.join(benches)}] threads {threads}, backends {backends}", file=sys.stderr)
        records = harness.collect("run", threads, backends,
                                  worker_args + ["--only", ",".join(benches)],
                                  isolate=not args.shared_process, rounds=args.rounds)
        order = {f: i for i, f in enumerate(benches)}  # table: families in --only order
        records.sort(key=lambda r: order.get(r["family"], len(order)))
    meta = harness.machine_info()
    meta["settings"] = {"threads": threads, "repeats": repeats, "min_time": min_time,
                        "warmup": warmup, "backends": backends,
                        "isolation": "shared" if args.shared_process else "per-backend",
                        "rounds": args.rounds,
                        "elapsed_s": time.perf_counter() - start,
                        "loadavg_at_start": load_start}
    nncore_info = meta["nncore"]
    if isinstance(nncore_info, dict):
        simd = nncore_info.get("kernels", {}).get("gemm", "?")
        build = f"nncore {nncore_info.get('version')} (openmp={nncore_info.get('openmp')}, " \
                f"gemm {simd})"
    else:
        build = f"nncore: {nncore_info}"
    load = meta.get("loadavg_1_5_15")
    print(f"{meta['cpu']} x{meta['cpu_count']}; NumPy {meta['numpy']}; {build}; "
          f"torch {meta['torch']}")
    if load and load_start:
        print(f"1-min load average {load_start[0]:.2f} at start, {load[0]:.2f} at end "
              f"(above ~0.5 other work competes for the cores)")
    rounds = f" x {args.rounds} rounds" if args.rounds > 1 else ""
    print(f"median of {repeats} repeats{rounds} (>= {min_time} s each); ratio = other time / "
          f"nncore time (>1: nncore faster); ~ = spread > 10%")
    if records:
        print(harness.results_table(records))
    if "gemm" in families:
        gemm_args = ["--repeat", str(repeats)] + (["--quick"] if args.quick else [])
        for t in threads:  # bench_gemm times both libraries in one process per thread count
            print(f"\n[gemm] python -m nncore.bench.bench_gemm, {t} thread(s)", flush=True)
            subprocess.run([sys.executable, "-m", "nncore.bench.bench_gemm", *gemm_args,
                            "--threads", str(t)],
                           cwd=harness.REPO_ROOT, env=harness.thread_env(t), check=False)
    if args.json:  # a bare --json (the worker protocol flag) names no file
        harness.write_json(args.json, records, meta)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot and records:
        from nncore.bench.plot import plot_records

        for path in plot_records(records, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
