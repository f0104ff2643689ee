/* conv_winograd.h: the input, output and output-gradient transforms of Winograd's
 * F(2x2, 3x3) for conv_winograd.pyx, float (_f32) and double (_f64), written as plain loops
 * along a row of tiles and compiled once per instruction set with that set's GCC target
 * attribute, so that the compiler vectorises them at its width (the build itself targets
 * baseline x86-64).
 * Additions and subtractions only, each output in a fixed order: every level gives the same
 * bits.
 *
 *   nncore_wino_input_##SFX(V, E, Od, x, C, H, W, pt, pl, TH, TW, CP, level)
 *       V[xi][c][ty TW + tx] (xi = 4 i + j, planes CP apart) = (B^T d B)[i][j] of the 4x4
 *       input block at rows 2 ty - pt.., columns 2 tx - pl.. of channel c (zero outside x).
 *       E, Od: scratch planes (2 TH + 2, TW + 1): the even and odd columns of the zero-padded
 *       channel, so that every loop below reads contiguous memory.
 *   nncore_wino_output_##SFX(out, M, bias, row, OC, OH, OW, TH, TW, OP, level)
 *       out[oc] (OH, OW) = (A^T m A) of every tile m = M[.][oc][tile] (planes OP apart),
 *       cropped at odd edges, plus bias[oc] (bias may be NULL). row: scratch of
 *       4 TW + 2 elements.
 *   nncore_wino_dout_##SFX(Y, dy, row, OC, OH, OW, TH, TW, OS, OP, level)
 *       Y[xi][oc][ty TW + tx] (xi = 4 i + j, output channels OS apart, planes OP apart) =
 *       (A dy A^T)[i][j] of the 2x2 block of dy[oc] (OH, OW) at rows 2 ty.., columns 2 tx..
 *       (zero past the edges): the weight gradient's transform of the output gradient, the
 *       transpose of the output transform. row: scratch of 4 TW elements.
 */
#ifndef NNCORE_CONV_WINOGRAD_H
#define NNCORE_CONV_WINOGRAD_H
#include <stddef.h>
#include <string.h>
#include "simd.h"

#define NNCORE_WINO_BODIES(T, SFX, ISA, ATTR)                                                \
/* src[0..n) to positions off.. of a row kept as its even (ev) and odd (od) columns */       \
ATTR static inline void nncore_wino_split_##SFX##_##ISA(                                     \
        T *restrict ev, T *restrict od, const T *restrict src, ptrdiff_t n, ptrdiff_t off) { \
    /* one loop over the pairs (src[2k], src[2k + 1]), which land in (ev, od) at an even   \
     * offset and in (od, ev) at an odd one: GCC vectorises it as one interleaved group */  \
    T *a = (off & 1) ? od + (off >> 1) : ev + (off >> 1);                                    \
    T *b = (off & 1) ? ev + ((off + 1) >> 1) : od + (off >> 1);                              \
    const ptrdiff_t pairs = n / 2;                                                           \
    _Pragma("GCC ivdep")                                                                     \
    for (ptrdiff_t k = 0; k < pairs; k++) {                                                  \
        a[k] = src[2 * k];                                                                   \
        b[k] = src[2 * k + 1];                                                               \
    }                                                                                        \
    if (n & 1) a[pairs] = src[n - 1];                                                        \
}                                                                                            \
ATTR static void nncore_wino_input_##SFX##_##ISA(                                            \
        T *restrict V, T *restrict E, T *restrict Od, const T *restrict x, ptrdiff_t C,      \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t TH, ptrdiff_t TW,    \
        ptrdiff_t CP) {                                                                      \
    const ptrdiff_t Hp = 2 * TH + 2, Wh = TW + 1, P = TH * TW;                               \
    for (ptrdiff_t c = 0; c < C; c++) {                                                      \
        memset(E, 0, (size_t)(Hp * Wh) * sizeof(T));                                         \
        memset(Od, 0, (size_t)(Hp * Wh) * sizeof(T));                                        \
        for (ptrdiff_t r = pt; r < H + pt && r < Hp; r++)                                    \
            nncore_wino_split_##SFX##_##ISA(E + r * Wh, Od + r * Wh, x + (c * H + r - pt) * W, \
                                            W < 2 * Wh - pl ? W : 2 * Wh - pl, pl);          \
        for (ptrdiff_t ty = 0; ty < TH; ty++) {                                              \
            T *v = V + c * P + ty * TW;                                                      \
            const T *e0 = E + (2 * ty) * Wh, *o0 = Od + (2 * ty) * Wh;                       \
            const T *e1 = e0 + Wh, *o1 = o0 + Wh, *e2 = e1 + Wh, *o2 = o1 + Wh;              \
            const T *e3 = e2 + Wh, *o3 = o2 + Wh;                                            \
            /* row i of d B for tile tx: (d0 - d2, d1 + d2, d2 - d1, d1 - d3) with          \
             * d0..d3 = e[tx], o[tx], e[tx + 1], o[tx + 1]; then B^T over the four rows.     \
             * ivdep: the 16 planes of v never overlap (GCC would need more run-time alias     \
             * checks than it allows, and stay scalar) */                                     \
            _Pragma("GCC ivdep")                                                             \
            for (ptrdiff_t tx = 0; tx < TW; tx++) {                                          \
                const T a0 = e0[tx] - e0[tx + 1], a1 = o0[tx] + e0[tx + 1];                  \
                const T a2 = e0[tx + 1] - o0[tx], a3 = o0[tx] - o0[tx + 1];                  \
                const T b0 = e1[tx] - e1[tx + 1], b1 = o1[tx] + e1[tx + 1];                  \
                const T b2 = e1[tx + 1] - o1[tx], b3 = o1[tx] - o1[tx + 1];                  \
                const T c0 = e2[tx] - e2[tx + 1], c1 = o2[tx] + e2[tx + 1];                  \
                const T c2 = e2[tx + 1] - o2[tx], c3 = o2[tx] - o2[tx + 1];                  \
                const T d0 = e3[tx] - e3[tx + 1], d1 = o3[tx] + e3[tx + 1];                  \
                const T d2 = e3[tx + 1] - o3[tx], d3 = o3[tx] - o3[tx + 1];                  \
                v[0 * CP + tx] = a0 - c0;  v[1 * CP + tx] = a1 - c1;                         \
                v[2 * CP + tx] = a2 - c2;  v[3 * CP + tx] = a3 - c3;                         \
                v[4 * CP + tx] = b0 + c0;  v[5 * CP + tx] = b1 + c1;                         \
                v[6 * CP + tx] = b2 + c2;  v[7 * CP + tx] = b3 + c3;                         \
                v[8 * CP + tx] = c0 - b0;  v[9 * CP + tx] = c1 - b1;                         \
                v[10 * CP + tx] = c2 - b2; v[11 * CP + tx] = c3 - b3;                        \
                v[12 * CP + tx] = b0 - d0; v[13 * CP + tx] = b1 - d1;                        \
                v[14 * CP + tx] = b2 - d2; v[15 * CP + tx] = b3 - d3;                        \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
ATTR static void nncore_wino_output_##SFX##_##ISA(                                           \
        T *restrict out, const T *restrict M, const T *restrict bias, T *restrict row,       \
        ptrdiff_t OC, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, ptrdiff_t OP) { \
    const ptrdiff_t P = TH * TW;                                                             \
    T *r0 = row, *r1 = row + 2 * TW + 1;                                                     \
    for (ptrdiff_t oc = 0; oc < OC; oc++) {                                                  \
        const T b = bias ? bias[oc] : (T)0;                                                  \
        T *o = out + oc * OH * OW;                                                           \
        for (ptrdiff_t ty = 0; ty < TH; ty++) {                                              \
            const T *m = M + oc * P + ty * TW;                                               \
            /* A^T over the rows (m0 + m1 + m2, m1 - m2 - m3), then A over the columns */    \
            _Pragma("GCC ivdep")                                                             \
            for (ptrdiff_t tx = 0; tx < TW; tx++) {                                          \
                const T s00 = m[0 * OP + tx] + m[4 * OP + tx] + m[8 * OP + tx];              \
                const T s01 = m[1 * OP + tx] + m[5 * OP + tx] + m[9 * OP + tx];              \
                const T s02 = m[2 * OP + tx] + m[6 * OP + tx] + m[10 * OP + tx];             \
                const T s03 = m[3 * OP + tx] + m[7 * OP + tx] + m[11 * OP + tx];             \
                const T s10 = m[4 * OP + tx] - m[8 * OP + tx] - m[12 * OP + tx];             \
                const T s11 = m[5 * OP + tx] - m[9 * OP + tx] - m[13 * OP + tx];             \
                const T s12 = m[6 * OP + tx] - m[10 * OP + tx] - m[14 * OP + tx];            \
                const T s13 = m[7 * OP + tx] - m[11 * OP + tx] - m[15 * OP + tx];            \
                r0[2 * tx] = s00 + s01 + s02 + b;                                            \
                r0[2 * tx + 1] = s01 - s02 - s03 + b;                                        \
                r1[2 * tx] = s10 + s11 + s12 + b;                                            \
                r1[2 * tx + 1] = s11 - s12 - s13 + b;                                        \
            }                                                                                \
            memcpy(o + 2 * ty * OW, r0, (size_t)OW * sizeof(T));                             \
            if (2 * ty + 1 < OH) memcpy(o + (2 * ty + 1) * OW, r1, (size_t)OW * sizeof(T));  \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
ATTR static void nncore_wino_dout_##SFX##_##ISA(                                             \
        T *restrict Y, const T *restrict dy, T *restrict row, ptrdiff_t OC, ptrdiff_t OH,    \
        ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, ptrdiff_t OS, ptrdiff_t OP) {              \
    T *e0 = row, *o0 = row + TW, *e1 = row + 2 * TW, *o1 = row + 3 * TW;                     \
    for (ptrdiff_t oc = 0; oc < OC; oc++) {                                                  \
        const T *src = dy + oc * OH * OW;                                                    \
        for (ptrdiff_t ty = 0; ty < TH; ty++) {                                              \
            /* the block's two rows split into even and odd columns, zeros past the edges */ \
            o0[TW - 1] = o1[TW - 1] = 0;                                                     \
            nncore_wino_split_##SFX##_##ISA(e0, o0, src + 2 * ty * OW, OW, 0);               \
            if (2 * ty + 1 < OH)                                                             \
                nncore_wino_split_##SFX##_##ISA(e1, o1, src + (2 * ty + 1) * OW, OW, 0);     \
            else                                                                             \
                memset(e1, 0, (size_t)(2 * TW) * sizeof(T));                                 \
            T *y = Y + oc * OS + ty * TW;                                                    \
            /* A over the rows of [a b; c d]: (a, b), (a + c, b + d), (a - c, b - d),        \
             * (-c, -d); then A^T over each row (p, q): (p, p + q, p - q, -q) */             \
            _Pragma("GCC ivdep")                                                             \
            for (ptrdiff_t tx = 0; tx < TW; tx++) {                                          \
                const T a = e0[tx], b = o0[tx], c = e1[tx], d = o1[tx];                      \
                const T p1 = a + c, q1 = b + d, p2 = a - c, q2 = b - d;                      \
                y[0 * OP + tx] = a;        y[1 * OP + tx] = a + b;                           \
                y[2 * OP + tx] = a - b;    y[3 * OP + tx] = -b;                              \
                y[4 * OP + tx] = p1;       y[5 * OP + tx] = p1 + q1;                         \
                y[6 * OP + tx] = p1 - q1;  y[7 * OP + tx] = -q1;                             \
                y[8 * OP + tx] = p2;       y[9 * OP + tx] = p2 + q2;                         \
                y[10 * OP + tx] = p2 - q2; y[11 * OP + tx] = -q2;                            \
                y[12 * OP + tx] = -c;      y[13 * OP + tx] = -(c + d);                       \
                y[14 * OP + tx] = d - c;   y[15 * OP + tx] = d;                              \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}

NNCORE_SIMD_CLONES(NNCORE_WINO_BODIES)

#define NNCORE_WINO_ENTRIES(T, SFX)                                                          \
static void nncore_wino_input_##SFX(T *V, T *E, T *Od, const T *x, ptrdiff_t C, ptrdiff_t H, \
                                    ptrdiff_t W, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t TH,   \
                                    ptrdiff_t TW, ptrdiff_t CP, int level) {                 \
    NNCORE_SIMD_PICK(level, nncore_wino_input_##SFX,                                         \
                     (V, E, Od, x, C, H, W, pt, pl, TH, TW, CP));                            \
}                                                                                            \
static void nncore_wino_output_##SFX(T *out, const T *M, const T *bias, T *row, ptrdiff_t OC, \
                                     ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, \
                                     ptrdiff_t OP, int level) {                              \
    NNCORE_SIMD_PICK(level, nncore_wino_output_##SFX,                                        \
                     (out, M, bias, row, OC, OH, OW, TH, TW, OP));                           \
}                                                                                            \
static void nncore_wino_dout_##SFX(T *Y, const T *dy, T *row, ptrdiff_t OC, ptrdiff_t OH,    \
                                   ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, ptrdiff_t OS,   \
                                   ptrdiff_t OP, int level) {                                \
    NNCORE_SIMD_PICK(level, nncore_wino_dout_##SFX, (Y, dy, row, OC, OH, OW, TH, TW, OS, OP)); \
}
NNCORE_WINO_ENTRIES(float, f32)
NNCORE_WINO_ENTRIES(double, f64)
#undef NNCORE_WINO_BODIES
#undef NNCORE_WINO_ENTRIES
#endif
