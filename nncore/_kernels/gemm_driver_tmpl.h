/* gemm_driver_tmpl.h: the blocked GEMM driver, instantiated per dtype by gemm_kernels.h with
 * GD_T (float/double) and GD_SFX (s/d) defined. No include guard, by design.
 *
 * Two paths, chosen from the shape, dtype and SIMD level only (never the thread count):
 *  - packed (GotoBLAS): for each KC x NC panel of op(B) packed into NR-column panels, for each
 *    MC x KC block of op(A) packed into MR-row panels, run the micro-kernel over the block.
 *  - direct (small matrices): no K blocking; op(A) is read in place (any row/column stride)
 *    and op(B) too when its rows are contiguous; otherwise op(B) is packed once.
 * Work is split between threads along M or N on micro-tile boundaries (see file header of
 * gemm_kernels.h for why this keeps results bit-identical for any thread count). */

#define GD_CAT_(a, b) a##_##b
#define GD_CAT(a, b) GD_CAT_(a, b)
#define GD_FN(name) GD_CAT(name, GD_SFX)
#define GD_EPI GD_CAT(nncore_gemm_epi, GD_SFX)
#define GD_IMPL GD_CAT(nncore_gemm_impl, GD_SFX)
#define GD_ARGS GD_CAT(nncore_gemm_args, GD_SFX)

typedef struct {
    const char *name;
    int64_t mr, nr, mc, kc, nc;
    void (*ukr_packed)(int64_t m, int64_t n, int64_t kc, const GD_T *a, const GD_T *b, GD_T *c,
                       int64_t ldc, const GD_EPI *e, const GD_T *bias);
    void (*ukr_strided)(int64_t m, int64_t n, int64_t kc, const GD_T *a, int64_t rs_a,
                        int64_t cs_a, const GD_T *b, int64_t rs_b, GD_T *c, int64_t ldc,
                        const GD_EPI *e, const GD_T *bias);
    /* the strided kernel with NR/2 columns, for a last panel of <= NR/2 columns (or NULL) */
    void (*ukr_narrow)(int64_t m, int64_t n, int64_t kc, const GD_T *a, int64_t rs_a,
                       int64_t cs_a, const GD_T *b, int64_t rs_b, GD_T *c, int64_t ldc,
                       const GD_EPI *e, const GD_T *bias);
    void (*pack_a)(int64_t mc, int64_t kc, const GD_T *a, int64_t rs_a, int64_t cs_a,
                   GD_T *ap);
    void (*pack_b)(int64_t kc, int64_t nc, const GD_T *b, int64_t rs_b, int64_t cs_b,
                   GD_T *bp);
} GD_IMPL;

/* The problem, plus the plan filled in by nncore_gemm_plan_<s|d>. */
typedef struct {
    int trans_a, trans_b;
    int64_t M, N, K;
    GD_T alpha, beta;
    const GD_T *A;
    int64_t lda;
    const GD_T *B;
    int64_t ldb;
    GD_T *C;
    int64_t ldc;
    const GD_T *bias; /* (N,) or NULL */
    int act;          /* NNCORE_GEMM_ACT_*: activation applied last (after beta and bias) */
    /* plan */
    const GD_IMPL *impl;
    int64_t mc, kc, nc;
    int direct;  /* 1: direct path, 0: packed path */
    int split_n; /* 1: parts split N, 0: parts split M */
    int nparts;
} GD_ARGS;

/* Block sizes, tuned on Zen 4 (32 KiB L1d, 1 MiB L2, 32 MiB L3): an MC x KC block of A takes
 * about a third of L2; KC is large so C is revisited rarely (a KC x NR panel of B is streamed
 * from L2, which the measured optimum preferred over an L1-sized KC); KC x NC of B sits in L3. */
#define GD_F32 (sizeof(GD_T) == 4)
static const GD_IMPL GD_FN(nncore_gemm_impls)[3] = {
    {"portable", 4, 8, 128, 256, 2048, GD_CAT(gemm_ukr_packed, GD_CAT(portable, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(portable, GD_SFX)), 0,
     GD_CAT(gemm_pack_a, GD_CAT(portable, GD_SFX)),
     GD_CAT(gemm_pack_b, GD_CAT(portable, GD_SFX))},
#if NNCORE_X86
    {"avx2+fma", 6, GD_F32 ? 16 : 8, GD_F32 ? 72 : 48, 512, 4096,
     GD_CAT(gemm_ukr_packed, GD_CAT(avx2, GD_SFX)), GD_CAT(gemm_ukr_strided, GD_CAT(avx2, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx2n, GD_SFX)),
     GD_CAT(gemm_pack_a, GD_CAT(avx2, GD_SFX)), GD_CAT(gemm_pack_b, GD_CAT(avx2, GD_SFX))},
    {"avx512", 14, GD_F32 ? 32 : 16, GD_F32 ? 168 : 112, 512, 4096,
     GD_CAT(gemm_ukr_packed, GD_CAT(avx512, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx512, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx512n, GD_SFX)),
     GD_CAT(gemm_pack_a, GD_CAT(avx512, GD_SFX)), GD_CAT(gemm_pack_b, GD_CAT(avx512, GD_SFX))},
#else
    {0}, {0},
#endif
};
#undef GD_F32

/* Per-thread packing buffer, grown on demand and kept for the thread's lifetime (OpenMP
 * reuses its threads, so steady-state calls allocate nothing). */
static __thread GD_T *GD_FN(nncore_gemm_tls_buf) = 0;
static __thread size_t GD_FN(nncore_gemm_tls_cap) = 0;

static GD_T *GD_FN(nncore_gemm_buffer)(size_t count) {
    if (count > GD_FN(nncore_gemm_tls_cap)) {
        void *p = 0;
        size_t want = count + count / 4 + 64;
        if (posix_memalign(&p, 64, want * sizeof(GD_T)) != 0) return 0;
        free(GD_FN(nncore_gemm_tls_buf));
        GD_FN(nncore_gemm_tls_buf) = (GD_T *)p;
        GD_FN(nncore_gemm_tls_cap) = want;
    }
    return GD_FN(nncore_gemm_tls_buf);
}

static inline int64_t GD_FN(nncore_gemm_round_up)(int64_t x, int64_t m) {
    return (x + m - 1) / m * m;
}

/* Block size <= max_block, a multiple of unit, splitting `extent` into equal-sized blocks. */
static inline int64_t GD_FN(nncore_gemm_even_block)(int64_t extent, int64_t max_block,
                                                    int64_t unit) {
    const int64_t nblocks = (extent + max_block - 1) / max_block;
    const int64_t b = GD_FN(nncore_gemm_round_up)((extent + nblocks - 1) / nblocks, unit);
    return b < max_block ? b : max_block;
}

/* Fill the plan and return the number of parts (0: nothing to do). Parts are independent and
 * may run on any threads in any order. */
static int GD_FN(nncore_gemm_plan)(GD_ARGS *p, int nthreads) {
    const GD_IMPL *impl = &GD_FN(nncore_gemm_impls)[nncore_gemm_level()];
    p->impl = impl;
    p->mc = nncore_gemm_override_mc > 0 ? nncore_gemm_override_mc : impl->mc;
    p->kc = nncore_gemm_override_kc > 0 ? nncore_gemm_override_kc : impl->kc;
    p->nc = nncore_gemm_override_nc > 0 ? nncore_gemm_override_nc : impl->nc;
    p->mc = GD_FN(nncore_gemm_round_up)(p->mc, impl->mr);
    p->nc = GD_FN(nncore_gemm_round_up)(p->nc, impl->nr);
    p->split_n = 1;
    p->nparts = 1;
    if (p->M <= 0 || p->N <= 0) return p->nparts = 0;
    if (p->K <= 0) { p->direct = 1; return 1; }

    /* direct when everything fits comfortably in L2 and K needs no blocking */
    const int64_t bytes = (p->M * p->K + p->K * p->N) * (int64_t)sizeof(GD_T);
    int direct = bytes <= ((int64_t)768 << 10) && p->K <= 1024;
    if (nncore_gemm_force_path == NNCORE_GEMM_PATH_PACKED) direct = 0;
    if (nncore_gemm_force_path == NNCORE_GEMM_PATH_DIRECT) direct = 1;
    p->direct = direct;

    /* threads: about >= 256k multiply-adds each, so fork/join cost stays small */
    const double work = (double)p->M * (double)p->N * (double)p->K;
    int nt = nthreads < 1 ? 1 : nthreads;
    if (work < 262144.0 * nt) nt = (int)(work / 262144.0);
    if (nt < 1) nt = 1;
    const int64_t tm = (p->M + impl->mr - 1) / impl->mr, tn = (p->N + impl->nr - 1) / impl->nr;
    if (nt > 1) {
        /* split the dimension that gives the smallest per-thread share of tiles */
        int64_t cost_n = (tn + nt - 1) / nt * tm, cost_m = (tm + nt - 1) / nt * tn;
        p->split_n = cost_n <= cost_m;
        int64_t tiles = p->split_n ? tn : tm;
        if (nt > tiles) nt = (int)tiles;
    }
    p->nparts = nt;
    return nt;
}

/* Naive reference loop, used only if a packing buffer cannot be allocated. */
static void GD_FN(nncore_gemm_naive)(const GD_ARGS *p, int64_t m0, int64_t m1, int64_t n0,
                                     int64_t n1) {
    const int64_t rs_a = p->trans_a ? 1 : p->lda, cs_a = p->trans_a ? p->lda : 1;
    const int64_t rs_b = p->trans_b ? 1 : p->ldb, cs_b = p->trans_b ? p->ldb : 1;
    for (int64_t i = m0; i < m1; i++)
        for (int64_t j = n0; j < n1; j++) {
            GD_T s = 0;
            for (int64_t k = 0; k < p->K; k++)
                s += p->A[i * rs_a + k * cs_a] * p->B[k * rs_b + j * cs_b];
            GD_T r = p->alpha * s;
            if (p->beta != 0) r += p->beta * p->C[i * p->ldc + j];
            if (p->bias) r += p->bias[j];
            if (p->act == NNCORE_GEMM_ACT_RELU) r = r <= 0 ? (GD_T)0 : r;
            p->C[i * p->ldc + j] = r;
        }
    if (p->act >= NNCORE_GEMM_ACT_GELU)
        for (int64_t i = m0; i < m1; i++)
            GD_CAT(nncore_gemm_act_rows, GD_SFX)(p->C + i * p->ldc + n0, 1, 1, n1 - n0, p->act);
}

/* K == 0: C = act(beta*C + bias) (beta == 0: C is not read). */
static void GD_FN(nncore_gemm_k0)(const GD_ARGS *p) {
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->N; j++) {
            GD_T r = p->beta != 0 ? p->beta * p->C[i * p->ldc + j] : (GD_T)0;
            if (p->bias) r += p->bias[j];
            if (p->act == NNCORE_GEMM_ACT_RELU) r = r <= 0 ? (GD_T)0 : r;
            p->C[i * p->ldc + j] = r;
        }
    if (p->act >= NNCORE_GEMM_ACT_GELU)
        GD_CAT(nncore_gemm_act_rows, GD_SFX)(p->C, p->ldc, p->M, p->N, p->act);
}

static void GD_FN(nncore_gemm_direct)(const GD_ARGS *p, int64_t m0, int64_t m1, int64_t n0,
                                      int64_t n1) {
    const GD_IMPL *impl = p->impl;
    const int64_t MR = impl->mr, NR = impl->nr, K = p->K;
    const int64_t rs_a = p->trans_a ? 1 : p->lda, cs_a = p->trans_a ? p->lda : 1;
    GD_EPI e = {p->alpha, p->beta, 1, 1, p->act};
    GD_T *bp = 0;
    if (p->trans_b || (n1 - n0) % NR != 0) {
        /* op(B) columns are strided (or the last panel is partial): pack this part's op(B)
         * columns once, zero-padded to whole NR panels */
        bp = GD_FN(nncore_gemm_buffer)((size_t)(K * GD_FN(nncore_gemm_round_up)(n1 - n0, NR)));
        if (!bp) { GD_FN(nncore_gemm_naive)(p, m0, m1, n0, n1); return; }
        if (p->trans_b) {
            impl->pack_b(K, n1 - n0, p->B + n0 * p->ldb, 1, p->ldb, bp);
        } else {
            /* only the partial last panel needs a copy */
            int64_t jl = n0 + (n1 - n0) / NR * NR;
            impl->pack_b(K, n1 - jl, p->B + jl, p->ldb, 1, bp + (jl - n0) * K);
        }
    }
    for (int64_t j = n0; j < n1; j += NR) {
        const int64_t n = n1 - j < NR ? n1 - j : NR;
        const GD_T *b;
        int64_t rs_b;
        if (p->trans_b || n < NR) {
            b = bp + (j - n0) * K;
            rs_b = NR;
        } else {
            b = p->B + j;
            rs_b = p->ldb;
        }
        const GD_T *bias = p->bias ? p->bias + j : 0;
        const int narrow = impl->ukr_narrow && 2 * n <= NR;
        for (int64_t i = m0; i < m1; i += MR) {
            const int64_t m = m1 - i < MR ? m1 - i : MR;
            (narrow ? impl->ukr_narrow : impl->ukr_strided)(m, n, K, p->A + i * rs_a, rs_a, cs_a,
                                                            b, rs_b, p->C + i * p->ldc + j,
                                                            p->ldc, &e, bias);
        }
    }
}

static void GD_FN(nncore_gemm_packed)(const GD_ARGS *p, int64_t m0, int64_t m1, int64_t n0,
                                      int64_t n1) {
    const GD_IMPL *impl = p->impl;
    const int64_t MR = impl->mr, NR = impl->nr;
    const int64_t KC = p->kc;
    /* equal-sized blocks (multiples of MR / NR) rather than full blocks plus a sliver */
    const int64_t MC = GD_FN(nncore_gemm_even_block)(m1 - m0, p->mc, MR);
    const int64_t NC = GD_FN(nncore_gemm_even_block)(n1 - n0, p->nc, NR);
    const int64_t rs_a = p->trans_a ? 1 : p->lda, cs_a = p->trans_a ? p->lda : 1;
    const int64_t rs_b = p->trans_b ? 1 : p->ldb, cs_b = p->trans_b ? p->ldb : 1;
    const int64_t kcmax = p->K < KC ? p->K : KC;
    const int64_t mcmax = GD_FN(nncore_gemm_round_up)(m1 - m0 < MC ? m1 - m0 : MC, MR);
    const int64_t ncmax = GD_FN(nncore_gemm_round_up)(n1 - n0 < NC ? n1 - n0 : NC, NR);
    const size_t a_size = (size_t)GD_FN(nncore_gemm_round_up)(mcmax * kcmax, 16);
    GD_T *ap = GD_FN(nncore_gemm_buffer)(a_size + (size_t)(ncmax * kcmax));
    if (!ap) { GD_FN(nncore_gemm_naive)(p, m0, m1, n0, n1); return; }
    GD_T *bp = ap + a_size;
    for (int64_t jc = n0; jc < n1; jc += NC) {
        const int64_t nc = n1 - jc < NC ? n1 - jc : NC;
        for (int64_t pc = 0; pc < p->K; pc += KC) {
            const int64_t kc = p->K - pc < KC ? p->K - pc : KC;
            GD_EPI e = {p->alpha, p->beta, pc == 0, pc + kc >= p->K, p->act};
            impl->pack_b(kc, nc, p->B + pc * rs_b + jc * cs_b, rs_b, cs_b, bp);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                const int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                impl->pack_a(mc, kc, p->A + ic * rs_a + pc * cs_a, rs_a, cs_a, ap);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t n = nc - jr < NR ? nc - jr : NR;
                    const GD_T *bias = (pc == 0 && p->bias) ? p->bias + jc + jr : 0;
                    const int narrow = impl->ukr_narrow && 2 * n <= NR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t m = mc - ir < MR ? mc - ir : MR;
                        GD_T *c = p->C + (ic + ir) * p->ldc + jc + jr;
                        if (narrow)
                            impl->ukr_narrow(m, n, kc, ap + ir * kc, 1, MR, bp + jr * kc, NR, c,
                                             p->ldc, &e, bias);
                        else
                            impl->ukr_packed(m, n, kc, ap + ir * kc, bp + jr * kc, c, p->ldc,
                                             &e, bias);
                    }
                }
            }
        }
    }
}

/* Run part `part` of a plan (0 <= part < nparts). */
static void GD_FN(nncore_gemm_part)(const GD_ARGS *p, int part) {
    if (p->K <= 0) {
        if (part == 0) GD_FN(nncore_gemm_k0)(p);
        return;
    }
    const int64_t unit = p->split_n ? p->impl->nr : p->impl->mr;
    const int64_t extent = p->split_n ? p->N : p->M;
    const int64_t tiles = (extent + unit - 1) / unit;
    int64_t lo = tiles * part / p->nparts * unit, hi = tiles * (part + 1) / p->nparts * unit;
    if (hi > extent) hi = extent;
    if (lo >= hi) return;
    int64_t m0 = 0, m1 = p->M, n0 = 0, n1 = p->N;
    if (p->split_n) { n0 = lo; n1 = hi; } else { m0 = lo; m1 = hi; }
    if (p->direct)
        GD_FN(nncore_gemm_direct)(p, m0, m1, n0, n1);
    else
        GD_FN(nncore_gemm_packed)(p, m0, m1, n0, n1);
}

#undef GD_CAT_
#undef GD_CAT
#undef GD_FN
#undef GD_EPI
#undef GD_IMPL
#undef GD_ARGS
