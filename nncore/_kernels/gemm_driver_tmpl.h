/* gemm_driver_tmpl.h: the blocked GEMM driver, instantiated per dtype by gemm_kernels.h with
 * GD_T (float/double) and GD_SFX (s/d) defined. No include guard, by design.
 *
 * Two paths, chosen from the shape, dtype and SIMD level only (never the thread count):
 *  - packed (GotoBLAS): for each KC x NC panel of op(B) packed into NR-column panels, for each
 *    MC x KC block of op(A) packed into MR-row panels, run the micro-kernel over the block.
 *  - direct (small matrices): no K blocking; op(A) is read in place (any row/column stride)
 *    and op(B) too when its rows are contiguous; otherwise op(B) is packed once.
 *  - dot (A @ B.T, few rows or columns, long K) and column (thin N: the column-vector kernel,
 *    vectors down M, over tw-row panels of op(A) it packs with register transposes; full
 *    panels of a row-major op(A) block by block inside the k loop, gemm_tkr_stream).
 * Work is split between threads along M or N on micro-tile boundaries (see file header of
 * gemm_kernels.h for why this keeps results bit-identical for any thread count). On the packed
 * path split along M, the threads pack each op(B) panel once, together (shared_b; barriers
 * around the panel), instead of each packing its own copy. */

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
    /* the same with NR/4 columns (256-bit vectors at the AVX-512 level), or NULL */
    void (*ukr_quarter)(int64_t m, int64_t n, int64_t kc, const GD_T *a, int64_t rs_a,
                        int64_t cs_a, const GD_T *b, int64_t rs_b, GD_T *c, int64_t ldc,
                        const GD_EPI *e, const GD_T *bias);
    void (*pack_a)(int64_t mc, int64_t kc, const GD_T *a, int64_t rs_a, int64_t cs_a,
                   GD_T *ap);
    void (*pack_b)(int64_t kc, int64_t nc, const GD_T *b, int64_t rs_b, int64_t cs_b,
                   GD_T *bp);
    /* column-vector kernel for panels of <= tcols columns on tw rows (packs op(A) into abuf,
     * tw * K elements), or NULL */
    void (*ukr_t)(int64_t m, int64_t n, int64_t kc, const GD_T *a, int64_t rs_a, int64_t cs_a,
                  const GD_T *b, int64_t rs_b, GD_T *c, int64_t ldc, const GD_EPI *e,
                  const GD_T *bias, GD_T *abuf);
    int64_t tw, tcols;
    /* bit n set: the column-vector path beats the row kernels for N = n (measured) */
    unsigned col_n;
    /* dot-product kernel (op(A) rows and op(B) columns contiguous over k), or NULL */
    void (*ukr_dot)(int64_t m, int64_t n, int64_t kc, const GD_T *a, int64_t lda, const GD_T *b,
                    int64_t ldb, GD_T *c, int64_t ldc, const GD_EPI *e, const GD_T *bias);
    /* the column-vector kernel over np full tw-row panels of an op(A) with rows contiguous
     * over k, packing as it goes (tbuf: 2 transpose blocks x tw <= 16 * tw elements; returns 0 if kc is too short), or
     * NULL */
    int (*ukr_ts)(int64_t np, int64_t np_all, int64_t n, int64_t kc, const GD_T *a,
                  int64_t rs_a, const GD_T *b, int64_t rs_b, GD_T *c, int64_t ldc,
                  const GD_EPI *e, const GD_T *bias, GD_T *tbuf, int prefetch);
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
    int direct;  /* 3: column-vector path, 2: dot-product path, 1: direct path, 0: packed */
    int split_n; /* 1: parts split N, 0: parts split M */
    int nparts;
    int shared_b; /* packed, split M: the threads pack each op(B) panel once, together */
} GD_ARGS;

/* Block sizes, tuned on Zen 4 (32 KiB L1d, 1 MiB L2, 32 MiB L3): an MC x KC block of A takes
 * about a third of L2; KC is large so C is revisited rarely (a KC x NR panel of B is streamed
 * from L2, which the measured optimum preferred over an L1-sized KC); KC x NC of B sits in L3. */
#define GD_F32 (sizeof(GD_T) == 4)
static const GD_IMPL GD_FN(nncore_gemm_impls)[3] = {
    {"portable", 4, 8, 128, 256, 2048, GD_CAT(gemm_ukr_packed, GD_CAT(portable, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(portable, GD_SFX)), 0, 0,
     GD_CAT(gemm_pack_a, GD_CAT(portable, GD_SFX)),
     GD_CAT(gemm_pack_b, GD_CAT(portable, GD_SFX)), 0, 0, 0, 0, 0},
#if NNCORE_X86
    {"avx2+fma", 6, GD_F32 ? 16 : 8, GD_F32 ? 72 : 48, 512, 4096,
     GD_CAT(gemm_ukr_packed, GD_CAT(avx2, GD_SFX)), GD_CAT(gemm_ukr_strided, GD_CAT(avx2, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx2n, GD_SFX)), 0,
     GD_CAT(gemm_pack_a, GD_CAT(avx2, GD_SFX)), GD_CAT(gemm_pack_b, GD_CAT(avx2, GD_SFX)),
     GD_CAT(gemm_tkr, GD_CAT(avx2, GD_SFX)), GD_F32 ? 16 : 8, 6, GD_F32 ? 0x7eu : 0x6eu, 0,
     GD_CAT(gemm_tkr_stream, GD_CAT(avx2, GD_SFX))},
    {"avx512", 14, GD_F32 ? 32 : 16, GD_F32 ? 168 : 112, 512, 4096,
     GD_CAT(gemm_ukr_packed, GD_CAT(avx512, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx512, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx512n, GD_SFX)),
     GD_CAT(gemm_ukr_strided, GD_CAT(avx512q, GD_SFX)),
     GD_CAT(gemm_pack_a, GD_CAT(avx512, GD_SFX)), GD_CAT(gemm_pack_b, GD_CAT(avx512, GD_SFX)),
     GD_CAT(gemm_tkr, GD_CAT(avx512, GD_SFX)), GD_F32 ? 32 : 16, 12, GD_F32 ? 0x1ffeu : 0x1e06u,
     GD_CAT(gemm_dot, GD_CAT(avx512, GD_SFX)), GD_CAT(gemm_tkr_stream, GD_CAT(avx512, GD_SFX))},
#else
    {0}, {0},
#endif
};
#undef GD_F32

typedef void (*GD_FN(nncore_gemm_ukr_fn))(int64_t m, int64_t n, int64_t kc, const GD_T *a,
                                          int64_t rs_a, int64_t cs_a, const GD_T *b,
                                          int64_t rs_b, GD_T *c, int64_t ldc, const GD_EPI *e,
                                          const GD_T *bias);

/* The thinnest strided kernel that covers a panel of n columns, or NULL for the full one. */
static inline GD_FN(nncore_gemm_ukr_fn) GD_FN(nncore_gemm_thin)(const GD_IMPL *impl,
                                                                int64_t n) {
    if (impl->ukr_quarter && 4 * n <= impl->nr && nncore_gemm_has_vl()) return impl->ukr_quarter;
    if (impl->ukr_narrow && 2 * n <= impl->nr) return impl->ukr_narrow;
    return 0;
}

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

/* Where the column-vector path beats the direct path's row kernels (measured on Zen 4, 1
 * thread, K = 64 and 150, see docs/gemm.md): for the column counts in impl->col_n (where the
 * row kernels waste lanes: float32 1-12; float64 1-2 and 9-12, as 4 and 8 fit the quarter and
 * narrow kernels exactly), on at least 8 rows for <= 4 columns, else at least 24 rows with
 * at most a quarter of the last panel's rows padding; K <= 1024 as on the direct path. Not
 * when op(A) exceeds 4 MiB and streams from memory: there the row kernels, which read A in
 * place with software prefetch, measured faster (50176x75 @ 75x6: 1.25 vs 2.2 ms). */
static inline int GD_FN(nncore_gemm_col_wins)(const GD_ARGS *p, const GD_IMPL *impl) {
    if (p->K > 1024 || p->N >= 32 || !((impl->col_n >> p->N) & 1u)) return 0;
    if (p->M * p->K * (int64_t)sizeof(GD_T) > ((int64_t)4 << 20)) return 0;
    if (p->N <= 4) return p->M >= 8;
    return p->M >= 24 && 4 * p->M >= 3 * GD_FN(nncore_gemm_round_up)(p->M, impl->tw);
}

/* Fill the plan and return the number of parts (0: nothing to do). Parts are independent and
 * may run on any threads in any order. */
static int GD_FN(nncore_gemm_plan)(GD_ARGS *p, int nthreads) {
    const GD_IMPL *impl = &GD_FN(nncore_gemm_impls)[nncore_gemm_level()];
    p->impl = impl;
    p->mc = nncore_gemm_override_mc > 0 ? nncore_gemm_override_mc : impl->mc;
    p->kc = nncore_gemm_override_kc > 0 ? nncore_gemm_override_kc : impl->kc;
    p->nc = nncore_gemm_override_nc > 0 ? nncore_gemm_override_nc : impl->nc;
    if (nncore_gemm_override_kc <= 0 && p->K > p->kc) {
        /* balanced K blocks up to 1/8 longer than KC, so there is no short last block (its
         * pass over the C tiles costs what a full block's does: K = 1120 was 512 + 512 + 96,
         * now 560 + 560). It depends on K and KC only: still the same for any thread count. */
        const int64_t limit = p->kc + p->kc / 8, nblocks = (p->K + limit - 1) / limit;
        p->kc = (p->K + nblocks - 1) / nblocks;
    }
    p->mc = GD_FN(nncore_gemm_round_up)(p->mc, impl->mr);
    p->nc = GD_FN(nncore_gemm_round_up)(p->nc, impl->nr);
    p->split_n = 1;
    p->nparts = 1;
    p->shared_b = 0;
    if (p->M <= 0 || p->N <= 0) return p->nparts = 0;
    if (p->K <= 0) { p->direct = 1; return 1; }

    /* direct when K needs no blocking and either everything fits comfortably in L2, or op(A)
     * is small enough to be re-read from L2 for every column panel (few rows: packing A would
     * cost more than it saves), or there is one column panel (A is read once, straight from
     * memory); a transposed op(B) is packed whole, so it must stay small */
    const int64_t size = (int64_t)sizeof(GD_T);
    const int64_t a_bytes = p->M * p->K * size, b_bytes = p->K * p->N * size;
    int direct = p->K <= 1024 &&
                 (a_bytes + b_bytes <= ((int64_t)768 << 10) ||
                  ((a_bytes <= ((int64_t)128 << 10) || p->N <= impl->nr) &&
                   (!p->trans_b || b_bytes <= ((int64_t)1 << 20))));
    /* dot products (direct == 2) for A @ B.T with fewer than 32 rows or columns and K >= 128
     * (measured: 32x1024 @ 1024x27 87 vs 58 GFLOP/s direct; at 32 rows and K = 256 it loses) */
    const int dot_ok = impl->ukr_dot && !p->trans_a && p->trans_b;
    if (dot_ok && p->K >= 128 && (p->M < 32 || p->N < 32) && p->M * p->N <= 32768)
        direct = 2;
    /* column-vector path (direct == 3) for thin products: N <= tcols, vectors down M */
    const int col_ok = impl->ukr_t && nncore_gemm_allow_tkr && p->N <= impl->tcols;
    if (col_ok && direct != 2 && GD_FN(nncore_gemm_col_wins)(p, impl)) direct = 3;
    if (nncore_gemm_force_path == NNCORE_GEMM_PATH_PACKED) direct = 0;
    if (nncore_gemm_force_path == NNCORE_GEMM_PATH_DIRECT) direct = 1;
    if (nncore_gemm_force_path == NNCORE_GEMM_PATH_DOT) direct = dot_ok ? 2 : 1;
    if (nncore_gemm_force_path == NNCORE_GEMM_PATH_COLUMN) direct = col_ok ? 3 : 1;
    p->direct = direct;

    /* threads: >= 1M multiply-adds each (~10 us): on a quiet machine fork/join would pay
     * from ~256k, but on a loaded one every fork waits for a descheduled worker (measured on
     * the shared VM: 2-thread calls of 0.9M multiply-adds took ~17 ms instead of ~20 us) */
    const double work = (double)p->M * (double)p->N * (double)p->K;
    const double per_thread = 1048576.0;
    int nt = nthreads < 1 ? 1 : nthreads;
    if (work < per_thread * nt) nt = (int)(work / per_thread);
    if (nt < 1) nt = 1;
    const int64_t unit_m = direct == 3 ? impl->tw : impl->mr;
    const int64_t tm = (p->M + unit_m - 1) / unit_m, tn = (p->N + impl->nr - 1) / impl->nr;
    if (nt > 1) {
        /* split the dimension that gives the smallest per-thread share of tiles. On the packed
         * path, within 5%, prefer the split whose threads pack less: split N makes every thread
         * pack all of op(A) (M x K), split M all of op(B) (K x N), or with shared packing one
         * copy between them. (The LM decoder's 10000x256 weight gradient, K = 1120, split N:
         * each thread packed all 11.2M elements of op(A), transposing them.) */
        int64_t cost_n = (tn + nt - 1) / nt * tm, cost_m = (tm + nt - 1) / nt * tn;
        const int prefer_m = nncore_gemm_allow_shared || p->M >= p->N;
        p->split_n = direct ? cost_n <= cost_m
                     : prefer_m ? 20 * cost_n < 19 * cost_m : 19 * cost_n <= 20 * cost_m;
        if (direct == 3) p->split_n = 0; /* one panel of columns: split M on tw rows */
        int64_t tiles = p->split_n ? tn : tm;
        if (nt > tiles) nt = (int)tiles;
    }
    p->nparts = nt;
#if NNCORE_HAVE_OPENMP
    p->shared_b = nt > 1 && !direct && !p->split_n && nncore_gemm_allow_shared;
#endif
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
    GD_T *bp = 0, *abuf = 0;
    /* the column-vector kernel serves a last panel of <= 4 columns of a tall product (measured
     * on Zen 4: 1.5-1.7x the row-broadcast kernels at 1-2 columns, even at 4, behind at 6-8) */
    const int64_t n_last = (n1 - n0) % NR;
    const int use_t = impl->ukr_t && nncore_gemm_allow_tkr && n_last > 0 && n_last <= 4 &&
                      m1 - m0 >= impl->tw;
    /* rows of op(B) read in place at a stride of a multiple of 2 KiB fall into one or two L1
     * sets: with several row tiles re-reading a panel of more than 16 rows, copy each full
     * panel into a contiguous buffer first (a 32x27 @ 27x1024 conv product: ~1.2x) */
    const int copy_panels = !p->trans_b && K > 16 && m1 - m0 > MR &&
                            (p->ldb * (int64_t)sizeof(GD_T)) % 2048 == 0;
    GD_T *pbuf = 0;
    if (p->trans_b || n_last != 0 || copy_panels) {
        /* op(B) columns are strided (or the last panel is partial): pack this part's op(B)
         * columns once, zero-padded to whole NR panels */
        const size_t bsize = (size_t)GD_FN(nncore_gemm_round_up)(
            K * GD_FN(nncore_gemm_round_up)(n1 - n0, NR), 16);
        const size_t psize = copy_panels ? (size_t)GD_FN(nncore_gemm_round_up)(K * NR, 16) : 0;
        bp = GD_FN(nncore_gemm_buffer)(bsize + psize + (use_t ? (size_t)(impl->tw * K) : 0));
        if (!bp) { GD_FN(nncore_gemm_naive)(p, m0, m1, n0, n1); return; }
        pbuf = copy_panels ? bp + bsize : 0;
        abuf = bp + bsize + psize;
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
        } else if (pbuf) {
            impl->pack_b(K, NR, p->B + j, p->ldb, 1, pbuf);
            b = pbuf;
            rs_b = NR;
        } else {
            b = p->B + j;
            rs_b = p->ldb;
        }
        const GD_T *bias = p->bias ? p->bias + j : 0;
        if (use_t && n <= 4) {
            const int64_t TW = impl->tw;
            for (int64_t i = m0; i < m1; i += TW) {
                const int64_t m = m1 - i < TW ? m1 - i : TW;
                if (!p->trans_a && i + 3 * TW <= m1) { /* A streams: prefetch 2 panels ahead */
                    const char *nx = (const char *)(p->A + (i + 2 * TW) * rs_a);
                    const int64_t bytes = (int64_t)sizeof(GD_T) * ((TW - 1) * rs_a + K);
                    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(nx + o, 0, 3);
                }
                impl->ukr_t(m, n, K, p->A + i * rs_a, rs_a, cs_a, b, rs_b,
                            p->C + i * p->ldc + j, p->ldc, &e, bias, abuf);
            }
            continue;
        }
        GD_FN(nncore_gemm_ukr_fn) ukr = GD_FN(nncore_gemm_thin)(impl, n);
        if (!ukr) ukr = impl->ukr_strided;
        /* A streamed from memory (one pass, few columns, more than L2 holds): prefetch the
         * rows two tiles ahead, which the hardware prefetcher tracks poorly as MR interleaved
         * streams. A smaller A is likely cached: there the prefetches only stall on fill
         * buffers and push op(B) out of L1 (the LSTM's 64 x 32 x 385 steps: 2.3% of a
         * 1-thread forward in the prefetch loop) */
        const int stream_a = !p->trans_a && n1 - n0 <= NR &&
                             p->M * K * (int64_t)sizeof(GD_T) > ((int64_t)1 << 20);
        for (int64_t i = m0; i < m1; i += MR) {
            const int64_t m = m1 - i < MR ? m1 - i : MR;
            if (stream_a && i + 3 * MR <= m1) {
                const char *nx = (const char *)(p->A + (i + 2 * MR) * rs_a);
                const int64_t bytes = (int64_t)sizeof(GD_T) * ((MR - 1) * rs_a + K);
                for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(nx + o, 0, 3);
            }
            ukr(m, n, K, p->A + i * rs_a, rs_a, cs_a, b, rs_b, p->C + i * p->ldc + j, p->ldc,
                &e, bias);
        }
    }
}

/* Dot-product path: 4 x 4 tiles of dot products over the whole K, nothing packed. */
static void GD_FN(nncore_gemm_dotpath)(const GD_ARGS *p, int64_t m0, int64_t m1, int64_t n0,
                                       int64_t n1) {
    GD_EPI e = {p->alpha, p->beta, 1, 1, p->act};
    for (int64_t i = m0; i < m1; i += 4) {
        const int64_t m = m1 - i < 4 ? m1 - i : 4;
        for (int64_t j = n0; j < n1; j += 4) {
            const int64_t n = n1 - j < 4 ? n1 - j : 4;
            p->impl->ukr_dot(m, n, p->K, p->A + i * p->lda, p->lda, p->B + j * p->ldb, p->ldb,
                             p->C + i * p->ldc + j, p->ldc, &e, p->bias ? p->bias + j : 0);
        }
    }
}

/* Column-vector path (N <= tcols): op(B) read in place (or packed once, K x N), then one
 * column-vector kernel call per tw-row panel of op(A), which it packs k-major itself. */
static void GD_FN(nncore_gemm_colpath)(const GD_ARGS *p, int64_t m0, int64_t m1) {
    const GD_IMPL *impl = p->impl;
    const int64_t TW = impl->tw, K = p->K, N = p->N;
    const int64_t rs_a = p->trans_a ? 1 : p->lda, cs_a = p->trans_a ? p->lda : 1;
    GD_EPI e = {p->alpha, p->beta, 1, 1, p->act};
    const int b_in_place = !p->trans_b && (p->ldb == N || K == 1);
    const size_t bsize = b_in_place ? 0 : (size_t)GD_FN(nncore_gemm_round_up)(K * N, 16);
    GD_T *bp = GD_FN(nncore_gemm_buffer)(bsize + (size_t)(TW * (K > 16 ? K : 16)));
    if (!bp) { GD_FN(nncore_gemm_naive)(p, m0, m1, 0, N); return; }
    GD_T *abuf = bp + bsize;
    const GD_T *b = p->B;
    if (!b_in_place) {
        const int64_t rs_b = p->trans_b ? 1 : p->ldb, cs_b = p->trans_b ? p->ldb : 1;
        for (int64_t j = 0; j < N; j++)
            for (int64_t k = 0; k < K; k++) bp[k * N + j] = p->B[k * rs_b + j * cs_b];
        b = bp;
    }
    int64_t i = m0;
    if (cs_a == 1 && impl->ukr_ts && nncore_gemm_allow_stream) {
        /* full panels of a row-major op(A): packed block by block inside the k loop; when
         * op(A) streams from memory (more than L2), the rows two panels ahead are prefetched */
        const int64_t np = (m1 - m0) / TW, np_all = (m1 - m0 + TW - 1) / TW;
        const int prefetch = p->M * K * (int64_t)sizeof(GD_T) > ((int64_t)1 << 20);
        if (impl->ukr_ts(np, np_all, N, K, p->A + m0 * rs_a, rs_a, b, N, p->C + m0 * p->ldc,
                         p->ldc, &e, p->bias, abuf, prefetch))
            i += np * TW;
    }
    for (; i < m1; i += TW) {
        const int64_t m = m1 - i < TW ? m1 - i : TW;
        impl->ukr_t(m, N, K, p->A + i * rs_a, rs_a, cs_a, b, N, p->C + i * p->ldc, p->ldc, &e,
                    p->bias, abuf);
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
                    GD_FN(nncore_gemm_ukr_fn) thin = GD_FN(nncore_gemm_thin)(impl, n);
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t m = mc - ir < MR ? mc - ir : MR;
                        GD_T *c = p->C + (ic + ir) * p->ldc + jc + jr;
                        /* a partial row tile runs the exact-row instances (8/4/2/1 rows)
                         * on the packed panel instead of a full MR-row tile of zeros */
                        if (thin || m < MR)
                            (thin ? thin : impl->ukr_strided)(m, n, kc, ap + ir * kc, 1, MR,
                                                              bp + jr * kc, NR, c, p->ldc, &e,
                                                              bias);
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
    const int64_t unit = p->split_n ? p->impl->nr : p->direct == 3 ? p->impl->tw : p->impl->mr;
    const int64_t extent = p->split_n ? p->N : p->M;
    const int64_t tiles = (extent + unit - 1) / unit;
    int64_t lo = tiles * part / p->nparts * unit, hi = tiles * (part + 1) / p->nparts * unit;
    if (hi > extent) hi = extent;
    if (lo >= hi) return;
    int64_t m0 = 0, m1 = p->M, n0 = 0, n1 = p->N;
    if (p->split_n) { n0 = lo; n1 = hi; } else { m0 = lo; m1 = hi; }
    if (p->direct == 3)
        GD_FN(nncore_gemm_colpath)(p, m0, m1);
    else if (p->direct == 2)
        GD_FN(nncore_gemm_dotpath)(p, m0, m1, n0, n1);
    else if (p->direct)
        GD_FN(nncore_gemm_direct)(p, m0, m1, n0, n1);
    else
        GD_FN(nncore_gemm_packed)(p, m0, m1, n0, n1);
}

/* One process-wide B-panel buffer for the shared path, taken with an atomic flag; a second
 * concurrent caller (another Python thread) allocates its own for that call. */
static GD_T *GD_FN(nncore_gemm_shared_buf) = 0;
static size_t GD_FN(nncore_gemm_shared_cap) = 0;
static int GD_FN(nncore_gemm_shared_busy) = 0;

static GD_T *GD_FN(nncore_gemm_shared_acquire)(size_t count, int *owned) {
    *owned = 0;
    if (__atomic_exchange_n(&GD_FN(nncore_gemm_shared_busy), 1, __ATOMIC_ACQUIRE) == 0) {
        if (count > GD_FN(nncore_gemm_shared_cap)) {
            void *q = 0;
            size_t want = count + count / 4 + 64;
            if (posix_memalign(&q, 64, want * sizeof(GD_T)) != 0) {
                __atomic_store_n(&GD_FN(nncore_gemm_shared_busy), 0, __ATOMIC_RELEASE);
                return 0;
            }
            free(GD_FN(nncore_gemm_shared_buf));
            GD_FN(nncore_gemm_shared_buf) = (GD_T *)q;
            GD_FN(nncore_gemm_shared_cap) = want;
        }
        return GD_FN(nncore_gemm_shared_buf);
    }
    void *q = 0;
    if (posix_memalign(&q, 64, count * sizeof(GD_T)) != 0) return 0;
    *owned = 1;
    return (GD_T *)q;
}

static void GD_FN(nncore_gemm_shared_release)(GD_T *buf, int owned) {
    if (owned)
        free(buf);
    else if (buf)
        __atomic_store_n(&GD_FN(nncore_gemm_shared_busy), 0, __ATOMIC_RELEASE);
}

/* Packed path with M split between the threads of the current team and op(B) shared: for
 * each KC x NC panel the team packs its NR-column slices together (each thread a contiguous
 * range of slices), waits at a barrier, then every thread runs its own MC blocks of op(A)
 * against the whole panel; a second barrier keeps the panel until all are done. The
 * arithmetic per element of C is that of nncore_gemm_packed, so results stay bit-identical
 * for any thread count. Must be called by every thread of a parallel region. */
static void GD_FN(nncore_gemm_packed_shared)(const GD_ARGS *p, GD_T *bp, int t, int T) {
    const GD_IMPL *impl = p->impl;
    const int64_t MR = impl->mr, NR = impl->nr, KC = p->kc;
    const int64_t tiles = (p->M + MR - 1) / MR;
    int64_t m0 = tiles * t / T * MR, m1 = tiles * (t + 1) / T * MR;
    if (m1 > p->M) m1 = p->M;
    const int64_t MC = m1 > m0 ? GD_FN(nncore_gemm_even_block)(m1 - m0, p->mc, MR) : MR;
    const int64_t NC = GD_FN(nncore_gemm_even_block)(p->N, p->nc, NR);
    const int64_t rs_a = p->trans_a ? 1 : p->lda, cs_a = p->trans_a ? p->lda : 1;
    const int64_t rs_b = p->trans_b ? 1 : p->ldb, cs_b = p->trans_b ? p->ldb : 1;
    const int64_t kcmax = p->K < KC ? p->K : KC;
    const int64_t mcmax = GD_FN(nncore_gemm_round_up)(m1 - m0 < MC ? m1 - m0 : MC, MR);
    GD_T *ap = m1 > m0 ? GD_FN(nncore_gemm_buffer)((size_t)(mcmax * kcmax)) : 0;
    int ok = m1 <= m0 || ap != 0;
    for (int64_t jc = 0; jc < p->N; jc += NC) {
        const int64_t nc = p->N - jc < NC ? p->N - jc : NC;
        const int64_t slices = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < p->K; pc += KC) {
            const int64_t kc = p->K - pc < KC ? p->K - pc : KC;
            GD_EPI e = {p->alpha, p->beta, pc == 0, pc + kc >= p->K, p->act};
            const int64_t s0 = slices * t / T, s1 = slices * (t + 1) / T;
            if (s1 > s0) {
                const int64_t c0 = s0 * NR, c1 = s1 * NR < nc ? s1 * NR : nc;
                impl->pack_b(kc, c1 - c0, p->B + pc * rs_b + (jc + c0) * cs_b, rs_b, cs_b,
                             bp + c0 * kc);
            }
#pragma omp barrier
            for (int64_t ic = m0; ok && ic < m1; ic += MC) {
                const int64_t mc = m1 - ic < MC ? m1 - ic : MC;
                impl->pack_a(mc, kc, p->A + ic * rs_a + pc * cs_a, rs_a, cs_a, ap);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int64_t n = nc - jr < NR ? nc - jr : NR;
                    const GD_T *bias = (pc == 0 && p->bias) ? p->bias + jc + jr : 0;
                    GD_FN(nncore_gemm_ukr_fn) thin = GD_FN(nncore_gemm_thin)(impl, n);
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int64_t m = mc - ir < MR ? mc - ir : MR;
                        GD_T *c = p->C + (ic + ir) * p->ldc + jc + jr;
                        /* a partial row tile runs the exact-row instances (8/4/2/1 rows)
                         * on the packed panel instead of a full MR-row tile of zeros */
                        if (thin || m < MR)
                            (thin ? thin : impl->ukr_strided)(m, n, kc, ap + ir * kc, 1, MR,
                                                              bp + jr * kc, NR, c, p->ldc, &e,
                                                              bias);
                        else
                            impl->ukr_packed(m, n, kc, ap + ir * kc, bp + jr * kc, c, p->ldc,
                                             &e, bias);
                    }
                }
            }
#pragma omp barrier
        }
    }
    if (!ok && m1 > m0) GD_FN(nncore_gemm_naive)(p, m0, m1, 0, p->N);
}

/* Run a plan: serially, as independent parts on a team of threads, or on the shared path. */
static void GD_FN(nncore_gemm_execute)(const GD_ARGS *p) {
    if (p->nparts <= 0) return;
    if (p->nparts == 1) {
        GD_FN(nncore_gemm_part)(p, 0);
        return;
    }
#if NNCORE_HAVE_OPENMP
    if (p->shared_b) {
        const int64_t NR = p->impl->nr;
        const int64_t kcmax = p->K < p->kc ? p->K : p->kc;
        const int64_t NC = GD_FN(nncore_gemm_even_block)(p->N, p->nc, NR);
        const int64_t ncmax = GD_FN(nncore_gemm_round_up)(p->N < NC ? p->N : NC, NR);
        int owned;
        GD_T *bp = GD_FN(nncore_gemm_shared_acquire)((size_t)(ncmax * kcmax), &owned);
        if (bp) {
#pragma omp parallel num_threads(p->nparts)
            GD_FN(nncore_gemm_packed_shared)(p, bp, omp_get_thread_num(), omp_get_num_threads());
            GD_FN(nncore_gemm_shared_release)(bp, owned);
            return;
        }
    }
#pragma omp parallel for schedule(static) num_threads(p->nparts)
    for (int part = 0; part < p->nparts; part++) GD_FN(nncore_gemm_part)(p, part);
#else
    for (int part = 0; part < p->nparts; part++) GD_FN(nncore_gemm_part)(p, part);
#endif
}

#undef GD_CAT_
#undef GD_CAT
#undef GD_FN
#undef GD_EPI
#undef GD_IMPL
#undef GD_ARGS
