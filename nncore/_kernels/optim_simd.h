/* optim_simd.h: the element loops of the fused optimizer steps (included by optim.pyx).
 *
 * One body per optimizer and dtype, each compiled three times (portable, AVX2, AVX-512F via
 * GCC target attributes; the compiler vectorises each clone) and chosen per call from
 * nncore_simd_level(). Every loop reads and writes each element of param and its state once.
 *
 * Formulas follow torch.optim's single-tensor (foreach=False) path operation by operation,
 * with each Python scalar rounded to the parameter dtype T where PyTorch rounds it:
 *   SGD:     g = -grad if maximize; g = g + wd*p; buf = g on the first step, else
 *            buf = buf*mom + (1-damp)*g; g = g + mom*buf (nesterov) or buf; p = p + (-lr)*g.
 *   Adam:    g = -grad if maximize; AdamW: p = p*(1-lr*wd), Adam: g = g + wd*p;
 *            m = lerp(m, g, 1-beta1) (torch's two-branch lerp); v = v*beta2;
 *            v = v + ((1-beta2)*g)*g; AMSGrad: vmax = max(vmax, v) (NaN-propagating);
 *            p = p + (-step_size*m)/(sqrt(v)/bc2s + eps).
 *   RMSprop: g = -grad if maximize; g = g + wd*p; sq = sq*alpha; sq = sq + ((1-alpha)*g)*g;
 *            centered: ga = lerp(ga, g, 1-alpha), avg = sqrt(sq - ga*ga), else avg = sqrt(sq);
 *            avg = avg + eps; momentum: buf = buf*mom; buf = buf + g/avg; p = p + (-lr)*buf,
 *            else p = p + (-lr*g)/avg.
 *   Adagrad: g = -grad if maximize; g = g + wd*p; sum = sum + g*g;
 *            p = p + (-clr*g)/(sqrt(sum) + eps), clr = lr/(1 + (step-1)*lr_decay).
 * Multiplying by exactly 1 (no maximize) leaves every value, NaN and -0.0 included, unchanged.
 * No a*b+c -> FMA contraction: every clone (and aarch64, which has FMA) rounds alike, so all
 * SIMD levels give the same bits. */
#ifndef NNCORE_OPTIM_SIMD_H
#define NNCORE_OPTIM_SIMD_H
#include <math.h>
#include <stddef.h>
#include "simd.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

typedef struct {
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps, alpha;
    int nesterov, maximize, amsgrad, decoupled, centered;
} nnc_optim_hyper;

/* One tensor of a call: its arrays, its place in the concatenated range of all tensors, and
 * its own scalars (tensors of one group may be at different steps). */
typedef struct {
    void *param;        /* IN/OUT (n,) */
    const void *grad;   /* IN (n,) */
    void *buf1;         /* IN/OUT (n,): momentum_buf | exp_avg | square_avg | sum */
    void *buf2;         /* IN/OUT (n,) or NULL: exp_avg_sq | momentum_buffer (RMSprop) */
    void *buf3;         /* IN/OUT (n,) or NULL: max_exp_avg_sq | grad_avg (RMSprop) */
    ptrdiff_t start;    /* offset of element 0 in the concatenated range */
    ptrdiff_t n;
    double step_size;   /* Adam: lr/(1-beta1^step); Adagrad: clr */
    double bc2_sqrt;    /* Adam: sqrt(1-beta2^step) */
    int first;          /* SGD: first step with momentum (buf = grad) */
} nnc_span;

enum { NNC_SGD = 0, NNC_ADAM = 1, NNC_RMSPROP = 2, NNC_ADAGRAD = 3 };

#define NNC_BODY static inline __attribute__((always_inline))
/* torch's lerp: weight < 0.5 ? a + w*(b-a) : b - (b-a)*(1-w) */
#define NNC_LERP(a, b, w, one_minus_w, small) ((small) ? (a) + (w) * ((b) - (a))          \
                                                       : (b) - ((b) - (a)) * (one_minus_w))

#define NNC_DEFINE_BODIES(T, S, SQRT)                                                      \
NNC_BODY void nnc_sgd_body_##S(T *restrict p, const T *restrict grad, T *restrict buf,     \
                               ptrdiff_t n, const nnc_optim_hyper *h, int first) {         \
    const T sign = h->maximize ? (T)-1 : (T)1, wd = (T)h->weight_decay;                    \
    const T mom = (T)h->momentum, one_minus_damp = (T)(1.0 - h->dampening);                \
    const T neg_lr = (T)(-h->lr);                                                          \
    const int use_wd = h->weight_decay != 0, nesterov = h->nesterov;                       \
    if (h->momentum == 0) {                                                                \
        if (use_wd)                                                                        \
            for (ptrdiff_t i = 0; i < n; i++)                                              \
                p[i] = p[i] + neg_lr * (sign * grad[i] + wd * p[i]);                       \
        else                                                                               \
            for (ptrdiff_t i = 0; i < n; i++) p[i] = p[i] + neg_lr * (sign * grad[i]);     \
        return;                                                                            \
    }                                                                                      \
    for (ptrdiff_t i = 0; i < n; i++) {                                                    \
        T g = sign * grad[i];                                                              \
        if (use_wd) g = g + wd * p[i];                                                     \
        T b = first ? g : buf[i] * mom + one_minus_damp * g;                               \
        buf[i] = b;                                                                        \
        g = nesterov ? g + mom * b : b;                                                    \
        p[i] = p[i] + neg_lr * g;                                                          \
    }                                                                                      \
}                                                                                          \
NNC_BODY void nnc_adam_body_##S(T *restrict p, const T *restrict grad, T *restrict m,      \
                                T *restrict v, T *restrict vmax, ptrdiff_t n,              \
                                const nnc_optim_hyper *h, double step_size,                \
                                double bc2_sqrt) {                                         \
    const T sign = h->maximize ? (T)-1 : (T)1, wd = (T)h->weight_decay;                    \
    const int l2 = h->weight_decay != 0 && !h->decoupled, amsgrad = h->amsgrad;            \
    const T decay = (h->decoupled && h->weight_decay != 0)                                 \
                    ? (T)(1.0 - h->lr * h->weight_decay) : (T)1;                           \
    const T w1 = (T)(1.0 - h->beta1), one_minus_w1 = (T)1 - w1;                            \
    const int small_w1 = fabs((double)w1) < 0.5;                                           \
    const T beta2 = (T)h->beta2, one_minus_beta2 = (T)(1.0 - h->beta2);                    \
    const T eps = (T)h->eps, bc2s = (T)bc2_sqrt, neg_step = (T)(-step_size);               \
    for (ptrdiff_t i = 0; i < n; i++) {                                                    \
        T g = sign * grad[i];                                                              \
        T pi = p[i] * decay;                                                               \
        if (l2) g = g + wd * pi;                                                           \
        T mi = m[i];                                                                       \
        mi = NNC_LERP(mi, g, w1, one_minus_w1, small_w1);                                  \
        m[i] = mi;                                                                         \
        T vi = v[i] * beta2;                                                               \
        vi = vi + (one_minus_beta2 * g) * g;                                               \
        v[i] = vi;                                                                         \
        T s = vi;                                                                          \
        if (amsgrad) {                                                                     \
            T old = vmax[i];                                                               \
            s = (vi > old || vi != vi) ? vi : old;                                         \
            vmax[i] = s;                                                                   \
        }                                                                                  \
        p[i] = pi + (neg_step * mi) / (SQRT(s) / bc2s + eps);                              \
    }                                                                                      \
}                                                                                          \
NNC_BODY void nnc_rmsprop_body_##S(T *restrict p, const T *restrict grad,                  \
                                   T *restrict sq, T *restrict buf, T *restrict ga,        \
                                   ptrdiff_t n, const nnc_optim_hyper *h) {                \
    const T sign = h->maximize ? (T)-1 : (T)1, wd = (T)h->weight_decay;                    \
    const int use_wd = h->weight_decay != 0, centered = h->centered;                       \
    const int use_mom = h->momentum > 0;                                                   \
    const T alpha = (T)h->alpha, w = (T)(1.0 - h->alpha), one_minus_w = (T)1 - w;          \
    const int small_w = fabs((double)w) < 0.5;                                             \
    const T eps = (T)h->eps, mom = (T)h->momentum, neg_lr = (T)(-h->lr);                   \
    for (ptrdiff_t i = 0; i < n; i++) {                                                    \
        T g = sign * grad[i];                                                              \
        if (use_wd) g = g + wd * p[i];                                                     \
        T s = sq[i] * alpha;                                                               \
        s = s + (w * g) * g;                                                               \
        sq[i] = s;                                                                         \
        T avg;                                                                             \
        if (centered) {                                                                    \
            T a = ga[i];                                                                   \
            a = NNC_LERP(a, g, w, one_minus_w, small_w);                                   \
            ga[i] = a;                                                                     \
            avg = SQRT(s - a * a);                                                         \
        } else {                                                                           \
            avg = SQRT(s);                                                                 \
        }                                                                                  \
        avg = avg + eps;                                                                   \
        if (use_mom) {                                                                     \
            T b = buf[i] * mom;                                                            \
            b = b + g / avg;                                                               \
            buf[i] = b;                                                                    \
            p[i] = p[i] + neg_lr * b;                                                      \
        } else {                                                                           \
            p[i] = p[i] + (neg_lr * g) / avg;                                              \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
NNC_BODY void nnc_adagrad_body_##S(T *restrict p, const T *restrict grad,                  \
                                   T *restrict sum, ptrdiff_t n,                           \
                                   const nnc_optim_hyper *h, double clr) {                 \
    const T sign = h->maximize ? (T)-1 : (T)1, wd = (T)h->weight_decay;                    \
    const int use_wd = h->weight_decay != 0;                                               \
    const T eps = (T)h->eps, neg_clr = (T)(-clr);                                          \
    for (ptrdiff_t i = 0; i < n; i++) {                                                    \
        T g = sign * grad[i];                                                              \
        if (use_wd) g = g + wd * p[i];                                                     \
        T s = sum[i] + g * g;                                                              \
        sum[i] = s;                                                                        \
        p[i] = p[i] + (neg_clr * g) / (SQRT(s) + eps);                                     \
    }                                                                                      \
}
NNC_DEFINE_BODIES(float, f, sqrtf)
NNC_DEFINE_BODIES(double, d, sqrt)

/* One clone per instruction set; each takes a span's part [a, a+n) by element offset. */
#define NNC_CLONE(ATTR, NAME, T, S)                                                        \
static ATTR void nnc_span_##NAME##_##S(const nnc_span *s, ptrdiff_t a, ptrdiff_t n,        \
                                       const nnc_optim_hyper *h, int kind) {               \
    T *p = (T *)s->param + a;                                                              \
    const T *g = (const T *)s->grad + a;                                                   \
    T *b1 = s->buf1 ? (T *)s->buf1 + a : NULL;                                             \
    T *b2 = s->buf2 ? (T *)s->buf2 + a : NULL;                                             \
    T *b3 = s->buf3 ? (T *)s->buf3 + a : NULL;                                             \
    switch (kind) {                                                                        \
    case NNC_SGD: nnc_sgd_body_##S(p, g, b1, n, h, s->first); break;                       \
    case NNC_ADAM: nnc_adam_body_##S(p, g, b1, b2, b3, n, h, s->step_size, s->bc2_sqrt);   \
        break;                                                                             \
    case NNC_RMSPROP: nnc_rmsprop_body_##S(p, g, b1, b2, b3, n, h); break;                 \
    default: nnc_adagrad_body_##S(p, g, b1, n, h, s->step_size); break;                    \
    }                                                                                      \
}
#define NNC_NOATTR
NNC_CLONE(NNC_NOATTR, portable, float, f)
NNC_CLONE(NNC_NOATTR, portable, double, d)
#if NNCORE_X86
NNC_CLONE(__attribute__((target("avx2"))), avx2, float, f)
NNC_CLONE(__attribute__((target("avx2"))), avx2, double, d)
NNC_CLONE(__attribute__((target("avx512f"))), avx512, float, f)
NNC_CLONE(__attribute__((target("avx512f"))), avx512, double, d)
#endif

/* Step elements [a, a+n) of span s with the best clone for this CPU. */
#define NNC_DISPATCH(S)                                                                    \
static void nnc_optim_span_##S(const nnc_span *s, ptrdiff_t a, ptrdiff_t n,                \
                               const nnc_optim_hyper *h, int kind) {                       \
    NNC_DISPATCH_X86(S)                                                                    \
    nnc_span_portable_##S(s, a, n, h, kind);                                               \
}
#if NNCORE_X86
#define NNC_DISPATCH_X86(S)                                                                \
    int level = nncore_simd_level();                                                       \
    if (level >= NNCORE_SIMD_AVX512) { nnc_span_avx512_##S(s, a, n, h, kind); return; }    \
    if (level >= NNCORE_SIMD_AVX2) { nnc_span_avx2_##S(s, a, n, h, kind); return; }
#else
#define NNC_DISPATCH_X86(S)
#endif
NNC_DISPATCH(f)
NNC_DISPATCH(d)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#endif /* NNCORE_OPTIM_SIMD_H */
