"""Measurement method, worker processes and table formatting shared by the benchmarks.

Method: a few warm-up calls, then an inner loop count calibrated so one repeat lasts at least
`min_time`, then `repeats` timed repeats with time.perf_counter. The figure is the median time
per call; spread = (max - min) / median tells how noisy it was.

Thread counts are fixed per process: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS
must be set before NumPy / nncore / torch load their thread pools, so each (backend, threads)
pair runs in a child `python -m nncore.bench.<module> --worker ... --json` that prints its
results as one JSON line on stdout. Separate processes also keep one library's idle,
spin-waiting worker threads from stealing cores from the next library's measurement.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "REPO_ROOT",
    "SPREAD_FLAG",
    "format_cell",
    "format_table",
    "machine_info",
    "measure",
    "run_worker",
    "thread_env",
]

# the folder holding the nncore package (the repo root for a source checkout)
REPO_ROOT = Path(__file__).resolve().parents[2]
SPREAD_FLAG = 0.10  # cells whose spread exceeds this are marked with '~'
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def measure(fn: Callable[[], Any], repeats: int = 7, min_time: float = 0.2,
            warmup: int = 3, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Time `fn()`: median/min/max seconds per call over `repeats` calibrated repeats.

    Returns dict(median, min, max, spread=(max-min)/median, times=[seconds per call for
    each repeat], number=inner calls per repeat, repeats). `clock` is for tests.
    """
    if repeats < 1:
        raise ValueError(f"measure: repeats must be >= 1, got {repeats}")
    for _ in range(max(0, warmup)):
        fn()
    number = 1
    while True:  # grow the inner loop until one repeat lasts >= min_time
        t0 = clock()
        for _ in range(number):
            fn()
        elapsed = clock() - t0
        if elapsed >= min_time:
            break
        # aim 20% past min_time, grow at least 2x and at most 100x per round
        guess = number * 1.2 * min_time / max(elapsed, 1e-9)
        number = int(min(max(guess, 2 * number), 100 * number))
    times = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(number):
            fn()
        times.append((clock() - t0) / number)
    median = statistics.median(times)
    lo, hi = min(times), max(times)
    return {"median": median, "min": lo, "max": hi,
            "spread": (hi - lo) / median if median > 0 else 0.0,
            "times": times, "number": number, "repeats": repeats}


def peak_memory_mb(step: Callable[[], Any]) -> float:
    """Peak traced (Python + NumPy-allocated) memory of one call, after a warm-up call, in MB.

    tracemalloc sees NumPy arrays, so this covers nncore and the NumPy baseline; torch's own
    allocator is invisible to it (torch cells report no memory figure)."""
    import tracemalloc

    step()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def memory_record(family: str, case: str, backend: str, threads: int, mb: float) -> dict:
    """A record holding a peak-memory figure (unit MB) instead of a time."""
    stats = {"median": mb, "min": mb, "max": mb, "spread": 0.0, "times": [mb]}
    return record(family, f"{case} peak memory (tracemalloc)", backend, threads, stats, "MB")


def thread_env(threads: int, base: dict | None = None) -> dict:
    """A copy of the environment with every thread-count variable set to `threads`."""
    env = dict(os.environ if base is None else base)
    for var in THREAD_VARS:
        env[var] = str(threads)
    # the repo root first on the path so `-m nncore.bench.x` and in-tree nncore import
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def format_cell(value: float | None, spread: float | None = None, fmt: str = "{:.3f}") -> str:
    """`value` formatted, '~' appended when its spread exceeds SPREAD_FLAG, '-' when None."""
    if value is None:
        return "-"
    text = fmt.format(value)
    if spread is not None and spread > SPREAD_FLAG:
        text += "~"
    return text


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 left: int = 1) -> str:
    """Aligned plain-text table: the first `left` columns left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"format_table: row {row} has {len(row)} cells, expected "
                             f"{len(headers)}")
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, core count, NumPy version and BLAS, nncore build_info() and torch version."""
    import numpy as np

    info: dict[str, Any] = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                            "python": sys.version.split()[0], "numpy": np.__version__}
    if hasattr(os, "getloadavg"):  # other work on the machine makes figures noisy
        info["loadavg_1_5_15"] = os.getloadavg()
    try:
        cfg = np.show_config(mode="dicts")
        info["numpy_blas"] = cfg["Build Dependencies"]["blas"]
    except Exception as e:  # older NumPy: no mode="dicts"
        info["numpy_blas"] = f"unknown ({type(e).__name__})"
    try:
        import nncore

        info["nncore"] = nncore.build_info()
    except Exception as e:
        info["nncore"] = f"not importable: {type(e).__name__}: {e}"
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


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
    records = collect(module, parse_list(args.threads, int), backends, worker_args)
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


def record(family: str, case: str, backend: str, threads: int, stats: dict, unit: str,
           work: float | None = None, batch: int | None = None) -> dict:
    """One measured cell: where it belongs, its display unit and measure()'s statistics."""
    rec = {"family": family, "case": case, "backend": backend, "threads": threads,
           "unit": unit, "work": work, "batch": batch, **stats}
    if hasattr(os, "getloadavg"):  # 1-min load when measured: flags competing work
        rec["loadavg"] = os.getloadavg()[0]
    print(f"  {family:<5} {case:<30} {backend:<6} t={threads}  "
          f"{format_cell(display_value(rec), rec['spread'], _auto_fmt(display_value(rec)))} "
          f"{unit}", file=sys.stderr, flush=True)
    return rec


def error_record(family: str, case: str | None, backend: str, threads: int,
                 error: str) -> dict:
    """A cell that could not be measured, with the reason."""
    print(f"  {family:<5} {case or '*':<30} {backend:<6} t={threads}  FAILED: "
          f"{error.splitlines()[-1] if error else ''}", file=sys.stderr, flush=True)
    return {"family": family, "case": case, "backend": backend, "threads": threads,
            "error": error}


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
            args: Sequence[str] = (), isolate: bool = True) -> list[dict]:
    """Records of `module` for every thread count: one child per (backend, threads) when
    `isolate`, else one child per thread count running all backends."""
    groups = [[b] for b in backends] if isolate else [list(backends)]
    records: list[dict] = []
    for threads in threads_list:
        for group in groups:
            try:
                records.extend(run_worker(module, group, threads, args)["records"])
            except (RuntimeError, ValueError, subprocess.SubprocessError) as e:
                for b in group:
                    records.append(error_record(module, None, b, threads, str(e)))
    return records


def display_value(rec: dict) -> float | None:
    """The number a table shows for a record, in its unit."""
    if "median" not in rec:
        return None
    median = rec["median"]
    unit = rec["unit"]
    if unit == "ms":
        return median * 1e3
    if unit == "us":
        return median * 1e6
    if unit == "GFLOP/s":
        return rec["work"] / median / 1e9
    if unit == "GB/s":  # work = bytes read + written by one call
        return rec["work"] / median / 1e9
    if unit == "samples/s":
        return rec["batch"] / median
    return median


def _auto_fmt(value: float | None) -> str:
    if value is None or value >= 1000:
        return "{:,.0f}"
    if value >= 100:
        return "{:.1f}"
    if value >= 10:
        return "{:.2f}"
    return "{:.3f}"


def results_table(records: Sequence[dict], backends: Sequence[str] | None = None) -> str:
    """One row per (case, threads): a column per backend, then time ratios against nncore
    (numpy/nncore > 1 means nncore is faster). '~' marks a spread above 10%."""
    good = [r for r in records if "median" in r]
    if backends is None:
        seen = {r["backend"] for r in records}
        known = ("nncore", "numpy", "torch")
        backends = [b for b in known if b in seen] + sorted(seen - set(known))
    others = [b for b in backends if b != "nncore"]
    rows: dict[tuple, dict] = {}
    for r in good:
        rows.setdefault((r["family"], r["case"], r["threads"]), {})[r["backend"]] = r
    headers = ["case", "threads", "unit", *backends, *[f"{b}/nncore" for b in others]]
    table = []
    for (family, case, threads), cells in rows.items():
        units = [cells[b]["unit"] for b in cells]
        views = [units[0]] + (["samples/s"] if any(cells[b].get("batch") for b in cells)
                              else [])
        for unit in views:
            label = f"{family}/{case}" if unit == units[0] else f"{family}/{case} samples/s"
            row: list[Any] = [label, threads, unit]
            for b in backends:
                rec = cells.get(b)
                if rec is None:
                    row.append("-")
                else:
                    value = display_value({**rec, "unit": unit})
                    row.append(format_cell(value, rec["spread"], _auto_fmt(value)))
            base = cells.get("nncore")
            for b in others:
                rec = cells.get(b)
                if rec is None or base is None:
                    row.append("-")
                else:
                    spread = max(rec["spread"], base["spread"])
                    row.append(format_cell(rec["median"] / base["median"], spread,
                                           "{:.2f}x"))
            table.append(row)
    text = format_table(headers, table)
    errors = [r for r in records if "error" in r]
    if errors:
        text += "\n\nnot measured:\n" + "\n".join(
            f"  {r['family']}/{r['case'] or '*'} {r['backend']} t={r['threads']}: "
            f"{r['error'].strip().splitlines()[-1] if r['error'].strip() else '?'}"
            for r in errors)
    return text


def write_json(path: str | os.PathLike, records: Sequence[dict], meta: dict) -> None:
    """Every record (with each repeat's time) plus machine info, as indented JSON."""
    Path(path).write_text(json.dumps({"machine": meta, "records": list(records)}, indent=1,
                                     default=str))


def autograd_lib(backend: str) -> Any:
    """The module of an autograd backend: nncore or torch."""
    if backend == "nncore":
        import nncore

        return nncore
    if backend == "torch":
        import torch

        return torch
    raise ValueError(f"unknown backend {backend!r}")


def make_case(cases: Sequence[tuple], case: str, backend: str) -> Callable[[], Any]:
    """The zero-argument callable of `case` for `backend`; `cases` holds (name, unit, builder)
    or (name, unit, work, builder) tuples, the builder last."""
    for entry in cases:
        if entry[0] == case:
            return entry[-1](backend)
    raise ValueError(f"make_op: unknown case {case!r}; cases: {[c[0] for c in cases]}")


def run_cases(family: str, cases: Sequence[tuple], backends: Sequence[str], threads: int,
              repeats: int = 7, min_time: float = 0.2, warmup: int = 3,
              only: Sequence[str] | None = None) -> list[dict]:
    """Measure every case (tuples as in `make_case`; `work` feeds GFLOP/s or GB/s) for each
    backend in this process; one record per (case, backend), an error record on failure."""
    for backend in set(backends) & {"nncore", "torch"}:
        try:
            autograd_lib(backend).set_num_threads(threads)
        except Exception:
            pass  # each case of this backend then reports the import error itself
    records = []
    for backend in backends:
        for entry in cases:
            name, unit, builder = entry[0], entry[1], entry[-1]
            work = entry[2] if len(entry) == 4 else None
            if only is not None and name not in only:
                continue
            try:
                stats = measure(builder(backend), repeats=repeats, min_time=min_time,
                                warmup=warmup)
                records.append(record(family, name, backend, threads, stats, unit, work=work))
            except Exception:
                records.append(error_record(family, name, backend, threads,
                                            traceback.format_exc()))
    return records
