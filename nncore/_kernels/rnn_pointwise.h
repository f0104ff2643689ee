/* rnn_pointwise.h: the fused gate passes of the LSTM and GRU kernels (lstm.pyx, gru.pyx), one
 * time step of a block of hidden units (LSTM) or of one batch row (GRU) per call, float (_f32)
 * and double (_f64).
 *
 * H hidden size. The LSTM passes take one pointer per gate (lstm.pyx keeps gates
 * feature-major: one row per hidden unit holding its batch lanes); GRU rows are 3H long in
 * the order r, z, n.
 * Outputs are overwritten (=) except where a comment says "updated in place".
 *
 *   nncore_lstm_fwd(gi, gf, gg, go, c_prev, c, tc, h, ldh, hb, ldhb, rows, n, level)
 *       `rows` hidden units x n batch lanes, each array (rows, n) contiguous except h (row
 *       stride ldh): gi..go hold the pre-activations of gates i, f, g, o on entry and
 *       sigmoid(i), sigmoid(f), tanh(g), sigmoid(o) on exit (the backward cache);
 *       c = f c_prev + i g; tc = tanh(c); h = o tc, also stored batch-major as
 *       hb[lane * ldhb + unit] (the layer output).
 *   nncore_lstm_bwd(di, df, dg, do, ld_dg, dh, ld_dh, dc, dout, gi, gf, gg, go, c_prev, tc,
 *                   rows, n, level)
 *       the same (rows, n) blocks (di..do with row stride ld_dg, dh with ld_dh); with
 *       dH = dh + dout (gradient reaching h_t) and dC = dc + dH o (1 - tc^2): di..do =
 *       d(pre-activations); dc is updated in place to dC f (gradient reaching c_{t-1}).
 *   nncore_gru_fwd_row(g, gh, h_prev, h, H, level)
 *       g (3H) holds x W_ih^T + b_ih on entry, gh (3H) = h_prev W_hh^T + b_hh.
 *       r = sigmoid(g_r + gh_r), z = sigmoid(g_z + gh_z), n = tanh(g_n + r gh_n) are written
 *       over g (the cache); h = n + z (h_prev - n) = (1 - z) n + z h_prev.
 *   nncore_gru_bwd_row(dgi, dgh, dh, dout, g, gh, h_prev, H, level)
 *       dH = dh + dout; dgi = d(x-side pre-activations), dgh = d(h-side pre-activations: r and z
 *       as dgi, n scaled by r); dh is updated in place to dH z (the direct path to h_{t-1};
 *       the caller adds dgh @ W_hh).
 *
 * Every pass takes the SIMD level last. The sigmoid/tanh calls use the AVX-512 / AVX2 bodies
 * of activation_elementwise.h at that level; at the portable level they run the libm loops
 * below (same formulas as activation.pyx's portable path). The remaining arithmetic is plain
 * C, compiled once per level with that level's target attribute, so the compiler vectorises
 * it at the level's width (the build alone would give SSE2).
 */
#ifndef NNCORE_RNN_POINTWISE_H
#define NNCORE_RNN_POINTWISE_H
#include <math.h>
#include <stddef.h>
#include "activation_elementwise.h"
#include "transpose.h"

/* The sigmoid/tanh helpers: the level's vector body of activation_elementwise.h, else libm. */
#define NNCORE_RNN_ACT(T, SFX, EXP, TANH, FABS, EW)                                          \
static inline void nncore_rnn_sigmoid_##SFX(T *y, const T *a, ptrdiff_t n, int level) {      \
    if (level > NNCORE_SIMD_PORTABLE && EW(NNCORE_EW_SIGMOID, y, a, NULL, n, level)) return;  \
    for (ptrdiff_t j = 0; j < n; j++) {                                                      \
        T v = a[j];                                                                          \
        T e = EXP(-FABS(v));                                                                 \
        y[j] = (v >= 0 ? (T)1 : e) / ((T)1 + e);                                             \
    }                                                                                        \
}                                                                                            \
static inline void nncore_rnn_tanh_##SFX(T *y, const T *a, ptrdiff_t n, int level) {         \
    if (level > NNCORE_SIMD_PORTABLE && EW(NNCORE_EW_TANH, y, a, NULL, n, level)) return;     \
    for (ptrdiff_t j = 0; j < n; j++) y[j] = TANH(a[j]);                                     \
}

/* The passes, once per instruction set: ISA names the copy, ATTR is its GCC target attribute.
 * The arithmetic between the sigmoid/tanh calls is plain C that the compiler vectorises at
 * the width ATTR allows (the build itself targets baseline x86-64, i.e. SSE2). */
#define NNCORE_RNN_PASSES(T, SFX, ISA, ATTR)                                                 \
ATTR static void nncore_lstm_fwd_##SFX##_##ISA(T *gi, T *gf, T *gg, T *go, const T *c_prev,  \
                                               T *c, T *tc, T *h, ptrdiff_t ldh, T *hb,      \
                                               ptrdiff_t ldhb, ptrdiff_t rows, ptrdiff_t n,  \
                                               int level) {                                  \
    const ptrdiff_t m = rows * n;                                                            \
    nncore_rnn_sigmoid_##SFX(gi, gi, m, level);                                              \
    nncore_rnn_sigmoid_##SFX(gf, gf, m, level);                                              \
    nncore_rnn_tanh_##SFX(gg, gg, m, level);                                                 \
    nncore_rnn_sigmoid_##SFX(go, go, m, level);                                              \
    for (ptrdiff_t k = 0; k < m; k++) c[k] = gf[k] * c_prev[k] + gi[k] * gg[k];              \
    nncore_rnn_tanh_##SFX(tc, c, m, level);                                                  \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                   \
        T *h_r = h + r * ldh;                                                                \
        for (ptrdiff_t j = 0; j < n; j++) h_r[j] = go[r * n + j] * tc[r * n + j];            \
    }                                                                                        \
    nncore_transpose_##SFX(hb, ldhb, h, ldh, rows, n, level);    /* the batch-major copy */  \
}                                                                                            \
ATTR static void nncore_lstm_bwd_##SFX##_##ISA(                                              \
        T *restrict di, T *restrict df, T *restrict dgg, T *restrict dO, ptrdiff_t ld_dg,    \
        const T *restrict dh, ptrdiff_t ld_dh, T *restrict dc, const T *restrict dout,       \
        const T *restrict gi, const T *restrict gf, const T *restrict gg,                    \
        const T *restrict go, const T *restrict c_prev, const T *restrict tc,                \
        ptrdiff_t rows, ptrdiff_t n) {                                                       \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                   \
        T *di_r = di + r * ld_dg, *df_r = df + r * ld_dg, *dg_r = dgg + r * ld_dg;           \
        T *do_r = dO + r * ld_dg, *dc_r = dc + r * n;                                        \
        const T *dh_r = dh + r * ld_dh, *dout_r = dout + r * n, *i_r = gi + r * n;           \
        const T *f_r = gf + r * n, *g_r = gg + r * n, *o_r = go + r * n;                     \
        const T *cp_r = c_prev + r * n, *t_r = tc + r * n;                                   \
        for (ptrdiff_t j = 0; j < n; j++) {                                                  \
            T i = i_r[j], f = f_r[j], gv = g_r[j], o = o_r[j], t = t_r[j];                   \
            T dH = dh_r[j] + dout_r[j];                                                      \
            T dC = dc_r[j] + dH * o * ((T)1 - t * t);                                        \
            di_r[j] = dC * gv * (i * ((T)1 - i));                                            \
            df_r[j] = dC * cp_r[j] * (f * ((T)1 - f));                                       \
            dg_r[j] = dC * i * ((T)1 - gv * gv);                                             \
            do_r[j] = dH * t * (o * ((T)1 - o));                                             \
            dc_r[j] = dC * f;                                                                \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
ATTR static void nncore_gru_fwd_row_##SFX##_##ISA(T *g, const T *gh, const T *h_prev, T *h,  \
                                                  ptrdiff_t H, int level) {                  \
    for (ptrdiff_t j = 0; j < 2 * H; j++) g[j] += gh[j];                                     \
    nncore_rnn_sigmoid_##SFX(g, g, 2 * H, level);                                            \
    const T *r = g, *z = g + H, *ghn = gh + 2 * H;                                           \
    T *n = g + 2 * H;                                                                        \
    for (ptrdiff_t j = 0; j < H; j++) n[j] += r[j] * ghn[j];                                 \
    nncore_rnn_tanh_##SFX(n, n, H, level);                                                   \
    for (ptrdiff_t j = 0; j < H; j++) h[j] = n[j] + z[j] * (h_prev[j] - n[j]);               \
}                                                                                            \
ATTR static void nncore_gru_bwd_row_##SFX##_##ISA(                                           \
        T *restrict dgi, T *restrict dgh, T *restrict dh, const T *restrict dout,            \
        const T *restrict g, const T *restrict gh, const T *restrict h_prev, ptrdiff_t H) {  \
    const T *r = g, *z = g + H, *n = g + 2 * H, *ghn = gh + 2 * H;                           \
    for (ptrdiff_t j = 0; j < H; j++) {                                                      \
        T rv = r[j], zv = z[j], nv = n[j];                                                   \
        T dH = dh[j] + dout[j];                                                              \
        T dn = dH * ((T)1 - zv) * ((T)1 - nv * nv);                                          \
        T dz = dH * (h_prev[j] - nv) * (zv * ((T)1 - zv));                                   \
        T dr = dn * ghn[j] * (rv * ((T)1 - rv));                                             \
        dgi[j] = dr;                                                                         \
        dgi[H + j] = dz;                                                                     \
        dgi[2 * H + j] = dn;                                                                 \
        dgh[j] = dr;                                                                         \
        dgh[H + j] = dz;                                                                     \
        dgh[2 * H + j] = dn * rv;                                                            \
        dh[j] = dH * zv;                                                                     \
    }                                                                                        \
}

#define NNCORE_RNN_ENTRIES(T, SFX)                                                           \
static void nncore_lstm_fwd_##SFX(T *gi, T *gf, T *gg, T *go, const T *c_prev, T *c, T *tc,  \
                                  T *h, ptrdiff_t ldh, T *hb, ptrdiff_t ldhb, ptrdiff_t rows, \
                                  ptrdiff_t n, int level) {                                  \
    NNCORE_SIMD_PICK(level, nncore_lstm_fwd_##SFX,                                            \
                    (gi, gf, gg, go, c_prev, c, tc, h, ldh, hb, ldhb, rows, n, level));      \
}                                                                                            \
static void nncore_lstm_bwd_##SFX(T *di, T *df, T *dgg, T *dO, ptrdiff_t ld_dg, const T *dh, \
                                  ptrdiff_t ld_dh, T *dc, const T *dout, const T *gi,        \
                                  const T *gf, const T *gg, const T *go, const T *c_prev,    \
                                  const T *tc, ptrdiff_t rows, ptrdiff_t n, int level) {     \
    NNCORE_SIMD_PICK(level, nncore_lstm_bwd_##SFX,                                            \
                    (di, df, dgg, dO, ld_dg, dh, ld_dh, dc, dout, gi, gf, gg, go, c_prev,    \
                     tc, rows, n));                                                          \
}                                                                                            \
static void nncore_gru_fwd_row_##SFX(T *g, const T *gh, const T *h_prev, T *h, ptrdiff_t H,  \
                                     int level) {                                            \
    NNCORE_SIMD_PICK(level, nncore_gru_fwd_row_##SFX, (g, gh, h_prev, h, H, level));          \
}                                                                                            \
static void nncore_gru_bwd_row_##SFX(T *dgi, T *dgh, T *dh, const T *dout, const T *g,       \
                                     const T *gh, const T *h_prev, ptrdiff_t H, int level) { \
    NNCORE_SIMD_PICK(level, nncore_gru_bwd_row_##SFX, (dgi, dgh, dh, dout, g, gh, h_prev, H)); \
}

NNCORE_RNN_ACT(float, f32, expf, tanhf, fabsf, nncore_ew_f32)
NNCORE_RNN_ACT(double, f64, exp, tanh, fabs, nncore_ew_f64)
NNCORE_SIMD_CLONES(NNCORE_RNN_PASSES)
NNCORE_RNN_ENTRIES(float, f32)
NNCORE_RNN_ENTRIES(double, f64)
#undef NNCORE_RNN_ACT
#undef NNCORE_RNN_PASSES
#undef NNCORE_RNN_ENTRIES
#endif
