/* norm_simd.h: the per-channel row loops of batch normalisation (norm.pyx).
 *
 * One row is a contiguous run of S elements of one channel (a sample's H*W plane, or one value
 * for (N, C) input). Sums are accumulated in double in 32 independent lanes (a fixed order, so
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

/* 32 independent double lanes (four 8-lane vectors at AVX-512): with one 8-lane accumulator
 * the loops waited on the add latency every 8 elements (BN backward 64x16x32x32 at 2 threads:
 * 0.46 ms). Folded in a fixed order: lane j + 8, + 16, + 24 into lane j, then a fixed tree. */
#define NNC_FOLD32(a)                                                                         \
    ((((a[0] + a[8]) + (a[16] + a[24])) + ((a[1] + a[9]) + (a[17] + a[25]))) +                \
     (((a[2] + a[10]) + (a[18] + a[26])) + ((a[3] + a[11]) + (a[19] + a[27])))) +             \
    ((((a[4] + a[12]) + (a[20] + a[28])) + ((a[5] + a[13]) + (a[21] + a[29]))) +              \
     (((a[6] + a[14]) + (a[22] + a[30])) + ((a[7] + a[15]) + (a[23] + a[31]))))

#define NNC_NORM_BODIES(T, S)                                                                 \
/* sum x[i] (in double) */                                                                    \
NNC_NB double nnc_bn_sum_body_##S(const T *restrict x, ptrdiff_t n) {                         \
    double a[32] = {0};                                                                       \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 32 <= n; i += 32)                                                              \
        for (int j = 0; j < 32; j++) a[j] += (double)x[i + j];                                \
    double s = NNC_FOLD32(a);                                                                 \
    for (; i < n; i++) s += (double)x[i];                                                     \
    return s;                                                                                 \
}                                                                                             \
/* sum (x[i] - m)^2 (in double) */                                                            \
NNC_NB double nnc_bn_sqdev_body_##S(const T *restrict x, double m, ptrdiff_t n) {             \
    double a[32] = {0}, d;                                                                    \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 32 <= n; i += 32)                                                              \
        for (int j = 0; j < 32; j++) {                                                        \
            const double e = (double)x[i + j] - m;                                            \
            a[j] += e * e;                                                                    \
        }                                                                                     \
    double s = NNC_FOLD32(a);                                                                 \
    for (; i < n; i++) { d = (double)x[i] - m; s += d * d; }                                  \
    return s;                                                                                 \
}                                                                                             \
/* sdy += sum dy[i]; sdyx += sum dy[i] * (x[i] - m) (in double) */                            \
NNC_NB void nnc_bn_dsums_body_##S(const T *restrict dy, const T *restrict x, double m,        \
                                  ptrdiff_t n, double *sdy, double *sdyx) {                   \
    double a[32] = {0}, b[32] = {0};                                                          \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 32 <= n; i += 32)                                                              \
        for (int j = 0; j < 32; j++) {                                                        \
            double g = (double)dy[i + j];                                                     \
            a[j] += g;                                                                        \
            b[j] += g * ((double)x[i + j] - m);                                               \
        }                                                                                     \
    double s = NNC_FOLD32(a);                                                                 \
    double t = NNC_FOLD32(b);                                                                 \
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
