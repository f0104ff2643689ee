/* gemm_kernels.h: C side of nncore's GEMM, included only by gemm.pyx.
 *
 * Computes C = alpha * op(A) @ op(B) + beta * C (+ bias broadcast over rows) for float32 (s)
 * and float64 (d). Glossary: op(A) is M x K, op(B) is K x N, C is M x N with row stride ldc;
 * MR x NR is the register micro-tile, MC x KC the packed A block (L2), KC x NC the packed B
 * panel (L3), as in GotoBLAS/BLIS.
 *
 * Micro-kernels (gemm_ukernel_tmpl.h) are instantiated for AVX-512, AVX2+FMA and portable C,
 * each compiled with its own GCC `target` attribute, and one is picked per call from
 * nncore_simd_level(); the build has no -march flags.
 *
 * Determinism: every element of C is computed by the same sequence of floating-point operations
 * whatever the thread count: K is never split between threads, the K blocking (KC) and the
 * micro-kernel depend only on the dtype, the shape and the SIMD level, and threads split M or N
 * on micro-tile boundaries. Results are therefore bit-identical for ANY thread count. (The
 * dot-product path sums per-lane partials and reduces them in a fixed tree: a different order
 * from the other paths, but chosen from the shape alone, so the same holds.)
 */
#ifndef NNCORE_GEMM_KERNELS_H
#define NNCORE_GEMM_KERNELS_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nncore_omp.h"
#include "simd.h"
#include "transpose.h"
#include "activation_elementwise.h" /* vector tanh-GELU, shared with activation.pyx */
#if NNCORE_X86
#include <immintrin.h>
#endif

/* Fused activations, applied to the finished C tile (after alpha, beta and bias) on the last
 * K block: ReLU in registers; the GELUs on the tile just stored (still in L1), with the same
 * code as activation.pyx's gelu_forward (libm erf; the vector tanh-GELU of
 * activation_elementwise.h above the portable level), so fused == unfused bit for bit. */
#define NNCORE_GEMM_ACT_NONE 0
#define NNCORE_GEMM_ACT_RELU 1
#define NNCORE_GEMM_ACT_GELU 2
#define NNCORE_GEMM_ACT_GELU_TANH 3

typedef struct {
    float alpha, beta;
    int first; /* 1 on the first K block: apply beta and bias; else accumulate into C */
    int last;  /* 1 on the last K block: apply the activation */
    int act;   /* NNCORE_GEMM_ACT_* */
} nncore_gemm_epi_s;

typedef struct {
    double alpha, beta;
    int first, last, act;
} nncore_gemm_epi_d;

/* ---------------------------------------------------------------- transpose helpers */
/* Packing transposes 8 x 8 float / 4 x 4 double blocks in registers with transpose.h's
 * nncore_tr8x8_f32 / nncore_tr4x4_f64 (AVX; dst[c*ldd + r] = src[r*lds + c]). */

/* ---------------------------------------------------------------- GELU epilogues */
/* c[i*ldc + j] = gelu(c[i*ldc + j]) for i < m, j < n (act: NNCORE_GEMM_ACT_GELU[_TANH]). */
#define NNCORE_GEMM_ACT_ROWS(SFX, T, ERF, EXP, EW)                                              \
    static void nncore_gemm_act_rows_##SFX(T *c, int64_t ldc, int64_t m, int64_t n, int act) {  \
        const T half = (T)0.5, one = (T)1, sqrt1_2 = (T)0.70710678118654752440;                 \
        const T beta2 = (T)(2 * NNCORE_GELU_BETA), kappa = (T)NNCORE_GELU_KAPPA;                \
        const int level = nncore_simd_level();                                                  \
        for (int64_t i = 0; i < m; i++) {                                                       \
            T *ci = c + i * ldc;                                                                \
            if (act == NNCORE_GEMM_ACT_GELU) {                                                  \
                if (level > NNCORE_SIMD_PORTABLE &&                                             \
                    EW(NNCORE_EW_GELU, ci, ci, ci, (ptrdiff_t)n, level))                        \
                    continue;                                                                   \
                for (int64_t j = 0; j < n; j++) {                                               \
                    const T v = ci[j];                                                          \
                    ci[j] = v * half * (one + ERF(v * sqrt1_2));                                \
                }                                                                               \
            } else if (act == NNCORE_GEMM_ACT_GELU_TANH) {                                      \
                if (level > NNCORE_SIMD_PORTABLE &&                                             \
                    EW(NNCORE_EW_GELU_TANH, ci, ci, ci, (ptrdiff_t)n, level))                   \
                    continue;                                                                   \
                for (int64_t j = 0; j < n; j++) {                                               \
                    const T v = ci[j];                                                          \
                    const T z = beta2 * (v + kappa * v * v * v);                                \
                    const T e = EXP(-(z < 0 ? -z : z));                                         \
                    const T t = z >= 0 ? one : e;                                               \
                    ci[j] = v * (t / (one + e));                                                \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }
NNCORE_GEMM_ACT_ROWS(s, float, erff, expf, nncore_ew_f32)
NNCORE_GEMM_ACT_ROWS(d, double, erf, exp, nncore_ew_f64)
#undef NNCORE_GEMM_ACT_ROWS

/* ---------------------------------------------------------------- micro-kernel instances */
#if NNCORE_X86
/* AVX-512F, float32: 14 x 32 tile (28 zmm accumulators). */
#define UK_SFX avx512_s
#define UK_TKR_EMB_BCAST 1 /* column kernel: FMAs with embedded broadcasts of op(B) */
#define UK_TCOLS 12 /* column-vector kernel: up to 12 columns, 2 vectors (32 rows) */
#define UK_TNV 2
#define UK_DOT 1
#define UK_REDUCE(v) _mm512_reduce_add_ps(v)
#define UK_TRB 8
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr8x8_f32(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx512f")))
#define UK_T float
#define UK_V __m512
#define UK_VL 16
#define UK_MR 14
#define UK_NV 2
#define UK_EPI nncore_gemm_epi_s
#define UK_ACT_ROWS nncore_gemm_act_rows_s
#define UK_ZERO() _mm512_setzero_ps()
#define UK_SET1(x) _mm512_set1_ps(x)
#define UK_LOADU(p) _mm512_loadu_ps(p)
#define UK_STOREU(p, v) _mm512_storeu_ps(p, v)
#define UK_FMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm512_mul_ps(a, b)
#define UK_ADD(a, b) _mm512_add_ps(a, b)
#define UK_RELU(v) _mm512_max_ps(_mm512_setzero_ps(), v) /* NaN kept */
#define UK_HAS_MASK 1
#define UK_MASK_T __mmask16
#define UK_MASK(l) ((__mmask16)((1u << (l)) - 1u))
#define UK_MASK_LOADZ(k, p) _mm512_maskz_loadu_ps(k, p)
#define UK_MASK_STORE(p, k, v) _mm512_mask_storeu_ps(p, k, v)
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* narrow variant (one vector per row) for the last N <= NR/2 columns */
#define UK_SFX avx512n_s
#define UK_TRB 8
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr8x8_f32(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx512f")))
#define UK_T float
#define UK_V __m512
#define UK_VL 16
#define UK_MR 14
#define UK_NV 1
#define UK_EPI nncore_gemm_epi_s
#define UK_ACT_ROWS nncore_gemm_act_rows_s
#define UK_ZERO() _mm512_setzero_ps()
#define UK_SET1(x) _mm512_set1_ps(x)
#define UK_LOADU(p) _mm512_loadu_ps(p)
#define UK_STOREU(p, v) _mm512_storeu_ps(p, v)
#define UK_FMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm512_mul_ps(a, b)
#define UK_ADD(a, b) _mm512_add_ps(a, b)
#define UK_RELU(v) _mm512_max_ps(_mm512_setzero_ps(), v) /* NaN kept */
#define UK_HAS_MASK 1
#define UK_MASK_T __mmask16
#define UK_MASK(l) ((__mmask16)((1u << (l)) - 1u))
#define UK_MASK_LOADZ(k, p) _mm512_maskz_loadu_ps(k, p)
#define UK_MASK_STORE(p, k, v) _mm512_mask_storeu_ps(p, k, v)
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* AVX-512F, float64: 14 x 16 tile. */
#define UK_SFX avx512_d
#define UK_TKR_EMB_BCAST 1
#define UK_TCOLS 12 /* column-vector kernel: up to 12 columns, 2 vectors (16 rows) */
#define UK_TNV 2
#define UK_DOT 1
#define UK_REDUCE(v) _mm512_reduce_add_pd(v)
#define UK_TRB 4
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr4x4_f64(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx512f")))
#define UK_T double
#define UK_V __m512d
#define UK_VL 8
#define UK_MR 14
#define UK_NV 2
#define UK_EPI nncore_gemm_epi_d
#define UK_ACT_ROWS nncore_gemm_act_rows_d
#define UK_ZERO() _mm512_setzero_pd()
#define UK_SET1(x) _mm512_set1_pd(x)
#define UK_LOADU(p) _mm512_loadu_pd(p)
#define UK_STOREU(p, v) _mm512_storeu_pd(p, v)
#define UK_FMADD(a, b, c) _mm512_fmadd_pd(a, b, c)
#define UK_MUL(a, b) _mm512_mul_pd(a, b)
#define UK_ADD(a, b) _mm512_add_pd(a, b)
#define UK_RELU(v) _mm512_max_pd(_mm512_setzero_pd(), v) /* NaN kept */
#define UK_HAS_MASK 1
#define UK_MASK_T __mmask8
#define UK_MASK(l) ((__mmask8)((1u << (l)) - 1u))
#define UK_MASK_LOADZ(k, p) _mm512_maskz_loadu_pd(k, p)
#define UK_MASK_STORE(p, k, v) _mm512_mask_storeu_pd(p, k, v)
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* narrow variant (one vector per row) for the last N <= NR/2 columns */
#define UK_SFX avx512n_d
#define UK_TRB 4
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr4x4_f64(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx512f")))
#define UK_T double
#define UK_V __m512d
#define UK_VL 8
#define UK_MR 14
#define UK_NV 1
#define UK_EPI nncore_gemm_epi_d
#define UK_ACT_ROWS nncore_gemm_act_rows_d
#define UK_ZERO() _mm512_setzero_pd()
#define UK_SET1(x) _mm512_set1_pd(x)
#define UK_LOADU(p) _mm512_loadu_pd(p)
#define UK_STOREU(p, v) _mm512_storeu_pd(p, v)
#define UK_FMADD(a, b, c) _mm512_fmadd_pd(a, b, c)
#define UK_MUL(a, b) _mm512_mul_pd(a, b)
#define UK_ADD(a, b) _mm512_add_pd(a, b)
#define UK_RELU(v) _mm512_max_pd(_mm512_setzero_pd(), v) /* NaN kept */
#define UK_HAS_MASK 1
#define UK_MASK_T __mmask8
#define UK_MASK(l) ((__mmask8)((1u << (l)) - 1u))
#define UK_MASK_LOADZ(k, p) _mm512_maskz_loadu_pd(k, p)
#define UK_MASK_STORE(p, k, v) _mm512_mask_storeu_pd(p, k, v)
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* AVX-512 level, 256-bit vectors (AVX512VL: 32 ymm registers, masks): 14 x 8 (float) and
 * 14 x 4 (double) tiles for a last panel of <= NR/4 columns. On cores that split a zmm FMA
 * into two 256-bit halves (Zen 4) a ymm FMA costs half a zmm one, so a 6-column panel runs
 * about twice as fast as in the 16-column narrow kernel. */
#define UK_SFX avx512q_s
#define UK_TRB 8
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr8x8_f32(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx512f,avx512vl,fma")))
#define UK_T float
#define UK_V __m256
#define UK_VL 8
#define UK_MR 14
#define UK_NV 1
#define UK_EPI nncore_gemm_epi_s
#define UK_ACT_ROWS nncore_gemm_act_rows_s
#define UK_ZERO() _mm256_setzero_ps()
#define UK_SET1(x) _mm256_set1_ps(x)
#define UK_LOADU(p) _mm256_loadu_ps(p)
#define UK_STOREU(p, v) _mm256_storeu_ps(p, v)
#define UK_FMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm256_mul_ps(a, b)
#define UK_ADD(a, b) _mm256_add_ps(a, b)
#define UK_RELU(v) _mm256_max_ps(_mm256_setzero_ps(), v) /* NaN kept */
#define UK_HAS_MASK 1
#define UK_MASK_T __mmask8
#define UK_MASK(l) ((__mmask8)((1u << (l)) - 1u))
#define UK_MASK_LOADZ(k, p) _mm256_maskz_loadu_ps(k, p)
#define UK_MASK_STORE(p, k, v) _mm256_mask_storeu_ps(p, k, v)
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

#define UK_SFX avx512q_d
#define UK_TRB 4
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr4x4_f64(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx512f,avx512vl,fma")))
#define UK_T double
#define UK_V __m256d
#define UK_VL 4
#define UK_MR 14
#define UK_NV 1
#define UK_EPI nncore_gemm_epi_d
#define UK_ACT_ROWS nncore_gemm_act_rows_d
#define UK_ZERO() _mm256_setzero_pd()
#define UK_SET1(x) _mm256_set1_pd(x)
#define UK_LOADU(p) _mm256_loadu_pd(p)
#define UK_STOREU(p, v) _mm256_storeu_pd(p, v)
#define UK_FMADD(a, b, c) _mm256_fmadd_pd(a, b, c)
#define UK_MUL(a, b) _mm256_mul_pd(a, b)
#define UK_ADD(a, b) _mm256_add_pd(a, b)
#define UK_RELU(v) _mm256_max_pd(_mm256_setzero_pd(), v) /* NaN kept */
#define UK_HAS_MASK 1
#define UK_MASK_T __mmask8
#define UK_MASK(l) ((__mmask8)((1u << (l)) - 1u))
#define UK_MASK_LOADZ(k, p) _mm256_maskz_loadu_pd(k, p)
#define UK_MASK_STORE(p, k, v) _mm256_mask_storeu_pd(p, k, v)
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* AVX2 + FMA, float32: 6 x 16 tile (12 ymm accumulators of 16 registers). */
#define UK_SFX avx2_s
#define UK_TCOLS 6 /* column-vector kernel: up to 6 columns, 2 vectors (16 rows) */
#define UK_TNV 2
#define UK_TRB 8
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr8x8_f32(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx2,fma")))
#define UK_T float
#define UK_V __m256
#define UK_VL 8
#define UK_MR 6
#define UK_NV 2
#define UK_EPI nncore_gemm_epi_s
#define UK_ACT_ROWS nncore_gemm_act_rows_s
#define UK_ZERO() _mm256_setzero_ps()
#define UK_SET1(x) _mm256_set1_ps(x)
#define UK_LOADU(p) _mm256_loadu_ps(p)
#define UK_STOREU(p, v) _mm256_storeu_ps(p, v)
#define UK_FMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm256_mul_ps(a, b)
#define UK_ADD(a, b) _mm256_add_ps(a, b)
#define UK_RELU(v) _mm256_max_ps(_mm256_setzero_ps(), v) /* NaN kept */
#define UK_HAS_MASK 0
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* narrow variant (one vector per row) for the last N <= NR/2 columns */
#define UK_SFX avx2n_s
#define UK_TRB 8
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr8x8_f32(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx2,fma")))
#define UK_T float
#define UK_V __m256
#define UK_VL 8
#define UK_MR 6
#define UK_NV 1
#define UK_EPI nncore_gemm_epi_s
#define UK_ACT_ROWS nncore_gemm_act_rows_s
#define UK_ZERO() _mm256_setzero_ps()
#define UK_SET1(x) _mm256_set1_ps(x)
#define UK_LOADU(p) _mm256_loadu_ps(p)
#define UK_STOREU(p, v) _mm256_storeu_ps(p, v)
#define UK_FMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define UK_MUL(a, b) _mm256_mul_ps(a, b)
#define UK_ADD(a, b) _mm256_add_ps(a, b)
#define UK_RELU(v) _mm256_max_ps(_mm256_setzero_ps(), v) /* NaN kept */
#define UK_HAS_MASK 0
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* AVX2 + FMA, float64: 6 x 8 tile. */
#define UK_SFX avx2_d
#define UK_TCOLS 6 /* column-vector kernel: up to 6 columns, 2 vectors (8 rows) */
#define UK_TNV 2
#define UK_TRB 4
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr4x4_f64(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx2,fma")))
#define UK_T double
#define UK_V __m256d
#define UK_VL 4
#define UK_MR 6
#define UK_NV 2
#define UK_EPI nncore_gemm_epi_d
#define UK_ACT_ROWS nncore_gemm_act_rows_d
#define UK_ZERO() _mm256_setzero_pd()
#define UK_SET1(x) _mm256_set1_pd(x)
#define UK_LOADU(p) _mm256_loadu_pd(p)
#define UK_STOREU(p, v) _mm256_storeu_pd(p, v)
#define UK_FMADD(a, b, c) _mm256_fmadd_pd(a, b, c)
#define UK_MUL(a, b) _mm256_mul_pd(a, b)
#define UK_ADD(a, b) _mm256_add_pd(a, b)
#define UK_RELU(v) _mm256_max_pd(_mm256_setzero_pd(), v) /* NaN kept */
#define UK_HAS_MASK 0
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* narrow variant (one vector per row) for the last N <= NR/2 columns */
#define UK_SFX avx2n_d
#define UK_TRB 4
#define UK_TRANSPOSE(s, ls, d, ld) nncore_tr4x4_f64(s, ls, d, ld)
#define UK_ATTR __attribute__((target("avx2,fma")))
#define UK_T double
#define UK_V __m256d
#define UK_VL 4
#define UK_MR 6
#define UK_NV 1
#define UK_EPI nncore_gemm_epi_d
#define UK_ACT_ROWS nncore_gemm_act_rows_d
#define UK_ZERO() _mm256_setzero_pd()
#define UK_SET1(x) _mm256_set1_pd(x)
#define UK_LOADU(p) _mm256_loadu_pd(p)
#define UK_STOREU(p, v) _mm256_storeu_pd(p, v)
#define UK_FMADD(a, b, c) _mm256_fmadd_pd(a, b, c)
#define UK_MUL(a, b) _mm256_mul_pd(a, b)
#define UK_ADD(a, b) _mm256_add_pd(a, b)
#define UK_RELU(v) _mm256_max_pd(_mm256_setzero_pd(), v) /* NaN kept */
#define UK_HAS_MASK 0
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"
#endif /* NNCORE_X86 */

/* Portable C: scalar "vectors" of one lane, 4 x 8 tile; the compiler vectorises what the
 * baseline instruction set allows (SSE2 on x86-64, NEON on aarch64). No FMA contraction is
 * requested: a*b+c is written as two operations. */
#define UK_SFX portable_s
#define UK_ATTR
#define UK_T float
#define UK_V float
#define UK_VL 1
#define UK_MR 4
#define UK_NV 8
#define UK_EPI nncore_gemm_epi_s
#define UK_ACT_ROWS nncore_gemm_act_rows_s
#define UK_ZERO() 0.0f
#define UK_SET1(x) (x)
#define UK_LOADU(p) (*(p))
#define UK_STOREU(p, v) (*(p) = (v))
#define UK_FMADD(a, b, c) ((a) * (b) + (c))
#define UK_MUL(a, b) ((a) * (b))
#define UK_ADD(a, b) ((a) + (b))
#define UK_RELU(v) ((v) <= 0 ? (UK_T)0 : (v)) /* NaN kept */
#define UK_HAS_MASK 0
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

#define UK_SFX portable_d
#define UK_ATTR
#define UK_T double
#define UK_V double
#define UK_VL 1
#define UK_MR 4
#define UK_NV 8
#define UK_EPI nncore_gemm_epi_d
#define UK_ACT_ROWS nncore_gemm_act_rows_d
#define UK_ZERO() 0.0
#define UK_SET1(x) (x)
#define UK_LOADU(p) (*(p))
#define UK_STOREU(p, v) (*(p) = (v))
#define UK_FMADD(a, b, c) ((a) * (b) + (c))
#define UK_MUL(a, b) ((a) * (b))
#define UK_ADD(a, b) ((a) + (b))
#define UK_RELU(v) ((v) <= 0 ? (UK_T)0 : (v)) /* NaN kept */
#define UK_HAS_MASK 0
#include "gemm_ukernel_tmpl.h"
#include "gemm_ukernel_undef.h"

/* ------------------------------------------------------------------ shared tuning state */
/* Test hooks (set from gemm.pyx's private _set_*_for_testing functions): a cap on the SIMD
 * level, block-size overrides (0 = default) and a forced path. */
static int nncore_gemm_level_cap = 2;
static int64_t nncore_gemm_override_mc = 0, nncore_gemm_override_kc = 0,
               nncore_gemm_override_nc = 0;
#define NNCORE_GEMM_PATH_AUTO 0
#define NNCORE_GEMM_PATH_PACKED 1
#define NNCORE_GEMM_PATH_DIRECT 2
#define NNCORE_GEMM_PATH_DOT 3
#define NNCORE_GEMM_PATH_COLUMN 4
static int nncore_gemm_force_path = NNCORE_GEMM_PATH_AUTO;
/* 1: threads share packed op(B) panels (off by default: see docs/gemm.md, set from gemm.pyx) */
static int nncore_gemm_allow_shared = 0;
static int nncore_gemm_allow_tkr = 1;    /* 0: no column-vector kernel for thin panels */
static int nncore_gemm_allow_stream = 1; /* 0: column path packs each panel before its k loop */

static inline int nncore_gemm_level(void) {
    int level = nncore_simd_level();
    return level < nncore_gemm_level_cap ? level : nncore_gemm_level_cap;
}

/* AVX512VL (256-bit AVX-512 forms) for the quarter-width kernels; every AVX-512 CPU but
 * Xeon Phi has it. */
static int nncore_gemm_vl_cached = -1;
static inline int nncore_gemm_has_vl(void) {
#if NNCORE_X86
    if (nncore_gemm_vl_cached < 0) {
        __builtin_cpu_init();
        nncore_gemm_vl_cached = __builtin_cpu_supports("avx512vl") ? 1 : 0;
    }
    return nncore_gemm_vl_cached;
#else
    return 0;
#endif
}

static inline const char *nncore_gemm_level_name(void) {
    return nncore_simd_name(nncore_gemm_level());
}

/* ------------------------------------------------------------------------ drivers */
#define GD_T float
#define GD_SFX s
#include "gemm_driver_tmpl.h"
#undef GD_T
#undef GD_SFX

#define GD_T double
#define GD_SFX d
#include "gemm_driver_tmpl.h"
#undef GD_T
#undef GD_SFX

#endif /* NNCORE_GEMM_KERNELS_H */
