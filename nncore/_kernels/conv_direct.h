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

/* Output rows oh (and oh + 1 when `two`) x 16 columns from ow0, for the NOC <= 8 channels of
 * block ob: NOC and `two` are compile-time constants at every call (one body per value), so
 * the accumulators stay in registers: 2 x 8 zmm + 2 inputs. Each broadcast weight feeds two
 * FMAs, so the loop is bound by the FMA units rather than by loads. Input rows outside
 * [r_lo, r_hi) are zero padding: the kernel rows that would only read them are skipped. */
static inline __attribute__((always_inline, target("avx512f"))) void nncore_cd_rows(
    float *out, const float *in, const float *wb, const float *bias, int64_t ob, int64_t oh,
    int64_t ow0, const int noc, const int two, int64_t C, int64_t H, int64_t W,
    int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi) {
    const int64_t lanes = OW - ow0 < 16 ? OW - ow0 : 16;
    /* lanes past OW stay masked: the last one read is in[.., OW - 1 + KW - 1] */
    const __mmask16 m = (__mmask16)((1u << lanes) - 1u);
    __m512 a[8], b[8];
#pragma GCC unroll 8
    for (int o = 0; o < noc; ++o) {
        a[o] = bias ? _mm512_set1_ps(bias[ob + o]) : _mm512_setzero_ps();
        b[o] = a[o];
    }
    /* kernel rows kh whose input rows oh + kh (.. oh + 1 + kh) meet [r_lo, r_hi) */
    int64_t kh0 = r_lo - oh - (two ? 1 : 0), kh1 = r_hi - oh;
    if (kh0 < 0) kh0 = 0;
    if (kh1 > KH) kh1 = KH;
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t kh = kh0; kh < kh1; ++kh) {
            const float *row = in + (c * H + oh + kh) * W + ow0;
            const float *wp = wb + (c * KH + kh) * KW * 8;
            for (int64_t kw = 0; kw < KW; ++kw, wp += 8) {
                const __m512 v = _mm512_maskz_loadu_ps(m, row + kw);
                const __m512 u = two ? _mm512_maskz_loadu_ps(m, row + W + kw) : v;
#pragma GCC unroll 8
                for (int o = 0; o < noc; ++o) {
                    const __m512 w = _mm512_set1_ps(wp[o]);
                    a[o] = _mm512_fmadd_ps(w, v, a[o]);
                    if (two) b[o] = _mm512_fmadd_ps(w, u, b[o]);
                }
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < noc; ++o) {
        float *dst = out + ((ob + o) * OH + oh) * OW + ow0;
        _mm512_mask_storeu_ps(dst, m, a[o]);
        if (two) _mm512_mask_storeu_ps(dst + OW, m, b[o]);
    }
}

/* All output rows of channel block ob (NOC channels; a compile-time constant). */
static inline __attribute__((always_inline, target("avx512f"))) void nncore_cd_block(
    float *out, const float *in, const float *wb, const float *bias, int64_t ob,
    const int noc, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t r_lo,
    int64_t r_hi) {
    const int64_t OH = H - KH + 1, OW = W - KW + 1;
    int64_t oh = 0;
    for (; oh + 2 <= OH; oh += 2)
        for (int64_t ow0 = 0; ow0 < OW; ow0 += 16)
            nncore_cd_rows(out, in, wb, bias, ob, oh, ow0, noc, 1, C, H, W, OH, OW, KH, KW,
                           r_lo, r_hi);
    for (; oh < OH; ++oh)
        for (int64_t ow0 = 0; ow0 < OW; ow0 += 16)
            nncore_cd_rows(out, in, wb, bias, ob, oh, ow0, noc, 0, C, H, W, OH, OW, KH, KW,
                           r_lo, r_hi);
}

#define NNCORE_CD_CASE(n)                                                                  \
    case n:                                                                                \
        nncore_cd_block(out, in, wb, bias, ob, n, C, H, W, KH, KW, r_lo, r_hi);            \
        break

__attribute__((target("avx512f"))) static void nncore_conv_direct_avx512(
    float *out, const float *in, const float *wpack, const float *bias, int64_t C, int64_t H,
    int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi) {
    const int64_t CKK8 = C * KH * KW * 8;
    for (int64_t ob = 0; ob < OC; ob += 8) {
        const float *wb = wpack + (ob / 8) * CKK8;
        switch (OC - ob < 8 ? OC - ob : 8) {
            NNCORE_CD_CASE(1); NNCORE_CD_CASE(2); NNCORE_CD_CASE(3); NNCORE_CD_CASE(4);
            NNCORE_CD_CASE(5); NNCORE_CD_CASE(6); NNCORE_CD_CASE(7); NNCORE_CD_CASE(8);
        }
    }
}

#undef NNCORE_CD_CASE
#endif /* NNCORE_X86 */

/* 1 when the AVX-512 body ran; 0 when this build or CPU has none (the caller must then take
 * the im2col path, which it decides before calling, from the same SIMD level). Input rows
 * outside [r_lo, r_hi) must be zeros (the padding): they are not read. */
static int nncore_conv_direct_f32(float *out, const float *in, const float *wpack,
                                  const float *bias, int64_t C, int64_t H, int64_t W,
                                  int64_t OC, int64_t KH, int64_t KW, int64_t r_lo,
                                  int64_t r_hi, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) {
        nncore_conv_direct_avx512(out, in, wpack, bias, C, H, W, OC, KH, KW, r_lo, r_hi);
        return 1;
    }
#endif
    (void)out; (void)in; (void)wpack; (void)bias; (void)C; (void)H; (void)W; (void)OC;
    (void)KH; (void)KW; (void)r_lo; (void)r_hi; (void)level;
    return 0;
}

#endif /* NNCORE_CONV_DIRECT_H */
