/* conv_direct.h: direct 2-D convolution for few output channels (float32, AVX-512).
 *
 * With 3-16 output channels the im2col GEMMs of conv.pyx are too thin for the 14 x 32 GEMM
 * micro-kernel: LeNet's 6- and 16-channel layers ran at ~50 GFLOP/s, and the input gradient's
 * GEMM (K = output channels) was bound by writing its column matrix. Here each output row is
 * computed in registers: 8 output channels x 16 output columns, one zmm each; for every
 * (c, kh, kw) one load of 16 input pixels feeds 8 FMAs with broadcast weights.
 *
 * Shapes (one sample): in (C, H, W), already zero-padded; out (OC, OH, OW) with stride 1 and
 * dilation 1, so OH = H - KH + 1, OW = W - KW + 1; wpack (ceil(OC / 8), C, KH, KW, 8): the
 * weights regrouped by blocks of 8 output channels, zero-padded (built by conv.pyx);
 * bias (OC,) or NULL. OUT is overwritten. Every output element sums over (c, kh, kw) in that
 * order: the result does not depend on threads (callers split samples between them).
 * The input gradient is the same operation on the zero-padded output gradient with the kernel
 * flipped and its channel axes swapped (conv.pyx sets that up).
 */
#ifndef NNCORE_CONV_DIRECT_H
#define NNCORE_CONV_DIRECT_H

#include <stdint.h>
#include <string.h>

#include "simd.h"

/* dst (C, H + pt + pb, W + pl + pr) = src (C, H, W) surrounded by zeros. */
static void nncore_conv_pad_copy_f32(float *dst, const float *src, int64_t C, int64_t H,
                                     int64_t W, int64_t pt, int64_t pb, int64_t pl,
                                     int64_t pr) {
    const int64_t Hp = H + pt + pb, Wp = W + pl + pr;
    memset(dst, 0, (size_t)(C * Hp * Wp) * sizeof(float));
    for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
            memcpy(dst + (c * Hp + h + pt) * Wp + pl, src + (c * H + h) * W,
                   (size_t)W * sizeof(float));
}

#if NNCORE_X86
#include <immintrin.h>

#define NNCORE_CD_FMA(o)                                                                   \
    do {                                                                                   \
        const __m512 w = _mm512_set1_ps(wp[o]);                                            \
        a##o = _mm512_fmadd_ps(w, v, a##o);                                                \
        if (two) b##o = _mm512_fmadd_ps(w, u, b##o);                                       \
    } while (0)
#define NNCORE_CD_INIT(o)                                                                  \
    a##o = (bias && ob + o < OC) ? _mm512_set1_ps(bias[ob + o]) : _mm512_setzero_ps();     \
    b##o = a##o
#define NNCORE_CD_STORE(o)                                                                 \
    if (ob + o < OC) {                                                                     \
        float *dst = out + ((ob + o) * OH + oh) * OW + ow0;                                \
        _mm512_mask_storeu_ps(dst, m, a##o);                                               \
        if (two) _mm512_mask_storeu_ps(dst + OW, m, b##o);                                 \
    }

/* Rows oh and oh + 1 together (`two`): each broadcast weight feeds two FMAs, so the loop is
 * bound by the FMA units rather than by loads; 16 accumulators + 2 inputs fit in 32 zmm. */
static inline __attribute__((always_inline, target("avx512f"))) void nncore_cd_rows(
    float *out, const float *in, const float *wb, const float *bias, int64_t ob, int64_t oh,
    int64_t ow0, int two, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW,
    int64_t KH, int64_t KW) {
    const int64_t lanes = OW - ow0 < 16 ? OW - ow0 : 16;
    /* lanes past OW stay masked: the last one read is in[.., OW - 1 + KW - 1] */
    const __mmask16 m = (__mmask16)((1u << lanes) - 1u);
    __m512 a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
    NNCORE_CD_INIT(0); NNCORE_CD_INIT(1); NNCORE_CD_INIT(2); NNCORE_CD_INIT(3);
    NNCORE_CD_INIT(4); NNCORE_CD_INIT(5); NNCORE_CD_INIT(6); NNCORE_CD_INIT(7);
    const float *wp = wb;
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t kh = 0; kh < KH; ++kh) {
            const float *row = in + (c * H + oh + kh) * W + ow0;
            for (int64_t kw = 0; kw < KW; ++kw, wp += 8) {
                const __m512 v = _mm512_maskz_loadu_ps(m, row + kw);
                const __m512 u = two ? _mm512_maskz_loadu_ps(m, row + W + kw) : v;
                NNCORE_CD_FMA(0); NNCORE_CD_FMA(1); NNCORE_CD_FMA(2); NNCORE_CD_FMA(3);
                NNCORE_CD_FMA(4); NNCORE_CD_FMA(5); NNCORE_CD_FMA(6); NNCORE_CD_FMA(7);
            }
        }
    }
    NNCORE_CD_STORE(0); NNCORE_CD_STORE(1); NNCORE_CD_STORE(2); NNCORE_CD_STORE(3);
    NNCORE_CD_STORE(4); NNCORE_CD_STORE(5); NNCORE_CD_STORE(6); NNCORE_CD_STORE(7);
}

__attribute__((target("avx512f"))) static void nncore_conv_direct_avx512(
    float *out, const float *in, const float *wpack, const float *bias, int64_t C, int64_t H,
    int64_t W, int64_t OC, int64_t KH, int64_t KW) {
    const int64_t OH = H - KH + 1, OW = W - KW + 1, CKK8 = C * KH * KW * 8;
    for (int64_t ob = 0; ob < OC; ob += 8) {
        const float *wb = wpack + (ob / 8) * CKK8;
        int64_t oh = 0;
        for (; oh + 2 <= OH; oh += 2)
            for (int64_t ow0 = 0; ow0 < OW; ow0 += 16)
                nncore_cd_rows(out, in, wb, bias, ob, oh, ow0, 1, C, H, W, OC, OH, OW, KH, KW);
        for (; oh < OH; ++oh)
            for (int64_t ow0 = 0; ow0 < OW; ow0 += 16)
                nncore_cd_rows(out, in, wb, bias, ob, oh, ow0, 0, C, H, W, OC, OH, OW, KH, KW);
    }
}

#undef NNCORE_CD_FMA
#undef NNCORE_CD_INIT
#undef NNCORE_CD_STORE
#endif /* NNCORE_X86 */

/* 1 when the AVX-512 body ran; 0 when this build or CPU has none (the caller must then take
 * the im2col path, which it decides before calling, from the same SIMD level). */
static int nncore_conv_direct_f32(float *out, const float *in, const float *wpack,
                                  const float *bias, int64_t C, int64_t H, int64_t W,
                                  int64_t OC, int64_t KH, int64_t KW, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) {
        nncore_conv_direct_avx512(out, in, wpack, bias, C, H, W, OC, KH, KW);
        return 1;
    }
#endif
    (void)out; (void)in; (void)wpack; (void)bias; (void)C; (void)H; (void)W; (void)OC;
    (void)KH; (void)KW; (void)level;
    return 0;
}

#endif /* NNCORE_CONV_DIRECT_H */
