/* pool_max2x2.h: 2x2 stride-2 max pooling of one plane, branch-free, for pool.pyx.
 *
 * x (H, W) -> out (OH, OW) and arg (OH, OW) with the flat index ih*W + iw of each maximum;
 * every window lies inside the plane (2*OH <= H, 2*OW <= W). A later element wins when it is
 * larger or NaN (PyTorch's rule). Written without data-dependent branches: on random data
 * the comparisons are unpredictable and a branchy loop spends most of its time mispredicting.
 */
#ifndef NNCORE_POOL_MAX2X2_H
#define NNCORE_POOL_MAX2X2_H

#include <stdint.h>
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
    }

NNCORE_MAX2X2_DEFINE(float, uint32_t, f32)
NNCORE_MAX2X2_DEFINE(double, uint64_t, f64)

#endif
