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
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from nncore.bench import harness

__all__ = ["CASES", "derived_peak", "gemm_worker", "measured_peak"]

FAMILY = "gemm"
# nncore with its default settings, and with the threads' shared op(B) packing forced on / off
NNCORE_VARIANTS = {"nncore": None, "nncore_shared": True, "nncore_private": False}

# (group, label, M, N, K, trans_a, trans_b, dtype, epilogue)
# epilogue "bias_relu": nncore fuses bias + ReLU; NumPy does matmul, += bias, maximum in place.
CASES: list[tuple] = (
    [("square", f"{n}^3", n, n, n, False, False, "float32", None) for n in (256, 512, 1024, 2048)]
    + [("square", "1024^3 f64", 1024, 1024, 1024, False, False, "float64", None)]
    + [
        ("nn", "64x128 @ 128x10", 64, 10, 128, False, False, "float32", None),
        ("nn", "50176x75 @ 75x6", 50176, 6, 75, False, False, "float32", None),
        ("nn", "32x256 @ 256x1024", 32, 1024, 256, False, False, "float32", None),
        ("nn", "x@W.T 64x784 W128x784", 64, 128, 784, False, True, "float32", None),
        ("nn", "x.T@dout 784x64 @ 64x128", 784, 128, 64, True, False, "float32", None),
        ("nn", "64x784@W.T +b relu", 64, 128, 784, False, True, "float32", "bias_relu"),
        ("wide", "256x256 @ 256x4096", 256, 4096, 256, False, False, "float32", None),
        ("lm", "1120x256 @ 256x10000", 1120, 10000, 256, False, False, "float32", None),
        # im2col, per sample as conv.pyx calls it: W (OC, C*KH*KW) @ col (C*KH*KW, OH*OW)
        ("im2col", "conv 3->32 3x3 32x32", 32, 1024, 27, False, False, "float32", None),
        ("im2col", "conv 32->64 3x3 16x16", 64, 256, 288, False, False, "float32", None),
        ("im2col", "conv 1->6 5x5 24x24", 6, 576, 25, False, False, "float32", None),
        ("im2col", "dW 32x1024 @ col.T", 32, 27, 1024, False, True, "float32", None),
        ("im2col", "dcol W.T 27x32 @ 32x1024", 27, 1024, 32, True, False, "float32", None),
        # im2col over the whole batch: (N*OH*OW, C*KH*KW) @ (C*KH*KW, OC)
        ("im2col", "batch 16384x288 @ 288x64", 16384, 64, 288, False, False, "float32", None),
    ]
)


# ------------------------------------------------------------------ peak

_PEAK_C = r"""
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
/* 12 independent FMA chains (latency 4 x 2 pipes needs >= 8) on `lanes`-wide vectors. */
#define BODY(V, SET1, FMA, ADD, STORE, T)                                                   \
    V a0 = SET1(1), a1 = SET1(2), a2 = SET1(3), a3 = SET1(4), a4 = SET1(5), a5 = SET1(6);  \
    V a6 = SET1(7), a7 = SET1(8), a8 = SET1(9), a9 = SET1(10), a10 = SET1(11), a11 = SET1(12);\
    const V b = SET1(0.999999f), c = SET1(1e-7f);                                           \
    for (long i = 0; i < iters; i++) {                                                      \
        a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);     \
        a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);     \
        a8 = FMA(a8, b, c); a9 = FMA(a9, b, c); a10 = FMA(a10, b, c); a11 = FMA(a11, b, c); \
        __asm__ volatile("" ::: "memory");                                                   \
    }                                                                                       \
    V s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                            \
    T out[16]; STORE(out, s); return out[0];
__attribute__((target("avx512f"))) static float run512(long iters) {
    BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, float)
}
__attribute__((target("avx2,fma"))) static float run256(long iters) {
    BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, float)
}
int main(int argc, char **argv) {
    int threads = atoi(argv[1]), lanes = atoi(argv[2]);
    long iters = atol(argv[3]);
    float sink = 0;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += lanes == 16 ? run512(iters) : run256(iters);
        double t = omp_get_wtime() - t0;
        double gf = (double)threads * iters * 12 * lanes * 2 / t / 1e9;
        if (gf > best) best = gf;
    }
    printf("%f %f\n", best, sink);
    return 0;
}
"""


def _cpu_mhz() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("cpu MHz"):
                    return float(ln.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def _lanes(kernel: str) -> int:
    return {"avx512": 16, "avx2+fma": 8}.get(kernel, 4)


def derived_peak(threads: int, kernel: str, fma_pipes: int = 2) -> dict:
    """Peak float32 GFLOP/s = threads x GHz x FMA pipes x 2 x lanes, from /proc/cpuinfo."""
    mhz = _cpu_mhz()
    lanes = _lanes(kernel)
    gflops = None if mhz is None else threads * mhz / 1e3 * fma_pipes * 2 * lanes
    return {"cpu_mhz": mhz, "fma_pipes": fma_pipes, "lanes": lanes, "threads": threads,
            "gflops": gflops,
            "formula": f"{threads} x {mhz} MHz x {fma_pipes} FMA x 2 x {lanes} lanes"}


def measured_peak(threads: int, kernel: str) -> float | None:
    """Float32 GFLOP/s of a tight FMA loop on `threads` threads (None without gcc/x86)."""
    lanes = _lanes(kernel)
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None or lanes not in (8, 16):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "peak.c", Path(tmp) / "peak"
        src.write_text(_PEAK_C)
        build = subprocess.run([gcc, "-O2", "-fopenmp", str(src), "-o", str(exe)],
                               capture_output=True, text=True)
        if build.returncode != 0:
            return None
        env = harness.thread_env(threads)
        res = subprocess.run([str(exe), str(threads), str(lanes), str(20_000_000)],
                             capture_output=True, text=True, env=env, timeout=120)
        if res.returncode != 0:
            return None
        return float(res.stdout.split()[0])


# ------------------------------------------------------------------ worker side

def _case_fn(backend: str, case: tuple, threads: int):
    """(callable, flops) for one case, after checking the backend against float64 matmul."""
    import numpy as np

    _, label, M, N, K, ta, tb, dtype, epi = case
    rng = np.random.default_rng(0)
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    bias = rng.standard_normal(N).astype(dtype)
    a_op, b_op = (a.T if ta else a), (b.T if tb else b)
    out = np.empty((M, N), dtype)
    if backend in NNCORE_VARIANTS:
        from nncore._kernels import gemm as G
        from nncore._kernels._parallel import set_num_threads

        set_num_threads(threads)
        shared = NNCORE_VARIANTS[backend]  # None: the default setting
        act = "relu" if epi == "bias_relu" else "none"
        bias_arg = bias if epi == "bias_relu" else None
        if shared is None:  # nothing but the call: tiny cases take ~3 us
            def fn():
                return G.gemm(a, b, out, trans_a=ta, trans_b=tb, bias=bias_arg, activation=act)
        else:  # a variant: switch the setting for this call only
            def fn():
                G._set_shared_packing_for_testing(shared)
                try:
                    return G.gemm(a, b, out, trans_a=ta, trans_b=tb, bias=bias_arg,
                                  activation=act)
                finally:
                    G._set_shared_packing_for_testing(None)
    elif backend == "numpy":
        if epi == "bias_relu":
            def fn():
                np.matmul(a_op, b_op, out=out)
                np.add(out, bias, out=out)
                return np.maximum(out, 0, out=out)
        else:
            def fn():
                return np.matmul(a_op, b_op, out=out)
    else:
        raise ValueError(f"bench_gemm: unknown backend {backend!r}")
    got = fn().astype(np.float64)
    ref = a_op.astype(np.float64) @ b_op.astype(np.float64)
    if epi == "bias_relu":
        ref = np.maximum(ref + bias, 0)
    tol = 1e-3 * np.sqrt(K) * (1 + np.abs(ref)) if dtype == "float32" else 1e-9 * K
    if not np.all(np.abs(got - ref) <= tol):
        raise AssertionError(f"{backend} {label}: wrong result")
    return fn, 2.0 * M * N * K


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

def _merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One record per (case, backend, threads): the median over every repeat of every round."""
    import statistics

    merged: dict[tuple, dict] = {}
    for recs in rounds:
        for r in recs:
            key = (r["case"], r["backend"], r["threads"])
            if "median" not in r:
                merged.setdefault(key, r)
                continue
            m = merged.get(key)
            if m is None or "median" not in m:
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
    rounds = []
    for i in range(max(1, args.rounds)):
        print(f"[gemm] round {i + 1}/{args.rounds}", file=sys.stderr, flush=True)
        order = backends if i % 2 == 0 else backends[::-1]
        rounds.append(harness.collect("bench_gemm", threads, order, child,
                                      isolate=args.isolate))
    records = _merge_rounds(rounds)
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
