// conv.cu: 2-D convolution (cross-correlation, as PyTorch), forward and backward, as implicit
// GEMMs on the tiled kernel of gemm_tile.cuh (the semantics of nncore/_kernels/conv.pyx).
//
// Shapes (NCHW): inp (N, C, H, W), weight (OC, C/G, KH, KW), bias (OC,), out (N, OC, OH, OW).
// G groups; Cg = C/G and OCg = OC/G channels per group; KK = KH*KW; CKK = Cg*KK; OHW = OH*OW.
// Stride sh,sw; zero padding top pt / left pl (bottom/right padding only shows in OH, OW);
// dilation dh,dw. OUT buffers are overwritten (=).
//
// The im2col matrix col (CKK, N*OHW) is never stored: the loaders compute its elements.
// One grid z-slice per group:
//   forward  out_g (OCg, N*OHW)  = W_g (OCg, CKK) @ col_g                 (+ bias per row)
//   dinp     dinp_g (Cg, N*H*W)  = W_g^T-ish (Cg, OCg*KK) @ dout gathered back to each input
//            pixel (the output positions a pixel feeds: a GEMM, no col2im scatter, no atomics)
//   dweight  dW_g (OCg, CKK)     = dout_g (OCg, N*OHW) @ col_g^T, with the long K = N*OHW
//            split into S slices (own partial buffers, summed in slice order afterwards)
//   dbias    per channel: partial sums over groups of images, then the partials in order
//            (double, fixed trees).
// Every output element is computed in a fixed order: results are the same on every run.
#include "gemm_tile.cuh"

namespace {

// Division by a divisor fixed for a launch. The loaders below turn flat GEMM indices back into
// (image, channel, row, column) several times per element loaded, and 64-bit division by a
// runtime value is a long instruction sequence on the GPU: it dominated these kernels.
// Div32 divides with a multiply-high and a shift instead (Granlund & Montgomery, "Division by
// invariant integers using multiplication"), exact for 0 <= n < 2^31, 1 <= d < 2^31; conv
// uses it when every index it divides fits (fits_div32), else Div64's plain division.
struct Div64 {
    int64_t d;
    static Div64 make(int64_t d) { return Div64{d}; }
    __device__ __forceinline__ int64_t div(int64_t n) const { return n / d; }
};
struct Div32 {
    uint32_t mult, shift;
    static Div32 make(int64_t d) {   // shift = ceil(log2 d); mult = 2^32 (2^shift - d) / d + 1
        uint32_t s = 0;
        while ((1LL << s) < d) s++;
        uint64_t m = ((1ULL << 32) * (uint64_t)((1LL << s) - d)) / (uint64_t)d + 1;
        return Div32{(uint32_t)m, s};
    }
    __device__ __forceinline__ int64_t div(int64_t n) const {
        uint32_t x = (uint32_t)n;
        return (int64_t)((__umulhi(x, mult) + x) >> shift);
    }
};

template <typename D>
struct Geo {
    int64_t N, C, H, W, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G;
    int64_t Cg, OCg, KK, CKK, OHW, HW;
    D by_OHW, by_OW, by_KK, by_KW, by_HW, by_W, by_sh, by_sw;
};

template <typename D>
Geo<D> make_geo(const nncore_cuda_conv_geom *g) {
    Geo<D> q{};
    q.N = g->N, q.C = g->C, q.H = g->H, q.W = g->W, q.OC = g->OC, q.OH = g->OH, q.OW = g->OW;
    q.KH = g->KH, q.KW = g->KW, q.sh = g->sh, q.sw = g->sw, q.pt = g->pt, q.pl = g->pl;
    q.dh = g->dh, q.dw = g->dw, q.G = g->G;
    q.Cg = q.C / q.G;
    q.OCg = q.OC / q.G;
    q.KK = q.KH * q.KW;
    q.CKK = q.Cg * q.KK;
    q.OHW = q.OH * q.OW;
    q.HW = q.H * q.W;
    auto nz = [](int64_t v) { return v > 0 ? v : 1; };   // empty shapes divide nothing
    q.by_OHW = D::make(nz(q.OHW)), q.by_OW = D::make(nz(q.OW)), q.by_KK = D::make(q.KK);
    q.by_KW = D::make(q.KW), q.by_HW = D::make(nz(q.HW)), q.by_W = D::make(nz(q.W));
    q.by_sh = D::make(q.sh), q.by_sw = D::make(q.sw);
    return q;
}

// Every index the loaders divide: flat output/input positions, GEMM k, padded rows/columns.
bool fits_div32(const nncore_cuda_conv_geom *g) {
    const int64_t lim = 1LL << 30;
    const int64_t KK = g->KH * g->KW;
    return g->N * g->OH * g->OW < lim && g->N * g->H * g->W < lim && g->C * KK < lim &&
           g->OC * KK < lim && g->H + g->pt + g->sh < lim && g->W + g->pl + g->sw < lim &&
           g->OC < lim && g->C < lim;
}

// col_g(k, n): input pixel of channel k / KK, kernel tap k % KK, for output column n (b, oh, ow)
template <typename T, typename Q>
__device__ __forceinline__ T im2col(const T *inp, const Q &q, int64_t g, int64_t k, int64_t n) {
    int64_t b = q.by_OHW.div(n), p = n - b * q.OHW, oh = q.by_OW.div(p), ow = p - oh * q.OW;
    int64_t c = q.by_KK.div(k), r = k - c * q.KK, kh = q.by_KW.div(r), kw = r - kh * q.KW;
    int64_t ih = oh * q.sh - q.pt + kh * q.dh, iw = ow * q.sw - q.pl + kw * q.dw;
    if (ih < 0 || ih >= q.H || iw < 0 || iw >= q.W) return T(0);
    return inp[((b * q.C + g * q.Cg + c) * q.H + ih) * q.W + iw];
}

// ------------------------------------------------------------------------------ forward
template <typename T, typename Q>
struct FwdWeight {                      // A(m, k) = W[g*OCg + m, k]
    static constexpr bool k_fastest = true;
    const T *w;
    Q q;
    __device__ T operator()(int64_t g, int64_t m, int64_t k) const {
        return w[(g * q.OCg + m) * q.CKK + k];
    }
};
template <typename T, typename Q>
struct FwdCol {                         // B(k, n) = col_g(k, n)
    static constexpr bool k_fastest = false;
    const T *inp;
    Q q;
    __device__ T operator()(int64_t g, int64_t k, int64_t n) const {
        return im2col(inp, q, g, k, n);
    }
};
template <typename T, typename Q>
struct FwdStore {
    T *out;
    const T *bias;
    Q q;
    __device__ void operator()(int64_t g, int64_t m, int64_t n, T acc) const {
        int64_t b = q.by_OHW.div(n), p = n - b * q.OHW, oc = g * q.OCg + m;
        out[(b * q.OC + oc) * q.OHW + p] = bias ? acc + bias[oc] : acc;
    }
};

// --------------------------------------------------------------------------------- dinp
template <typename T, typename Q>
struct DinpWeight {                     // A(c, k) = W[g*OCg + k / KK, c, k % KK]
    static constexpr bool k_fastest = true;
    const T *w;
    Q q;
    __device__ T operator()(int64_t g, int64_t c, int64_t k) const {
        int64_t oc = q.by_KK.div(k), r = k - oc * q.KK;
        return w[((g * q.OCg + oc) * q.Cg + c) * q.KK + r];
    }
};
template <typename T, typename Q>
struct DinpDout {                       // B(k, n): dout at the output that tap k of pixel n feeds
    static constexpr bool k_fastest = false;
    const T *dout;
    Q q;
    __device__ T operator()(int64_t g, int64_t k, int64_t n) const {
        int64_t oc = q.by_KK.div(k), r = k - oc * q.KK, kh = q.by_KW.div(r), kw = r - kh * q.KW;
        int64_t b = q.by_HW.div(n), s = n - b * q.HW, ih = q.by_W.div(s), iw = s - ih * q.W;
        int64_t th = ih + q.pt - kh * q.dh, tw = iw + q.pl - kw * q.dw;
        if (th < 0 || tw < 0) return T(0);
        int64_t oh = q.by_sh.div(th), ow = q.by_sw.div(tw);
        if (oh * q.sh != th || ow * q.sw != tw || oh >= q.OH || ow >= q.OW) return T(0);
        return dout[((b * q.OC + g * q.OCg + oc) * q.OH + oh) * q.OW + ow];
    }
};
template <typename T, typename Q>
struct DinpStore {
    T *dinp;
    Q q;
    __device__ void operator()(int64_t g, int64_t c, int64_t n, T acc) const {
        int64_t b = q.by_HW.div(n), s = n - b * q.HW;
        dinp[(b * q.C + g * q.Cg + c) * q.HW + s] = acc;
    }
};

// ------------------------------------------------------------------------------ dweight
// z = g * S + s; slice s covers the columns kg in [s * Ks, (s + 1) * Ks) of N*OHW
template <typename Q>
struct Slices {
    int64_t S, Ks, Ktot;
    decltype(Q::by_OHW) by_S;
};
template <typename T, typename Q>
struct DwDout {                         // A(m, k) = dout_g(m, kg)
    static constexpr bool k_fastest = true;
    const T *dout;
    Q q;
    Slices<Q> sl;
    __device__ T operator()(int64_t z, int64_t m, int64_t k) const {
        int64_t g = sl.by_S.div(z), kg = (z - g * sl.S) * sl.Ks + k;
        if (kg >= sl.Ktot) return T(0);
        int64_t b = q.by_OHW.div(kg), p = kg - b * q.OHW;
        return dout[(b * q.OC + g * q.OCg + m) * q.OHW + p];
    }
};
template <typename T, typename Q>
struct DwCol {                          // B(k, n) = col_g(n, kg)
    static constexpr bool k_fastest = true;
    const T *inp;
    Q q;
    Slices<Q> sl;
    __device__ T operator()(int64_t z, int64_t k, int64_t n) const {
        int64_t g = sl.by_S.div(z), kg = (z - g * sl.S) * sl.Ks + k;
        if (kg >= sl.Ktot) return T(0);
        return im2col(inp, q, g, n, kg);
    }
};
template <typename T, typename Q>
struct DwStore {                        // into dweight (S == 1) or the slice's partial buffer
    T *dst;
    Q q;
    Slices<Q> sl;
    __device__ void operator()(int64_t z, int64_t m, int64_t n, T acc) const {
        int64_t g = sl.by_S.div(z), s = z - g * sl.S;
        dst[(s * q.OC + g * q.OCg + m) * q.CKK + n] = acc;
    }
};

template <typename T>
__global__ void sum_slices_kernel(T *dweight, const T *partial, int64_t S, int64_t len) {
    NNC_GRID_STRIDE(j, len) {
        T s = T(0);
        for (int64_t k = 0; k < S; k++) s += partial[k * len + j];
        dweight[j] = s;
    }
}

// dbias[oc] = sum of dout[b, oc, :] over b, in two deterministic passes: block (oc, j) sums
// the images b = j, j + P, ... (a block-wide tree over each image's pixels, no division),
// then one thread per channel adds the P partials in order.
constexpr int64_t DBIAS_PARTS = 32;

template <typename T>
__global__ void dbias_partial_kernel(double *partial, const T *dout, int64_t N, int64_t OC,
                                     int64_t OHW, int64_t P) {
    __shared__ double red[NNC_THREADS];
    const int64_t oc = blockIdx.x, j = blockIdx.y;
    double s = 0;
    for (int64_t b = j; b < N; b += P) {
        const T *row = dout + (b * OC + oc) * OHW;
        for (int64_t p = threadIdx.x; p < OHW; p += blockDim.x) s += (double)row[p];
    }
    s = nnc_block_sum(s, red);
    if (threadIdx.x == 0) partial[oc * P + j] = s;
}

template <typename T>
__global__ void dbias_finish_kernel(T *dbias, const double *partial, int64_t OC, int64_t P) {
    NNC_GRID_STRIDE(oc, OC) {
        double s = 0;
        for (int64_t j = 0; j < P; j++) s += partial[oc * P + j];
        dbias[oc] = (T)s;
    }
}

template <typename T>
int conv_dbias(T *dbias, const T *dout, int64_t N, int64_t OC, int64_t OHW) {
    const int64_t P = N < DBIAS_PARTS ? (N > 0 ? N : 1) : DBIAS_PARTS;
    if (OC > 65535 * 8)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "conv2d_backward: too many channels");
    double *partial = nullptr;
    NNC_TRY(nncore_cuda_malloc((void **)&partial, (size_t)(OC * P) * sizeof(double)));
    dbias_partial_kernel<T><<<dim3((unsigned)OC, (unsigned)P), NNC_THREADS>>>(
        partial, dout, N, OC, OHW, P);
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) {
        dbias_finish_kernel<T><<<nnc_blocks(OC), NNC_THREADS>>>(dbias, partial, OC, P);
        err = cudaGetLastError();
    }
    nncore_cuda_free(partial);
    return err == cudaSuccess ? NNCORE_CUDA_OK
                              : nnc_cuda_failed(err, "conv2d dbias", __FILE__, __LINE__);
}

int check_geo(const nncore_cuda_conv_geom *g, const char *who) {
    if (g->G <= 0 || g->C % g->G != 0 || g->OC % g->G != 0 || g->sh <= 0 || g->sw <= 0 ||
        g->dh <= 0 || g->dw <= 0 || g->N < 0 || g->KH <= 0 || g->KW <= 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: invalid geometry", who);
    return NNCORE_CUDA_OK;
}

// Call body(q) with the geometry on the fast divider when every index fits, else on Div64.
template <typename Body>
int with_geo(const nncore_cuda_conv_geom *g, Body body) {
    if (fits_div32(g)) return body(make_geo<Div32>(g));
    return body(make_geo<Div64>(g));
}

// Split of the dweight K dimension: enough slices for ~256 blocks, each >= 256 columns long.
// Depends on the shapes only (never on the device), so results are the same on every GPU.
template <typename Q>
int64_t dweight_slices(const Q &q) {
    int64_t tiles = ((q.OCg + nnc::BM - 1) / nnc::BM) * ((q.CKK + nnc::BN - 1) / nnc::BN) * q.G;
    int64_t Ktot = q.N * q.OHW;
    int64_t S = (256 + tiles - 1) / tiles, by_len = (Ktot + 255) / 256;
    if (S > by_len) S = by_len;
    if (S > 128) S = 128;
    if (S * q.G > 65535) S = 65535 / q.G;
    return S < 1 ? 1 : S;
}

template <typename T, typename Q>
int conv_forward(T *out, const T *inp, const T *w, const T *bias, const Q &q) {
    return nnc::tiled_gemm<T>(q.OCg, q.N * q.OHW, q.CKK, q.G, FwdWeight<T, Q>{w, q},
                              FwdCol<T, Q>{inp, q}, FwdStore<T, Q>{out, bias, q},
                              "conv2d_forward");
}

template <typename T, typename Q>
int conv_backward(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp, const T *w,
                  const Q &q) {
    if (dinp)
        NNC_TRY(nnc::tiled_gemm<T>(q.Cg, q.N * q.HW, q.OCg * q.KK, q.G,
                                   DinpWeight<T, Q>{w, q}, DinpDout<T, Q>{dout, q},
                                   DinpStore<T, Q>{dinp, q}, "conv2d_backward (dinp)"));
    if (dbias && q.OC > 0) NNC_TRY(conv_dbias<T>(dbias, dout, q.N, q.OC, q.OHW));
    if (!dweight) return NNCORE_CUDA_OK;
    const int64_t S = dweight_slices(q), Ktot = q.N * q.OHW, Ks = (Ktot + S - 1) / S;
    using DivS = decltype(Q::by_OHW);
    const Slices<Q> sl{S, Ks, Ktot, DivS::make(S)};
    T *dst = dweight;
    if (S > 1)
        NNC_TRY(nncore_cuda_malloc((void **)&dst, (size_t)(S * q.OC * q.CKK) * sizeof(T)));
    int rc = nnc::tiled_gemm<T>(q.OCg, q.CKK, Ks, q.G * S, DwDout<T, Q>{dout, q, sl},
                                DwCol<T, Q>{inp, q, sl}, DwStore<T, Q>{dst, q, sl},
                                "conv2d_backward (dweight)");
    if (rc == NNCORE_CUDA_OK && S > 1) {
        int64_t len = q.OC * q.CKK;
        sum_slices_kernel<T><<<nnc_blocks(len), NNC_THREADS>>>(dweight, dst, S, len);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) rc = nnc_cuda_failed(err, "sum_slices", __FILE__, __LINE__);
    }
    if (S > 1) nncore_cuda_free(dst);
    return rc;
}

}  // namespace

extern "C" int nncore_cuda_conv2d_forward(int dtype, void *out, const void *inp,
                                          const void *weight, const void *bias,
                                          const nncore_cuda_conv_geom *g) {
    NNC_TRY(check_geo(g, "conv2d_forward"));
    return NNC_DISPATCH(dtype, "conv2d_forward", [&](auto tag) {
        using T = decltype(tag);
        return with_geo(g, [&](const auto &q) {
            return conv_forward<T>((T *)out, (const T *)inp, (const T *)weight,
                                   (const T *)bias, q);
        });
    });
}

extern "C" int nncore_cuda_conv2d_backward(int dtype, void *dinp, void *dweight, void *dbias,
                                           const void *dout, const void *inp,
                                           const void *weight, const nncore_cuda_conv_geom *g) {
    NNC_TRY(check_geo(g, "conv2d_backward"));
    return NNC_DISPATCH(dtype, "conv2d_backward", [&](auto tag) {
        using T = decltype(tag);
        return with_geo(g, [&](const auto &q) {
            return conv_backward<T>((T *)dinp, (T *)dweight, (T *)dbias, (const T *)dout,
                                    (const T *)inp, (const T *)weight, q);
        });
    });
}
