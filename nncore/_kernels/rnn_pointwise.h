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
 *                   rows, n)
 *       the same (rows, n) blocks (di..do with row stride ld_dg, dh with ld_dh); with
 *       dH = dh + dout (gradient reaching h_t) and dC = dc + dH o (1 - tc^2): di..do =
 *       d(pre-activations); dc is updated in place to dC f (gradient reaching c_{t-1}).
 *   nncore_gru_fwd_row(g, gh, h_prev, h, H, level)
 *       g (3H) holds x W_ih^T + b_ih on entry, gh (3H) = h_prev W_hh^T + b_hh.
 *       r = sigmoid(g_r + gh_r), z = sigmoid(g_z + gh_z), n = tanh(g_n + r gh_n) are written
 *       over g (the cache); h = n + z (h_prev - n) = (1 - z) n + z h_prev.
 *   nncore_gru_bwd_row(dgi, dgh, dh, dout, g, gh, h_prev, H)
 *       dH = dh + dout; dgi = d(x-side pre-activations), dgh = d(h-side pre-activations: r and z
 *       as dgi, n scaled by r); dh is updated in place to dH z (the direct path to h_{t-1};
 *       the caller adds dgh @ W_hh).
 *
 * The sigmoid/tanh passes use the AVX-512 / AVX2 bodies of activation_elementwise.h at the
 * given SIMD level; at the portable level they run the libm loops below (same formulas as
 * activation.pyx's portable path). The remaining arithmetic is plain C the compiler vectorises.
 */
#ifndef NNCORE_RNN_POINTWISE_H
#define NNCORE_RNN_POINTWISE_H
#include <math.h>
#include <stddef.h>
#include "activation_elementwise.h"

#define NNCORE_RNN_DEFINE(T, SFX, EXP, TANH, FABS, EW)                                       \
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
}                                                                                            \
static void nncore_lstm_fwd_##SFX(T *gi, T *gf, T *gg, T *go, const T *c_prev, T *c, T *tc,  \
                                  T *h, ptrdiff_t ldh, T *hb, ptrdiff_t ldhb, ptrdiff_t rows, \
                                  ptrdiff_t n, int level) {                                  \
    const ptrdiff_t m = rows * n;                                                            \
    nncore_rnn_sigmoid_##SFX(gi, gi, m, level);                                              \
    nncore_rnn_sigmoid_##SFX(gf, gf, m, level);                                              \
    nncore_rnn_tanh_##SFX(gg, gg, m, level);                                                 \
    nncore_rnn_sigmoid_##SFX(go, go, m, level);                                              \
    for (ptrdiff_t k = 0; k < m; k++) c[k] = gf[k] * c_prev[k] + gi[k] * gg[k];              \
    nncore_rnn_tanh_##SFX(tc, c, m, level);                                                  \
    for (ptrdiff_t r = 0; r < rows; r++)                                                     \
        for (ptrdiff_t j = 0; j < n; j++) {                                                  \
            const T v = go[r * n + j] * tc[r * n + j];                                       \
            h[r * ldh + j] = v;                                                              \
            hb[j * ldhb + r] = v;                                                            \
        }                                                                                    \
}                                                                                            \
static void nncore_lstm_bwd_##SFX(T *restrict di, T *restrict df, T *restrict dgg,           \
                                  T *restrict dO, ptrdiff_t ld_dg, const T *restrict dh,     \
                                  ptrdiff_t ld_dh, T *restrict dc, const T *restrict dout,   \
                                  const T *restrict gi, const T *restrict gf,                \
                                  const T *restrict gg, const T *restrict go,                \
                                  const T *restrict c_prev, const T *restrict tc,            \
                                  ptrdiff_t rows, ptrdiff_t n) {                             \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                   \
        T *di_r = di + r * ld_dg, *df_r = df + r * ld_dg, *dg_r = dgg + r * ld_dg;           \
        T *do_r = dO + r * ld_dg;                                                            \
        const T *dh_r = dh + r * ld_dh;                                                      \
        for (ptrdiff_t j = 0; j < n; j++) {                                                  \
            const ptrdiff_t k = r * n + j;                                                   \
            T i = gi[k], f = gf[k], gv = gg[k], o = go[k], t = tc[k];                        \
            T dH = dh_r[j] + dout[k];                                                        \
            T dC = dc[k] + dH * o * ((T)1 - t * t);                                          \
            di_r[j] = dC * gv * (i * ((T)1 - i));                                            \
            df_r[j] = dC * c_prev[k] * (f * ((T)1 - f));                                     \
            dg_r[j] = dC * i * ((T)1 - gv * gv);                                             \
            do_r[j] = dH * t * (o * ((T)1 - o));                                             \
            dc[k] = dC * f;                                                                  \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
static void nncore_gru_fwd_row_##SFX(T *g, const T *gh, const T *h_prev, T *h, ptrdiff_t H,  \
                                     int level) {                                            \
    for (ptrdiff_t j = 0; j < 2 * H; j++) g[j] += gh[j];                                     \
    nncore_rnn_sigmoid_##SFX(g, g, 2 * H, level);                                            \
    const T *r = g, *z = g + H, *ghn = gh + 2 * H;                                           \
    T *n = g + 2 * H;                                                                        \
    for (ptrdiff_t j = 0; j < H; j++) n[j] += r[j] * ghn[j];                                 \
    nncore_rnn_tanh_##SFX(n, n, H, level);                                                   \
    for (ptrdiff_t j = 0; j < H; j++) h[j] = n[j] + z[j] * (h_prev[j] - n[j]);               \
}                                                                                            \
static void nncore_gru_bwd_row_##SFX(T *restrict dgi, T *restrict dgh, T *restrict dh,       \
                                     const T *restrict dout, const T *restrict g,            \
                                     const T *restrict gh, const T *restrict h_prev,         \
                                     ptrdiff_t H) {                                          \
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

NNCORE_RNN_DEFINE(float, f32, expf, tanhf, fabsf, nncore_ew_f32)
NNCORE_RNN_DEFINE(double, f64, exp, tanh, fabs, nncore_ew_f64)
#undef NNCORE_RNN_DEFINE
#endif
