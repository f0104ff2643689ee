/* conv_im2col.h: im2col / col2im and row sums for conv.pyx, float and double.
 *
 * img is one group of one sample, (Cg, H, W); col is (Cg*KH*KW, OH*OW), row r = (c, kh, kw),
 * column oh*OW + ow holds img[c, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw] (0 outside the image).
 * im2col overwrites col; col2im_add adds col back into img (the adjoint).
 *
 * The work is many short row copies (OW elements, often 10-32), so the per-row cost matters:
 * the valid oh/ow ranges are computed once per kernel tap, leaving branch-free inner loops.
 * The bodies are compiled for AVX-512 (GCC target attribute) and portable, and picked at run
 * time from nncore_simd_level() (capped by NNCORE_SIMD). AVX-512 im2col uses masked loads and
 * full-vector stores (below). col2im stays plain loops compiled for AVX-512: hand-written
 * masked adds were 7x slower on LeNet shapes (shifted, overlapping read-modify-writes of one
 * image row defeat store-to-load forwarding), and GCC turns plain short copy loops into
 * memcpy calls, which is why im2col does not use them.
 * Row sums use 16 independent lanes added in a fixed order: the same bits on every path.
 */
#ifndef NNCORE_CONV_IM2COL_H
#define NNCORE_CONV_IM2COL_H

#include <stdint.h>
#include <string.h>

#include "simd.h"

#if NNCORE_X86
#include <immintrin.h>
#define NNCORE_CONV_AVX512 __attribute__((target("avx512f")))
#endif

typedef struct {
    int64_t Cg, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw;
} nncore_conv_geom;

/* [lo, hi) of o in [0, n_out) with 0 <= o*s + off < n_in */
static inline void nncore_conv_range(int64_t off, int64_t s, int64_t n_in, int64_t n_out,
                                     int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = (n_in - 1 - off) < 0 ? 0 : (n_in - 1 - off) / s + 1;
    if (h > n_out) h = n_out;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* ---- row primitives: plain loops, inlined into (and vectorised for) each ISA body */
#define NNCORE_CONV_ROWS_PORTABLE(T, SFX)                                                    \
    static inline void nncore_conv_copy_##SFX(T *restrict d, const T *restrict s, \
                                                         int64_t n) {                       \
        for (int64_t i = 0; i < n; ++i) d[i] = s[i];                                         \
    }                                                                                        \
    static inline void nncore_conv_zero_##SFX(T *restrict d, int64_t n) {                 \
        for (int64_t i = 0; i < n; ++i) d[i] = 0;                                            \
    }                                                                                        \
    static inline void nncore_conv_add_##SFX(T *restrict d, const T *restrict s,  \
                                                        int64_t n) {                        \
        for (int64_t i = 0; i < n; ++i) d[i] += s[i];                                        \
    }
NNCORE_CONV_ROWS_PORTABLE(float, f32)
NNCORE_CONV_ROWS_PORTABLE(double, f64)

/* ---- im2col / col2im bodies over the row primitives of one ISA */
#define NNCORE_CONV_BODIES(T, SFX, ISA, ATTR)                                                \
    ATTR static void nncore_im2col_##SFX##_##ISA(T *restrict col, const T *restrict img,     \
                                                 const nncore_conv_geom *g) {                \
        const int64_t OW = g->OW, OH = g->OH, sw = g->sw;                                    \
        for (int64_t c = 0; c < g->Cg; ++c)                                                  \
            for (int64_t kh = 0; kh < g->KH; ++kh) {                                         \
                int64_t oh0, oh1;                                                            \
                nncore_conv_range(kh * g->dh - g->pt, g->sh, g->H, OH, &oh0, &oh1);          \
                for (int64_t kw = 0; kw < g->KW; ++kw) {                                     \
                    int64_t lo, hi, off = kw * g->dw - g->pl;                                \
                    nncore_conv_range(off, sw, g->W, OW, &lo, &hi);                          \
                    T *dst = col + ((c * g->KH + kh) * g->KW + kw) * OH * OW;                \
                    nncore_conv_zero_##SFX(dst, oh0 * OW);                           \
                    for (int64_t oh = oh0; oh < oh1; ++oh) {                                 \
                        T *d = dst + oh * OW;                                                \
                        const T *src =                                                       \
                            img + (c * g->H + oh * g->sh - g->pt + kh * g->dh) * g->W + off; \
                        if (lo > 0) nncore_conv_zero_##SFX(d, lo);                   \
                        if (sw == 1)                                                         \
                            nncore_conv_copy_##SFX(d + lo, src + lo, hi - lo);       \
                        else                                                                 \
                            for (int64_t ow = lo; ow < hi; ++ow) d[ow] = src[ow * sw];       \
                        if (hi < OW) nncore_conv_zero_##SFX(d + hi, OW - hi);        \
                    }                                                                        \
                    nncore_conv_zero_##SFX(dst + oh1 * OW, (OH - oh1) * OW);         \
                }                                                                            \
            }                                                                                \
    }                                                                                        \
    ATTR static void nncore_col2im_add_##SFX##_##ISA(T *restrict img, const T *restrict col, \
                                                     const nncore_conv_geom *g) {            \
        const int64_t OW = g->OW, OH = g->OH, sw = g->sw;                                    \
        for (int64_t c = 0; c < g->Cg; ++c)                                                  \
            for (int64_t kh = 0; kh < g->KH; ++kh) {                                         \
                int64_t oh0, oh1;                                                            \
                nncore_conv_range(kh * g->dh - g->pt, g->sh, g->H, OH, &oh0, &oh1);          \
                for (int64_t kw = 0; kw < g->KW; ++kw) {                                     \
                    int64_t lo, hi, off = kw * g->dw - g->pl;                                \
                    nncore_conv_range(off, sw, g->W, OW, &lo, &hi);                          \
                    const T *s = col + ((c * g->KH + kh) * g->KW + kw) * OH * OW;            \
                    for (int64_t oh = oh0; oh < oh1; ++oh) {                                 \
                        T *d = img + (c * g->H + oh * g->sh - g->pt + kh * g->dh) * g->W     \
                               + off;                                                        \
                        if (sw == 1)                                                         \
                            nncore_conv_add_##SFX(d + lo, s + oh * OW + lo, hi - lo);\
                        else                                                                 \
                            for (int64_t ow = lo; ow < hi; ++ow)                             \
                                d[ow * sw] += s[oh * OW + ow];                               \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
    }

NNCORE_CONV_BODIES(float, f32, portable, )
NNCORE_CONV_BODIES(double, f64, portable, )
#if NNCORE_X86
NNCORE_CONV_BODIES(float, f32, avx512_exact, NNCORE_CONV_AVX512)
NNCORE_CONV_BODIES(double, f64, avx512_exact, NNCORE_CONV_AVX512)

/* AVX-512 im2col: every write is a full, unmasked vector store (masked stores are slow on
 * some cores, e.g. Zen 4), so a row's last vector spills up to VL-1 elements past its end.
 * Output rows are written in increasing address order, so the next row overwrites the spill;
 * the last one lands in NNCORE_CONV_SLACK elements the caller allocates after col. Loads are
 * masked (zero-filling), so nothing outside the valid input columns is read. Stride-1 rows
 * only; other strides take the exact body. */
#define NNCORE_CONV_SLACK 16
#define NNCORE_CONV_IM2COL_AVX512(T, SFX, VL, MASK, LOADZ, STORE, ZERO)                       \
    NNCORE_CONV_AVX512 static void nncore_im2col_##SFX##_avx512(                             \
        T *restrict col, const T *restrict img, const nncore_conv_geom *g) {                 \
        if (g->sw != 1) {                                                                    \
            nncore_im2col_##SFX##_avx512_exact(col, img, g);                                 \
            return;                                                                          \
        }                                                                                    \
        const int64_t OW = g->OW, OH = g->OH;                                                \
        for (int64_t c = 0; c < g->Cg; ++c)                                                  \
            for (int64_t kh = 0; kh < g->KH; ++kh) {                                         \
                int64_t oh0, oh1;                                                            \
                nncore_conv_range(kh * g->dh - g->pt, g->sh, g->H, OH, &oh0, &oh1);          \
                for (int64_t kw = 0; kw < g->KW; ++kw) {                                     \
                    int64_t lo, hi, off = kw * g->dw - g->pl;                                \
                    nncore_conv_range(off, 1, g->W, OW, &lo, &hi);                           \
                    T *dst = col + ((c * g->KH + kh) * g->KW + kw) * OH * OW;                \
                    for (int64_t i = 0; i < oh0 * OW; i += VL) STORE(dst + i, ZERO());       \
                    for (int64_t oh = oh0; oh < oh1; ++oh) {                                 \
                        T *d = dst + oh * OW;                                                \
                        const T *src =                                                       \
                            img + (c * g->H + oh * g->sh - g->pt + kh * g->dh) * g->W + off; \
                        for (int64_t i = 0; i < OW; i += VL) {                               \
                            int64_t a = lo - i, b = hi - i; /* valid lanes [a, b) */         \
                            a = a < 0 ? 0 : a;                                               \
                            b = b > VL ? VL : b;                                             \
                            MASK m = b > a ? (MASK)(((1ull << b) - 1) & ~((1ull << a) - 1))  \
                                           : (MASK)0;                                        \
                            STORE(d + i, LOADZ(m, src + i));                                 \
                        }                                                                    \
                    }                                                                        \
                    for (int64_t i = oh1 * OW; i < OH * OW; i += VL) STORE(dst + i, ZERO()); \
                }                                                                            \
            }                                                                                \
    }
NNCORE_CONV_IM2COL_AVX512(float, f32, 16, __mmask16, _mm512_maskz_loadu_ps, _mm512_storeu_ps,
                          _mm512_setzero_ps)
NNCORE_CONV_IM2COL_AVX512(double, f64, 8, __mmask8, _mm512_maskz_loadu_pd, _mm512_storeu_pd,
                          _mm512_setzero_pd)
#define nncore_col2im_add_f32_avx512 nncore_col2im_add_f32_avx512_exact
#define nncore_col2im_add_f64_avx512 nncore_col2im_add_f64_avx512_exact
#else
#define NNCORE_CONV_SLACK 0
#endif

/* ---- dispatch: level is nncore_simd_level() */
#if NNCORE_X86
#define NNCORE_CONV_DISPATCH(T, SFX)                                                         \
    static inline void nncore_im2col_##SFX(T *col, const T *img, const nncore_conv_geom *g,  \
                                           int level) {                                      \
        if (level >= NNCORE_SIMD_AVX512) nncore_im2col_##SFX##_avx512(col, img, g);          \
        else nncore_im2col_##SFX##_portable(col, img, g);                                    \
    }                                                                                        \
    static inline void nncore_col2im_add_##SFX(T *img, const T *col,                         \
                                               const nncore_conv_geom *g, int level) {       \
        if (level >= NNCORE_SIMD_AVX512) nncore_col2im_add_##SFX##_avx512(img, col, g);      \
        else nncore_col2im_add_##SFX##_portable(img, col, g);                                \
    }
#else
#define NNCORE_CONV_DISPATCH(T, SFX)                                                         \
    static inline void nncore_im2col_##SFX(T *col, const T *img, const nncore_conv_geom *g,  \
                                           int level) {                                      \
        (void)level;                                                                         \
        nncore_im2col_##SFX##_portable(col, img, g);                                         \
    }                                                                                        \
    static inline void nncore_col2im_add_##SFX(T *img, const T *col,                         \
                                               const nncore_conv_geom *g, int level) {       \
        (void)level;                                                                         \
        nncore_col2im_add_##SFX##_portable(img, col, g);                                     \
    }
#endif
NNCORE_CONV_DISPATCH(float, f32)
NNCORE_CONV_DISPATCH(double, f64)

/* out[r] (+)= sum(x[r, :n]) for m rows of length n; 16 lanes then a fixed-order fold */
#define NNCORE_CONV_ROW_SUMS(T, SFX)                                                         \
    static void nncore_row_sums_##SFX(T *restrict out, const T *restrict x, int64_t m,       \
                                      int64_t n, int accumulate) {                           \
        for (int64_t r = 0; r < m; ++r) {                                                    \
            const T *row = x + r * n;                                                        \
            T acc[16] = {0};                                                                 \
            int64_t j = 0;                                                                   \
            for (; j + 16 <= n; j += 16)                                                     \
                for (int k = 0; k < 16; ++k) acc[k] += row[j + k];                           \
            T s = 0;                                                                         \
            for (int k = 0; k < 16; ++k) s += acc[k];                                        \
            for (; j < n; ++j) s += row[j];                                                  \
            out[r] = accumulate ? out[r] + s : s;                                            \
        }                                                                                    \
    }
NNCORE_CONV_ROW_SUMS(float, f32)
NNCORE_CONV_ROW_SUMS(double, f64)

#endif
