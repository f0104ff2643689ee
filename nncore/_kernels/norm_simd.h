/* norm_simd.h: the per-channel row loops of batch normalisation (norm.pyx).
 *
 * One row is a contiguous run of S elements of one channel (a sample's H*W plane, or one value
 * for (N, C) input). Sums are accumulated in double in 8 independent lanes (a fixed order, so
 * the compiler may vectorise them without reassociating anything) and reduced in a fixed tree.
 * Every body is compiled three times (portable, AVX2, AVX-512F via GCC target attributes) and
 * chosen at run time from nncore_simd_level(). No a*b+c -> FMA contraction, so every SIMD level
 * gives the same bits. */
#ifndef NNCORE_NORM_SIMD_H
#define NNCORE_NORM_SIMD_H
#include <stddef.h>
#include "simd.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

#define NNC_NB static inline __attribute__((always_inline))

#define NNC_NORM_BODIES(T, S)                                                                 \
/* sum x[i] (in double) */                                                                    \
NNC_NB double nnc_bn_sum_body_##S(const T *restrict x, ptrdiff_t n) {                         \
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;                    \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 8 <= n; i += 8) {                                                              \
        a0 += (double)x[i]; a1 += (double)x[i + 1]; a2 += (double)x[i + 2];                   \
        a3 += (double)x[i + 3]; a4 += (double)x[i + 4]; a5 += (double)x[i + 5];              \
        a6 += (double)x[i + 6]; a7 += (double)x[i + 7];                                       \
    }                                                                                         \
    double s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));                            \
    for (; i < n; i++) s += (double)x[i];                                                     \
    return s;                                                                                 \
}                                                                                             \
/* sum (x[i] - m)^2 (in double) */                                                            \
NNC_NB double nnc_bn_sqdev_body_##S(const T *restrict x, double m, ptrdiff_t n) {             \
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, d;                 \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 8 <= n; i += 8) {                                                              \
        d = (double)x[i] - m; a0 += d * d; d = (double)x[i + 1] - m; a1 += d * d;             \
        d = (double)x[i + 2] - m; a2 += d * d; d = (double)x[i + 3] - m; a3 += d * d;         \
        d = (double)x[i + 4] - m; a4 += d * d; d = (double)x[i + 5] - m; a5 += d * d;         \
        d = (double)x[i + 6] - m; a6 += d * d; d = (double)x[i + 7] - m; a7 += d * d;         \
    }                                                                                         \
    double s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));                            \
    for (; i < n; i++) { d = (double)x[i] - m; s += d * d; }                                  \
    return s;                                                                                 \
}                                                                                             \
/* sdy += sum dy[i]; sdyx += sum dy[i] * (x[i] - m) (in double) */                            \
NNC_NB void nnc_bn_dsums_body_##S(const T *restrict dy, const T *restrict x, double m,        \
                                  ptrdiff_t n, double *sdy, double *sdyx) {                   \
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};                  \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 8 <= n; i += 8)                                                                \
        for (int j = 0; j < 8; j++) {                                                         \
            double g = (double)dy[i + j];                                                     \
            a[j] += g;                                                                        \
            b[j] += g * ((double)x[i + j] - m);                                               \
        }                                                                                     \
    double s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));             \
    double t = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));             \
    for (; i < n; i++) {                                                                      \
        double g = (double)dy[i];                                                             \
        s += g;                                                                               \
        t += g * ((double)x[i] - m);                                                          \
    }                                                                                         \
    *sdy += s;                                                                                \
    *sdyx += t;                                                                               \
}                                                                                             \
/* y = (x - m) * a + b */                                                                     \
NNC_NB void nnc_bn_affine_body_##S(T *restrict y, const T *restrict x, T m, T a, T b,         \
                                   ptrdiff_t n) {                                             \
    for (ptrdiff_t i = 0; i < n; i++) y[i] = (x[i] - m) * a + b;                              \
}                                                                                             \
/* dx = (dy - c1 - (x - m) * c2) * k */                                                       \
NNC_NB void nnc_bn_dinp_body_##S(T *restrict dx, const T *restrict dy, const T *restrict x,   \
                                 T m, T c1, T c2, T k, ptrdiff_t n) {                         \
    for (ptrdiff_t i = 0; i < n; i++) dx[i] = (dy[i] - c1 - (x[i] - m) * c2) * k;             \
}

NNC_NORM_BODIES(float, f)
NNC_NORM_BODIES(double, d)

#define NNC_NORM_CLONES(ATTR, NAME, T, S)                                                     \
static ATTR double nnc_bn_sum_##NAME##_##S(const T *x, ptrdiff_t n) {                         \
    return nnc_bn_sum_body_##S(x, n); }                                                       \
static ATTR double nnc_bn_sqdev_##NAME##_##S(const T *x, double m, ptrdiff_t n) {             \
    return nnc_bn_sqdev_body_##S(x, m, n); }                                                  \
static ATTR void nnc_bn_dsums_##NAME##_##S(const T *dy, const T *x, double m, ptrdiff_t n,    \
                                           double *sdy, double *sdyx) {                       \
    nnc_bn_dsums_body_##S(dy, x, m, n, sdy, sdyx); }                                          \
static ATTR void nnc_bn_affine_##NAME##_##S(T *y, const T *x, T m, T a, T b, ptrdiff_t n) {   \
    nnc_bn_affine_body_##S(y, x, m, a, b, n); }                                               \
static ATTR void nnc_bn_dinp_##NAME##_##S(T *dx, const T *dy, const T *x, T m, T c1, T c2,    \
                                          T k, ptrdiff_t n) {                                 \
    nnc_bn_dinp_body_##S(dx, dy, x, m, c1, c2, k, n); }

#define NNC_NORM_NOATTR
NNC_NORM_CLONES(NNC_NORM_NOATTR, portable, float, f)
NNC_NORM_CLONES(NNC_NORM_NOATTR, portable, double, d)
#if NNCORE_X86
NNC_NORM_CLONES(__attribute__((target("avx2"))), avx2, float, f)
NNC_NORM_CLONES(__attribute__((target("avx2"))), avx2, double, d)
NNC_NORM_CLONES(__attribute__((target("avx512f"))), avx512, float, f)
NNC_NORM_CLONES(__attribute__((target("avx512f"))), avx512, double, d)
#define NNC_NORM_PICK(FN, S, ARGS)                                                            \
    do {                                                                                      \
        if (level >= NNCORE_SIMD_AVX512) return nnc_bn_##FN##_avx512_##S ARGS;               \
        if (level >= NNCORE_SIMD_AVX2) return nnc_bn_##FN##_avx2_##S ARGS;                   \
        return nnc_bn_##FN##_portable_##S ARGS;                                               \
    } while (0)
#else
#define NNC_NORM_PICK(FN, S, ARGS) return nnc_bn_##FN##_portable_##S ARGS
#endif

#define NNC_NORM_DISPATCH(T, S)                                                               \
static inline double nnc_bn_sum_##S(const T *x, ptrdiff_t n, int level) {                     \
    NNC_NORM_PICK(sum, S, (x, n)); }                                                          \
static inline double nnc_bn_sqdev_##S(const T *x, double m, ptrdiff_t n, int level) {         \
    NNC_NORM_PICK(sqdev, S, (x, m, n)); }                                                     \
static inline void nnc_bn_dsums_##S(const T *dy, const T *x, double m, ptrdiff_t n,           \
                                    double *sdy, double *sdyx, int level) {                   \
    NNC_NORM_PICK(dsums, S, (dy, x, m, n, sdy, sdyx)); }                                      \
static inline void nnc_bn_affine_##S(T *y, const T *x, T m, T a, T b, ptrdiff_t n,            \
                                     int level) {                                             \
    NNC_NORM_PICK(affine, S, (y, x, m, a, b, n)); }                                           \
static inline void nnc_bn_dinp_##S(T *dx, const T *dy, const T *x, T m, T c1, T c2, T k,      \
                                   ptrdiff_t n, int level) {                                  \
    NNC_NORM_PICK(dinp, S, (dx, dy, x, m, c1, c2, k, n)); }

NNC_NORM_DISPATCH(float, f)
NNC_NORM_DISPATCH(double, d)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#endif
