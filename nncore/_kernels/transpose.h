/* transpose.h: out-of-place matrix transposes for the kernels' layout changes.
 *
 *   nncore_transpose_f32 / _f64(dst, ld_dst, src, ld_src, R, C, level)
 *       dst[c * ld_dst + r] = src[r * ld_src + c] for an (R, C) source with row stride
 *       ld_src into a (C, R) destination with row stride ld_dst.
 *
 * At the AVX2 level and above, float32 moves whole 8 x 8 blocks through registers (eight row
 * loads, unpack/shuffle/permute, eight row stores) and double 4 x 4 blocks; the edges and the
 * portable level copy element by element. A transpose only moves values: every level gives
 * the same result.
 */
#ifndef NNCORE_TRANSPOSE_H
#define NNCORE_TRANSPOSE_H
#include <stddef.h>
#include "simd.h"
#if NNCORE_X86
#include <immintrin.h>
#endif

#define NNCORE_TRANSPOSE_SCALAR(T, SFX)                                                      \
static void nncore_transpose_scalar_##SFX(T *dst, ptrdiff_t ldd, const T *src, ptrdiff_t lds, \
                                          ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t c0,          \
                                          ptrdiff_t c1) {                                    \
    for (ptrdiff_t c = c0; c < c1; c++)                                                      \
        for (ptrdiff_t r = r0; r < r1; r++) dst[c * ldd + r] = src[r * lds + c];             \
}
NNCORE_TRANSPOSE_SCALAR(float, f32)
NNCORE_TRANSPOSE_SCALAR(double, f64)
#undef NNCORE_TRANSPOSE_SCALAR

#if NNCORE_X86
/* dst[c * ldd + r] = src[r * lds + c] for r, c < 8 */
static inline __attribute__((always_inline, target("avx"))) void nncore_tr8x8_f32(
    const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    /* u0: columns 0 | 4 of rows 0-3; u1: 1 | 5; u2: 2 | 6; u3: 3 | 7 (u4-u7: rows 4-7) */
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* dst[c * ldd + r] = src[r * lds + c] for r, c < 4 */
static inline __attribute__((always_inline, target("avx"))) void nncore_tr4x4_f64(
    const double *src, ptrdiff_t lds, double *dst, ptrdiff_t ldd) {
    __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
    __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);  /* 0 1 | 2 3 */
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

#define NNCORE_TRANSPOSE_BLOCKS(T, SFX, BS, BLOCK)                                           \
__attribute__((target("avx"))) static void nncore_transpose_avx_##SFX(                       \
        T *dst, ptrdiff_t ldd, const T *src, ptrdiff_t lds, ptrdiff_t R, ptrdiff_t C) {      \
    const ptrdiff_t R8 = R - R % BS, C8 = C - C % BS;                                        \
    for (ptrdiff_t r = 0; r < R8; r += BS)                                                   \
        for (ptrdiff_t c = 0; c < C8; c += BS)                                               \
            BLOCK(src + r * lds + c, lds, dst + c * ldd + r, ldd);                           \
    nncore_transpose_scalar_##SFX(dst, ldd, src, lds, 0, R8, C8, C);                         \
    nncore_transpose_scalar_##SFX(dst, ldd, src, lds, R8, R, 0, C);                          \
}
NNCORE_TRANSPOSE_BLOCKS(float, f32, 8, nncore_tr8x8_f32)
NNCORE_TRANSPOSE_BLOCKS(double, f64, 4, nncore_tr4x4_f64)
#undef NNCORE_TRANSPOSE_BLOCKS
#endif

#define NNCORE_TRANSPOSE_ENTRY(T, SFX)                                                       \
static inline void nncore_transpose_##SFX(T *dst, ptrdiff_t ldd, const T *src, ptrdiff_t lds, \
                                          ptrdiff_t R, ptrdiff_t C, int level) {             \
    if (NNCORE_X86 && level >= NNCORE_SIMD_AVX2) {                                           \
        NNCORE_TRANSPOSE_AVX(SFX, dst, ldd, src, lds, R, C);                                 \
        return;                                                                              \
    }                                                                                        \
    nncore_transpose_scalar_##SFX(dst, ldd, src, lds, 0, R, 0, C);                           \
}
#if NNCORE_X86
#define NNCORE_TRANSPOSE_AVX(SFX, ...) nncore_transpose_avx_##SFX(__VA_ARGS__)
#else
#define NNCORE_TRANSPOSE_AVX(SFX, ...) ((void)0)
#endif
NNCORE_TRANSPOSE_ENTRY(float, f32)
NNCORE_TRANSPOSE_ENTRY(double, f64)
#undef NNCORE_TRANSPOSE_ENTRY
#undef NNCORE_TRANSPOSE_AVX
#endif
