/* conv_oclane.h: direct 2-D convolution with the output channels along the vector lanes
 * (float32, AVX-512): the forward for 12-16 output channels, the weight gradient for up to
 * 16 (16 lanes, or 8 lanes for <= 8 channels).
 *
 * LeNet's second layer (16 channels, 10 x 10 outputs) fills 10 of the 16 lanes when vectors
 * run along an output row (conv_direct.h), and its weight gradient ran on GEMMs 16 rows thin.
 * Here one zmm holds all 16 output channels of one output pixel, so no lane is wasted when
 * OC = 16:
 *   forward  outT[p, :] = bias + sum over taps t = (c, kh, kw) of Wt[t, :] * in[t + p]
 *   dweight  dWt[t, :] += sum over pixels p of doutT[p, :] * in[t + p]
 * with p an output pixel (oh, ow) and in[t + p] = in[c, oh + kh, ow + kw] (a broadcast).
 * Shapes (one sample; stride 1, dilation 1): in (C, H, W) already zero-padded; OH = H - KH + 1,
 * OW = W - KW + 1; Wt (C KH KW, 16) and bias16 (16,) the weights transposed and zero-padded to
 * 16 channels; outT (OH OW, 16) is overwritten; doutT (OH OW, L) the output gradient
 * transposed (zero lanes past OC); dWt (ceil8(C KH KW), L) is accumulated into (+=).
 * Every sum runs in a fixed order (taps, resp. pixels, ascending): the result does not depend
 * on the thread count (callers split samples between threads).
 */
#ifndef NNCORE_CONV_OCLANE_H
#define NNCORE_CONV_OCLANE_H

#include <stdint.h>

#include "simd.h"

#if NNCORE_X86
#include <immintrin.h>

/* Forward tile: R (1-2) output rows x CB (1-12) columns from (oh, ow0); R and CB are
 * compile-time constants at every call, so the R x CB accumulators stay in registers. Each
 * tap loads one weight vector and feeds R x CB FMAs with broadcast input pixels. Input rows
 * outside [r_lo, r_hi) are zero padding: kernel rows that would only read them are skipped. */
static inline __attribute__((always_inline, target("avx512f"))) void nncore_oc16_fwd_tile(
    float *outT, const float *in, const float *Wt, const float *bias16, int64_t oh,
    int64_t ow0, const int R, const int CB, int64_t C, int64_t H, int64_t W, int64_t OW,
    int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi) {
    __m512 acc[2][12];
    const __m512 b = _mm512_loadu_ps(bias16);
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 12
        for (int j = 0; j < CB; ++j) acc[r][j] = b;
    int64_t kh0 = r_lo - oh - (R - 1), kh1 = r_hi - oh;
    if (kh0 < 0) kh0 = 0;
    if (kh1 > KH) kh1 = KH;
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t kh = kh0; kh < kh1; ++kh) {
            const float *row = in + (c * H + oh + kh) * W + ow0;
            const float *wt = Wt + (c * KH + kh) * KW * 16;
            for (int64_t kw = 0; kw < KW; ++kw, wt += 16) {
                const __m512 w = _mm512_loadu_ps(wt);
#pragma GCC unroll 2
                for (int r = 0; r < R; ++r)
#pragma GCC unroll 12
                    for (int j = 0; j < CB; ++j)
                        acc[r][j] = _mm512_fmadd_ps(w, _mm512_set1_ps(row[r * W + kw + j]),
                                                    acc[r][j]);
            }
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 12
        for (int j = 0; j < CB; ++j)
            _mm512_storeu_ps(outT + ((oh + r) * OW + ow0 + j) * 16, acc[r][j]);
}

#define NNCORE_OC16_TILE(R, CB)                                                            \
    case CB:                                                                               \
        nncore_oc16_fwd_tile(outT, in, Wt, bias16, oh, ow0, R, CB, C, H, W, OW, KH, KW,    \
                             r_lo, r_hi);                                                  \
        break
#define NNCORE_OC16_TILES(R)                                                               \
    switch (cb) {                                                                          \
        NNCORE_OC16_TILE(R, 1); NNCORE_OC16_TILE(R, 2); NNCORE_OC16_TILE(R, 3);            \
        NNCORE_OC16_TILE(R, 4); NNCORE_OC16_TILE(R, 5); NNCORE_OC16_TILE(R, 6);            \
        NNCORE_OC16_TILE(R, 7); NNCORE_OC16_TILE(R, 8); NNCORE_OC16_TILE(R, 9);            \
        NNCORE_OC16_TILE(R, 10); NNCORE_OC16_TILE(R, 11); NNCORE_OC16_TILE(R, 12);         \
    }

__attribute__((target("avx512f"))) static void nncore_conv_oc16_fwd_avx512(
    float *outT, const float *in, const float *Wt, const float *bias16, int64_t C, int64_t H,
    int64_t W, int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi) {
    const int64_t OH = H - KH + 1, OW = W - KW + 1;
    /* columns in nchunks near-equal runs of <= 12 (28 -> 10 + 9 + 9, not 12 + 12 + 4) */
    const int64_t nchunks = (OW + 11) / 12;
    for (int64_t oh = 0; oh < OH; oh += 2) {
        for (int64_t k = 0; k < nchunks; ++k) {
            const int64_t ow0 = k * OW / nchunks, cb = (k + 1) * OW / nchunks - ow0;
            if (oh + 2 <= OH) {
                NNCORE_OC16_TILES(2)
            } else {
                NNCORE_OC16_TILES(1)
            }
        }
    }
}
#undef NNCORE_OC16_TILES
#undef NNCORE_OC16_TILE

/* Weight gradient of 8 taps (input pointers tap[0..7], one per (c, kh, kw)) over all pixels
 * of one sample, the output channels along L = 16 (zmm) or 8 (ymm) lanes: 8 accumulators
 * (8 independent FMA chains), one doutT vector load and 8 broadcast input pixels per pixel.
 * Zen 4 and most AVX-512 cores issue two 8-lane FMAs per cycle against one 16-lane FMA, so
 * 8 lanes lose nothing per lane when OC <= 8. */
#define NNCORE_OCLANE_DW(L, VEC, LOAD, STORE, FMA, SET1)                                   \
    static inline __attribute__((always_inline, target("avx512f,avx512vl,fma"))) void      \
        nncore_oclane##L##_dw_taps(float *dWt, const float *doutT, const float *const *tap, \
                                   int64_t OH, int64_t OW, int64_t W) {                    \
        VEC acc[8];                                                                        \
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; ++j) acc[j] = LOAD(dWt + j * L);    \
        for (int64_t oh = 0; oh < OH; ++oh) {                                              \
            const float *d = doutT + oh * OW * L;                                          \
            const int64_t base = oh * W;                                                   \
            for (int64_t ow = 0; ow < OW; ++ow) {                                          \
                const VEC v = LOAD(d + ow * L);                                            \
                _Pragma("GCC unroll 8") for (int j = 0; j < 8; ++j)                        \
                    acc[j] = FMA(v, SET1(tap[j][base + ow]), acc[j]);                      \
            }                                                                              \
        }                                                                                  \
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; ++j) STORE(dWt + j * L, acc[j]);    \
    }                                                                                      \
                                                                                           \
    __attribute__((target("avx512f,avx512vl,fma"))) static void nncore_conv_oclane##L##_dw( \
        float *dWt, float *db, const float *doutT, const float *in, int64_t C, int64_t H,  \
        int64_t W, int64_t KH, int64_t KW) {                                               \
        const int64_t OH = H - KH + 1, OW = W - KW + 1, CKK = C * KH * KW;                 \
        const float *tap[8];                                                               \
        if (db) { /* bias gradient: db += sum over the pixels of doutT (x*1+s == x+s) */   \
            VEC s = LOAD(db);                                                              \
            for (int64_t p = 0; p < OH * OW; ++p) s = FMA(LOAD(doutT + p * L), SET1(1.0f), s); \
            STORE(db, s);                                                                  \
        }                                                                                  \
        for (int64_t t0 = 0; t0 < CKK; t0 += 8) {                                          \
            for (int64_t j = 0; j < 8; ++j) { /* tail: rows past CKK repeat the last tap */ \
                const int64_t t = t0 + j < CKK ? t0 + j : CKK - 1;                         \
                tap[j] = in + (t / (KH * KW) * H + t / KW % KH) * W + t % KW;              \
            }                                                                              \
            nncore_oclane##L##_dw_taps(dWt + t0 * L, doutT, tap, OH, OW, W);               \
        }                                                                                  \
    }

NNCORE_OCLANE_DW(16, __m512, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps,
                 _mm512_set1_ps)
NNCORE_OCLANE_DW(8, __m256, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps,
                 _mm256_set1_ps)
#undef NNCORE_OCLANE_DW
#endif /* NNCORE_X86 */

/* 1 when the AVX-512 body ran; 0 when this build or CPU has none (callers check the level
 * before choosing this path). */
static int nncore_conv_oc16_fwd_f32(float *outT, const float *in, const float *Wt,
                                    const float *bias16, int64_t C, int64_t H, int64_t W,
                                    int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi,
                                    int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) {
        nncore_conv_oc16_fwd_avx512(outT, in, Wt, bias16, C, H, W, KH, KW, r_lo, r_hi);
        return 1;
    }
#endif
    (void)outT; (void)in; (void)Wt; (void)bias16; (void)C; (void)H; (void)W; (void)KH;
    (void)KW; (void)r_lo; (void)r_hi; (void)level;
    return 0;
}

/* dWt (ceil8(C KH KW), L) += the weight gradient of one sample, L = 16 or 8 lanes, and
 * db (L,) += its bias gradient when db is not NULL. */
static int nncore_conv_oclane_dw_f32(float *dWt, float *db, const float *doutT,
                                     const float *in, int64_t C, int64_t H, int64_t W,
                                     int64_t KH, int64_t KW, int lanes, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) {
        if (lanes == 8) nncore_conv_oclane8_dw(dWt, db, doutT, in, C, H, W, KH, KW);
        else nncore_conv_oclane16_dw(dWt, db, doutT, in, C, H, W, KH, KW);
        return 1;
    }
#endif
    (void)dWt; (void)db; (void)doutT; (void)in; (void)C; (void)H; (void)W; (void)KH;
    (void)KW; (void)lanes; (void)level;
    return 0;
}

#endif /* NNCORE_CONV_OCLANE_H */
