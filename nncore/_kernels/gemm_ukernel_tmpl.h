/* gemm_ukernel_tmpl.h: the register-blocked GEMM micro-kernel, written once and instantiated
 * per (instruction set, dtype) by gemm_kernels.h. No include guard: it is meant to be included
 * several times, each time with these macros defined (then undefined by the includer):
 *
 *   UK_SFX        name suffix, e.g. avx512_s
 *   UK_ATTR       function attribute selecting the instruction set (or nothing)
 *   UK_T, UK_V    scalar type and vector type;  UK_VL lanes per vector
 *   UK_MR, UK_NV  micro-tile rows, vectors per row (NR = UK_NV * UK_VL columns)
 *   UK_EPI        the epilogue struct type of this dtype (nncore_gemm_epi_s / _d)
 *   UK_RELU(v)    max(0, v) keeping NaN;  UK_ACT_ROWS(c, ldc, m, n, act) the GELU tile pass
 *   UK_ZERO() UK_SET1(x) UK_LOADU(p) UK_STOREU(p, v) UK_FMADD(a, b, c) UK_MUL(a, b) UK_ADD(a, b)
 *   UK_TRB        (optional) block size of UK_TRANSPOSE(src, ld_src, dst, ld_dst), an in-register
 *                 transpose of a UK_TRB x UK_TRB block used by the packing routines
 *   UK_HAS_MASK   1 when the ISA has cheap lane masks (AVX-512): then UK_MASK_T, UK_MASK(lanes),
 *                 UK_MASK_LOADZ(k, p) and UK_MASK_STORE(p, k, v) are defined too.
 *   UK_TCOLS, UK_TNV  (optional) the column-vector kernel: up to UK_TCOLS columns on UK_TNV
 *                 vectors of rows; UK_TKR_EMB_BCAST (optional, AVX-512) lets its FMAs take
 *                 op(B) as an embedded-broadcast memory operand (see UK_TKR_STEP).
 *
 * The micro-kernel computes a tile  acc[i][j] = sum_k a[i*rs_a + k*cs_a] * b[k*rs_b + j]
 * for i < MROWS (a compile-time constant after inlining), j < NR, k < kc, in registers,
 * k in increasing order with one fused multiply-add per step, then applies the epilogue to the
 * first m_store rows and n columns of C:
 *   first K block:  C = alpha*acc [+ beta*C when beta != 0] [+ bias]   (beta == 0: C not read)
 *   later K blocks: C = C + alpha*acc
 *   last K block:   then C = act(C) (ReLU in registers; GELUs by UK_ACT_ROWS on the stored tile)
 * Rows of b must be readable for NR elements (the driver zero-pads B panels); partial column
 * tiles (n < NR) are written with lane masks, or through a small temp tile where the ISA has
 * no masks, so nothing outside C[0:m_store, 0:n] is read or written. */

#define UK_CAT2_(a, b) a##_##b
#define UK_CAT2(a, b) UK_CAT2_(a, b)
#define UK_FN(name) UK_CAT2(name, UK_SFX)
#define UK_NR (UK_NV * UK_VL)

/* One output vector of the epilogue; `cv` is C's old value (ignored when not read). */
#define UK_EPI_VEC(r, cv, biasv, has_bias, e, va, vb, scale, relu)                            \
    do {                                                                                      \
        if ((e)->first) {                                                                     \
            if (scale) r = UK_MUL(r, va);                                                     \
            if ((e)->beta != 0) r = UK_ADD(r, UK_MUL(vb, cv));                                \
            if (has_bias) r = UK_ADD(r, biasv);                                               \
        } else {                                                                              \
            r = scale ? UK_FMADD(r, va, cv) : UK_ADD(cv, r);                                  \
        }                                                                                     \
        if (relu) r = UK_RELU(r);                                                             \
    } while (0)

/* Epilogue for a full-width tile: rows i < m_store, all NR columns. */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_epi_full)(
    UK_V acc[UK_MR][UK_NV], const int mrows, const int64_t m_store, UK_T *restrict c,
    const int64_t ldc, const UK_EPI *e, const UK_T *restrict bias) {
    const UK_V va = UK_SET1(e->alpha), vb = UK_SET1(e->beta);
    const int scale = e->alpha != (UK_T)1;
    const int read_c = !e->first || e->beta != 0;
    const int relu = e->last && e->act == NNCORE_GEMM_ACT_RELU;
#pragma GCC unroll 16
    for (int i = 0; i < UK_MR; i++) {
        if (i >= mrows || i >= m_store) break;
        UK_T *ci = c + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < UK_NV; v++) {
            UK_V r = acc[i][v];
            UK_V cv = read_c ? UK_LOADU(ci + v * UK_VL) : UK_ZERO();
            UK_V bv = bias ? UK_LOADU(bias + v * UK_VL) : UK_ZERO();
            UK_EPI_VEC(r, cv, bv, bias != 0, e, va, vb, scale, relu);
            UK_STOREU(ci + v * UK_VL, r);
        }
    }
}

#if UK_HAS_MASK
/* Epilogue for a partial-width tile (n < NR) with lane masks: nothing beyond column n is
 * touched (masked loads do not fault on masked-off lanes). */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_epi_part)(
    UK_V acc[UK_MR][UK_NV], const int mrows, const int64_t m_store, const int64_t n,
    UK_T *restrict c, const int64_t ldc, const UK_EPI *e, const UK_T *restrict bias) {
    const UK_V va = UK_SET1(e->alpha), vb = UK_SET1(e->beta);
    const int scale = e->alpha != (UK_T)1;
    const int read_c = !e->first || e->beta != 0;
    const int relu = e->last && e->act == NNCORE_GEMM_ACT_RELU;
    UK_MASK_T mk[UK_NV];
#pragma GCC unroll 4
    for (int v = 0; v < UK_NV; v++) {
        int64_t lanes = n - v * UK_VL;
        mk[v] = UK_MASK(lanes < 0 ? 0 : lanes > UK_VL ? UK_VL : lanes);
    }
#pragma GCC unroll 16
    for (int i = 0; i < UK_MR; i++) {
        if (i >= mrows || i >= m_store) break;
        UK_T *ci = c + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < UK_NV; v++) {
            UK_V r = acc[i][v];
            UK_V cv = read_c ? UK_MASK_LOADZ(mk[v], ci + v * UK_VL) : UK_ZERO();
            UK_V bv = bias ? UK_MASK_LOADZ(mk[v], bias + v * UK_VL) : UK_ZERO();
            UK_EPI_VEC(r, cv, bv, bias != 0, e, va, vb, scale, relu);
            UK_MASK_STORE(ci + v * UK_VL, mk[v], r);
        }
    }
}
#endif

/* The micro-kernel body. MROWS is a compile-time constant at every call site (the function is
 * force-inlined), so `acc` lives in registers and the row loop is fully unrolled. */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_ukr_body)(
    const int MROWS, const int64_t m_store, const int64_t n, const int64_t kc,
    const UK_T *restrict a, const int64_t rs_a, const int64_t cs_a, const UK_T *restrict b,
    const int64_t rs_b, UK_T *restrict c, const int64_t ldc, const UK_EPI *e,
    const UK_T *restrict bias) {
    UK_V acc[UK_MR][UK_NV];
#pragma GCC unroll 16
    for (int i = 0; i < UK_MR; i++) {
        if (i >= MROWS) break;
#pragma GCC unroll 4
        for (int v = 0; v < UK_NV; v++) acc[i][v] = UK_ZERO();
    }
    for (int64_t k = 0; k < kc; k++) {
        UK_V bv[UK_NV];
#pragma GCC unroll 4
        for (int v = 0; v < UK_NV; v++) bv[v] = UK_LOADU(b + v * UK_VL);
#pragma GCC unroll 16
        for (int i = 0; i < UK_MR; i++) {
            if (i >= MROWS) break;
            const UK_V ai = UK_SET1(a[i * rs_a]);
#pragma GCC unroll 4
            for (int v = 0; v < UK_NV; v++) acc[i][v] = UK_FMADD(ai, bv[v], acc[i][v]);
        }
        a += cs_a;
        b += rs_b;
    }
    if (n >= UK_NR) {
        UK_FN(gemm_epi_full)(acc, MROWS, m_store, c, ldc, e, bias);
    } else {
#if UK_HAS_MASK
        UK_FN(gemm_epi_part)(acc, MROWS, m_store, n, c, ldc, e, bias);
#else
        /* Copy the valid part of C (and bias) into a full-width temp tile, run the same
         * full-width epilogue on it, copy the valid part back. */
        UK_T tmp[UK_MR * UK_NR], btmp[UK_NR];
        const int read_c = !e->first || e->beta != 0;
        const int64_t mm = m_store < MROWS ? m_store : MROWS;
        for (int64_t i = 0; i < mm; i++)
            for (int64_t j = 0; j < UK_NR; j++)
                tmp[i * UK_NR + j] = (read_c && j < n) ? c[i * ldc + j] : (UK_T)0;
        if (bias)
            for (int64_t j = 0; j < UK_NR; j++) btmp[j] = j < n ? bias[j] : (UK_T)0;
        UK_FN(gemm_epi_full)(acc, MROWS, m_store, tmp, UK_NR, e, bias ? btmp : 0);
        for (int64_t i = 0; i < mm; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = tmp[i * UK_NR + j];
#endif
    }
    if (e->last && e->act >= NNCORE_GEMM_ACT_GELU)
        UK_ACT_ROWS(c, ldc, m_store < MROWS ? m_store : MROWS, n < UK_NR ? n : UK_NR, e->act);
}

/* Packed-A micro-kernel: A panel is k-major with MR rows per k (rs_a = 1, cs_a = MR) and
 * zero-padded to MR rows, so it always computes MR rows and stores the first m. */
static UK_ATTR void UK_FN(gemm_ukr_packed)(int64_t m, int64_t n, int64_t kc,
                                           const UK_T *restrict a, const UK_T *restrict b,
                                           UK_T *restrict c, int64_t ldc, const UK_EPI *e,
                                           const UK_T *restrict bias) {
    UK_FN(gemm_ukr_body)(UK_MR, m, n, kc, a, 1, UK_MR, b, UK_NR, c, ldc, e, bias);
}

/* Transpose-pack: dst[k*W + r] = src[r*ld + k] for r < rows, k < kc (rows of src are
 * contiguous over k), zero for rows <= r < W. Used for op(A) with contiguous rows and op(B)
 * with contiguous columns; SIMD levels transpose UK_TRB x UK_TRB blocks in registers. */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_pack_t)(
    const int W, const int64_t rows, const int64_t kc, const UK_T *restrict src,
    const int64_t ld, UK_T *restrict dst) {
    int64_t k0 = 0;
#ifdef UK_TRB
    if (rows >= UK_TRB) {
        const int64_t kb = kc / UK_TRB * UK_TRB;
        for (int64_t r0 = 0; r0 < rows; r0 += UK_TRB) {
            /* a last partial block of rows overlaps the previous one (same values rewritten) */
            const int64_t r = r0 + UK_TRB <= rows ? r0 : rows - UK_TRB;
            for (int64_t k = 0; k < kb; k += UK_TRB)
                UK_TRANSPOSE(src + r * ld + k, ld, dst + k * W + r, W);
            /* likewise a last partial block of k overlaps the previous one */
            if (kb < kc && kc >= UK_TRB)
                UK_TRANSPOSE(src + r * ld + kc - UK_TRB, ld, dst + (kc - UK_TRB) * W + r, W);
        }
        k0 = kc >= UK_TRB ? kc : kb;
    }
#endif
    for (int64_t k = k0; k < kc; k++)
        for (int64_t r = 0; r < rows; r++) dst[k * W + r] = src[r * ld + k];
    if (rows < W)
        for (int64_t k = 0; k < kc; k++)
            for (int64_t r = rows; r < W; r++) dst[k * W + r] = (UK_T)0;
}

/* Copy-pack: dst[k*W + c] = src[k*ld + c] for c < cols, zero for cols <= c < W. */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_pack_copy)(
    const int W, const int64_t cols, const int64_t kc, const UK_T *restrict src,
    const int64_t ld, UK_T *restrict dst) {
    if (cols == W && W % UK_VL == 0) {
        for (int64_t k = 0; k < kc; k++)
#pragma GCC unroll 4
            for (int v = 0; v < W / UK_VL; v++)
                UK_STOREU(dst + k * W + v * UK_VL, UK_LOADU(src + k * ld + v * UK_VL));
        return;
    }
    if (cols == W) {
        /* a full panel of W (14) not a multiple of the vector: the constant, unrolled copy
         * becomes a few moves; a plain loop became a memcpy call per k (14 elements), which
         * was 4.4% of the LM step packing the decoder's 10000 x 1120 op(A) */
        for (int64_t k = 0; k < kc; k++)
#pragma GCC unroll 16
            for (int c = 0; c < W; c++) dst[k * W + c] = src[k * ld + c];
        return;
    }
    for (int64_t k = 0; k < kc; k++) {
        for (int64_t c = 0; c < cols; c++) dst[k * W + c] = src[k * ld + c];
        for (int64_t c = cols; c < W; c++) dst[k * W + c] = (UK_T)0;
    }
}

/* Pack an mc x kc block of A (element (i, k) at a[i*rs_a + k*cs_a]) into MR-row panels, each
 * k-major (panel[k*MR + i]); the last panel is zero-padded to MR rows. */
static UK_ATTR void UK_FN(gemm_pack_a)(int64_t mc, int64_t kc, const UK_T *restrict a,
                                       int64_t rs_a, int64_t cs_a, UK_T *restrict ap) {
    if (rs_a == 1 && cs_a != 1) {
        /* op(A) stored k-major (trans_a): read each k row of the block once, in order, and
         * scatter its MR-wide pieces to the full panels. Panel by panel, every cache line of
         * a row was fetched once per panel it straddles, from L3 or memory on a large A. */
        const int64_t full = mc / UK_MR * UK_MR;
        for (int64_t k = 0; k < kc; k++) {
            const UK_T *row = a + k * cs_a;
            UK_T *d = ap + k * UK_MR;
            for (int64_t i0 = 0; i0 < full; i0 += UK_MR, d += UK_MR * kc)
#pragma GCC unroll 16
                for (int i = 0; i < UK_MR; i++) d[i] = row[i0 + i];
        }
        if (full < mc) UK_FN(gemm_pack_copy)(UK_MR, mc - full, kc, a + full, cs_a, ap + full * kc);
        return;
    }
    for (int64_t i0 = 0; i0 < mc; i0 += UK_MR) {
        const int64_t mr = mc - i0 < UK_MR ? mc - i0 : UK_MR;
        const UK_T *src = a + i0 * rs_a;
        if (cs_a == 1) {
            UK_FN(gemm_pack_t)(UK_MR, mr, kc, src, rs_a, ap);
        } else if (rs_a == 1) {
            UK_FN(gemm_pack_copy)(UK_MR, mr, kc, src, cs_a, ap);
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int i = 0; i < UK_MR; i++)
                    ap[k * UK_MR + i] = i < mr ? src[i * rs_a + k * cs_a] : (UK_T)0;
        }
        ap += UK_MR * kc;
    }
}

/* Pack a kc x nc block of B (element (k, j) at b[k*rs_b + j*cs_b]) into NR-column panels, each
 * k-major (panel[k*NR + j]); the last panel is zero-padded to NR columns. */
static UK_ATTR void UK_FN(gemm_pack_b)(int64_t kc, int64_t nc, const UK_T *restrict b,
                                       int64_t rs_b, int64_t cs_b, UK_T *restrict bp) {
    for (int64_t j0 = 0; j0 < nc; j0 += UK_NR) {
        const int64_t nr = nc - j0 < UK_NR ? nc - j0 : UK_NR;
        const UK_T *src = b + j0 * cs_b;
        if (cs_b == 1) {
            UK_FN(gemm_pack_copy)(UK_NR, nr, kc, src, rs_b, bp);
        } else if (rs_b == 1) {
            UK_FN(gemm_pack_t)(UK_NR, nr, kc, src, cs_b, bp);
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int j = 0; j < UK_NR; j++)
                    bp[k * UK_NR + j] = j < nr ? src[k * rs_b + j * cs_b] : (UK_T)0;
        }
        bp += UK_NR * kc;
    }
}

#ifdef UK_TCOLS
/* Column-vector ("C^T") micro-kernel for thin products of n <= UK_TCOLS columns: vectors run
 * down UK_TW = UK_TNV*UK_VL rows of C, so every lane does useful work however few columns there
 * are (the row-broadcast kernels above waste NR - n lanes and issue one broadcast per row and
 * k). Per k: UK_TNV loads of the packed op(A) panel, one broadcast of op(B)[k][j] per column,
 * UK_TNV*n FMAs into the accumulators acc[j][v] (column j, rows v*VL..).
 * op(A) rows [0, m) (m <= UK_TW, element (i, k) at a[i*rs_a + k*cs_a]) are packed k-major into
 * abuf (abuf[k*TW + i], zero rows past m) with UK_TRB x UK_TRB register transposes; a full
 * panel of op(A) = A.T (rs_a == 1) is already k-major and is read in place. op(B) row k is
 * b[k*rs_b + 0..n). Same k order and one FMA per step as the other kernels, and the epilogue
 * performs the operations of UK_EPI_VEC on the column vectors, so all kernels agree bit for
 * bit. The finished tile is transposed back to C's rows through a stack buffer (straight into
 * C for a full panel whose width is a multiple of UK_TRB); C is read the same way (beta). */
#define UK_TW (UK_TNV * UK_VL)
#define UK_TCP(n) (((n) + UK_TRB - 1) / UK_TRB * UK_TRB) /* columns rounded to a block */

/* dst[i*ldd + j] = tile[j*TW + i] for i < TW, j < NCP (NCP a multiple of UK_TRB) */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_tkr_tr_out)(
    const int NCP, const UK_T *restrict tile, UK_T *restrict dst, const int64_t ldd) {
#pragma GCC unroll 4
    for (int i0 = 0; i0 < UK_TW; i0 += UK_TRB)
#pragma GCC unroll 4
        for (int j0 = 0; j0 < NCP; j0 += UK_TRB)
            UK_TRANSPOSE(tile + j0 * UK_TW + i0, UK_TW, dst + i0 * ldd + j0, ldd);
}

/* tile[j*TW + i] = src[i*lds + j] for i < TW, j < NCP */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_tkr_tr_in)(
    const int NCP, const UK_T *restrict src, const int64_t lds, UK_T *restrict tile) {
#pragma GCC unroll 4
    for (int i0 = 0; i0 < UK_TW; i0 += UK_TRB)
#pragma GCC unroll 4
        for (int j0 = 0; j0 < NCP; j0 += UK_TRB)
            UK_TRANSPOSE(src + i0 * lds + j0, lds, tile + j0 * UK_TW + i0, UK_TW);
}

/* The epilogue on the column vectors, into tile (READ_C: C's old values are in tile). A macro,
 * not a function taking acc[][]: passing the array by address made GCC keep an accumulator in
 * memory inside the k loop. */
#define UK_TKR_EPI(READ_C)                                                                    \
    do {                                                                                      \
        _Pragma("GCC unroll 16") for (int j = 0; j < UK_TCOLS; j++) {                         \
            if (j >= NCOLS) break;                                                            \
            const UK_V biasv = bias ? UK_SET1(bias[j]) : UK_ZERO();                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < UK_TNV; v++) {                        \
                UK_V r = acc[j][v];                                                           \
                const UK_V cv = (READ_C) ? UK_LOADU(tile + j * UK_TW + v * UK_VL) : UK_ZERO(); \
                UK_EPI_VEC(r, cv, biasv, bias != 0, e, va, vb, scale, relu);                  \
                UK_STOREU(tile + j * UK_TW + v * UK_VL, r);                                   \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* One k step of the column kernel: acc[j][v] += ap[v*VL..] * b[j]. With UK_TKR_EMB_BCAST
 * (AVX-512) every FMA takes b[j] as a memory operand with an embedded {1toN} broadcast, done
 * by the load unit: on Zen 4 a zmm vbroadcastss into a register takes a shuffle-pipe slot,
 * which the streaming packing's transposes need (64x128 @ 128x10: 2.54 -> 2.3 us). GCC folds
 * the broadcast into the FMA only when it has one use, so the second vector reads b[j]
 * through b1_, a copy of the pointer made opaque by an empty asm (once per loop, not per
 * step). Same FMAs, same bits. */
#if defined(UK_TKR_EMB_BCAST)
#define UK_TKR_STEP(ap_, b_, b1_)                                                             \
    do {                                                                                      \
        UK_V av[UK_TNV];                                                                      \
        _Pragma("GCC unroll 4") for (int v = 0; v < UK_TNV; v++) av[v] =                      \
            UK_LOADU((ap_) + v * UK_VL);                                                      \
        _Pragma("GCC unroll 16") for (int j = 0; j < UK_TCOLS; j++) {                         \
            if (j >= NCOLS) break;                                                            \
            _Pragma("GCC unroll 4") for (int v = 0; v < UK_TNV; v++) acc[j][v] =              \
                UK_FMADD(av[v], UK_SET1(v ? (b1_)[j] : (b_)[j]), acc[j][v]);                  \
        }                                                                                     \
    } while (0)
#else
#define UK_TKR_STEP(ap_, b_, b1_)                                                             \
    do {                                                                                      \
        UK_V av[UK_TNV];                                                                      \
        _Pragma("GCC unroll 4") for (int v = 0; v < UK_TNV; v++) av[v] =                      \
            UK_LOADU((ap_) + v * UK_VL);                                                      \
        _Pragma("GCC unroll 16") for (int j = 0; j < UK_TCOLS; j++) {                         \
            if (j >= NCOLS) break;                                                            \
            const UK_V bj = UK_SET1((b_)[j]);                                                 \
            _Pragma("GCC unroll 4") for (int v = 0; v < UK_TNV; v++) acc[j][v] =              \
                UK_FMADD(av[v], bj, acc[j][v]);                                               \
        }                                                                                     \
    } while (0)
#endif

/* Streaming packing (STREAM = 1, a full panel of UK_TW rows of op(A) with rows contiguous over
 * k, kc >= UK_TRB): instead of packing the whole panel before the k loop, the loop runs over
 * blocks of UK_TRB k's and, while it computes block kb from one half of tbuf, transposes the
 * next block (block kb + 1 of this panel, or block 0 of the next panel `anext`) into the other
 * half. The shuffles then issue between the FMAs (on Zen 4 they can use a pipe the FMAs
 * leave free) instead of in a separate pass; the k order and the FMAs are those of the packed
 * loop, so the bits are the same. A last partial block is transposed overlapping the one
 * before (from kc - UK_TRB). `pf`: bytes [pf, pf + pf_bytes) prefetched, spread over the
 * blocks (op(A) streaming from memory: the panel after next). */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_tkr_tr_block)(
    const UK_T *restrict arow, const int64_t rs_a, const int64_t kc, const int64_t kb,
    UK_T *restrict dst) {
    int64_t k0 = kb * UK_TRB;
    if (k0 + UK_TRB > kc) k0 = kc - UK_TRB;
#pragma GCC unroll 4
    for (int r = 0; r < UK_TW; r += UK_TRB)
        UK_TRANSPOSE(arow + r * rs_a + k0, rs_a, dst + r, UK_TW);
}

static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_tkr_body)(
    const int NCOLS, const int STREAM, const int64_t m, const int64_t kc,
    const UK_T *restrict ap, const int64_t lap, const UK_T *restrict b, const int64_t rs_b,
    UK_T *restrict c, const int64_t ldc, const UK_EPI *e, const UK_T *restrict bias,
    const UK_T *restrict anext, const int64_t rs_a, UK_T *restrict tbuf,
    const char *restrict pf, const int64_t pf_bytes) {
    const int NCP = UK_TCP(NCOLS);
    UK_V acc[UK_TCOLS][UK_TNV];
#pragma GCC unroll 16
    for (int j = 0; j < UK_TCOLS; j++) {
        if (j >= NCOLS) break;
#pragma GCC unroll 4
        for (int v = 0; v < UK_TNV; v++) acc[j][v] = UK_ZERO();
    }
    const UK_T *b1 = b; /* = b, opaque to GCC (see UK_TKR_STEP) */
    __asm__("" : "+r"(b1));
    if (!STREAM) {
        for (int64_t k = 0; k < kc; k++) {
            UK_TKR_STEP(ap, b, b1);
            ap += lap;
            b += rs_b;
            b1 += rs_b;
        }
    } else {
#ifdef UK_TRB
        /* ap: this panel's rows (rs_a); block 0 is in half `lap` (0/1) of tbuf already */
        const int64_t nb = (kc + UK_TRB - 1) / UK_TRB;
        const int64_t pf_step = (pf_bytes / nb + 63) & ~(int64_t)63;
        for (int64_t kb = 0; kb < nb; kb++) {
            UK_T *cur = tbuf + ((kb + lap) & 1) * (UK_TRB * UK_TW);
            UK_T *nxt = tbuf + ((kb + 1 + lap) & 1) * (UK_TRB * UK_TW);
            if (kb + 1 < nb)
                UK_FN(gemm_tkr_tr_block)(ap, rs_a, kc, kb + 1, nxt);
            else if (anext)
                UK_FN(gemm_tkr_tr_block)(anext, rs_a, kc, 0, nxt);
            if (pf) {
                const char *q = pf + kb * pf_step, *qe = pf + pf_bytes;
                for (int64_t o = 0; o < pf_step && q + o < qe; o += 64)
                    __builtin_prefetch(q + o, 0, 3);
            }
            /* the last block may be partial: transposed from kc - TRB, its rows start at
             * kb*TRB - (kc - TRB). For many columns the loop is not unrolled, so each b[j]
             * is a constant offset from b (unrolled, GCC kept the offsets of b's rows on
             * the stack: 64x128 @ 128x10 2.33 -> 2.29 us); for few, unrolled (784x64 @ 64x2
             * 6.2 -> 5.5 us) */
            const int64_t kr = kc - kb * UK_TRB < UK_TRB ? kc - kb * UK_TRB : UK_TRB;
            const UK_T *q = cur + (UK_TRB - kr) * UK_TW;
            if (NCOLS <= 4 && kr == UK_TRB) {
#pragma GCC unroll 8
                for (int kk = 0; kk < UK_TRB; kk++)
                    UK_TKR_STEP(q + kk * UK_TW, b + kk * rs_b, b1 + kk * rs_b);
                b += UK_TRB * rs_b;
                b1 += UK_TRB * rs_b;
            } else {
#pragma GCC unroll 1
                for (int64_t kk = 0; kk < kr; kk++) {
                    UK_TKR_STEP(q, b, b1);
                    q += UK_TW;
                    b += rs_b;
                    b1 += rs_b;
                }
            }
        }
#endif
    }
    /* tile[j*TW + i]: column j of the C tile; rbuf[i*NCP + j]: its rows */
    UK_T tile[UK_TCP(UK_TCOLS) * UK_TW] __attribute__((aligned(64)));
    UK_T rbuf[UK_TW * UK_TCP(UK_TCOLS)] __attribute__((aligned(64)));
    const int in_place = m == UK_TW && NCOLS == NCP;
    const int read_c = !e->first || e->beta != 0;
    const int scale = e->alpha != (UK_T)1;
    const int relu = e->last && e->act == NNCORE_GEMM_ACT_RELU;
    const UK_V va = UK_SET1(e->alpha), vb = UK_SET1(e->beta);
    if (read_c) {
        if (in_place) {
            UK_FN(gemm_tkr_tr_in)(NCP, c, ldc, tile);
        } else {
            memset(rbuf, 0, sizeof(rbuf));
            for (int64_t i = 0; i < m; i++)
                memcpy(rbuf + i * NCP, c + i * ldc, NCOLS * sizeof(UK_T));
            UK_FN(gemm_tkr_tr_in)(NCP, rbuf, NCP, tile);
        }
    }
    if (read_c)
        UK_TKR_EPI(1);
    else
        UK_TKR_EPI(0);
    /* columns NCOLS..NCP of the tile are padding: transposed along, never copied to C */
#pragma GCC unroll 16
    for (int j = 0; j < UK_TCP(UK_TCOLS); j++) {
        if (j >= NCP) break;
        if (j < NCOLS) continue;
#pragma GCC unroll 4
        for (int v = 0; v < UK_TNV; v++) UK_STOREU(tile + j * UK_TW + v * UK_VL, UK_ZERO());
    }
    if (in_place) {
        UK_FN(gemm_tkr_tr_out)(NCP, tile, c, ldc);
    } else {
        UK_FN(gemm_tkr_tr_out)(NCP, tile, rbuf, NCP);
        for (int64_t i = 0; i < m; i++) memcpy(c + i * ldc, rbuf + i * NCP, NCOLS * sizeof(UK_T));
    }
    if (e->last && e->act >= NNCORE_GEMM_ACT_GELU) UK_ACT_ROWS(c, ldc, m, NCOLS, e->act);
}

/* UK_TKR_CASES(C): C(n) for every column count 1..UK_TCOLS (4, 6, 8, 12 or 16) the
 * column-vector kernels are instantiated for, one list for both switches below */
#define UK_TKR_C4(C) C(1) C(2) C(3) C(4)
#if UK_TCOLS >= 6
#define UK_TKR_C6(C) UK_TKR_C4(C) C(5) C(6)
#else
#define UK_TKR_C6(C) UK_TKR_C4(C)
#endif
#if UK_TCOLS >= 8
#define UK_TKR_C8(C) UK_TKR_C6(C) C(7) C(8)
#else
#define UK_TKR_C8(C) UK_TKR_C6(C)
#endif
#if UK_TCOLS >= 12
#define UK_TKR_C12(C) UK_TKR_C8(C) C(9) C(10) C(11) C(12)
#else
#define UK_TKR_C12(C) UK_TKR_C8(C)
#endif
#if UK_TCOLS >= 16
#define UK_TKR_CASES(C) UK_TKR_C12(C) C(13) C(14) C(15) C(16)
#else
#define UK_TKR_CASES(C) UK_TKR_C12(C)
#endif

#define UK_TKR_CASE(nc)                                                                       \
    case nc:                                                                                  \
        UK_FN(gemm_tkr_body)(nc, 0, m, kc, ap, lap, b, rs_b, c, ldc, e, bias, 0, 0, 0, 0, 0); \
        break;

/* One panel of m <= UK_TW rows and n <= UK_TCOLS columns (abuf: UK_TW * kc elements). */
static UK_ATTR void UK_FN(gemm_tkr)(int64_t m, int64_t n, int64_t kc, const UK_T *restrict a,
                                    int64_t rs_a, int64_t cs_a, const UK_T *restrict b,
                                    int64_t rs_b, UK_T *restrict c, int64_t ldc,
                                    const UK_EPI *e, const UK_T *restrict bias,
                                    UK_T *restrict abuf) {
    const UK_T *ap = abuf;
    int64_t lap = UK_TW;
    if (rs_a == 1 && m == UK_TW) {
        ap = a; /* op(A) = A.T: row k of the panel is contiguous already */
        lap = cs_a;
    } else if (cs_a == 1) {
        UK_FN(gemm_pack_t)(UK_TW, m, kc, a, rs_a, abuf);
    } else if (rs_a == 1) {
        UK_FN(gemm_pack_copy)(UK_TW, m, kc, a, cs_a, abuf);
    } else {
        for (int64_t k = 0; k < kc; k++)
            for (int64_t i = 0; i < UK_TW; i++)
                abuf[k * UK_TW + i] = i < m ? a[i * rs_a + k * cs_a] : (UK_T)0;
    }
    switch (n) {
        UK_TKR_CASES(UK_TKR_CASE)
    default: break;
    }
}
#undef UK_TKR_CASE

#ifdef UK_TRB
#define UK_TKR_SCASE(nc)                                                                      \
    case nc:                                                                                  \
        for (int64_t p = 0, par = 0; p < np; p++, par = (par + nb) & 1) {                    \
            const UK_T *ap = a + p * UK_TW * rs_a;                                            \
            const UK_T *pf = prefetch && p + 2 < np_all ? ap + 2 * UK_TW * rs_a : 0;          \
            UK_FN(gemm_tkr_body)(nc, 1, UK_TW, kc, ap, par, b, rs_b, c + p * UK_TW * ldc, ldc, \
                                 e, bias, p + 1 < np ? ap + UK_TW * rs_a : 0, rs_a, tbuf,     \
                                 (const char *)pf, pf_bytes);                                 \
        }                                                                                     \
        break;

/* np consecutive full panels (UK_TW rows each) of an op(A) with rows contiguous over k (row
 * stride rs_a), kc >= UK_TRB, n <= UK_TCOLS columns, with streaming packing (see
 * gemm_tkr_body; tbuf: 2 * UK_TRB * UK_TW elements). prefetch: op(A) streams from memory;
 * each panel prefetches the rows of the panel two ahead (np_all: panels in this part, a
 * partial one after the np full ones included; a partial panel's prefetch may reach a few
 * lines past its rows, which is harmless: prefetches never fault). Returns 0 (and
 * does nothing) when kc < UK_TRB. */
static UK_ATTR int UK_FN(gemm_tkr_stream)(int64_t np, int64_t np_all, int64_t n, int64_t kc,
                                           const UK_T *restrict a, int64_t rs_a,
                                           const UK_T *restrict b, int64_t rs_b,
                                           UK_T *restrict c, int64_t ldc, const UK_EPI *e,
                                           const UK_T *restrict bias, UK_T *restrict tbuf,
                                           int prefetch) {
    if (np <= 0 || kc < UK_TRB || n < 1 || n > UK_TCOLS) return 0;
    const int64_t pf_bytes = (int64_t)sizeof(UK_T) * ((UK_TW - 1) * rs_a + kc);
    const int64_t nb = (kc + UK_TRB - 1) / UK_TRB;
    UK_FN(gemm_tkr_tr_block)(a, rs_a, kc, 0, tbuf);
    switch (n) {
        UK_TKR_CASES(UK_TKR_SCASE)
    default: break;
    }
    return 1;
}
#undef UK_TKR_SCASE
#endif
#undef UK_TKR_CASES
#undef UK_TKR_C12
#undef UK_TKR_C8
#undef UK_TKR_C6
#undef UK_TKR_C4
#undef UK_TKR_STEP
#undef UK_TKR_EPI
#undef UK_TCP
#undef UK_TW
#endif

#ifdef UK_DOT
/* Dot-product micro-kernel for op(A) rows and op(B) columns both contiguous over k (A @ B.T
 * with row-major A and B): a tile of RM x RN <= 4 x 4 dot products, vectorised over k with a
 * masked last chunk, reduced by UK_REDUCE (a fixed shuffle tree) and finished by a scalar
 * epilogue. No packing at all: for few rows or columns and a long K (weight gradients such
 * as dout @ col.T) packing and padding cost more than the products. */
static inline __attribute__((always_inline)) UK_ATTR void UK_FN(gemm_dot_body)(
    const int RM, const int RN, const int64_t kc, const UK_T *restrict a, const int64_t lda,
    const UK_T *restrict b, const int64_t ldb, UK_T *restrict c, const int64_t ldc,
    const UK_EPI *e, const UK_T *restrict bias) {
    UK_V acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        if (i >= RM) break;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            if (j >= RN) break;
            acc[i][j] = UK_ZERO();
        }
    }
    int64_t k = 0;
    for (; k + UK_VL <= kc; k += UK_VL) {
        UK_V av[4], bv[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            if (i >= RM) break;
            av[i] = UK_LOADU(a + i * lda + k);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            if (j >= RN) break;
            bv[j] = UK_LOADU(b + j * ldb + k);
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            if (i >= RM) break;
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                if (j >= RN) break;
                acc[i][j] = UK_FMADD(av[i], bv[j], acc[i][j]);
            }
        }
    }
    if (k < kc) {
        const UK_MASK_T mk = UK_MASK(kc - k);
        UK_V av[4], bv[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            if (i >= RM) break;
            av[i] = UK_MASK_LOADZ(mk, a + i * lda + k);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            if (j >= RN) break;
            bv[j] = UK_MASK_LOADZ(mk, b + j * ldb + k);
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            if (i >= RM) break;
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                if (j >= RN) break;
                acc[i][j] = UK_FMADD(av[i], bv[j], acc[i][j]);
            }
        }
    }
    const UK_T alpha = e->alpha, beta = e->beta;
    const int relu = e->last && e->act == NNCORE_GEMM_ACT_RELU;
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        if (i >= RM) break;
        UK_T *ci = c + i * ldc;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            if (j >= RN) break;
            UK_T r = UK_REDUCE(acc[i][j]);
            if (e->first) {
                if (alpha != (UK_T)1) r = r * alpha;
                if (beta != 0) r = r + beta * ci[j];
                if (bias) r = r + bias[j];
            } else {
                r = alpha != (UK_T)1 ? r * alpha + ci[j] : ci[j] + r;
            }
            if (relu) r = r <= 0 ? (UK_T)0 : r;
            ci[j] = r;
        }
    }
    if (e->last && e->act >= NNCORE_GEMM_ACT_GELU) UK_ACT_ROWS(c, ldc, RM, RN, e->act);
}

#define UK_DOT_CASE(rm, rn)                                                                   \
    case (rm) * 4 + (rn) - 5:                                                                 \
        UK_FN(gemm_dot_body)(rm, rn, kc, a, lda, b, ldb, c, ldc, e, bias);                    \
        break;

/* One tile of m x n <= 4 x 4 dot products (see gemm_dot_body). */
static UK_ATTR void UK_FN(gemm_dot)(int64_t m, int64_t n, int64_t kc, const UK_T *restrict a,
                                    int64_t lda, const UK_T *restrict b, int64_t ldb,
                                    UK_T *restrict c, int64_t ldc, const UK_EPI *e,
                                    const UK_T *restrict bias) {
    switch ((int)(m * 4 + n - 5)) {
        UK_DOT_CASE(1, 1) UK_DOT_CASE(1, 2) UK_DOT_CASE(1, 3) UK_DOT_CASE(1, 4)
        UK_DOT_CASE(2, 1) UK_DOT_CASE(2, 2) UK_DOT_CASE(2, 3) UK_DOT_CASE(2, 4)
        UK_DOT_CASE(3, 1) UK_DOT_CASE(3, 2) UK_DOT_CASE(3, 3) UK_DOT_CASE(3, 4)
        UK_DOT_CASE(4, 1) UK_DOT_CASE(4, 2) UK_DOT_CASE(4, 3) UK_DOT_CASE(4, 4)
    default: break;
    }
}
#undef UK_DOT_CASE
#endif

#define UK_ROWS(mm)                                                                           \
    do {                                                                                      \
        UK_FN(gemm_ukr_body)(mm, mm, n, kc, a, rs_a, cs_a, b, rs_b, c, ldc, e, bias);         \
        a += (mm) * rs_a;                                                                     \
        c += (mm) * ldc;                                                                      \
        m -= (mm);                                                                            \
    } while (0)

/* Strided-A micro-kernel (no packing): A read in place with any (rs_a, cs_a), B rows with
 * stride rs_b. A partial tile of m < MR rows runs as instances for 8, 6, 4, 2 and 1 rows (no
 * wasted work, few instances: each instance is a fully unrolled copy of the kernel). */
static UK_ATTR void UK_FN(gemm_ukr_strided)(int64_t m, int64_t n, int64_t kc,
                                            const UK_T *restrict a, int64_t rs_a, int64_t cs_a,
                                            const UK_T *restrict b, int64_t rs_b,
                                            UK_T *restrict c, int64_t ldc, const UK_EPI *e,
                                            const UK_T *restrict bias) {
    if (m >= UK_MR) {
        UK_ROWS(UK_MR);
        return;
    }
#if UK_MR > 8
    if (m >= 8) UK_ROWS(8);
#endif
#if UK_MR > 6
    if (m >= 6) UK_ROWS(6); /* one pass for 6 rows (conv output channels), not 4 + 2 */
#endif
#if UK_MR > 4
    if (m >= 4) UK_ROWS(4);
#endif
#if UK_MR > 2
    if (m >= 2) UK_ROWS(2);
#endif
    if (m >= 1) UK_ROWS(1);
}
#undef UK_ROWS
#undef UK_EPI_VEC
