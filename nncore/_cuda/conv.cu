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
//   dbias    one block per output channel, sums in double in a fixed tree order.
// Every output element is computed in a fixed order: results are the same on every run.
#include "gemm_tile.cuh"

namespace {

struct Geo {
    int64_t N, C, H, W, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G;
    int64_t Cg, OCg, KK, CKK, OHW;
};

Geo make_geo(const nncore_cuda_conv_geom *g) {
    Geo q{g->N, g->C, g->H, g->W, g->OC, g->OH, g->OW, g->KH, g->KW, g->sh, g->sw, g->pt,
          g->pl, g->dh, g->dw, g->G, 0, 0, 0, 0, 0};
    q.Cg = q.C / q.G;
    q.OCg = q.OC / q.G;
    q.KK = q.KH * q.KW;
    q.CKK = q.Cg * q.KK;
    q.OHW = q.OH * q.OW;
    return q;
}

// col_g(k, n): input pixel of channel k / KK, kernel tap k % KK, for output column n (b, oh, ow)
template <typename T>
__device__ __forceinline__ T im2col(const T *inp, const Geo &q, int64_t g, int64_t k,
                                    int64_t n) {
    int64_t b = n / q.OHW, p = n % q.OHW, oh = p / q.OW, ow = p % q.OW;
    int64_t c = k / q.KK, r = k % q.KK, kh = r / q.KW, kw = r % q.KW;
    int64_t ih = oh * q.sh - q.pt + kh * q.dh, iw = ow * q.sw - q.pl + kw * q.dw;
    if (ih < 0 || ih >= q.H || iw < 0 || iw >= q.W) return T(0);
    return inp[((b * q.C + g * q.Cg + c) * q.H + ih) * q.W + iw];
}

// ------------------------------------------------------------------------------ forward
template <typename T>
struct FwdWeight {                      // A(m, k) = W[g*OCg + m, k]
    static constexpr bool k_fastest = true;
    const T *w;
    Geo q;
    __device__ T operator()(int64_t g, int64_t m, int64_t k) const {
        return w[(g * q.OCg + m) * q.CKK + k];
    }
};
template <typename T>
struct FwdCol {                         // B(k, n) = col_g(k, n)
    static constexpr bool k_fastest = false;
    const T *inp;
    Geo q;
    __device__ T operator()(int64_t g, int64_t k, int64_t n) const {
        return im2col(inp, q, g, k, n);
    }
};
template <typename T>
struct FwdStore {
    T *out;
    const T *bias;
    Geo q;
    __device__ void operator()(int64_t g, int64_t m, int64_t n, T acc) const {
        int64_t b = n / q.OHW, p = n % q.OHW, oc = g * q.OCg + m;
        out[(b * q.OC + oc) * q.OHW + p] = bias ? acc + bias[oc] : acc;
    }
};

// --------------------------------------------------------------------------------- dinp
template <typename T>
struct DinpWeight {                     // A(c, k) = W[g*OCg + k / KK, c, k % KK]
    static constexpr bool k_fastest = true;
    const T *w;
    Geo q;
    __device__ T operator()(int64_t g, int64_t c, int64_t k) const {
        int64_t oc = k / q.KK, r = k % q.KK;
        return w[((g * q.OCg + oc) * q.Cg + c) * q.KK + r];
    }
};
template <typename T>
struct DinpDout {                       // B(k, n): dout at the output that tap k of pixel n feeds
    static constexpr bool k_fastest = false;
    const T *dout;
    Geo q;
    __device__ T operator()(int64_t g, int64_t k, int64_t n) const {
        int64_t oc = k / q.KK, r = k % q.KK, kh = r / q.KW, kw = r % q.KW;
        int64_t HW = q.H * q.W, b = n / HW, s = n % HW, ih = s / q.W, iw = s % q.W;
        int64_t th = ih + q.pt - kh * q.dh, tw = iw + q.pl - kw * q.dw;
        if (th < 0 || tw < 0 || th % q.sh != 0 || tw % q.sw != 0) return T(0);
        int64_t oh = th / q.sh, ow = tw / q.sw;
        if (oh >= q.OH || ow >= q.OW) return T(0);
        return dout[((b * q.OC + g * q.OCg + oc) * q.OH + oh) * q.OW + ow];
    }
};
template <typename T>
struct DinpStore {
    T *dinp;
    Geo q;
    __device__ void operator()(int64_t g, int64_t c, int64_t n, T acc) const {
        int64_t HW = q.H * q.W, b = n / HW, s = n % HW;
        dinp[(b * q.C + g * q.Cg + c) * HW + s] = acc;
    }
};

// ------------------------------------------------------------------------------ dweight
// z = g * S + s; slice s covers the columns kg in [s * Ks, (s + 1) * Ks) of N*OHW
template <typename T>
struct DwDout {                         // A(m, k) = dout_g(m, kg)
    static constexpr bool k_fastest = true;
    const T *dout;
    Geo q;
    int64_t S, Ks, Ktot;
    __device__ T operator()(int64_t z, int64_t m, int64_t k) const {
        int64_t g = z / S, kg = (z % S) * Ks + k;
        if (kg >= Ktot) return T(0);
        int64_t b = kg / q.OHW, p = kg % q.OHW;
        return dout[(b * q.OC + g * q.OCg + m) * q.OHW + p];
    }
};
template <typename T>
struct DwCol {                          // B(k, n) = col_g(n, kg)
    static constexpr bool k_fastest = true;
    const T *inp;
    Geo q;
    int64_t S, Ks, Ktot;
    __device__ T operator()(int64_t z, int64_t k, int64_t n) const {
        int64_t g = z / S, kg = (z % S) * Ks + k;
        if (kg >= Ktot) return T(0);
        return im2col(inp, q, g, n, kg);
    }
};
template <typename T>
struct DwStore {                        // into dweight (S == 1) or the slice's partial buffer
    T *dst;
    Geo q;
    int64_t S;
    __device__ void operator()(int64_t z, int64_t m, int64_t n, T acc) const {
        int64_t g = z / S, s = z % S;
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

template <typename T>
__global__ void dbias_kernel(T *dbias, const T *dout, Geo q) {
    __shared__ double red[NNC_THREADS];
    const int64_t oc = blockIdx.x, total = q.N * q.OHW;
    double s = 0;
    for (int64_t e = threadIdx.x; e < total; e += blockDim.x) {
        int64_t b = e / q.OHW, p = e % q.OHW;
        s += (double)dout[(b * q.OC + oc) * q.OHW + p];
    }
    s = nnc_block_sum(s, red);
    if (threadIdx.x == 0) dbias[oc] = (T)s;
}

int check_geo(const Geo &q, const char *who) {
    if (q.G <= 0 || q.C % q.G != 0 || q.OC % q.G != 0 || q.sh <= 0 || q.sw <= 0 || q.dh <= 0
        || q.dw <= 0 || q.N < 0 || q.KH <= 0 || q.KW <= 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: invalid geometry", who);
    return NNCORE_CUDA_OK;
}

// Split of the dweight K dimension: enough slices for ~256 blocks, each >= 256 columns long.
// Depends on the shapes only (never on the device), so results are the same on every GPU.
int64_t dweight_slices(const Geo &q) {
    int64_t tiles = ((q.OCg + nnc::BM - 1) / nnc::BM) * ((q.CKK + nnc::BN - 1) / nnc::BN) * q.G;
    int64_t Ktot = q.N * q.OHW;
    int64_t S = (256 + tiles - 1) / tiles, by_len = (Ktot + 255) / 256;
    if (S > by_len) S = by_len;
    if (S > 64) S = 64;
    if (S * q.G > 65535) S = 65535 / q.G;
    return S < 1 ? 1 : S;
}

template <typename T>
int conv_backward(T *dinp, T *dweight, T *dbias, const T *dout, const T *inp, const T *w,
                  const Geo &q) {
    if (dinp)
        NNC_TRY(nnc::tiled_gemm<T>(q.Cg, q.N * q.H * q.W, q.OCg * q.KK, q.G,
                                   DinpWeight<T>{w, q}, DinpDout<T>{dout, q},
                                   DinpStore<T>{dinp, q}, "conv2d_backward (dinp)"));
    if (dbias && q.OC > 0) {
        dbias_kernel<T><<<(unsigned)q.OC, NNC_THREADS>>>(dbias, dout, q);
        NNC_LAUNCHED();
    }
    if (!dweight) return NNCORE_CUDA_OK;
    const int64_t S = dweight_slices(q), Ktot = q.N * q.OHW, Ks = (Ktot + S - 1) / S;
    T *dst = dweight;
    if (S > 1)
        NNC_TRY(nncore_cuda_malloc((void **)&dst, (size_t)(S * q.OC * q.CKK) * sizeof(T)));
    int rc = nnc::tiled_gemm<T>(q.OCg, q.CKK, Ks, q.G * S, DwDout<T>{dout, q, S, Ks, Ktot},
                                DwCol<T>{inp, q, S, Ks, Ktot}, DwStore<T>{dst, q, S},
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
    Geo q = make_geo(g);
    NNC_TRY(check_geo(q, "conv2d_forward"));
    return NNC_DISPATCH(dtype, "conv2d_forward", [&](auto tag) {
        using T = decltype(tag);
        return nnc::tiled_gemm<T>(q.OCg, q.N * q.OHW, q.CKK, q.G,
                                  FwdWeight<T>{(const T *)weight, q},
                                  FwdCol<T>{(const T *)inp, q},
                                  FwdStore<T>{(T *)out, (const T *)bias, q}, "conv2d_forward");
    });
}

extern "C" int nncore_cuda_conv2d_backward(int dtype, void *dinp, void *dweight, void *dbias,
                                           const void *dout, const void *inp,
                                           const void *weight, const nncore_cuda_conv_geom *g) {
    Geo q = make_geo(g);
    NNC_TRY(check_geo(q, "conv2d_backward"));
    return NNC_DISPATCH(dtype, "conv2d_backward", [&](auto tag) {
        using T = decltype(tag);
        return conv_backward<T>((T *)dinp, (T *)dweight, (T *)dbias, (const T *)dout,
                                (const T *)inp, (const T *)weight, q);
    });
}
