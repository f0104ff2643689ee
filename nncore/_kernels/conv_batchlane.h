/* conv_batchlane.h: the input gradient of a few-channel convolution with 16 samples along the
 * vector lanes (float32, AVX-512).
 *
 * conv_direct.h computes the input gradient along image rows, as a convolution of the
 * zero-padded output gradient: on LeNet2 (dout 16 x 10 x 10, dinp 6 x 14 x 14) 29% of its FMAs
 * multiply padding and 2 of 16 lanes are idle, so 58% of the lane work is useful. With the
 * samples along the lanes every FMA is useful:
 *   dinp[c, y, x, :] = sum over oc and the valid (kh, kw) of W[oc, c, kh, kw] * dout[oc, y + pt - kh, x + pl - kw, :]
 * where valid means inside the output (the loops run exactly over those taps).
 * Shapes (one group of 16 samples; stride 1, dilation 1): doutB (OC, OH, OW, 16) and dinpB
 * (C, H, W, 16), samples along the last axis (lanes past the group's samples are zeros in
 * doutB and ignored in dinpB); wb (ceil(C / 8), OC, KH, KW, 8): the weights regrouped by
 * blocks of 8 input channels, zero-padded (built by conv_direct.pyx). dinpB is overwritten;
 * every element sums over (oc, kh, kw) in that order, whatever the thread count.
 */
#ifndef NNCORE_CONV_BATCHLANE_H
#define NNCORE_CONV_BATCHLANE_H

#include <stdint.h>

#include "simd.h"

#if NNCORE_X86
#include <immintrin.h>

/* One input pixel (y, x) of the NC (compile-time, 1-8) channels of block c0: NC independent
 * FMA chains; per tap one 16-sample load of dout feeds NC FMAs with broadcast weights. */
static inline __attribute__((always_inline, target("avx512f"))) void nncore_bl_pixel(
    float *dinpB, const float *doutB, const float *wb, const int NC, int64_t c0, int64_t y,
    int64_t x, int64_t OC, int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t H,
    int64_t W, int64_t pt, int64_t pl) {
    const int64_t yp = y + pt, xp = x + pl;
    const int64_t kh0 = yp - OH + 1 > 0 ? yp - OH + 1 : 0, kh1 = yp + 1 < KH ? yp + 1 : KH;
    const int64_t kw0 = xp - OW + 1 > 0 ? xp - OW + 1 : 0, kw1 = xp + 1 < KW ? xp + 1 : KW;
    __m512 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t oc = 0; oc < OC; ++oc) {
        for (int64_t kh = kh0; kh < kh1; ++kh) {
            const float *d = doutB + ((oc * OH + yp - kh) * OW + xp) * 16;
            const float *w = wb + (oc * KH + kh) * KW * 8;
            for (int64_t kw = kw0; kw < kw1; ++kw) {
                const __m512 v = _mm512_loadu_ps(d - kw * 16);
#pragma GCC unroll 8
                for (int j = 0; j < NC; ++j)
                    acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(w[kw * 8 + j]), v, acc[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j)
        _mm512_storeu_ps(dinpB + (((c0 + j) * H + y) * W + x) * 16, acc[j]);
}

#define NNCORE_BL_CASE(n)                                                                  \
    case n:                                                                                \
        for (int64_t y = 0; y < H; ++y)                                                    \
            for (int64_t x = 0; x < W; ++x)                                                \
                nncore_bl_pixel(dinpB, doutB, wb, n, c0, y, x, OC, OH, OW, KH, KW, H, W,   \
                                pt, pl);                                                   \
        break

__attribute__((target("avx512f"))) static void nncore_conv_batchlane_dinp_avx512(
    float *dinpB, const float *doutB, const float *wpack, int64_t C, int64_t H, int64_t W,
    int64_t OC, int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t pt, int64_t pl) {
    for (int64_t c0 = 0; c0 < C; c0 += 8) {
        const float *wb = wpack + (c0 / 8) * OC * KH * KW * 8;
        switch (C - c0 < 8 ? C - c0 : 8) {
            NNCORE_BL_CASE(1); NNCORE_BL_CASE(2); NNCORE_BL_CASE(3); NNCORE_BL_CASE(4);
            NNCORE_BL_CASE(5); NNCORE_BL_CASE(6); NNCORE_BL_CASE(7); NNCORE_BL_CASE(8);
        }
    }
}
#undef NNCORE_BL_CASE
#endif /* NNCORE_X86 */

/* 1 when the AVX-512 body ran; 0 when this build or CPU has none (callers check the level
 * before choosing this path). pt, pl: the forward's top and left padding. */
static int nncore_conv_batchlane_dinp_f32(float *dinpB, const float *doutB, const float *wpack,
                                          int64_t C, int64_t H, int64_t W, int64_t OC,
                                          int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                                          int64_t pt, int64_t pl, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) {
        nncore_conv_batchlane_dinp_avx512(dinpB, doutB, wpack, C, H, W, OC, OH, OW, KH, KW,
                                          pt, pl);
        return 1;
    }
#endif
    (void)dinpB; (void)doutB; (void)wpack; (void)C; (void)H; (void)W; (void)OC; (void)OH;
    (void)OW; (void)KH; (void)KW; (void)pt; (void)pl; (void)level;
    return 0;
}

#endif /* NNCORE_CONV_BATCHLANE_H */
