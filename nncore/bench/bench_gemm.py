"""GEMM benchmark: nncore's gemm against numpy.matmul (OpenBLAS), GFLOP/s and % of peak.

    python -m nncore.bench.bench_gemm [--threads 1,2] [--repeat 7] [--rounds 3] [--quick]
                                    [--only square,nn] [--json FILE]
    python -m nncore.bench --only gemm                   # the same cases via the runner

Each thread count runs in its own child process (harness.collect) with OMP_NUM_THREADS /
OPENBLAS_NUM_THREADS set before import. Inside it, for each case, nncore's and NumPy's timed
repeats alternate (each repeat a block of calls lasting >= --min-time; with 2 threads a 0.1 s
pause first so the other library's spinning worker threads park), so a burst of competing load
on a shared machine hits both alike; `--isolate` runs each backend in its own process instead.
`--rounds R` repeats the sweep R times and reports the median over all repeats of all rounds.

Peak: printed two ways. Derived = threads x clock x FMA pipes x 2 (multiply + add) x SIMD
lanes, with the clock read from /proc/cpuinfo "cpu MHz" (the nominal clock the hypervisor
reports, not the boost clock) and lanes from the dispatched kernel (16 float32 lanes for
AVX-512). FMA pipes: 2 for Zen AVX-512 as instructed unless measured otherwise. Measured = a
small C loop of independent FMAs compiled with the kernel's `target` attribute and run on the
same thread count; `% peak` in the table uses the measured figure when gcc is available.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence

from nncore.bench import harness
from nncore.bench.gemm_cases import CASES, FAMILY, NNCORE_VARIANTS, _case_fn
from nncore.bench.gemm_peak import derived_peak, measured_peak

__all__ = ["CASES", "derived_peak", "gemm_worker", "measured_peak"]


# ------------------------------------------------------------------ worker side

def _interleaved(fns: dict, repeats: int, min_time: float, warmup: int,
                 settle: float) -> dict:
    """measure()-style stats per backend, the backends' repeats alternating (order flipped
    every repeat) with a `settle` pause before each, so load bursts hit both alike."""
    import statistics
    import time

    numbers = {}
    for b, fn in fns.items():
        numbers[b] = harness.measure(fn, repeats=1, min_time=min_time, warmup=warmup)["number"]
    times: dict = {b: [] for b in fns}
    order = list(fns)
    for r in range(repeats):
        for b in (order if r % 2 == 0 else order[::-1]):
            fn, n = fns[b], numbers[b]
            if settle:
                time.sleep(settle)
            fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[b].append((time.perf_counter() - t0) / n)
    out = {}
    for b, t in times.items():
        med = statistics.median(t)
        out[b] = {"median": med, "min": min(t), "max": max(t),
                  "spread": (max(t) - min(t)) / med if med > 0 else 0.0, "times": t,
                  "number": numbers[b], "repeats": repeats}
    return out


def gemm_worker(backends: Sequence[str], threads: int, repeats: int = 7,
                min_time: float = 0.2, warmup: int = 3,
                groups: Sequence[str] | None = None) -> list[dict]:
    """Measure every case for the backends in this process, their repeats interleaved; one
    record per (case, backend)."""
    backends = [b for b in backends if b in NNCORE_VARIANTS or b == "numpy"]
    settle = 0.1 if threads > 1 else 0.0  # let the other library's spinning threads park
    records = []
    for case in CASES:
        if groups and case[0] not in groups:
            continue
        label = case[1]
        fns, flops = {}, 0.0
        for backend in backends:
            try:
                fns[backend], flops = _case_fn(backend, case, threads)
            except Exception:
                records.append(harness.error_record(FAMILY, label, backend, threads,
                                                    traceback.format_exc()))
        if not fns:
            continue
        stats = _interleaved(fns, repeats, min_time, warmup, settle)
        for backend, st in stats.items():
            rec = harness.record(FAMILY, label, backend, threads, st, "GFLOP/s", work=flops)
            rec.update(group=case[0], M=case[2], N=case[3], K=case[4], trans_a=case[5],
                       trans_b=case[6], dtype=case[7], epilogue=case[8])
            records.append(rec)
    return records


# ------------------------------------------------------------------ parent side

def summary_table(records: Sequence[dict], peaks: dict) -> str:
    """Case, threads, GFLOP/s of each backend, numpy/nncore time ratio, nncore % of peak."""
    cells: dict[tuple, dict] = {}
    for r in records:
        if "median" in r:
            cells.setdefault((r["case"], r["threads"]), {})[r["backend"]] = r
    extra = [v for v in NNCORE_VARIANTS if v != "nncore"
             and any(v in c for c in cells.values())]
    rows = []
    for (case, threads), c in cells.items():
        nn, np_ = c.get("nncore"), c.get("numpy")
        gf = {b: (r["work"] / r["median"] / 1e9, r["spread"]) for b, r in c.items()}
        peak = peaks.get(threads, {})
        ref_peak = peak.get("measured") or peak.get("derived")
        row = [case, threads,
               harness.format_cell(*gf["nncore"], "{:.1f}") if nn else "-",
               harness.format_cell(*gf["numpy"], "{:.1f}") if np_ else "-"]
        for v in extra:
            row.append(harness.format_cell(*gf[v], "{:.1f}") if v in gf else "-")
        row += [harness.format_cell(np_["median"] / nn["median"],
                                    max(np_["spread"], nn["spread"]), "{:.2f}x")
                if nn and np_ else "-",
                f"{100 * gf['nncore'][0] / ref_peak:.0f}%" if nn and ref_peak else "-"]
        rows.append(row)
    headers = ["case", "threads", "nncore GFLOP/s", "numpy GFLOP/s"]
    headers += [f"{v} GFLOP/s" for v in extra]
    headers += ["numpy/nncore", "nncore % peak"]
    return harness.format_table(headers, rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts")
    parser.add_argument("--backends", default="nncore,numpy",
                        help="comma list of nncore, numpy, nncore_shared, nncore_private "
                        "(nncore with the threads' shared op(B) packing on / off)")
    parser.add_argument("--repeat", type=int, default=7, help="timed repeats per case")
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds each repeat lasts at least")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument("--isolate", action="store_true",
                        help="one process per backend (default: both in one process, "
                        "repeats interleaved)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the sweep, alternating processes; median over all")
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats of >= 0.02 s, 1 warm-up, no 2048 case")
    parser.add_argument("--only", default=None,
                        help="comma list of groups: square,nn,wide,lm,im2col")
    parser.add_argument("--json", default=None, nargs="?", const="", metavar="FILE",
                        help="write records + machine info (nncore.bench.report format)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    groups = harness.parse_list(args.only)
    if args.quick:
        opts = {"repeats": min(args.repeat, 3), "min_time": 0.02, "warmup": 1}
    else:
        opts = {"repeats": args.repeat, "min_time": args.min_time, "warmup": args.warmup}
    if args.worker:
        global CASES
        if args.quick:
            CASES = [c for c in CASES if c[1] != "2048^3"]
        records = gemm_worker(harness.parse_list(args.backends),
                              int(args.threads.split(",")[0]), groups=groups, **opts)
        print(json.dumps({"records": records}))
        return 0
    threads = harness.parse_list(args.threads, int)
    backends = harness.parse_list(args.backends)
    child = ["--repeat", str(opts["repeats"]), "--min-time", str(opts["min_time"]),
             "--warmup", str(opts["warmup"])] + (["--quick"] if args.quick else [])
    if groups:
        child += ["--only", ",".join(groups)]
    records = harness.collect("bench_gemm", threads, backends, child, isolate=args.isolate,
                              rounds=args.rounds)
    from nncore._kernels import gemm as G

    kernel = G.dispatched_simd()
    peaks = {}
    for t in threads:
        d = derived_peak(t, kernel)
        m = measured_peak(t, kernel)
        peaks[t] = {"derived": d["gflops"], "measured": m, "derivation": d["formula"]}
        print(f"peak float32, {t} thread(s): derived {d['formula']} = "
              f"{d['gflops'] or float('nan'):.1f} GFLOP/s; measured peak (FMA loop, "
              f"{kernel}) = {m if m is None else round(m, 1)} GFLOP/s")
    for r in records:
        p = peaks.get(r["threads"], {})
        ref = p.get("measured") or p.get("derived")
        if "median" in r and ref:
            r["pct_peak"] = 100 * r["work"] / r["median"] / 1e9 / ref
    meta = harness.machine_info()
    meta["settings"] = {"threads": threads, "backends": backends, "rounds": args.rounds,
                        "gemm_kernel": kernel, "peaks": peaks, **opts}
    print(f"{meta['cpu']} x{meta['cpu_count']}; NumPy {meta['numpy']}; nncore gemm {kernel}; "
          f"load average {meta.get('loadavg_1_5_15')}")
    print("median GFLOP/s; numpy/nncore = time ratio (>1: nncore faster); ~ = spread > 10%; "
          "% peak of the measured peak (derived when not measured)")
    print(summary_table(records, peaks))
    errors = [r for r in records if "error" in r]
    for r in errors:
        print(f"not measured: {r['case']} {r['backend']} t={r['threads']}: "
              f"{r['error'].strip().splitlines()[-1]}")
    if args.json:
        harness.write_json(args.json, records, meta)
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
