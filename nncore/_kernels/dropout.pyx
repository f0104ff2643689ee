# dropout.pyx: inverted dropout with a counter-based random mask.
#
# Shapes: the input is a flat run of n elements viewed as (R, G): R mask groups of G elements
# that share one keep/drop decision (G = 1 for dropout; G = H*W for channel-wise dropout2d).
# OUT buffers are overwritten (=).
#
# The mask: group r is kept iff  splitmix64(seed, r) >> 11  >=  threshold,  with
# threshold = ceil(p * 2^53), i.e. a uniform 53-bit number u in [0, 1) is kept iff u >= p
# (P(keep) = 1 - p). The hash is stateless (a function of the seed and the group index only),
# so the mask is the same for every thread count and chunking, and the backward pass recomputes
# it from the seed instead of storing it: dropout is linear, dinp = dropout(dout, same seed).
# Kept elements are scaled by 1 / (1 - p) (computed in the element dtype, as torch).
# Parallelism: one static chunk of groups per thread above PARALLEL_MIN elements. Each element is
# written by one thread, so results are bit-identical for every thread count.
# SIMD: the G = 1 loop is plain C compiled three times (portable / AVX2 / AVX-512F, chosen at run
# time); the hash is integer-only, so every level gives the same bits.
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint64_t

import numpy as np

from ._checks import as_float_array
from ._parallel import get_num_threads

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating


cdef extern from * nogil:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include "simd.h"

    /* splitmix64's output function applied to a Weyl sequence keyed by the seed. */
    static inline __attribute__((always_inline)) uint64_t nnc_dropout_hash(uint64_t seed,
                                                                           uint64_t i) {
        uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    #define NNC_DROPOUT_BODY(T, S)                                                              \\
    static inline __attribute__((always_inline)) void nnc_dropout_body_##S(                     \\
            T *restrict y, const T *restrict x, uint64_t seed, uint64_t thr, T scale,           \\
            ptrdiff_t lo, ptrdiff_t hi) {                                                       \\
        for (ptrdiff_t i = lo; i < hi; i++) {                                                   \\
            uint64_t u = nnc_dropout_hash(seed, (uint64_t)i) >> 11;                             \\
            y[i] = u >= thr ? x[i] * scale : (T)0;                                              \\
        }                                                                                       \\
    }
    NNC_DROPOUT_BODY(float, f)
    NNC_DROPOUT_BODY(double, d)

    #define NNC_DROPOUT_CLONE(ATTR, NAME, T, S)                                                 \\
    static ATTR void nnc_dropout_##NAME##_##S(T *y, const T *x, uint64_t seed, uint64_t thr,    \\
                                              T scale, ptrdiff_t lo, ptrdiff_t hi) {            \\
        nnc_dropout_body_##S(y, x, seed, thr, scale, lo, hi); }
    #define NNC_DROPOUT_NOATTR
    NNC_DROPOUT_CLONE(NNC_DROPOUT_NOATTR, portable, float, f)
    NNC_DROPOUT_CLONE(NNC_DROPOUT_NOATTR, portable, double, d)
    #if NNCORE_X86
    NNC_DROPOUT_CLONE(__attribute__((target("avx2"))), avx2, float, f)
    NNC_DROPOUT_CLONE(__attribute__((target("avx2"))), avx2, double, d)
    NNC_DROPOUT_CLONE(__attribute__((target("avx512f,avx512dq"))), avx512, float, f)
    NNC_DROPOUT_CLONE(__attribute__((target("avx512f,avx512dq"))), avx512, double, d)
    #endif

    #define NNC_DROPOUT_DISPATCH(T, S)                                                          \\
    static void nnc_dropout_##S(T *y, const T *x, uint64_t seed, uint64_t thr, T scale,         \\
                                ptrdiff_t lo, ptrdiff_t hi, int level) {                        \\
        NNC_DROPOUT_X86(S)                                                                      \\
        nnc_dropout_portable_##S(y, x, seed, thr, scale, lo, hi);                               \\
    }
    #if NNCORE_X86
    #define NNC_DROPOUT_X86(S)                                                                  \\
        if (level >= NNCORE_SIMD_AVX512 && __builtin_cpu_supports("avx512dq")) {                \\
            nnc_dropout_avx512_##S(y, x, seed, thr, scale, lo, hi); return; }                   \\
        if (level >= NNCORE_SIMD_AVX2) { nnc_dropout_avx2_##S(y, x, seed, thr, scale, lo, hi);  \\
                                         return; }
    #else
    #define NNC_DROPOUT_X86(S)
    #endif
    NNC_DROPOUT_DISPATCH(float, f)
    NNC_DROPOUT_DISPATCH(double, d)
    """
    uint64_t nnc_dropout_hash(uint64_t seed, uint64_t i)
    void nnc_dropout_f(float *y, const float *x, uint64_t seed, uint64_t thr, float scale,
                       Py_ssize_t lo, Py_ssize_t hi, int level)
    void nnc_dropout_d(double *y, const double *x, uint64_t seed, uint64_t thr, double scale,
                       Py_ssize_t lo, Py_ssize_t hi, int level)

cdef enum:
    PARALLEL_MIN = 32768   # elements; below this a kernel runs on the calling thread


cdef void _dropout(floating[::1] out,           # OUT (R*G,)
                   const floating[::1] inp,     # IN (R*G,)
                   uint64_t seed, uint64_t thr, floating scale, Py_ssize_t G,
                   int nthreads) noexcept nogil:
    cdef Py_ssize_t n = inp.shape[0]
    cdef Py_ssize_t R = n // G
    cdef Py_ssize_t chunk = (R + nthreads - 1) // nthreads
    cdef Py_ssize_t t, r, g, lo, hi
    cdef floating f
    cdef int level = nncore_simd_level()
    for t in prange(nthreads, schedule='static', num_threads=nthreads):
        lo = t * chunk
        hi = min(R, lo + chunk)
        if lo >= hi:
            continue
        if G == 1:
            if floating is float:
                nnc_dropout_f(&out[0], &inp[0], seed, thr, scale, lo, hi, level)
            else:
                nnc_dropout_d(&out[0], &inp[0], seed, thr, scale, lo, hi, level)
        else:
            for r in range(lo, hi):
                f = scale if (nnc_dropout_hash(seed, <uint64_t>r) >> 11) >= thr else 0
                for g in range(r * G, r * G + G):
                    out[g] = inp[g] * f


cdef void _mask(uint8_t[::1] mask, uint64_t seed, uint64_t thr) noexcept nogil:
    cdef Py_ssize_t r
    for r in range(mask.shape[0]):
        mask[r] = (nnc_dropout_hash(seed, <uint64_t>r) >> 11) >= thr


def _dispatch(floating[::1] out, const floating[::1] inp, uint64_t seed, uint64_t thr,
              double scale, Py_ssize_t G, int nthreads):
    with nogil:
        _dropout(out, inp, seed, thr, <floating>scale, G, nthreads)


def _threshold(double p) -> int:
    """ceil(p * 2^53): a 53-bit uniform u is kept iff u >= threshold."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return int(np.ceil(p * 9007199254740992.0))


def dropout_forward(inp, double p, seed, Py_ssize_t group=1):
    """Inverted dropout of `inp` (any shape): zero each group of `group` consecutive elements
    with probability p (decided by a hash of (seed, group index)), scale the rest by 1/(1-p).

    The same (p, seed, group) gives the same mask for every thread count; the backward pass is
    `dropout_forward(dout, p, seed, group)`. p = 0 copies the input; p = 1 gives zeros.
    """
    inp = as_float_array(inp, "input")
    thr = _threshold(p)
    if group < 1 or inp.size % group:
        raise ValueError(f"dropout: group {group} must be >= 1 and divide the input size "
                         f"{inp.size} (shape {inp.shape})")
    if p == 1.0:
        return np.zeros_like(inp)
    if p == 0.0:
        return inp.copy()
    out = np.empty_like(inp)
    if inp.size:
        scale = float(inp.dtype.type(1) / inp.dtype.type(1.0 - p))
        nthreads = 1 if inp.size < PARALLEL_MIN else get_num_threads()
        _dispatch(out.reshape(-1), inp.reshape(-1), int(seed) & 0xFFFFFFFFFFFFFFFF, thr, scale,
                  group, nthreads)
    return out


def dropout_mask(Py_ssize_t n, double p, seed):
    """The keep mask (n,) uint8 (1 = kept) that `dropout_forward` uses for n groups."""
    thr = _threshold(p)
    if n < 0:
        raise ValueError(f"dropout_mask: n must be >= 0, got {n}")
    mask = np.empty(n, np.uint8)
    cdef uint64_t s = int(seed) & 0xFFFFFFFFFFFFFFFF
    cdef uint64_t t = thr
    if n:
        _mask(mask, s, t)
    return mask


def dispatched_simd() -> str:
    """Instruction set the dropout loop dispatches to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


dispatched_simd()  # fill simd.h's cache now, before any parallel region reads it
