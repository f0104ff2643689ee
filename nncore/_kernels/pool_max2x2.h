/* pool_max2x2.h: max pooling of one plane without data-dependent branches, for pool.pyx:
 * a 2x2 stride-2 fast path and the general kernel/stride/padding/dilation case.
 *
 * x (H, W) -> out (OH, OW) and arg (OH, OW) with the flat index ih*W + iw of each maximum;
 * every window lies inside the plane (2*OH <= H, 2*OW <= W). A later element wins when it is
 * larger or NaN (PyTorch's rule). Written without data-dependent branches: on random data
 * the comparisons are unpredictable and a branchy loop spends most of its time mispredicting.
 */
#ifndef NNCORE_POOL_MAX2X2_H
#define NNCORE_POOL_MAX2X2_H

#include <stdint.h>
#include <math.h>
#include <string.h>

/* GCC keeps float selects as branches (NaN semantics), so blend the bit patterns instead */
#define NNCORE_MAX2X2_DEFINE(T, U, SFX)                                                       \
    static inline void nncore_max2x2_step_##SFX(T v, int64_t i, T *best, int64_t *bi) {      \
        U take = (U)((v > *best) | (v != v));                                                \
        U mask = (U)0 - take, vb, bb;                                                        \
        memcpy(&vb, &v, sizeof vb);                                                          \
        memcpy(&bb, best, sizeof bb);                                                        \
        bb = (vb & mask) | (bb & ~mask);                                                     \
        memcpy(best, &bb, sizeof bb);                                                        \
        *bi = (i & -(int64_t)take) | (*bi & ((int64_t)take - 1));                            \
    }                                                                                        \
    static void nncore_max2x2_##SFX(T *restrict out, int64_t *restrict arg,                 \
                                    const T *restrict x, int64_t OH, int64_t OW, int64_t W) { \
        for (int64_t oh = 0; oh < OH; ++oh)                                                  \
            for (int64_t ow = 0; ow < OW; ++ow) {                                            \
                int64_t i0 = 2 * oh * W + 2 * ow, i1 = i0 + W, bi = i0;                      \
                T best = x[i0];                                                              \
                nncore_max2x2_step_##SFX(x[i0 + 1], i0 + 1, &best, &bi);                     \
                nncore_max2x2_step_##SFX(x[i1], i1, &best, &bi);                             \
                nncore_max2x2_step_##SFX(x[i1 + 1], i1 + 1, &best, &bi);                     \
                out[oh * OW + ow] = best;                                                    \
                arg[oh * OW + ow] = bi;                                                      \
            }                                                                                \
    }                                                                                        \
                                                                                             \
    /* any kernel/stride/padding/dilation; padded cells are skipped (never chosen) */        \
    static void nncore_maxpool_plane_##SFX(T *restrict out, int64_t *restrict arg,           \
                                           const T *restrict x, const int64_t *geo) {        \
        const int64_t H = geo[0], W = geo[1], OH = geo[2], OW = geo[3], KH = geo[4],          \
                      KW = geo[5], sh = geo[6], sw = geo[7], ph = geo[8], pw = geo[9],        \
                      dh = geo[10], dw = geo[11];                                             \
        for (int64_t oh = 0; oh < OH; ++oh) {                                                \
            int64_t h0 = oh * sh - ph, kh0 = h0 >= 0 ? 0 : (-h0 + dh - 1) / dh, kh1 = KH;   \
            while (kh1 > kh0 && h0 + (kh1 - 1) * dh >= H) --kh1;                             \
            for (int64_t ow = 0; ow < OW; ++ow) {                                            \
                int64_t w0 = ow * sw - pw, kw0 = w0 >= 0 ? 0 : (-w0 + dw - 1) / dw, kw1 = KW;\
                while (kw1 > kw0 && w0 + (kw1 - 1) * dw >= W) --kw1;                         \
                T best = -(T)INFINITY;                                                       \
                int64_t bi = -1;                                                             \
                if (kh0 < kh1 && kw0 < kw1) {                                                \
                    bi = (h0 + kh0 * dh) * W + w0 + kw0 * dw;                                \
                    best = x[bi];                                                            \
                    for (int64_t kh = kh0; kh < kh1; ++kh)                                   \
                        for (int64_t kw = kw0; kw < kw1; ++kw) {                             \
                            int64_t i = (h0 + kh * dh) * W + w0 + kw * dw;                   \
                            nncore_max2x2_step_##SFX(x[i], i, &best, &bi);                   \
                        }                                                                    \
                }                                                                            \
                out[oh * OW + ow] = best;                                                    \
                arg[oh * OW + ow] = bi;                                                      \
            }                                                                                \
        }                                                                                    \
    }

NNCORE_MAX2X2_DEFINE(float, uint32_t, f32)
NNCORE_MAX2X2_DEFINE(double, uint64_t, f64)

#endif
