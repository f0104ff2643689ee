// gemm_tile.cuh: the one tiled shared-memory GEMM of nncore's CUDA kernels, used by gemm.cu
// (plain, transposed, batched matrices) and conv.cu (implicit GEMM: the im2col matrix is
// never stored, its elements are computed by the loader).
//
//   acc (M, N) = sum_k A(z, m, k) * B(z, k, n), then store(z, m, n, acc), for z = blockIdx.z
//
// A and B are functors returning one element (they are only called in range); a loader says
// with `k_fastest` which of its indices is contiguous in memory, so that consecutive threads
// load consecutive addresses (coalesced). Block tile BM x BN = 64 x 64, K step BK = 16,
// 256 threads; thread (ty, tx) of the 16 x 16 grid accumulates the 4 x 4 outputs
// (ty + 16 i, tx + 16 j): strided so that shared-memory reads are conflict free and the
// stores of a warp hit consecutive columns. Edge tiles: out-of-range elements load as 0 and
// are not stored. Accumulation in T, over k in increasing order: deterministic.
#pragma once

#include "common.cuh"

namespace nnc {

constexpr int BM = 64, BN = 64, BK = 16, TILE_THREADS = 256;

template <typename T, typename LoadA, typename LoadB, typename Store>
__global__ void __launch_bounds__(TILE_THREADS)
tiled_gemm_kernel(int64_t M, int64_t N, int64_t K, LoadA load_a, LoadB load_b, Store store) {
    __shared__ T As[BK][BM + 1];   // +1: a column-wise fill does not hit one bank 16 times
    __shared__ T Bs[BK][BN + 1];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    const int64_t z = blockIdx.z;
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = T(0);

    for (int64_t k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
        for (int r = 0; r < BM * BK / TILE_THREADS; r++) {
            int e = tid + r * TILE_THREADS, mm, kk;
            if (LoadA::k_fastest) { mm = e / BK; kk = e % BK; }
            else                  { kk = e / BM; mm = e % BM; }
            int64_t m = m0 + mm, k = k0 + kk;
            As[kk][mm] = (m < M && k < K) ? load_a(z, m, k) : T(0);
        }
#pragma unroll
        for (int r = 0; r < BN * BK / TILE_THREADS; r++) {
            int e = tid + r * TILE_THREADS, nn, kk;
            if (LoadB::k_fastest) { nn = e / BK; kk = e % BK; }
            else                  { kk = e / BN; nn = e % BN; }
            int64_t n = n0 + nn, k = k0 + kk;
            Bs[kk][nn] = (n < N && k < K) ? load_b(z, k, n) : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            T a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int64_t m = m0 + ty + 16 * i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t n = n0 + tx + 16 * j;
            if (n < N) store(z, m, n, acc[i][j]);
        }
    }
}

// Launch over Z independent products; ERR_VALUE when the grid would not fit.
template <typename T, typename LoadA, typename LoadB, typename Store>
int tiled_gemm(int64_t M, int64_t N, int64_t K, int64_t Z, LoadA a, LoadB b, Store s,
               const char *who) {
    if (M <= 0 || N <= 0 || Z <= 0) return NNCORE_CUDA_OK;
    int64_t gx = (N + BN - 1) / BN, gy = (M + BM - 1) / BM;
    if (gx > 2147483647LL || gy > 65535 || Z > 65535)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: GEMM too large for one launch "
                             "(M=%lld, N=%lld, batch=%lld)", who, (long long)M, (long long)N,
                             (long long)Z);
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)Z);
    tiled_gemm_kernel<T><<<grid, TILE_THREADS>>>(M, N, K, a, b, s);
    NNC_LAUNCHED();
    return NNCORE_CUDA_OK;
}

}  // namespace nnc
