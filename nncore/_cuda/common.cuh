// common.cuh: what every nncore .cu file shares: error reporting, dtype dispatch, launch
// geometry and float/double math overloads. Internal (not part of the C API).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "nncore_cuda.h"

// Record an error message for nncore_cuda_last_error() and return `code` (runtime.cu).
int nnc_set_error(int code, const char *fmt, ...);
// Record a failed CUDA call (its error string, the call and where) and return ERR_CUDA/OOM.
int nnc_cuda_failed(cudaError_t err, const char *call, const char *file, int line);

// Every CUDA runtime call goes through NNC_CHECK; every launch is followed by NNC_LAUNCHED().
#define NNC_CHECK(call)                                                                   \
    do {                                                                                  \
        cudaError_t nnc_err_ = (call);                                                    \
        if (nnc_err_ != cudaSuccess)                                                      \
            return nnc_cuda_failed(nnc_err_, #call, __FILE__, __LINE__);                  \
    } while (0)
#define NNC_LAUNCHED() NNC_CHECK(cudaGetLastError())
// Propagate a non-zero status from an nncore_cuda_* call.
#define NNC_TRY(expr)                                                                     \
    do {                                                                                  \
        int nnc_rc_ = (expr);                                                             \
        if (nnc_rc_ != NNCORE_CUDA_OK) return nnc_rc_;                                    \
    } while (0)

// Call body<T>() with T = float or double from a dtype code; ERR_VALUE for anything else.
#define NNC_DISPATCH(dtype, fn_name, ...)                                                 \
    ((dtype) == NNCORE_CUDA_F32   ? __VA_ARGS__(float{})                                  \
     : (dtype) == NNCORE_CUDA_F64 ? __VA_ARGS__(double{})                                 \
     : nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: unknown dtype code %d", fn_name, (int)(dtype)))

constexpr int NNC_THREADS = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU, capped so the count
// fits gridDim.x; kernels loop `for (i = start; i < n; i += stride)`.
inline unsigned nnc_blocks(int64_t n, int threads = NNC_THREADS) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

#define NNC_GRID_STRIDE(i, n)                                                             \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);             \
         i += (int64_t)gridDim.x * blockDim.x)

// float/double overloads with the same formulas as the CPU kernels' libm calls.
__device__ __forceinline__ float nnc_exp(float v) { return expf(v); }
__device__ __forceinline__ double nnc_exp(double v) { return exp(v); }
__device__ __forceinline__ float nnc_log(float v) { return logf(v); }
__device__ __forceinline__ double nnc_log(double v) { return log(v); }
__device__ __forceinline__ float nnc_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double nnc_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float nnc_erf(float v) { return erff(v); }
__device__ __forceinline__ double nnc_erf(double v) { return erf(v); }
__device__ __forceinline__ float nnc_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double nnc_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float nnc_fabs(float v) { return fabsf(v); }
__device__ __forceinline__ double nnc_fabs(double v) { return fabs(v); }

// sigmoid without overflow for any |v| (the CPU's formula: a select, not 1/(1+exp(-v))).
template <typename T>
__device__ __forceinline__ T nnc_sigmoid(T v) {
    T e = nnc_exp(-nnc_fabs(v));
    return (v >= T(0) ? T(1) : e) / (T(1) + e);
}

// GELU, erf form: x Phi(x); tanh form: x sigmoid(2 beta (x + kappa x^3)) (no cancellation).
template <typename T>
__device__ __forceinline__ T nnc_gelu(T v) {
    return v * T(0.5) * (T(1) + nnc_erf(v * T(0.70710678118654752440)));
}
template <typename T>
__device__ __forceinline__ T nnc_gelu_tanh(T v) {
    T z = T(2 * 0.79788456080286535588) * (v + T(0.044715) * v * v * v);
    return v * nnc_sigmoid(z);
}

// Block-wide sum of one double per thread in a fixed tree order (deterministic). `shared`
// holds blockDim.x doubles; blockDim.x must be a power of two. Every thread gets the sum.
__device__ __forceinline__ double nnc_block_sum(double v, double *shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads();   // shared may be reused right after
    return total;
}

// Check int64 class/token indices against [0, C) (skipping ignore_index when has_ignore):
// ERR_INDEX with the first bad position and its value, else *count = rows counted. One device
// sync. host_count >= 0 means the caller already checked the indices on the host and counted
// host_count rows: nothing runs on the device. (loss.cu)
int nnc_check_indices(const int64_t *idx, int64_t n, int64_t C, int has_ignore,
                      int64_t ignore_index, int64_t host_count, int64_t *count,
                      int64_t *bad_pos, int64_t *bad_value, const char *what);
