// elementwise.cu: the small glue ops device code needs: binary ops, axpby, affine, fill,
// cast, column sums (bias gradients) and full sums (loss.sum(), gradient norms).
// Shapes: flat buffers of n elements; sum_rows: x (M, N) -> out (N,). OUT is overwritten (=)
// and may alias an input for the elementwise ops.
// sum_all: a fixed grid of SUM_BLOCKS blocks; thread t of block b sums elements
// b*256 + t, + SUM_BLOCKS*256, ... in double, the block reduces its 256 partials as a fixed
// tree, and one block then adds the SUM_BLOCKS block sums the same way: the same bits on
// every run, whatever the GPU.
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

template <typename T>
__global__ void affine_kernel(T *out, T alpha, const T *x, T beta, int64_t n) {
    NNC_GRID_STRIDE(i, n) out[i] = alpha * x[i] + beta;
}

template <typename To, typename Ti>
__global__ void cast_kernel(To *out, const Ti *x, int64_t n) {
    NNC_GRID_STRIDE(i, n) out[i] = (To)x[i];
}

constexpr int SUM_BLOCKS = 512;

// Tree-reduce the NNC_THREADS values of `part` (shared) into part[0].
__device__ __forceinline__ void block_tree_sum(double *part) {
    for (int half = NNC_THREADS / 2; half > 0; half >>= 1) {
        __syncthreads();
        if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    }
    __syncthreads();
}

template <typename T>
__global__ void sum_all_partial_kernel(double *partial, const T *x, int64_t n, int square) {
    __shared__ double part[NNC_THREADS];
    double s = 0;
    NNC_GRID_STRIDE(i, n) {
        double v = (double)x[i];
        s += square ? v * v : v;
    }
    part[threadIdx.x] = s;
    block_tree_sum(part);
    if (threadIdx.x == 0) partial[blockIdx.x] = part[0];
}

template <typename T>
__global__ void sum_all_final_kernel(T *out, const double *partial, int nblocks) {
    __shared__ double part[NNC_THREADS];
    double s = 0;
    for (int b = threadIdx.x; b < nblocks; b += NNC_THREADS) s += partial[b];
    part[threadIdx.x] = s;
    block_tree_sum(part);
    if (threadIdx.x == 0) *out = (T)part[0];
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

extern "C" int nncore_cuda_affine(int dtype, void *out, double alpha, const void *x,
                                  double beta, int64_t n) {
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "affine", [&](auto tag) {
        using T = decltype(tag);
        affine_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)out, (T)alpha, (const T *)x,
                                                         (T)beta, n);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

namespace {
template <typename To>
int launch_cast(To *out, int dtype_in, const void *x, int64_t n) {
    unsigned blocks = nnc_blocks(n);
    if (dtype_in == NNCORE_CUDA_F32)
        cast_kernel<To, float><<<blocks, NNC_THREADS>>>(out, (const float *)x, n);
    else if (dtype_in == NNCORE_CUDA_F64)
        cast_kernel<To, double><<<blocks, NNC_THREADS>>>(out, (const double *)x, n);
    else if (dtype_in == NNCORE_CUDA_I64)
        cast_kernel<To, int64_t><<<blocks, NNC_THREADS>>>(out, (const int64_t *)x, n);
    else
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "cast: unknown input dtype code %d",
                             dtype_in);
    NNC_LAUNCHED();
    return NNCORE_CUDA_OK;
}
}  // namespace

extern "C" int nncore_cuda_cast(int dtype_out, void *out, int dtype_in, const void *x,
                                int64_t n) {
    if (n <= 0) return NNCORE_CUDA_OK;
    if (dtype_out == NNCORE_CUDA_F32) return launch_cast((float *)out, dtype_in, x, n);
    if (dtype_out == NNCORE_CUDA_F64) return launch_cast((double *)out, dtype_in, x, n);
    if (dtype_out == NNCORE_CUDA_I64) return launch_cast((int64_t *)out, dtype_in, x, n);
    return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "cast: unknown output dtype code %d",
                         dtype_out);
}

extern "C" int nncore_cuda_sum_all(int dtype, void *out, void *scratch, const void *x,
                                   int64_t n, int square) {
    return NNC_DISPATCH(dtype, "sum_all", [&](auto tag) {
        using T = decltype(tag);
        sum_all_partial_kernel<T><<<SUM_BLOCKS, NNC_THREADS>>>((double *)scratch, (const T *)x,
                                                               n, square);
        NNC_LAUNCHED();
        sum_all_final_kernel<T><<<1, NNC_THREADS>>>((T *)out, (const double *)scratch,
                                                    SUM_BLOCKS);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_sum_all_scratch_size(void) {
    return SUM_BLOCKS;  // doubles
}
