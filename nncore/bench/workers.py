"""Worker processes: each (backend, threads) pair is measured in its own child process.

Thread counts are fixed per process: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS
must be set before NumPy / nncore / torch load their thread pools, so each (backend, threads)
pair runs in a child `python -m nncore.bench.<module> --worker ... --json` that prints its
results as one JSON line on stdout. Separate processes also keep one library's idle,
spin-waiting worker threads from stealing cores from the next library's measurement.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nncore.bench.records import error_record
from nncore.bench.tables import results_table

__all__ = [
    "REPO_ROOT",
    "THREAD_VARS",
    "add_worker_args",
    "available_backends",
    "collect",
    "family_main",
    "merge_rounds",
    "measure_options",
    "parse_list",
    "run_worker",
    "thread_env",
]

# the folder holding the nncore package (the repo root for a source checkout)
REPO_ROOT = Path(__file__).resolve().parents[2]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int, base: dict | None = None) -> dict:
    """A copy of the environment with every thread-count variable set to `threads`."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_VARS:
        env[var] = str(threads)
    # the repo root first on the path so `-m nncore.bench.x` and in-tree nncore import
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ------------------------------------------------------------------ worker side

def add_worker_args(parser: Any) -> None:
    """The options every bench module takes (worker mode and standalone mode)."""
    parser.add_argument("--worker", action="store_true",
                        help="run in this process only and print one JSON line (internal)")
    parser.add_argument("--backends", default=None,
                        help="comma list of nncore,numpy,torch (default: all available)")
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts")
    parser.add_argument("--json", action="store_true", help="worker: print JSON on stdout")
    parser.add_argument("--repeat", type=int, default=7, help="timed repeats per case")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds each repeat lasts at least")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--quick", action="store_true",
                        help="short repeats (0.02 s, at most 3) for a smoke run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the sweep R times, backend order alternating, and merge "
                             "(median over every repeat of every round)")


def family_main(module: str, worker: Callable[..., list[dict]], doc: str | None,
                argv: Sequence[str] | None = None, header: str | None = None) -> None:
    """The command line every benchmark family shares: standalone, it runs each thread count
    in its own child (``collect``) and prints the table; with ``--worker`` it measures in this
    process and prints one JSON line for the parent."""
    import argparse

    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_worker_args(parser)
    args = parser.parse_args(argv)
    backends = parse_list(args.backends) or available_backends()
    opts = measure_options(args)
    if args.worker:
        threads = int(args.threads.split(",")[0])
        print(json.dumps({"records": worker(backends, threads, **opts), "pid": os.getpid()}))
        return
    worker_args = ["--repeat", str(opts["repeats"]), "--min-time", str(opts["min_time"]),
                   "--warmup", str(opts["warmup"])]
    records = collect(module, parse_list(args.threads, int), backends, worker_args,
                      rounds=args.rounds)
    if header:
        print(header)
    print(results_table(records))


def measure_options(args: Any) -> dict:
    """measure() keyword arguments from parsed add_worker_args options."""
    if args.quick:
        return {"repeats": min(args.repeat, 3), "min_time": 0.02, "warmup": 1}
    return {"repeats": args.repeat, "min_time": args.min_time, "warmup": args.warmup}


def available_backends() -> list[str]:
    """nncore and numpy always (nncore may still fail to import), torch when installed."""
    import importlib.util

    backends = ["nncore", "numpy"]
    if importlib.util.find_spec("torch") is not None:
        backends.append("torch")
    return backends


def parse_list(text: str | None, cast: Callable = str) -> list | None:
    """'1,2' -> [1, 2]; None stays None."""
    if text is None:
        return None
    return [cast(t.strip()) for t in text.split(",") if t.strip()]


# ------------------------------------------------------------------ parent side

def run_worker(module: str, backends: Sequence[str], threads: int, args: Sequence[str] = (),
               timeout: float = 600.0) -> dict:
    """Run `python -m nncore.bench.<module> --worker --backends .. --threads n --json [args]`.

    The child gets the thread variables before any import. Its stderr (progress lines) is
    passed through as it comes; its last stdout line is parsed as JSON and returned. A
    failing child raises RuntimeError carrying the tail of its stderr.
    """
    import tempfile
    import threading

    cmd = [sys.executable, "-m", f"nncore.bench.{module}", "--worker",
           "--backends", ",".join(backends), "--threads", str(threads), "--json", *args]
    tail: list[str] = []

    def forward(stream: Any) -> None:
        for ln in stream:
            sys.stderr.write(ln)
            tail.append(ln)
            del tail[:-40]

    env = thread_env(threads)
    if "nncore" not in backends:
        # a NumPy (or torch) user does not have nncore's caching allocator: the baselines run
        # on NumPy's own, although their process imports nncore.bench
        env["NNCORE_HOST_ALLOCATOR"] = "numpy"
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=forward, args=(proc.stderr,), daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            tail.append(f"killed after {timeout:.0f} s\n")
        reader.join(timeout=5)
        out.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.strip()]
    if rc != 0 or not lines:
        raise RuntimeError(f"worker `{' '.join(cmd[2:])}` failed (exit {rc}):\n"
                           + "".join(tail).strip())
    return json.loads(lines[-1])


def collect(module: str, threads_list: Sequence[int], backends: Sequence[str],
            args: Sequence[str] = (), isolate: bool = True, rounds: int = 1) -> list[dict]:
    """Records of `module` for every thread count: one child per (backend, threads) when
    `isolate`, else one child per thread count running all backends. With `rounds` > 1 the
    whole sweep runs that many times, the backend order reversed every other round, and each
    cell is the median over every repeat of every round (merge_rounds): on a shared machine a
    slow spell then hits every backend alike instead of whichever ran during it."""
    sweeps = []
    for i in range(max(1, rounds)):
        if rounds > 1:
            print(f"[{module}] round {i + 1}/{rounds}", file=sys.stderr, flush=True)
        order = list(backends) if i % 2 == 0 else list(backends)[::-1]
        groups = [[b] for b in order] if isolate else [order]
        records: list[dict] = []
        for threads in threads_list:
            for group in groups:
                try:
                    records.extend(run_worker(module, group, threads, args)["records"])
                except (RuntimeError, ValueError, subprocess.SubprocessError) as e:
                    for b in group:
                        records.append(error_record(module, None, b, threads, str(e)))
        sweeps.append(records)
    return sweeps[0] if len(sweeps) == 1 else merge_rounds(sweeps)


def merge_rounds(rounds: Sequence[Sequence[dict]]) -> list[dict]:
    """One record per (family, case, backend, threads), in the order of first appearance: the
    median over every repeat of every round that measured it (`rounds` counts those rounds);
    a cell no round measured keeps its first error."""
    import statistics

    merged: dict[tuple, dict] = {}
    for recs in rounds:
        for r in recs:
            key = (r.get("family"), r["case"], r["backend"], r["threads"])
            m = merged.get(key)
            if "median" not in r:
                merged.setdefault(key, r)
            elif m is None or "median" not in m:
                merged[key] = dict(r, times=list(r["times"]), rounds=1)
            else:
                m["times"] += r["times"]
                m["rounds"] += 1
    for m in merged.values():
        if "median" in m:
            t = m["times"]
            m.update(median=statistics.median(t), min=min(t), max=max(t), repeats=len(t))
            m["spread"] = (m["max"] - m["min"]) / m["median"]
    return list(merged.values())
