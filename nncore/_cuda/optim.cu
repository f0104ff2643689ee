// optim.cu: fused optimizer steps, SGD (momentum, dampening, Nesterov, weight decay) and
// Adam / AdamW (amsgrad), in place (the semantics of nncore/_kernels/optim.pyx and
// optim_simd.h: torch.optim's single-tensor order, hyper-parameters rounded to the parameter
// dtype where PyTorch rounds them).
// Shapes: param, grad and every state buffer are flat runs of n elements of one dtype.
// Write rule: param and its state are UPDATED IN PLACE, each element read and written once.
// One thread per element: elements are independent, results are the same on every run.
// nvcc contracts a*b + c into an FMA by default; the CPU build never does, so products and
// sums go through the _rn intrinsics (rounded separately, never fused) to match it.
#include "common.cuh"

namespace {

// a*b and a+b rounded separately (never fused), as the CPU build computes them
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }

template <typename T>
struct SgdHyper {
    T sign, wd, mom, one_minus_damp, neg_lr;
    int use_wd, nesterov, has_momentum, first;
};

template <typename T>
__global__ void sgd_kernel(T *p, const T *grad, T *buf, int64_t n, SgdHyper<T> h) {
    NNC_GRID_STRIDE(i, n) {
        T g = mul(h.sign, grad[i]);
        if (h.use_wd) g = add(g, mul(h.wd, p[i]));
        if (h.has_momentum) {
            T b = h.first ? g : add(mul(buf[i], h.mom), mul(h.one_minus_damp, g));
            buf[i] = b;
            g = h.nesterov ? add(g, mul(h.mom, b)) : b;
        }
        p[i] = add(p[i], mul(h.neg_lr, g));
    }
}

template <typename T>
struct AdamHyper {
    T sign, wd, decay, w1, one_minus_w1, beta2, one_minus_beta2, eps, bc2s, neg_step;
    int l2, amsgrad, small_w1;
};

template <typename T>
__global__ void adam_kernel(T *p, const T *grad, T *m, T *v, T *vmax, int64_t n,
                            AdamHyper<T> h) {
    NNC_GRID_STRIDE(i, n) {
        T g = mul(h.sign, grad[i]);
        T pi = mul(p[i], h.decay);
        if (h.l2) g = add(g, mul(h.wd, pi));
        T mi = m[i];
        // torch's lerp: w < 0.5 ? a + w (b - a) : b - (b - a)(1 - w)
        mi = h.small_w1 ? add(mi, mul(h.w1, g - mi)) : g - mul(g - mi, h.one_minus_w1);
        m[i] = mi;
        T vi = add(mul(v[i], h.beta2), mul(mul(h.one_minus_beta2, g), g));
        v[i] = vi;
        T s = vi;
        if (h.amsgrad) {
            T old = vmax[i];
            s = (vi > old || vi != vi) ? vi : old;
            vmax[i] = s;
        }
        p[i] = add(pi, mul(h.neg_step, mi) / add(nnc_sqrt(s) / h.bc2s, h.eps));
    }
}

}  // namespace

extern "C" int nncore_cuda_sgd_step(int dtype, void *param, const void *grad,
                                    void *momentum_buf, int64_t n, double lr, double momentum,
                                    double dampening, double weight_decay, int nesterov,
                                    int maximize, int first_step) {
    if (momentum != 0 && momentum_buf == nullptr)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "sgd_step: momentum != 0 needs a "
                             "momentum buffer");
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "sgd_step", [&](auto tag) {
        using T = decltype(tag);
        SgdHyper<T> h{maximize ? T(-1) : T(1), (T)weight_decay, (T)momentum,
                      (T)(1.0 - dampening), (T)(-lr), weight_decay != 0, nesterov,
                      momentum != 0, first_step};
        sgd_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)param, (const T *)grad,
                                                      (T *)momentum_buf, n, h);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_adam_step(int dtype, void *param, const void *grad, void *exp_avg,
                                     void *exp_avg_sq, void *max_exp_avg_sq, int64_t n,
                                     double lr, double beta1, double beta2, double eps,
                                     double weight_decay, int amsgrad, int maximize,
                                     int decoupled, double step_size, double bc2_sqrt) {
    if (amsgrad && max_exp_avg_sq == nullptr)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "adam_step: amsgrad needs max_exp_avg_sq");
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "adam_step", [&](auto tag) {
        using T = decltype(tag);
        const T w1 = (T)(1.0 - beta1);
        AdamHyper<T> h{maximize ? T(-1) : T(1),
                       (T)weight_decay,
                       (decoupled && weight_decay != 0) ? (T)(1.0 - lr * weight_decay) : T(1),
                       w1,
                       T(1) - w1,
                       (T)beta2,
                       (T)(1.0 - beta2),
                       (T)eps,
                       (T)bc2_sqrt,
                       (T)(-step_size),
                       weight_decay != 0 && !decoupled,
                       amsgrad,
                       fabs((double)w1) < 0.5};
        adam_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)param, (const T *)grad,
                                                       (T *)exp_avg, (T *)exp_avg_sq,
                                                       (T *)max_exp_avg_sq, n, h);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
