// loss.cu: fused softmax + cross-entropy, forward and backward (the semantics of
// nncore/_kernels/loss.pyx: PyTorch's F.cross_entropy on (N, C) logits).
// Shapes: N rows (batch), C classes. logits, probs, dlogits (N, C); target (N,) int64; loss
// (N,) for reduction "none", else a 0-d value. OUT buffers are overwritten (=).
// Rows whose target == ignore_index add 0 to the loss, get a zero gradient and are left out
// of the mean's divisor (all rows ignored -> the mean is nan). Label smoothing eps:
//   loss_i = (1 - eps) * (lse_i - x[i, t_i]) + eps * (lse_i - mean_c x[i, c]).
// Targets are checked on the device before anything is computed; the first bad row (and its
// value) is copied back and reported as ERR_INDEX, which Python raises as IndexError.
// Forward: one block per row (grid-stride over rows): row max, sum of exp in double (fixed
// tree order), probs, row loss (double scratch). A reduced loss is summed by one block in a
// fixed order: the same bits on every run.
#include <limits.h>

#include "common.cuh"

namespace {

__global__ void check_kernel(const int64_t *idx, int64_t n, int64_t C, int has_ignore,
                             int64_t ignore, unsigned long long *state) {
    // state[0]: first bad position (atomicMin), state[1]: number of counted entries
    NNC_GRID_STRIDE(i, n) {
        int64_t t = idx[i];
        if (has_ignore && t == ignore) continue;
        if (t < 0 || t >= C) atomicMin(&state[0], (unsigned long long)i);
        else atomicAdd(&state[1], 1ULL);
    }
}

__device__ __forceinline__ double max_nan(double a, double b) {   // nan wins, as on the CPU
    return (b > a || b != b) ? b : a;
}

template <typename T>
__global__ void ce_forward_kernel(T *probs, T *loss_rows, double *row_loss, const T *logits,
                                  const int64_t *target, int64_t N, int64_t C, int64_t ignore,
                                  double eps) {
    __shared__ double red[NNC_THREADS];
    for (int64_t i = blockIdx.x; i < N; i += gridDim.x) {
        const T *x = logits + i * C;
        T *p = probs + i * C;
        double m = -INFINITY;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = max_nan(m, (double)x[c]);
        red[threadIdx.x] = m;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) red[threadIdx.x] = max_nan(red[threadIdx.x], red[threadIdx.x + s]);
            __syncthreads();
        }
        const T mx = (T)red[0];
        __syncthreads();
        double se = 0, sx = 0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
            T e = nnc_exp(x[c] - mx);
            p[c] = e;
            se += (double)e;
            sx += (double)x[c];
        }
        se = nnc_block_sum(se, red);
        if (eps != 0) sx = nnc_block_sum(sx, red);
        const double r = 1.0 / se;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) p[c] = (T)(p[c] * r);
        if (threadIdx.x == 0) {
            int64_t t = target[i];
            double loss = 0;
            if (t != ignore) {
                double lse = (double)mx + log(se);
                loss = lse - (double)x[t];
                if (eps != 0) loss = (1 - eps) * loss + eps * (lse - sx / (double)C);
            }
            row_loss[i] = loss;
            if (loss_rows) loss_rows[i] = (T)loss;
        }
    }
}

template <typename T>
__global__ void sum_kernel(T *out, const double *v, int64_t n, double scale) {
    __shared__ double red[NNC_THREADS];
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += v[i];
    s = nnc_block_sum(s, red);
    if (threadIdx.x == 0) out[0] = (T)(s * scale);
}

template <typename T>
__global__ void ce_backward_kernel(T *dlogits, const T *probs, const int64_t *target,
                                   const T *dloss, int rows, double scale, int64_t N, int64_t C,
                                   int64_t ignore, double eps) {
    const double off = eps / (double)C;
    NNC_GRID_STRIDE(e, N * C) {
        int64_t i = e / C, c = e % C, t = target[i];
        if (t == ignore) { dlogits[e] = T(0); continue; }
        double g = scale;
        if (dloss) g *= (double)(rows ? dloss[i] : dloss[0]);
        double d = (double)probs[e] - off;
        if (c == t) d -= 1 - eps;
        dlogits[e] = (T)(g * d);
    }
}

}  // namespace

int nnc_check_indices(const int64_t *idx, int64_t n, int64_t C, int has_ignore,
                      int64_t ignore_index, int64_t host_count, int64_t *count,
                      int64_t *bad_pos, int64_t *bad_value, const char *what) {
    *count = host_count >= 0 ? host_count : 0;
    *bad_pos = -1;
    *bad_value = 0;
    if (host_count >= 0) return NNCORE_CUDA_OK;
    if (n <= 0) return NNCORE_CUDA_OK;
    unsigned long long init[2] = {ULLONG_MAX, 0}, state[2];
    void *dev = nullptr;
    NNC_TRY(nncore_cuda_malloc(&dev, sizeof init));
    int rc = nncore_cuda_copy_h2d(dev, init, sizeof init);
    if (rc == NNCORE_CUDA_OK) {
        check_kernel<<<nnc_blocks(n), NNC_THREADS>>>(idx, n, C, has_ignore, ignore_index,
                                                     (unsigned long long *)dev);
        cudaError_t err = cudaGetLastError();
        rc = err != cudaSuccess ? nnc_cuda_failed(err, "check_kernel", __FILE__, __LINE__)
                                : nncore_cuda_copy_d2h(state, dev, sizeof state);
    }
    nncore_cuda_free(dev);
    if (rc != NNCORE_CUDA_OK) return rc;
    *count = (int64_t)state[1];
    if (state[0] == ULLONG_MAX) return NNCORE_CUDA_OK;
    *bad_pos = (int64_t)state[0];
    NNC_TRY(nncore_cuda_copy_d2h(bad_value, idx + *bad_pos, sizeof(int64_t)));
    return nnc_set_error(NNCORE_CUDA_ERR_INDEX, "%s %lld at position %lld is out of range "
                         "[0, %lld)", what, (long long)*bad_value, (long long)*bad_pos,
                         (long long)C);
}

extern "C" int nncore_cuda_cross_entropy_forward(int dtype, void *probs, void *loss,
                                                 const void *logits, const int64_t *target,
                                                 int64_t N, int64_t C, int64_t ignore_index,
                                                 double label_smoothing, int reduction,
                                                 int64_t host_count, int64_t *count,
                                                 int64_t *bad_pos, int64_t *bad_value) {
    if (C <= 0 || N < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "cross_entropy: bad shape (%lld, %lld)",
                             (long long)N, (long long)C);
    NNC_TRY(nnc_check_indices(target, N, C, 1, ignore_index, host_count, count, bad_pos,
                              bad_value, "cross_entropy: target"));
    const int none = reduction == NNCORE_CUDA_RED_NONE;
    const double scale = reduction == NNCORE_CUDA_RED_MEAN
                             ? (*count > 0 ? 1.0 / (double)*count : NAN) : 1.0;
    return NNC_DISPATCH(dtype, "cross_entropy_forward", [&](auto tag) {
        using T = decltype(tag);
        if (N == 0) {                   // an empty batch: sum 0, mean nan
            if (!none) {
                T v = (T)(0.0 * scale);
                NNC_TRY(nncore_cuda_copy_h2d(loss, &v, sizeof v));
            }
            return (int)NNCORE_CUDA_OK;
        }
        void *rows = nullptr;
        NNC_TRY(nncore_cuda_malloc(&rows, (size_t)N * sizeof(double)));
        unsigned blocks = (unsigned)(N < 65535 * 8 ? N : 65535 * 8);
        ce_forward_kernel<T><<<blocks, NNC_THREADS>>>(
            (T *)probs, none ? (T *)loss : nullptr, (double *)rows, (const T *)logits, target,
            N, C, ignore_index, label_smoothing);
        cudaError_t err = cudaGetLastError();
        if (err == cudaSuccess && !none) {
            sum_kernel<T><<<1, NNC_THREADS>>>((T *)loss, (const double *)rows, N, scale);
            err = cudaGetLastError();
        }
        nncore_cuda_free(rows);
        if (err != cudaSuccess) return nnc_cuda_failed(err, "ce_forward", __FILE__, __LINE__);
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_cross_entropy_backward(int dtype, void *dlogits, const void *probs,
                                                  const int64_t *target, const void *dloss,
                                                  double scale, int64_t N, int64_t C,
                                                  int64_t ignore_index, double label_smoothing,
                                                  int reduction, int64_t host_count,
                                                  int64_t *bad_pos, int64_t *bad_value) {
    int64_t count = 0;
    if (C <= 0 || N < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "cross_entropy: bad shape (%lld, %lld)",
                             (long long)N, (long long)C);
    NNC_TRY(nnc_check_indices(target, N, C, 1, ignore_index, host_count, &count, bad_pos,
                              bad_value, "cross_entropy: target"));
    if (reduction == NNCORE_CUDA_RED_MEAN) scale = count > 0 ? scale / (double)count : NAN;
    if (N == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "cross_entropy_backward", [&](auto tag) {
        using T = decltype(tag);
        ce_backward_kernel<T><<<nnc_blocks(N * C), NNC_THREADS>>>(
            (T *)dlogits, (const T *)probs, target, (const T *)dloss,
            reduction == NNCORE_CUDA_RED_NONE, scale, N, C, ignore_index, label_smoothing);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
