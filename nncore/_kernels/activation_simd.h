/* activation_simd.h: vectorised row primitives for the softmax family and cross-entropy.
 *
 *   nncore_max_*(x, n)               max over x[0..n) ignoring NaN (-inf for an all-NaN row)
 *   nncore_exp_sub_*(y, x, s, n)     y[j] = exp(x[j] - s) (y may be NULL), returns sum in double
 *   nncore_sum_exp_sub_*(x, s, n)    the same sum without storing
 *   nncore_sum_*(x, n)               sum of x in double
 *   nncore_exp_sub_acc_*(y, x, m, s, n)   y[j] = exp(x[j] - m[j]) (y may be NULL), s[j] += y[j]
 *                                    (double s): the column-wise step of a strided softmax
 *
 * Each has an AVX-512F body, an AVX2+FMA body and a portable body (libm), chosen per call from
 * `level` (simd.h's nncore_simd_level()). The vector exp reduces x = k ln2 + r, |r| <= ln2/2,
 * evaluates the Taylor series of exp(r) by Horner (degree 7 for float: truncation ~5e-9
 * relative; degree 13 for double: ~4e-18), then scales by 2^k with gradual underflow
 * (scalef on AVX-512, two exact power-of-two factors on AVX2). Error is within ~2 ulp of libm;
 * NaN propagates, exp(-inf) = 0 and overflow gives inf. Sums run in a fixed lane order, so a
 * given row and SIMD level always give the same bits, whatever the thread count.
 */
#ifndef NNCORE_ACTIVATION_SIMD_H
#define NNCORE_ACTIVATION_SIMD_H
#include <math.h>
#include <stddef.h>
#include "simd.h"
#if NNCORE_X86
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- portable bodies */

static float nncore_max_f32_portable(const float *x, ptrdiff_t n) {
    float m = -INFINITY;
    for (ptrdiff_t j = 0; j < n; j++)
        if (x[j] > m) m = x[j];
    return m;
}

static double nncore_max_f64_portable(const double *x, ptrdiff_t n) {
    double m = -INFINITY;
    for (ptrdiff_t j = 0; j < n; j++)
        if (x[j] > m) m = x[j];
    return m;
}

static double nncore_exp_sub_f32_portable(float *y, const float *x, float s, ptrdiff_t n) {
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < n; j++) {
        float e = expf(x[j] - s);
        if (y) y[j] = e;
        sum += e;
    }
    return sum;
}

static double nncore_exp_sub_f64_portable(double *y, const double *x, double s, ptrdiff_t n) {
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < n; j++) {
        double e = exp(x[j] - s);
        if (y) y[j] = e;
        sum += e;
    }
    return sum;
}

static double nncore_sum_f32_portable(const float *x, ptrdiff_t n) {
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < n; j++) sum += x[j];
    return sum;
}

static double nncore_sum_f64_portable(const double *x, ptrdiff_t n) {
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < n; j++) sum += x[j];
    return sum;
}

static void nncore_exp_sub_acc_f32_portable(float *y, const float *x, const float *m,
                                            double *s, ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++) {
        float e = expf(x[j] - m[j]);
        if (y) y[j] = e;
        s[j] += e;
    }
}

static void nncore_exp_sub_acc_f64_portable(double *y, const double *x, const double *m,
                                            double *s, ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++) {
        double e = exp(x[j] - m[j]);
        if (y) y[j] = e;
        s[j] += e;
    }
}

#if NNCORE_X86
/* Range-reduction constants: ln2 split so that k * LN2_HI is exact for the k that occur. */
#define NNCORE_LOG2E 1.44269504088896340736
#define NNCORE_LN2_HI_F 0.693359375f
#define NNCORE_LN2_LO_F -2.12194440054690583e-4f
#define NNCORE_LN2_HI_D 6.93147180369123816490e-01
#define NNCORE_LN2_LO_D 1.90821492927058770002e-10

/* ---------------------------------------------------------------- AVX-512F bodies */

#define NNCORE_AVX512 __attribute__((target("avx512f")))

NNCORE_AVX512 static inline __m512 nncore_exp_ps512(__m512 x) {
    /* max/min return their second operand when one is NaN: NaN passes through the clamp. */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps((float)NNCORE_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(NNCORE_LN2_HI_F), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(NNCORE_LN2_LO_F), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

NNCORE_AVX512 static inline __m512d nncore_exp_pd512(__m512d x) {
    x = _mm512_min_pd(_mm512_set1_pd(710.0), _mm512_max_pd(_mm512_set1_pd(-746.0), x));
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(NNCORE_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(NNCORE_LN2_HI_D), x);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(NNCORE_LN2_LO_D), r);
    static const double c[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                                 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                                 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                 1.0 / 6.0, 0.5, 1.0, 1.0};
    __m512d p = _mm512_set1_pd(c[0]);
    for (int i = 1; i < 14; i++) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c[i]));
    return _mm512_scalef_pd(p, k);
}

NNCORE_AVX512 static float nncore_max_f32_avx512(const float *x, ptrdiff_t n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 acc = ninf;
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) acc = _mm512_max_ps(_mm512_loadu_ps(x + j), acc);
    if (j < n) {
        __mmask16 m = (__mmask16)((1u << (n - j)) - 1u);
        acc = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m, x + j), acc);
    }
    return _mm512_reduce_max_ps(acc);
}

NNCORE_AVX512 static double nncore_max_f64_avx512(const double *x, ptrdiff_t n) {
    const __m512d ninf = _mm512_set1_pd(-INFINITY);
    __m512d acc = ninf;
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) acc = _mm512_max_pd(_mm512_loadu_pd(x + j), acc);
    if (j < n) {
        __mmask8 m = (__mmask8)((1u << (n - j)) - 1u);
        acc = _mm512_max_pd(_mm512_mask_loadu_pd(ninf, m, x + j), acc);
    }
    return _mm512_reduce_max_pd(acc);
}

NNCORE_AVX512 static double nncore_exp_sub_f32_avx512(float *y, const float *x, float s,
                                                      ptrdiff_t n) {
    const __m512 vs = _mm512_set1_ps(s), ninf = _mm512_set1_ps(-INFINITY);
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    ptrdiff_t j = 0;
    for (; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
        __m512 e = nncore_exp_ps512(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, m, x + j), vs));
        e = _mm512_maskz_mov_ps(m, e);                       /* lanes past n add nothing */
        if (y) _mm512_mask_storeu_ps(y + j, m, e);
        acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(
                                       _mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

NNCORE_AVX512 static double nncore_exp_sub_f64_avx512(double *y, const double *x, double s,
                                                      ptrdiff_t n) {
    const __m512d vs = _mm512_set1_pd(s), ninf = _mm512_set1_pd(-INFINITY);
    __m512d acc = _mm512_setzero_pd();
    ptrdiff_t j = 0;
    for (; j < n; j += 8) {
        __mmask8 m = n - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - j)) - 1u);
        __m512d e = nncore_exp_pd512(_mm512_sub_pd(_mm512_mask_loadu_pd(ninf, m, x + j), vs));
        e = _mm512_maskz_mov_pd(m, e);
        if (y) _mm512_mask_storeu_pd(y + j, m, e);
        acc = _mm512_add_pd(acc, e);
    }
    return _mm512_reduce_add_pd(acc);
}

NNCORE_AVX512 static double nncore_sum_f32_avx512(const float *x, ptrdiff_t n) {
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    ptrdiff_t j = 0;
    for (; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + j);
        acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(
                                       _mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

NNCORE_AVX512 static double nncore_sum_f64_avx512(const double *x, ptrdiff_t n) {
    __m512d acc = _mm512_setzero_pd();
    ptrdiff_t j = 0;
    for (; j < n; j += 8) {
        __mmask8 m = n - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - j)) - 1u);
        acc = _mm512_add_pd(acc, _mm512_maskz_loadu_pd(m, x + j));
    }
    return _mm512_reduce_add_pd(acc);
}

NNCORE_AVX512 static void nncore_exp_sub_acc_f32_avx512(float *y, const float *x, const float *m,
                                                       double *s, ptrdiff_t n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (ptrdiff_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
        __m512 e = nncore_exp_ps512(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, k, x + j),
                                                  _mm512_maskz_loadu_ps(k, m + j)));
        e = _mm512_maskz_mov_ps(k, e);
        if (y) _mm512_mask_storeu_ps(y + j, k, e);
        __mmask8 k0 = (__mmask8)(k & 0xFF), k1 = (__mmask8)(k >> 8);
        __m512d s0 = _mm512_add_pd(_mm512_maskz_loadu_pd(k0, s + j),
                                   _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        __m512d s1 = _mm512_add_pd(_mm512_maskz_loadu_pd(k1, s + j + 8),
                                   _mm512_cvtps_pd(_mm256_castpd_ps(
                                       _mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        _mm512_mask_storeu_pd(s + j, k0, s0);
        _mm512_mask_storeu_pd(s + j + 8, k1, s1);
    }
}

NNCORE_AVX512 static void nncore_exp_sub_acc_f64_avx512(double *y, const double *x,
                                                       const double *m, double *s, ptrdiff_t n) {
    const __m512d ninf = _mm512_set1_pd(-INFINITY);
    for (ptrdiff_t j = 0; j < n; j += 8) {
        __mmask8 k = n - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - j)) - 1u);
        __m512d e = nncore_exp_pd512(_mm512_sub_pd(_mm512_mask_loadu_pd(ninf, k, x + j),
                                                   _mm512_maskz_loadu_pd(k, m + j)));
        e = _mm512_maskz_mov_pd(k, e);
        if (y) _mm512_mask_storeu_pd(y + j, k, e);
        _mm512_mask_storeu_pd(s + j, k, _mm512_add_pd(_mm512_maskz_loadu_pd(k, s + j), e));
    }
}

/* ---------------------------------------------------------------- AVX2 + FMA bodies */

#define NNCORE_AVX2 __attribute__((target("avx2,fma")))

NNCORE_AVX2 static inline __m256 nncore_exp_ps256(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps((float)NNCORE_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(NNCORE_LN2_HI_F), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(NNCORE_LN2_LO_F), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^k = 2^k1 * 2^k2 with k1 = floor(k/2): both factors are normal floats for the clamped
     * range k in [-150, 128], and the two products round like one scaling (denormals too). */
    __m256i ki = _mm256_cvtps_epi32(k);
    __m256i k1 = _mm256_srai_epi32(ki, 1);
    __m256i k2 = _mm256_sub_epi32(ki, k1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

NNCORE_AVX2 static inline __m256d nncore_pow2_pd256(__m256d k) {
    /* k integral with |k| < 2^51: adding 1.5 * 2^52 leaves k in the low mantissa bits. */
    const __m256d magic = _mm256_set1_pd(6755399441055744.0);
    __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k, magic)),
                                  _mm256_castpd_si256(magic));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)),
                                                 52));
}

NNCORE_AVX2 static inline __m256d nncore_exp_pd256(__m256d x) {
    x = _mm256_min_pd(_mm256_set1_pd(710.0), _mm256_max_pd(_mm256_set1_pd(-746.0), x));
    __m256d k = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(NNCORE_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(NNCORE_LN2_HI_D), x);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(NNCORE_LN2_LO_D), r);
    static const double c[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                                 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                                 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                 1.0 / 6.0, 0.5, 1.0, 1.0};
    __m256d p = _mm256_set1_pd(c[0]);
    for (int i = 1; i < 14; i++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c[i]));
    __m256d k1 = _mm256_floor_pd(_mm256_mul_pd(k, _mm256_set1_pd(0.5)));
    __m256d k2 = _mm256_sub_pd(k, k1);
    return _mm256_mul_pd(_mm256_mul_pd(p, nncore_pow2_pd256(k1)), nncore_pow2_pd256(k2));
}

NNCORE_AVX2 static inline __m256i nncore_tail_mask32(ptrdiff_t rem) {
    if (rem > 8) rem = 8;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), idx);
}

NNCORE_AVX2 static inline __m256i nncore_tail_mask64(ptrdiff_t rem) {
    if (rem > 4) rem = 4;
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)rem), idx);
}

NNCORE_AVX2 static inline double nncore_hsum_pd256(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

NNCORE_AVX2 static float nncore_max_f32_avx2(const float *x, ptrdiff_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 acc = ninf;
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) acc = _mm256_max_ps(_mm256_loadu_ps(x + j), acc);
    if (j < n) {
        __m256i m = nncore_tail_mask32(n - j);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + j, m), _mm256_castsi256_ps(m));
        acc = _mm256_max_ps(v, acc);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    float m = lanes[0];
    for (int i = 1; i < 8; i++) m = lanes[i] > m ? lanes[i] : m;
    return m;
}

NNCORE_AVX2 static double nncore_max_f64_avx2(const double *x, ptrdiff_t n) {
    const __m256d ninf = _mm256_set1_pd(-INFINITY);
    __m256d acc = ninf;
    ptrdiff_t j = 0;
    for (; j + 4 <= n; j += 4) acc = _mm256_max_pd(_mm256_loadu_pd(x + j), acc);
    if (j < n) {
        __m256i m = nncore_tail_mask64(n - j);
        __m256d v = _mm256_blendv_pd(ninf, _mm256_maskload_pd(x + j, m), _mm256_castsi256_pd(m));
        acc = _mm256_max_pd(v, acc);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, acc);
    double m = lanes[0];
    for (int i = 1; i < 4; i++) m = lanes[i] > m ? lanes[i] : m;
    return m;
}

NNCORE_AVX2 static double nncore_exp_sub_f32_avx2(float *y, const float *x, float s,
                                                  ptrdiff_t n) {
    const __m256 vs = _mm256_set1_ps(s), ninf = _mm256_set1_ps(-INFINITY);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    for (ptrdiff_t j = 0; j < n; j += 8) {
        __m256i m = nncore_tail_mask32(n - j);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + j, m), _mm256_castsi256_ps(m));
        __m256 e = _mm256_and_ps(nncore_exp_ps256(_mm256_sub_ps(v, vs)), _mm256_castsi256_ps(m));
        if (y) _mm256_maskstore_ps(y + j, m, e);
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    return nncore_hsum_pd256(_mm256_add_pd(acc0, acc1));
}

NNCORE_AVX2 static double nncore_exp_sub_f64_avx2(double *y, const double *x, double s,
                                                  ptrdiff_t n) {
    const __m256d vs = _mm256_set1_pd(s), ninf = _mm256_set1_pd(-INFINITY);
    __m256d acc = _mm256_setzero_pd();
    for (ptrdiff_t j = 0; j < n; j += 4) {
        __m256i m = nncore_tail_mask64(n - j);
        __m256d v = _mm256_blendv_pd(ninf, _mm256_maskload_pd(x + j, m), _mm256_castsi256_pd(m));
        __m256d e = _mm256_and_pd(nncore_exp_pd256(_mm256_sub_pd(v, vs)), _mm256_castsi256_pd(m));
        if (y) _mm256_maskstore_pd(y + j, m, e);
        acc = _mm256_add_pd(acc, e);
    }
    return nncore_hsum_pd256(acc);
}

NNCORE_AVX2 static double nncore_sum_f32_avx2(const float *x, ptrdiff_t n) {
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    for (ptrdiff_t j = 0; j < n; j += 8) {
        __m256 v = _mm256_maskload_ps(x + j, nncore_tail_mask32(n - j));   /* zeros past n */
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    return nncore_hsum_pd256(_mm256_add_pd(acc0, acc1));
}

NNCORE_AVX2 static double nncore_sum_f64_avx2(const double *x, ptrdiff_t n) {
    __m256d acc = _mm256_setzero_pd();
    for (ptrdiff_t j = 0; j < n; j += 4)
        acc = _mm256_add_pd(acc, _mm256_maskload_pd(x + j, nncore_tail_mask64(n - j)));
    return nncore_hsum_pd256(acc);
}
NNCORE_AVX2 static void nncore_exp_sub_acc_f32_avx2(float *y, const float *x, const float *m,
                                                   double *s, ptrdiff_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (ptrdiff_t j = 0; j < n; j += 8) {
        __m256i k = nncore_tail_mask32(n - j);
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + j, k), _mm256_castsi256_ps(k));
        __m256 e = nncore_exp_ps256(_mm256_sub_ps(v, _mm256_maskload_ps(m + j, k)));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(k));
        if (y) _mm256_maskstore_ps(y + j, k, e);
        __m256i k0 = nncore_tail_mask64(n - j), k1 = nncore_tail_mask64(n - j - 4);
        __m256d s0 = _mm256_add_pd(_mm256_maskload_pd(s + j, k0),
                                   _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        __m256d s1 = _mm256_add_pd(_mm256_maskload_pd(s + j + 4, k1),
                                   _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        _mm256_maskstore_pd(s + j, k0, s0);
        _mm256_maskstore_pd(s + j + 4, k1, s1);
    }
}

NNCORE_AVX2 static void nncore_exp_sub_acc_f64_avx2(double *y, const double *x, const double *m,
                                                   double *s, ptrdiff_t n) {
    const __m256d ninf = _mm256_set1_pd(-INFINITY);
    for (ptrdiff_t j = 0; j < n; j += 4) {
        __m256i k = nncore_tail_mask64(n - j);
        __m256d v = _mm256_blendv_pd(ninf, _mm256_maskload_pd(x + j, k), _mm256_castsi256_pd(k));
        __m256d e = nncore_exp_pd256(_mm256_sub_pd(v, _mm256_maskload_pd(m + j, k)));
        e = _mm256_and_pd(e, _mm256_castsi256_pd(k));
        if (y) _mm256_maskstore_pd(y + j, k, e);
        _mm256_maskstore_pd(s + j, k, _mm256_add_pd(_mm256_maskload_pd(s + j, k), e));
    }
}
#endif /* NNCORE_X86 */

/* ---------------------------------------------------------------- dispatch */

#if NNCORE_X86
#define NNCORE_DISPATCH(name, ...)                                                        \
    do {                                                                                  \
        if (level >= NNCORE_SIMD_AVX512) return name##_avx512(__VA_ARGS__);               \
        if (level >= NNCORE_SIMD_AVX2) return name##_avx2(__VA_ARGS__);                   \
        return name##_portable(__VA_ARGS__);                                              \
    } while (0)
#else
#define NNCORE_DISPATCH(name, ...) return name##_portable(__VA_ARGS__)
#endif

static inline float nncore_max_f32(const float *x, ptrdiff_t n, int level) {
    NNCORE_DISPATCH(nncore_max_f32, x, n);
}
static inline double nncore_max_f64(const double *x, ptrdiff_t n, int level) {
    NNCORE_DISPATCH(nncore_max_f64, x, n);
}
static inline double nncore_exp_sub_f32(float *y, const float *x, float s, ptrdiff_t n,
                                        int level) {
    NNCORE_DISPATCH(nncore_exp_sub_f32, y, x, s, n);
}
static inline double nncore_exp_sub_f64(double *y, const double *x, double s, ptrdiff_t n,
                                        int level) {
    NNCORE_DISPATCH(nncore_exp_sub_f64, y, x, s, n);
}
static inline double nncore_sum_exp_sub_f32(const float *x, float s, ptrdiff_t n, int level) {
    return nncore_exp_sub_f32((float *)0, x, s, n, level);
}
static inline double nncore_sum_exp_sub_f64(const double *x, double s, ptrdiff_t n, int level) {
    return nncore_exp_sub_f64((double *)0, x, s, n, level);
}
static inline void nncore_exp_sub_acc_f32(float *y, const float *x, const float *m, double *s,
                                          ptrdiff_t n, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) { nncore_exp_sub_acc_f32_avx512(y, x, m, s, n); return; }
    if (level >= NNCORE_SIMD_AVX2) { nncore_exp_sub_acc_f32_avx2(y, x, m, s, n); return; }
#endif
    (void)level;
    nncore_exp_sub_acc_f32_portable(y, x, m, s, n);
}
static inline void nncore_exp_sub_acc_f64(double *y, const double *x, const double *m,
                                          double *s, ptrdiff_t n, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) { nncore_exp_sub_acc_f64_avx512(y, x, m, s, n); return; }
    if (level >= NNCORE_SIMD_AVX2) { nncore_exp_sub_acc_f64_avx2(y, x, m, s, n); return; }
#endif
    (void)level;
    nncore_exp_sub_acc_f64_portable(y, x, m, s, n);
}
static inline double nncore_sum_f32(const float *x, ptrdiff_t n, int level) {
    NNCORE_DISPATCH(nncore_sum_f32, x, n);
}
static inline double nncore_sum_f64(const double *x, ptrdiff_t n, int level) {
    NNCORE_DISPATCH(nncore_sum_f64, x, n);
}
#endif
