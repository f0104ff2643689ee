// norm.cu: batch normalisation, forward (train / eval) and backward (the semantics of
// nncore/_kernels/norm.pyx).
// Shapes: every input is viewed as (N, C, S): N batch, C channels, S = product of the spatial
// sizes; M = N*S values per channel. save_mean / save_invstd are double (C,) caches.
// OUT buffers are overwritten (=); a training forward with `update` changes running_mean /
// running_var IN PLACE: running = (1 - m) running + m stat (running_var gets the unbiased
// variance).
//   train: mean, biased var (two passes, sums in double), invstd = 1 / sqrt(var + eps)
//   eval:  mean = running_mean, invstd from running_var
//   out = (x - mean) * (weight * invstd) + bias
//   backward: dbias = sum dout, dweight = invstd * sum dout (x - mean),
//   dinp = (dout - c1 - (x - mean) c2) * weight * invstd with c1 = sum dout / M,
//   c2 = invstd^2 sum dout (x - mean) / M in training, c1 = c2 = 0 in eval.
// One block per channel (grid-stride over channels); block sums in a fixed tree order, so
// results are the same on every run.
#include "common.cuh"

namespace {

template <typename T>
__device__ __forceinline__ const T *at(const T *base, int64_t e, int64_t c, int64_t C,
                                       int64_t S) {
    return base + ((e / S) * C + c) * S + e % S;   // element e of channel c's N*S values
}

template <typename T>
__global__ void bn_forward_kernel(T *out, double *save_mean, double *save_invstd, T *rmean,
                                  T *rvar, const T *x, const T *weight, const T *bias,
                                  int64_t N, int64_t C, int64_t S, int training, int update,
                                  double momentum, double eps) {
    __shared__ double red[NNC_THREADS];
    const int64_t M = N * S;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        double mean, var;
        if (training) {
            double s = 0;
            for (int64_t e = threadIdx.x; e < M; e += blockDim.x) s += (double)*at(x, e, c, C, S);
            mean = nnc_block_sum(s, red) / (double)M;
            s = 0;
            for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
                double d = (double)*at(x, e, c, C, S) - mean;
                s += d * d;
            }
            s = nnc_block_sum(s, red);
            var = s / (double)M;
            if (update && threadIdx.x == 0) {
                rmean[c] = (T)((1 - momentum) * (double)rmean[c] + momentum * mean);
                rvar[c] = (T)((1 - momentum) * (double)rvar[c]
                              + momentum * (M > 1 ? s / (double)(M - 1) : var));
            }
        } else {
            mean = (double)rmean[c];
            var = (double)rvar[c];
        }
        double invstd = 1 / sqrt(var + eps);
        if (threadIdx.x == 0) {
            save_mean[c] = mean;
            save_invstd[c] = invstd;
        }
        const T m = (T)mean, a = (T)((weight ? (double)weight[c] : 1.0) * invstd);
        const T b = bias ? bias[c] : T(0);
        for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
            int64_t off = ((e / S) * C + c) * S + e % S;
            out[off] = (x[off] - m) * a + b;
        }
    }
}

template <typename T>
__global__ void bn_backward_kernel(T *dinp, T *dweight, T *dbias, const T *dout, const T *x,
                                   const double *save_mean, const double *save_invstd,
                                   const T *weight, int64_t N, int64_t C, int64_t S,
                                   int training) {
    __shared__ double red[NNC_THREADS];
    const int64_t M = N * S;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sdy = 0, sdyx = 0;
        for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
            double g = (double)*at(dout, e, c, C, S);
            sdy += g;
            sdyx += g * ((double)*at(x, e, c, C, S) - mean);
        }
        sdy = nnc_block_sum(sdy, red);
        sdyx = nnc_block_sum(sdyx, red);
        if (threadIdx.x == 0) {
            dbias[c] = (T)sdy;
            dweight[c] = (T)(sdyx * invstd);
        }
        if (!dinp) continue;
        const double k = (weight ? (double)weight[c] : 1.0) * invstd;
        const double c1 = training ? sdy / (double)M : 0.0;
        const double c2 = training ? sdyx * invstd * invstd / (double)M : 0.0;
        const T m = (T)mean, tc1 = (T)c1, tc2 = (T)c2, tk = (T)k;
        for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
            int64_t off = ((e / S) * C + c) * S + e % S;
            dinp[off] = (dout[off] - tc1 - (x[off] - m) * tc2) * tk;
        }
    }
}

unsigned channel_blocks(int64_t C) { return (unsigned)(C < 65535 ? C : 65535); }

}  // namespace

extern "C" int nncore_cuda_batch_norm_forward(int dtype, void *out, double *save_mean,
                                              double *save_invstd, void *running_mean,
                                              void *running_var, const void *inp,
                                              const void *weight, const void *bias, int64_t N,
                                              int64_t C, int64_t S, int training, int update,
                                              double momentum, double eps) {
    if (N < 0 || C < 0 || S < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "batch_norm_forward: negative size");
    if (!training && (!running_mean || !running_var))
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "batch_norm_forward: eval needs running "
                             "statistics");
    if (C == 0 || N * S == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "batch_norm_forward", [&](auto tag) {
        using T = decltype(tag);
        bn_forward_kernel<T><<<channel_blocks(C), NNC_THREADS>>>(
            (T *)out, save_mean, save_invstd, (T *)running_mean, (T *)running_var,
            (const T *)inp, (const T *)weight, (const T *)bias, N, C, S, training,
            update && running_mean && running_var, momentum, eps);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_batch_norm_backward(int dtype, void *dinp, void *dweight,
                                               void *dbias, const void *dout, const void *inp,
                                               const double *save_mean,
                                               const double *save_invstd, const void *weight,
                                               int64_t N, int64_t C, int64_t S, int training) {
    if (N < 0 || C < 0 || S < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "batch_norm_backward: negative size");
    if (C == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "batch_norm_backward", [&](auto tag) {
        using T = decltype(tag);
        bn_backward_kernel<T><<<channel_blocks(C), NNC_THREADS>>>(
            (T *)dinp, (T *)dweight, (T *)dbias, (const T *)dout, (const T *)inp, save_mean,
            save_invstd, (const T *)weight, N, C, S, training);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
