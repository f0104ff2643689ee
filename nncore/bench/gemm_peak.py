"""Peak float32 GFLOP/s for the GEMM benchmark: derived from /proc/cpuinfo, and measured.

Derived = threads x clock x FMA pipes x 2 (multiply + add) x SIMD lanes. Measured = a small C
loop of independent FMAs, compiled with gcc and the kernel's `target` attribute.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from nncore.bench import harness

__all__ = ["derived_peak", "measured_peak"]

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
