// elementwise.cu: the small glue ops device code needs: binary ops, axpby, fill and column
// sums (bias gradients).
// Shapes: flat buffers of n elements; sum_rows: x (M, N) -> out (N,). OUT is overwritten (=)
// and may alias an input for the elementwise ops.
// sum_rows: one block of 256 threads per group of 32 columns; thread (r, c) sums rows r,
// r + 8, ... of column c in double, then the 8 partials are added in row order: the same
// bits on every run.
#include "common.cuh"

namespace {

template <typename T>
__global__ void binary_kernel(int op, T *out, const T *a, const T *b, int64_t n) {
    NNC_GRID_STRIDE(i, n) {
        T x = a[i], y = b[i];
        out[i] = op == NNCORE_CUDA_ADD ? x + y
                 : op == NNCORE_CUDA_SUB ? x - y
                 : op == NNCORE_CUDA_MUL ? x * y : x / y;
    }
}

template <typename T>
__global__ void axpby_kernel(T *out, T alpha, const T *x, T beta, const T *y, int64_t n) {
    NNC_GRID_STRIDE(i, n) out[i] = y ? alpha * x[i] + beta * y[i] : alpha * x[i];
}

template <typename T>
__global__ void fill_kernel(T *out, T value, int64_t n) {
    NNC_GRID_STRIDE(i, n) out[i] = value;
}

constexpr int SUM_COLS = 32, SUM_ROWS = NNC_THREADS / SUM_COLS;

template <typename T>
__global__ void sum_rows_kernel(T *out, const T *x, int64_t M, int64_t N) {
    __shared__ double part[SUM_ROWS][SUM_COLS];
    const int c = threadIdx.x % SUM_COLS, r = threadIdx.x / SUM_COLS;
    const int64_t col = (int64_t)blockIdx.x * SUM_COLS + c;
    double s = 0;
    if (col < N)
        for (int64_t m = r; m < M; m += SUM_ROWS) s += (double)x[m * N + col];
    part[r][c] = s;
    __syncthreads();
    if (r == 0 && col < N) {
        double total = 0;
        for (int k = 0; k < SUM_ROWS; k++) total += part[k][c];
        out[col] = (T)total;
    }
}

}  // namespace

extern "C" int nncore_cuda_binary(int dtype, int op, void *out, const void *a, const void *b,
                                  int64_t n) {
    if (op < NNCORE_CUDA_ADD || op > NNCORE_CUDA_DIV)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "binary: unknown op %d", op);
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "binary", [&](auto tag) {
        using T = decltype(tag);
        binary_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>(op, (T *)out, (const T *)a,
                                                         (const T *)b, n);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_axpby(int dtype, void *out, double alpha, const void *x, double beta,
                                 const void *y, int64_t n) {
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "axpby", [&](auto tag) {
        using T = decltype(tag);
        axpby_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)out, (T)alpha, (const T *)x,
                                                        (T)beta, (const T *)y, n);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_fill(int dtype, void *out, double value, int64_t n) {
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "fill", [&](auto tag) {
        using T = decltype(tag);
        fill_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)out, (T)value, n);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_sum_rows(int dtype, void *out, const void *x, int64_t M, int64_t N) {
    if (N <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "sum_rows", [&](auto tag) {
        using T = decltype(tag);
        unsigned blocks = (unsigned)((N + SUM_COLS - 1) / SUM_COLS);
        sum_rows_kernel<T><<<blocks, NNC_THREADS>>>((T *)out, (const T *)x, M, N);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
