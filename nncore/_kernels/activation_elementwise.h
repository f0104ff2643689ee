/* activation_elementwise.h: vectorised sigmoid, tanh, tanh-GELU and (float32) exact GELU,
 * forward and gradient.
 *
 *   nncore_ew_f32(op, y, a, b, n, level) / nncore_ew_f64(...)  -> 1 if done, 0 if not
 *     NNCORE_EW_SIGMOID        y = 1 / (1 + exp(-a))
 *     NNCORE_EW_TANH           y = tanh(a)
 *     NNCORE_EW_GELU_TANH      y = 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))
 *                                = a sigmoid(2 sqrt(2/pi) (a + 0.044715 a^3))   (no cancellation)
 *     NNCORE_EW_GELU_TANH_GRAD y = a * d/db gelu_tanh(b)      (a = dout, b = x)
 *     NNCORE_EW_GELU           y = 0.5 a (1 + erf(a / sqrt 2))   (float32 only: float64
 *     NNCORE_EW_GELU_GRAD      y = a * d/db gelu(b)               keeps libm's erf)
 *     NNCORE_EW_RELU           y = a <= 0 ? 0 : a                 (nan stays nan)
 *     NNCORE_EW_RELU_GRAD      y = b <= 0 ? 0 : a                 (a = dout, b = x or relu(x))
 *
 * The relu selections give the portable loop's bits exactly (a compare and a mask, nothing
 * rounded); at SSE2 width the portable loop had been store-bound (1M floats: 131 us at 2
 * threads against torch's 55).
 * Only the AVX-512F and AVX2+FMA bodies live here; at the portable level the functions return
 * 0 and the caller runs its plain libm loop (the reference these bodies are tested against).
 * Formulas, chosen for accuracy without branches:
 *   sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e),  e = exp(-|x|)            never overflows
 *   tanh(x)    = sign(x) * -m / (2 + m),      m = expm1(-2|x|) in (-1, 0]
 * expm1 of u <= 0 is 2^k (expm1(r) + 1) - 1 with u = k ln2 + r and a Taylor series for
 * expm1(r) (to r^8 for float, r^14 for double): full relative accuracy near 0, where
 * 1 - 2/(exp(2x) + 1) would cancel. Errors are a few ulp; NaN propagates.
 */
#ifndef NNCORE_ACTIVATION_ELEMENTWISE_H
#define NNCORE_ACTIVATION_ELEMENTWISE_H
#include "activation_simd.h"

#define NNCORE_EW_SIGMOID 0
#define NNCORE_EW_TANH 1
#define NNCORE_EW_GELU_TANH 2
#define NNCORE_EW_GELU_TANH_GRAD 3
#define NNCORE_EW_GELU 4      /* float32 only */
#define NNCORE_EW_GELU_GRAD 5 /* float32 only */
#define NNCORE_EW_RELU 6
#define NNCORE_EW_RELU_GRAD 7

#define NNCORE_GELU_BETA 0.79788456080286535588 /* sqrt(2/pi) */
#define NNCORE_GELU_KAPPA 0.044715
#define NNCORE_SQRT1_2 0.70710678118654752440
#define NNCORE_INV_SQRT_2PI 0.39894228040143267794

#if NNCORE_X86
/* ---------------------------------------------------------------- AVX-512F, float */

NNCORE_AVX512 static inline __m512 nncore_abs_ps512(__m512 x) {
    return _mm512_castsi512_ps(_mm512_andnot_epi32(_mm512_set1_epi32((int)0x80000000u),
                                                   _mm512_castps_si512(x)));
}

NNCORE_AVX512 static inline __m512 nncore_expm1_neg_ps512(__m512 u) {
    u = _mm512_max_ps(_mm512_set1_ps(-40.0f), u);            /* below: 2^k + ... == -1 */
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(u, _mm512_set1_ps((float)NNCORE_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(NNCORE_LN2_HI_F), u);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(NNCORE_LN2_LO_F), r);
    __m512 q = _mm512_set1_ps(1.0f / 40320);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 5040));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 720));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 120));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 24));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 6));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
    __m512 em = _mm512_fmadd_ps(q, _mm512_mul_ps(r, r), r);   /* expm1(r) */
    __m512 two_k = _mm512_scalef_ps(_mm512_set1_ps(1.0f), k);
    return _mm512_fmadd_ps(two_k, em, _mm512_sub_ps(two_k, _mm512_set1_ps(1.0f)));
}

NNCORE_AVX512 static inline __m512 nncore_tanh_ps512(__m512 x) {
    __m512 m = nncore_expm1_neg_ps512(
        _mm512_mul_ps(nncore_abs_ps512(x), _mm512_set1_ps(-2.0f)));
    __m512 t = _mm512_div_ps(_mm512_sub_ps(_mm512_setzero_ps(), m),
                             _mm512_add_ps(_mm512_set1_ps(2.0f), m));
    __m512i sign = _mm512_and_epi32(_mm512_castps_si512(x),
                                    _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(t), sign));
}

NNCORE_AVX512 static inline __m512 nncore_sigmoid_ps512(__m512 x) {
    __m512 e = nncore_exp_ps512(_mm512_sub_ps(_mm512_setzero_ps(), nncore_abs_ps512(x)));
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);   /* NaN: no */
    __m512 num = _mm512_mask_blend_ps(pos, e, _mm512_set1_ps(1.0f));
    return _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

NNCORE_AVX512 static inline __m512 nncore_gelu_z_ps512(__m512 x, __m512 x2) {
    /* 2 sqrt(2/pi) (x + kappa x^3): 1 + tanh(z/2) = 2 sigmoid(z), without cancellation */
    __m512 kx2 = _mm512_mul_ps(x2, _mm512_set1_ps((float)NNCORE_GELU_KAPPA));
    return _mm512_mul_ps(_mm512_set1_ps((float)(2 * NNCORE_GELU_BETA)), _mm512_fmadd_ps(kx2, x, x));
}

NNCORE_AVX512 static inline __m512 nncore_gelu_tanh_ps512(__m512 x) {
    return _mm512_mul_ps(x, nncore_sigmoid_ps512(nncore_gelu_z_ps512(x, _mm512_mul_ps(x, x))));
}

NNCORE_AVX512 static inline __m512 nncore_gelu_tanh_grad_ps512(__m512 dout, __m512 x) {
    /* sigmoid(z) + x (1 - tanh^2) beta (1 + 3 kappa x^2) / 2, 1 - tanh^2 = 4 e / (1 + e)^2 */
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 z = nncore_gelu_z_ps512(x, x2);
    __m512 e = nncore_exp_ps512(_mm512_sub_ps(zero, nncore_abs_ps512(z)));
    __m512 d = _mm512_div_ps(one, _mm512_add_ps(one, e));
    __mmask16 pos = _mm512_cmp_ps_mask(z, zero, _CMP_GE_OQ);
    __m512 sig = _mm512_mask_blend_ps(pos, _mm512_mul_ps(e, d), d);
    __m512 sech2 = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(4.0f), e), _mm512_mul_ps(d, d));
    __m512 poly = _mm512_fmadd_ps(_mm512_set1_ps((float)(3 * NNCORE_GELU_KAPPA)), x2, one);
    __m512 right = _mm512_mul_ps(_mm512_mul_ps(x, sech2),
                                 _mm512_mul_ps(_mm512_set1_ps((float)(0.5 * NNCORE_GELU_BETA)),
                                               poly));
    __mmask16 sat = _mm512_cmp_ps_mask(sech2, zero, _CMP_EQ_OQ);   /* x = inf: not inf * 0 */
    right = _mm512_mask_blend_ps(sat, right, zero);
    return _mm512_mul_ps(dout, _mm512_add_ps(sig, right));
}

/* erf for float32 vectors (exact GELU), |error| <= 3e-7: x P(x^2) for |x| < 1, and
 * sign(x) (1 - exp(-x^2) Q(1/|x|)) for |x| >= 1 (erfc(z) exp(z^2) is smooth in 1/z). P and Q
 * are least-squares polynomial fits on [0, 1] and [1, 3.92] (above, erf rounds to 1 in float).
 * NaN propagates through the |x| >= 1 branch (1/NaN). */
#define NNCORE_ERF_Q_CENTER 0.46784360029425454f

NNCORE_AVX512 static inline __m512 nncore_erf_ps512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 ax = nncore_abs_ps512(x), x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(8.00685811555013e-05f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-0.0008053746423684061f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(0.005192957352846861f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-0.026856068521738052f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(0.11283634603023529f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-0.3761262893676758f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(1.128379225730896f));
    const __m512 small = _mm512_mul_ps(x, p);
    const __m512 s = _mm512_sub_ps(_mm512_div_ps(one, ax),
                               _mm512_set1_ps(NNCORE_ERF_Q_CENTER));
    __m512 q = _mm512_set1_ps(-0.009140667505562305f);
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-0.00786471925675869f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(0.06019262969493866f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-0.09835873544216156f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(0.07965890318155289f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(0.01355353370308876f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-0.1873001903295517f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(0.43917974829673767f));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(0.24146638810634613f));
    const __m512 e = nncore_exp_ps512(_mm512_sub_ps(_mm512_setzero_ps(), x2));
    __m512 big = _mm512_fnmadd_ps(e, q, one);                   /* in (0, 1] */
    big = _mm512_castsi512_ps(_mm512_or_epi32(
        _mm512_castps_si512(big),
        _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, one, _CMP_LT_OQ), big, small);
}

/* exact GELU, 0.5 x (1 + erf(x / sqrt 2)) */
NNCORE_AVX512 static inline __m512 nncore_gelu_erf_ps512(__m512 x) {
    const __m512 h = _mm512_mul_ps(_mm512_set1_ps(0.5f), x);
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps((float)NNCORE_SQRT1_2));
    return _mm512_mul_ps(h, _mm512_add_ps(_mm512_set1_ps(1.0f), nncore_erf_ps512(z)));
}

/* dout (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
NNCORE_AVX512 static inline __m512 nncore_gelu_erf_grad_ps512(__m512 dout, __m512 x) {
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps((float)NNCORE_SQRT1_2));
    const __m512 cdf = _mm512_fmadd_ps(half, nncore_erf_ps512(z), half);
    const __m512 g = nncore_exp_ps512(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(x, x)));
    const __m512 pdf = _mm512_mul_ps(_mm512_set1_ps((float)NNCORE_INV_SQRT_2PI), g);
    return _mm512_mul_ps(dout, _mm512_fmadd_ps(x, pdf, cdf));
}

/* ---------------------------------------------------------------- AVX-512F, double */

NNCORE_AVX512 static inline __m512d nncore_abs_pd512(__m512d x) {
    const __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ull);
    return _mm512_castsi512_pd(_mm512_andnot_epi64(sign, _mm512_castpd_si512(x)));
}

static const double nncore_expm1_coef_d[13] = {
    1.0 / 87178291200.0, 1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
    1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
    1.0 / 24.0, 1.0 / 6.0, 0.5};

NNCORE_AVX512 static inline __m512d nncore_expm1_neg_pd512(__m512d u) {
    u = _mm512_max_pd(_mm512_set1_pd(-80.0), u);
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(u, _mm512_set1_pd(NNCORE_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(NNCORE_LN2_HI_D), u);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(NNCORE_LN2_LO_D), r);
    __m512d q = _mm512_set1_pd(nncore_expm1_coef_d[0]);
    for (int i = 1; i < 13; i++)
        q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(nncore_expm1_coef_d[i]));
    __m512d em = _mm512_fmadd_pd(q, _mm512_mul_pd(r, r), r);
    __m512d two_k = _mm512_scalef_pd(_mm512_set1_pd(1.0), k);
    return _mm512_fmadd_pd(two_k, em, _mm512_sub_pd(two_k, _mm512_set1_pd(1.0)));
}

NNCORE_AVX512 static inline __m512d nncore_tanh_pd512(__m512d x) {
    __m512d m = nncore_expm1_neg_pd512(
        _mm512_mul_pd(nncore_abs_pd512(x), _mm512_set1_pd(-2.0)));
    __m512d t = _mm512_div_pd(_mm512_sub_pd(_mm512_setzero_pd(), m),
                              _mm512_add_pd(_mm512_set1_pd(2.0), m));
    __m512i sign = _mm512_and_epi64(_mm512_castpd_si512(x),
                                    _mm512_set1_epi64((long long)0x8000000000000000ull));
    return _mm512_castsi512_pd(_mm512_or_epi64(_mm512_castpd_si512(t), sign));
}

NNCORE_AVX512 static inline __m512d nncore_sigmoid_pd512(__m512d x) {
    __m512d e = nncore_exp_pd512(_mm512_sub_pd(_mm512_setzero_pd(), nncore_abs_pd512(x)));
    __mmask8 pos = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GE_OQ);
    __m512d num = _mm512_mask_blend_pd(pos, e, _mm512_set1_pd(1.0));
    return _mm512_div_pd(num, _mm512_add_pd(_mm512_set1_pd(1.0), e));
}

NNCORE_AVX512 static inline __m512d nncore_gelu_z_pd512(__m512d x, __m512d x2) {
    __m512d kx2 = _mm512_mul_pd(x2, _mm512_set1_pd(NNCORE_GELU_KAPPA));
    return _mm512_mul_pd(_mm512_set1_pd(2 * NNCORE_GELU_BETA), _mm512_fmadd_pd(kx2, x, x));
}

NNCORE_AVX512 static inline __m512d nncore_gelu_tanh_pd512(__m512d x) {
    return _mm512_mul_pd(x, nncore_sigmoid_pd512(nncore_gelu_z_pd512(x, _mm512_mul_pd(x, x))));
}

NNCORE_AVX512 static inline __m512d nncore_gelu_tanh_grad_pd512(__m512d dout, __m512d x) {
    const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
    __m512d x2 = _mm512_mul_pd(x, x);
    __m512d z = nncore_gelu_z_pd512(x, x2);
    __m512d e = nncore_exp_pd512(_mm512_sub_pd(zero, nncore_abs_pd512(z)));
    __m512d d = _mm512_div_pd(one, _mm512_add_pd(one, e));
    __mmask8 pos = _mm512_cmp_pd_mask(z, zero, _CMP_GE_OQ);
    __m512d sig = _mm512_mask_blend_pd(pos, _mm512_mul_pd(e, d), d);
    __m512d sech2 = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(4.0), e), _mm512_mul_pd(d, d));
    __m512d poly = _mm512_fmadd_pd(_mm512_set1_pd(3 * NNCORE_GELU_KAPPA), x2, one);
    __m512d right = _mm512_mul_pd(_mm512_mul_pd(x, sech2),
                                  _mm512_mul_pd(_mm512_set1_pd(0.5 * NNCORE_GELU_BETA), poly));
    __mmask8 sat = _mm512_cmp_pd_mask(sech2, zero, _CMP_EQ_OQ);
    right = _mm512_mask_blend_pd(sat, right, zero);
    return _mm512_mul_pd(dout, _mm512_add_pd(sig, right));
}

/* ---------------------------------------------------------------- AVX2 + FMA, float */

NNCORE_AVX2 static inline __m256 nncore_abs_ps256(__m256 x) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

NNCORE_AVX2 static inline __m256 nncore_expm1_neg_ps256(__m256 u) {
    u = _mm256_max_ps(_mm256_set1_ps(-40.0f), u);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(u, _mm256_set1_ps((float)NNCORE_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(NNCORE_LN2_HI_F), u);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(NNCORE_LN2_LO_F), r);
    __m256 q = _mm256_set1_ps(1.0f / 40320);
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 5040));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 720));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 120));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 24));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 6));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.5f));
    __m256 em = _mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r);
    /* k in [-58, 0]: 2^k is a normal float, built from its exponent bits (garbage for NaN,
     * whose em is NaN anyway) */
    __m256i ki = _mm256_cvtps_epi32(k);
    __m256 two_k = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(ki, _mm256_set1_epi32(127)), 23));
    return _mm256_fmadd_ps(two_k, em, _mm256_sub_ps(two_k, _mm256_set1_ps(1.0f)));
}

NNCORE_AVX2 static inline __m256 nncore_tanh_ps256(__m256 x) {
    __m256 m = nncore_expm1_neg_ps256(
        _mm256_mul_ps(nncore_abs_ps256(x), _mm256_set1_ps(-2.0f)));
    __m256 t = _mm256_div_ps(_mm256_sub_ps(_mm256_setzero_ps(), m),
                             _mm256_add_ps(_mm256_set1_ps(2.0f), m));
    return _mm256_or_ps(t, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));
}

NNCORE_AVX2 static inline __m256 nncore_sigmoid_ps256(__m256 x) {
    __m256 e = nncore_exp_ps256(_mm256_sub_ps(_mm256_setzero_ps(), nncore_abs_ps256(x)));
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    __m256 num = _mm256_blendv_ps(e, _mm256_set1_ps(1.0f), pos);
    return _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

NNCORE_AVX2 static inline __m256 nncore_gelu_z_ps256(__m256 x, __m256 x2) {
    __m256 kx2 = _mm256_mul_ps(x2, _mm256_set1_ps((float)NNCORE_GELU_KAPPA));
    return _mm256_mul_ps(_mm256_set1_ps((float)(2 * NNCORE_GELU_BETA)), _mm256_fmadd_ps(kx2, x, x));
}

NNCORE_AVX2 static inline __m256 nncore_gelu_tanh_ps256(__m256 x) {
    return _mm256_mul_ps(x, nncore_sigmoid_ps256(nncore_gelu_z_ps256(x, _mm256_mul_ps(x, x))));
}

NNCORE_AVX2 static inline __m256 nncore_gelu_tanh_grad_ps256(__m256 dout, __m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 z = nncore_gelu_z_ps256(x, x2);
    __m256 e = nncore_exp_ps256(_mm256_sub_ps(zero, nncore_abs_ps256(z)));
    __m256 d = _mm256_div_ps(one, _mm256_add_ps(one, e));
    __m256 pos = _mm256_cmp_ps(z, zero, _CMP_GE_OQ);
    __m256 sig = _mm256_blendv_ps(_mm256_mul_ps(e, d), d, pos);
    __m256 sech2 = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(4.0f), e), _mm256_mul_ps(d, d));
    __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps((float)(3 * NNCORE_GELU_KAPPA)), x2, one);
    __m256 right = _mm256_mul_ps(_mm256_mul_ps(x, sech2),
                                 _mm256_mul_ps(_mm256_set1_ps((float)(0.5 * NNCORE_GELU_BETA)),
                                               poly));
    right = _mm256_andnot_ps(_mm256_cmp_ps(sech2, zero, _CMP_EQ_OQ), right);
    return _mm256_mul_ps(dout, _mm256_add_ps(sig, right));
}

NNCORE_AVX2 static inline __m256 nncore_erf_ps256(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 ax = nncore_abs_ps256(x), x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(8.00685811555013e-05f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.0008053746423684061f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.005192957352846861f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.026856068521738052f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.11283634603023529f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.3761262893676758f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.128379225730896f));
    const __m256 small = _mm256_mul_ps(x, p);
    const __m256 s = _mm256_sub_ps(_mm256_div_ps(one, ax),
                               _mm256_set1_ps(NNCORE_ERF_Q_CENTER));
    __m256 q = _mm256_set1_ps(-0.009140667505562305f);
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-0.00786471925675869f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(0.06019262969493866f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-0.09835873544216156f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(0.07965890318155289f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(0.01355353370308876f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-0.1873001903295517f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(0.43917974829673767f));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(0.24146638810634613f));
    const __m256 e = nncore_exp_ps256(_mm256_sub_ps(_mm256_setzero_ps(), x2));
    __m256 big = _mm256_fnmadd_ps(e, q, one);                   /* in (0, 1] */
    big = _mm256_or_ps(big, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, one, _CMP_LT_OQ));
}

/* exact GELU, 0.5 x (1 + erf(x / sqrt 2)) */
NNCORE_AVX2 static inline __m256 nncore_gelu_erf_ps256(__m256 x) {
    const __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps((float)NNCORE_SQRT1_2));
    return _mm256_mul_ps(h, _mm256_add_ps(_mm256_set1_ps(1.0f), nncore_erf_ps256(z)));
}

/* dout (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
NNCORE_AVX2 static inline __m256 nncore_gelu_erf_grad_ps256(__m256 dout, __m256 x) {
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps((float)NNCORE_SQRT1_2));
    const __m256 cdf = _mm256_fmadd_ps(half, nncore_erf_ps256(z), half);
    const __m256 g = nncore_exp_ps256(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(x, x)));
    const __m256 pdf = _mm256_mul_ps(_mm256_set1_ps((float)NNCORE_INV_SQRT_2PI), g);
    return _mm256_mul_ps(dout, _mm256_fmadd_ps(x, pdf, cdf));
}

/* ---------------------------------------------------------------- AVX2 + FMA, double */

NNCORE_AVX2 static inline __m256d nncore_abs_pd256(__m256d x) {
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
}

NNCORE_AVX2 static inline __m256d nncore_expm1_neg_pd256(__m256d u) {
    u = _mm256_max_pd(_mm256_set1_pd(-80.0), u);
    __m256d k = _mm256_round_pd(_mm256_mul_pd(u, _mm256_set1_pd(NNCORE_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(NNCORE_LN2_HI_D), u);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(NNCORE_LN2_LO_D), r);
    __m256d q = _mm256_set1_pd(nncore_expm1_coef_d[0]);
    for (int i = 1; i < 13; i++)
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(nncore_expm1_coef_d[i]));
    __m256d em = _mm256_fmadd_pd(q, _mm256_mul_pd(r, r), r);
    __m256d two_k = nncore_pow2_pd256(k);                     /* k in [-116, 0]: normal */
    return _mm256_fmadd_pd(two_k, em, _mm256_sub_pd(two_k, _mm256_set1_pd(1.0)));
}

NNCORE_AVX2 static inline __m256d nncore_tanh_pd256(__m256d x) {
    __m256d m = nncore_expm1_neg_pd256(
        _mm256_mul_pd(nncore_abs_pd256(x), _mm256_set1_pd(-2.0)));
    __m256d t = _mm256_div_pd(_mm256_sub_pd(_mm256_setzero_pd(), m),
                              _mm256_add_pd(_mm256_set1_pd(2.0), m));
    return _mm256_or_pd(t, _mm256_and_pd(x, _mm256_set1_pd(-0.0)));
}

NNCORE_AVX2 static inline __m256d nncore_sigmoid_pd256(__m256d x) {
    __m256d e = nncore_exp_pd256(_mm256_sub_pd(_mm256_setzero_pd(), nncore_abs_pd256(x)));
    __m256d pos = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GE_OQ);
    __m256d num = _mm256_blendv_pd(e, _mm256_set1_pd(1.0), pos);
    return _mm256_div_pd(num, _mm256_add_pd(_mm256_set1_pd(1.0), e));
}

NNCORE_AVX2 static inline __m256d nncore_gelu_z_pd256(__m256d x, __m256d x2) {
    __m256d kx2 = _mm256_mul_pd(x2, _mm256_set1_pd(NNCORE_GELU_KAPPA));
    return _mm256_mul_pd(_mm256_set1_pd(2 * NNCORE_GELU_BETA), _mm256_fmadd_pd(kx2, x, x));
}

NNCORE_AVX2 static inline __m256d nncore_gelu_tanh_pd256(__m256d x) {
    return _mm256_mul_pd(x, nncore_sigmoid_pd256(nncore_gelu_z_pd256(x, _mm256_mul_pd(x, x))));
}

NNCORE_AVX2 static inline __m256d nncore_gelu_tanh_grad_pd256(__m256d dout, __m256d x) {
    const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd();
    __m256d x2 = _mm256_mul_pd(x, x);
    __m256d z = nncore_gelu_z_pd256(x, x2);
    __m256d e = nncore_exp_pd256(_mm256_sub_pd(zero, nncore_abs_pd256(z)));
    __m256d d = _mm256_div_pd(one, _mm256_add_pd(one, e));
    __m256d pos = _mm256_cmp_pd(z, zero, _CMP_GE_OQ);
    __m256d sig = _mm256_blendv_pd(_mm256_mul_pd(e, d), d, pos);
    __m256d sech2 = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(4.0), e), _mm256_mul_pd(d, d));
    __m256d poly = _mm256_fmadd_pd(_mm256_set1_pd(3 * NNCORE_GELU_KAPPA), x2, one);
    __m256d right = _mm256_mul_pd(_mm256_mul_pd(x, sech2),
                                  _mm256_mul_pd(_mm256_set1_pd(0.5 * NNCORE_GELU_BETA), poly));
    right = _mm256_andnot_pd(_mm256_cmp_pd(sech2, zero, _CMP_EQ_OQ), right);
    return _mm256_mul_pd(dout, _mm256_add_pd(sig, right));
}

/* ---------------------------------------------------------------- loops over [0, n) */
/* Whole vectors, then one masked vector for the tail: every element goes through the same
 * vector code, so a value's result does not depend on its position. */

#define NNCORE_LOOP512(T, W, MASKT, SUF, y, n, EXPR1)                                       \
    ptrdiff_t j = 0;                                                                        \
    for (; j + W <= n; j += W) {                                                            \
        const MASKT m = (MASKT)~0u;                                                         \
        _mm512_storeu_##SUF(y + j, EXPR1);                                                  \
    }                                                                                       \
    if (j < n) {                                                                            \
        const MASKT m = (MASKT)((1u << (n - j)) - 1u);                                      \
        _mm512_mask_storeu_##SUF(y + j, m, EXPR1);                                          \
    }

/* v where keep is not "<= 0" (true for v > 0 and for nan), else +0: the portable select */
NNCORE_AVX512 static inline __m512 nncore_relu_sel_ps512(__m512 keep, __m512 v) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(keep, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
}
NNCORE_AVX512 static inline __m512d nncore_relu_sel_pd512(__m512d keep, __m512d v) {
    return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(keep, _mm512_setzero_pd(), _CMP_NLE_UQ), v);
}

NNCORE_AVX512 static int nncore_ew_f32_avx512(int op, float *y, const float *a, const float *b,
                                              ptrdiff_t n) {
#define LD(p) _mm512_maskz_loadu_ps(m, (p) + j)
    switch (op) {
    case NNCORE_EW_SIGMOID: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                             nncore_sigmoid_ps512(LD(a))) } return 1;
    case NNCORE_EW_TANH: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                          nncore_tanh_ps512(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                               nncore_gelu_tanh_ps512(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH_GRAD: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                     nncore_gelu_tanh_grad_ps512(LD(a), LD(b))) } return 1;
    case NNCORE_EW_GELU: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                          nncore_gelu_erf_ps512(LD(a))) } return 1;
    case NNCORE_EW_GELU_GRAD: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                nncore_gelu_erf_grad_ps512(LD(a), LD(b))) } return 1;
    case NNCORE_EW_RELU: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                          nncore_relu_sel_ps512(LD(a), LD(a))) } return 1;
    case NNCORE_EW_RELU_GRAD: { NNCORE_LOOP512(float, 16, __mmask16, ps, y, n,
                                               nncore_relu_sel_ps512(LD(b), LD(a))) } return 1;
    }
#undef LD
    return 0;
}

NNCORE_AVX512 static int nncore_ew_f64_avx512(int op, double *y, const double *a,
                                              const double *b, ptrdiff_t n) {
#define LD(p) _mm512_maskz_loadu_pd(m, (p) + j)
    switch (op) {
    case NNCORE_EW_SIGMOID: { NNCORE_LOOP512(double, 8, __mmask8, pd, y, n,
                                             nncore_sigmoid_pd512(LD(a))) } return 1;
    case NNCORE_EW_TANH: { NNCORE_LOOP512(double, 8, __mmask8, pd, y, n,
                                          nncore_tanh_pd512(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH: { NNCORE_LOOP512(double, 8, __mmask8, pd, y, n,
                                               nncore_gelu_tanh_pd512(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH_GRAD: { NNCORE_LOOP512(double, 8, __mmask8, pd, y, n,
                                     nncore_gelu_tanh_grad_pd512(LD(a), LD(b))) } return 1;
    case NNCORE_EW_RELU: { NNCORE_LOOP512(double, 8, __mmask8, pd, y, n,
                                          nncore_relu_sel_pd512(LD(a), LD(a))) } return 1;
    case NNCORE_EW_RELU_GRAD: { NNCORE_LOOP512(double, 8, __mmask8, pd, y, n,
                                               nncore_relu_sel_pd512(LD(b), LD(a))) } return 1;
    }
#undef LD
    return 0;
}

/* AVX2 masked moves are slow on some CPUs: whole vectors use plain loads and stores (`full`
 * is a constant in each branch, so the choice folds away). */
NNCORE_AVX2 static inline __m256 nncore_ld_ps256(const float *p, __m256i m, int full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}
NNCORE_AVX2 static inline void nncore_st_ps256(float *p, __m256i m, int full, __m256 v) {
    if (full) _mm256_storeu_ps(p, v); else _mm256_maskstore_ps(p, m, v);
}
NNCORE_AVX2 static inline __m256d nncore_ld_pd256(const double *p, __m256i m, int full) {
    return full ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, m);
}
NNCORE_AVX2 static inline void nncore_st_pd256(double *p, __m256i m, int full, __m256d v) {
    if (full) _mm256_storeu_pd(p, v); else _mm256_maskstore_pd(p, m, v);
}

#define NNCORE_LOOP256(W, MASKFN, SUF, y, n, EXPR1)                                         \
    ptrdiff_t j = 0;                                                                        \
    for (; j + W <= n; j += W) {                                                            \
        const __m256i m = _mm256_set1_epi32(-1);                                            \
        const int full = 1;                                                                 \
        nncore_st_##SUF##256(y + j, m, full, EXPR1);                                        \
    }                                                                                       \
    if (j < n) {                                                                            \
        const __m256i m = MASKFN(n - j);                                                    \
        const int full = 0;                                                                 \
        nncore_st_##SUF##256(y + j, m, full, EXPR1);                                        \
    }

NNCORE_AVX2 static inline __m256 nncore_relu_sel_ps256(__m256 keep, __m256 v) {
    return _mm256_and_ps(_mm256_cmp_ps(keep, _mm256_setzero_ps(), _CMP_NLE_UQ), v);
}
NNCORE_AVX2 static inline __m256d nncore_relu_sel_pd256(__m256d keep, __m256d v) {
    return _mm256_and_pd(_mm256_cmp_pd(keep, _mm256_setzero_pd(), _CMP_NLE_UQ), v);
}

NNCORE_AVX2 static int nncore_ew_f32_avx2(int op, float *y, const float *a, const float *b,
                                          ptrdiff_t n) {
#define LD(p) nncore_ld_ps256((p) + j, m, full)
    switch (op) {
    case NNCORE_EW_SIGMOID: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                             nncore_sigmoid_ps256(LD(a))) } return 1;
    case NNCORE_EW_TANH: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                          nncore_tanh_ps256(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                               nncore_gelu_tanh_ps256(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH_GRAD: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                     nncore_gelu_tanh_grad_ps256(LD(a), LD(b))) } return 1;
    case NNCORE_EW_GELU: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                          nncore_gelu_erf_ps256(LD(a))) } return 1;
    case NNCORE_EW_GELU_GRAD: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                nncore_gelu_erf_grad_ps256(LD(a), LD(b))) } return 1;
    case NNCORE_EW_RELU: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                          nncore_relu_sel_ps256(LD(a), LD(a))) } return 1;
    case NNCORE_EW_RELU_GRAD: { NNCORE_LOOP256(8, nncore_tail_mask32, ps, y, n,
                                               nncore_relu_sel_ps256(LD(b), LD(a))) } return 1;
    }
#undef LD
    return 0;
}

NNCORE_AVX2 static int nncore_ew_f64_avx2(int op, double *y, const double *a, const double *b,
                                          ptrdiff_t n) {
#define LD(p) nncore_ld_pd256((p) + j, m, full)
    switch (op) {
    case NNCORE_EW_SIGMOID: { NNCORE_LOOP256(4, nncore_tail_mask64, pd, y, n,
                                             nncore_sigmoid_pd256(LD(a))) } return 1;
    case NNCORE_EW_TANH: { NNCORE_LOOP256(4, nncore_tail_mask64, pd, y, n,
                                          nncore_tanh_pd256(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH: { NNCORE_LOOP256(4, nncore_tail_mask64, pd, y, n,
                                               nncore_gelu_tanh_pd256(LD(a))) } return 1;
    case NNCORE_EW_GELU_TANH_GRAD: { NNCORE_LOOP256(4, nncore_tail_mask64, pd, y, n,
                                     nncore_gelu_tanh_grad_pd256(LD(a), LD(b))) } return 1;
    case NNCORE_EW_RELU: { NNCORE_LOOP256(4, nncore_tail_mask64, pd, y, n,
                                          nncore_relu_sel_pd256(LD(a), LD(a))) } return 1;
    case NNCORE_EW_RELU_GRAD: { NNCORE_LOOP256(4, nncore_tail_mask64, pd, y, n,
                                               nncore_relu_sel_pd256(LD(b), LD(a))) } return 1;
    }
#undef LD
    return 0;
}
#endif /* NNCORE_X86 */

static inline int nncore_ew_f32(int op, float *y, const float *a, const float *b, ptrdiff_t n,
                                int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) return nncore_ew_f32_avx512(op, y, a, b, n);
    if (level >= NNCORE_SIMD_AVX2) return nncore_ew_f32_avx2(op, y, a, b, n);
#endif
    (void)op; (void)y; (void)a; (void)b; (void)n; (void)level;
    return 0;
}

static inline int nncore_ew_f64(int op, double *y, const double *a, const double *b,
                                ptrdiff_t n, int level) {
#if NNCORE_X86
    if (level >= NNCORE_SIMD_AVX512) return nncore_ew_f64_avx512(op, y, a, b, n);
    if (level >= NNCORE_SIMD_AVX2) return nncore_ew_f64_avx2(op, y, a, b, n);
#endif
    (void)op; (void)y; (void)a; (void)b; (void)n; (void)level;
    return 0;
}
#endif
