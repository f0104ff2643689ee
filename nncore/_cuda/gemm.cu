// gemm.cu: general matrix multiply on the GPU, float32 and float64, with our own tiled kernel
// (gemm_tile.cuh).
//   C = act(alpha * op(A) @ op(B) + beta * C + bias),  act: none, relu, gelu (erf), gelu_tanh
// Shapes: op(A) (M, K), op(B) (K, N), C (M, N), bias (N,); row-major with leading dimensions
// lda, ldb, ldc (op(X) = X^T when trans_x: A is then stored (K, M)). Batched: Bt products,
// consecutive matrices stride_x elements apart. C is overwritten when beta == 0 (never read,
// so garbage or NaN in it does not leak), else read and updated.
// Split-K: a single product whose tile grid is too small to fill the GPU (the small-batch
// GEMMs of an RNN step, or a long K with few output tiles) is cut into `splits` slices of K;
// each slice's tile product goes to a workspace, and a second kernel adds the slices in
// slice order and applies the epilogue. The sums are in a fixed order: deterministic.
#include "gemm_tile.cuh"

namespace {

template <typename T, bool Trans>
struct LoadA {                                 // op(A)(m, k) of matrix z
    static constexpr bool k_fastest = !Trans;
    const T *p;
    int64_t ld, stride;
    __device__ T operator()(int64_t z, int64_t m, int64_t k) const {
        return Trans ? p[z * stride + k * ld + m] : p[z * stride + m * ld + k];
    }
};

template <typename T, bool Trans>
struct LoadB {                                 // op(B)(k, n) of matrix z
    static constexpr bool k_fastest = Trans;
    const T *p;
    int64_t ld, stride;
    __device__ T operator()(int64_t z, int64_t k, int64_t n) const {
        return Trans ? p[z * stride + n * ld + k] : p[z * stride + k * ld + n];
    }
};

template <typename T>
struct StoreC {                                // the epilogue: scale, beta * C, bias, act
    T *c;
    int64_t ld, stride;
    T alpha, beta;
    const T *bias;
    int act;
    __device__ void operator()(int64_t z, int64_t m, int64_t n, T acc) const {
        T *dst = c + z * stride + m * ld + n;
        T v = alpha * acc;
        if (beta != T(0)) v += beta * *dst;
        if (bias != nullptr) v += bias[n];
        if (act == NNCORE_CUDA_ACT_RELU) v = v <= T(0) ? T(0) : v;   // keeps nan
        else if (act == NNCORE_CUDA_ACT_GELU) v = nnc_gelu(v);
        else if (act == NNCORE_CUDA_ACT_GELU_TANH) v = nnc_gelu_tanh(v);
        *dst = v;
    }
};

template <typename T, bool Trans>
struct SplitLoadA {                            // op(A)(m, z * kc + k): slice z of K
    static constexpr bool k_fastest = !Trans;
    const T *p;
    int64_t ld, kc, K;
    __device__ T operator()(int64_t z, int64_t m, int64_t k) const {
        int64_t kk = z * kc + k;
        if (kk >= K) return T(0);
        return Trans ? p[kk * ld + m] : p[m * ld + kk];
    }
};

template <typename T, bool Trans>
struct SplitLoadB {                            // op(B)(z * kc + k, n)
    static constexpr bool k_fastest = Trans;
    const T *p;
    int64_t ld, kc, K;
    __device__ T operator()(int64_t z, int64_t k, int64_t n) const {
        int64_t kk = z * kc + k;
        if (kk >= K) return T(0);
        return Trans ? p[n * ld + kk] : p[kk * ld + n];
    }
};

template <typename T>
struct StorePartial {                          // slice z's (M, N) partial product
    T *w;
    int64_t N, MN;
    __device__ void operator()(int64_t z, int64_t m, int64_t n, T acc) const {
        w[z * MN + m * N + n] = acc;
    }
};

template <typename T>
__global__ void split_k_reduce(const T *w, int64_t M, int64_t N, int splits, StoreC<T> store) {
    const int64_t MN = M * N;
    NNC_GRID_STRIDE(i, MN) {
        T acc = T(0);
        for (int z = 0; z < splits; z++) acc += w[z * MN + i];
        store(0, i / N, i % N, acc);
    }
}

// Slices of K for one product: enough blocks to occupy the GPU (~256), each slice at least
// 64 deep; 1 (no split) when the grid is already large or K is short.
inline int split_count(int64_t M, int64_t N, int64_t K) {
    if (M <= 0 || N <= 0) return 1;
    int64_t tiles = ((M + nnc::BM - 1) / nnc::BM) * ((N + nnc::BN - 1) / nnc::BN);
    if (tiles >= 128 || K < 128) return 1;
    int64_t s = (256 + tiles - 1) / tiles;
    if (s > K / 64) s = K / 64;
    if (s > 32) s = 32;
    return s < 2 ? 1 : (int)s;
}

template <typename T, bool TA, bool TB>
int run_split(int splits, int64_t M, int64_t N, int64_t K, const T *A, int64_t lda,
              const T *B, int64_t ldb, StoreC<T> store) {
    int64_t kc = (K + splits - 1) / splits;
    kc = (kc + nnc::BK - 1) / nnc::BK * nnc::BK;
    splits = (int)((K + kc - 1) / kc);
    void *ws = nullptr;
    NNC_TRY(nncore_cuda_malloc(&ws, (size_t)splits * M * N * sizeof(T)));
    int rc = nnc::tiled_gemm<T>(M, N, kc, splits, SplitLoadA<T, TA>{A, lda, kc, K},
                                SplitLoadB<T, TB>{B, ldb, kc, K},
                                StorePartial<T>{(T *)ws, N, M * N}, "gemm");
    if (rc == NNCORE_CUDA_OK) {
        split_k_reduce<T><<<nnc_blocks(M * N), NNC_THREADS>>>((const T *)ws, M, N, splits,
                                                               store);
        cudaError_t err = cudaGetLastError();
        if (err != cudaSuccess) rc = nnc_cuda_failed(err, "split_k_reduce", __FILE__, __LINE__);
    }
    // Back to the cache at once: later work that reuses the block is queued behind the
    // reduction on the same stream.
    nncore_cuda_free(ws);
    return rc;
}

template <typename T, bool TA, bool TB>
int run(int64_t Bt, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda,
        int64_t sa, const T *B, int64_t ldb, int64_t sb, T beta, T *C, int64_t ldc, int64_t sc,
        const T *bias, int act) {
    StoreC<T> store{C, ldc, sc, alpha, beta, bias, act};
    int splits = Bt == 1 ? split_count(M, N, K) : 1;
    if (splits > 1) return run_split<T, TA, TB>(splits, M, N, K, A, lda, B, ldb, store);
    return nnc::tiled_gemm<T>(M, N, K, Bt, LoadA<T, TA>{A, lda, sa}, LoadB<T, TB>{B, ldb, sb},
                              store, "gemm");
}

template <typename T>
int gemm_any(int trans_a, int trans_b, int64_t Bt, int64_t M, int64_t N, int64_t K,
             double alpha, const void *A, int64_t lda, int64_t sa, const void *B, int64_t ldb,
             int64_t sb, double beta, void *C, int64_t ldc, int64_t sc, const void *bias,
             int act) {
    if (M < 0 || N < 0 || K < 0 || Bt < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "gemm: negative size M=%lld N=%lld K=%lld",
                             (long long)M, (long long)N, (long long)K);
    auto a = (const T *)A, b = (const T *)B, bs = (const T *)bias;
    auto c = (T *)C;
    T al = (T)alpha, be = (T)beta;
    if (trans_a && trans_b)
        return run<T, true, true>(Bt, M, N, K, al, a, lda, sa, b, ldb, sb, be, c, ldc, sc, bs, act);
    if (trans_a)
        return run<T, true, false>(Bt, M, N, K, al, a, lda, sa, b, ldb, sb, be, c, ldc, sc, bs, act);
    if (trans_b)
        return run<T, false, true>(Bt, M, N, K, al, a, lda, sa, b, ldb, sb, be, c, ldc, sc, bs, act);
    return run<T, false, false>(Bt, M, N, K, al, a, lda, sa, b, ldb, sb, be, c, ldc, sc, bs, act);
}

}  // namespace

extern "C" int nncore_cuda_gemm(int dtype, int trans_a, int trans_b, int64_t M, int64_t N,
                                int64_t K, double alpha, const void *A, int64_t lda,
                                const void *B, int64_t ldb, double beta, void *C, int64_t ldc,
                                const void *bias, int act) {
    return NNC_DISPATCH(dtype, "gemm", [&](auto tag) {
        using T = decltype(tag);
        return gemm_any<T>(trans_a, trans_b, 1, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C,
                           ldc, 0, bias, act);
    });
}

extern "C" int nncore_cuda_gemm_batched(int dtype, int trans_a, int trans_b, int64_t Bt,
                                        int64_t M, int64_t N, int64_t K, const void *A,
                                        int64_t lda, int64_t stride_a, const void *B,
                                        int64_t ldb, int64_t stride_b, void *C, int64_t ldc,
                                        int64_t stride_c) {
    return NNC_DISPATCH(dtype, "gemm_batched", [&](auto tag) {
        using T = decltype(tag);
        // the grid's z dimension holds at most 65535 products: launch in slices
        for (int64_t b0 = 0; b0 < Bt; b0 += 65535) {
            int64_t nb = Bt - b0 < 65535 ? Bt - b0 : 65535;
            int rc = gemm_any<T>(trans_a, trans_b, nb, M, N, K, 1.0,
                                 (const T *)A + b0 * stride_a, lda, stride_a,
                                 (const T *)B + b0 * stride_b, ldb, stride_b, 0.0,
                                 (T *)C + b0 * stride_c, ldc, stride_c, nullptr,
                                 NNCORE_CUDA_ACT_NONE);
            if (rc != NNCORE_CUDA_OK) return rc;
        }
        return (int)NNCORE_CUDA_OK;
    });
}
