// activation.cu: elementwise activations, forward and backward (the semantics of
// nncore/_kernels/activation.pyx).
// Shapes: any; the kernels work on the flat buffer of n elements. OUT is overwritten (=) and
// may be the input itself. Forward: y = f(x). Backward: dx = dout * f'(.) read from `cache`:
// the output y for relu, sigmoid and tanh; the input x for leaky relu and both GELUs.
// NaN semantics follow PyTorch: relu(nan) = nan, sigmoid(nan) = nan.
// One thread per element (grid-stride loop): every element is computed the same way on
// every run.
#include "common.cuh"

namespace {

template <typename T>
__device__ __forceinline__ T forward_one(int op, T v, T p) {
    switch (op) {
    case NNCORE_CUDA_RELU: return v <= T(0) ? T(0) : v;             // keeps nan
    case NNCORE_CUDA_LEAKY_RELU: return v > T(0) ? v : v * p;
    case NNCORE_CUDA_SIGMOID: return nnc_sigmoid(v);
    case NNCORE_CUDA_TANH: return nnc_tanh(v);
    case NNCORE_CUDA_GELU: return nnc_gelu(v);
    default: return nnc_gelu_tanh(v);
    }
}

// f'(.) times g, with c the cache described above
template <typename T>
__device__ __forceinline__ T backward_one(int op, T g, T c, T p) {
    const T half = T(0.5), one = T(1);
    switch (op) {
    case NNCORE_CUDA_RELU: return c <= T(0) ? T(0) : g;
    case NNCORE_CUDA_LEAKY_RELU: return c > T(0) ? g : g * p;
    case NNCORE_CUDA_SIGMOID: return g * (c * (one - c));
    case NNCORE_CUDA_TANH: return g * (one - c * c);
    case NNCORE_CUDA_GELU: {                                        // Phi(x) + x phi(x)
        T cdf = half * (one + nnc_erf(c * T(0.70710678118654752440)));
        T pdf = T(0.39894228040143267794) * nnc_exp(-half * c * c);
        return g * (cdf + c * pdf);
    }
    default: {                                                      // d/dx x sigmoid(z(x))
        const T beta2 = T(2 * 0.79788456080286535588), kappa = T(0.044715);
        T z = beta2 * (c + kappa * c * c * c);
        T e = nnc_exp(-nnc_fabs(z));
        T d = one / (one + e);
        T s = z >= T(0) ? d : e * d;                                // sigmoid(z)
        T ds = 4 * e * d * d;                                       // 1 - tanh(z/2)^2
        T right = ds == T(0) ? T(0)
                             : half * T(0.79788456080286535588) * c * ds
                                   * (one + T(3 * 0.044715) * c * c);
        return g * (s + right);
    }
    }
}

template <typename T>
__global__ void forward_kernel(int op, T *y, const T *x, int64_t n, T p) {
    NNC_GRID_STRIDE(i, n) y[i] = forward_one(op, x[i], p);
}

template <typename T>
__global__ void backward_kernel(int op, T *dx, const T *dout, const T *cache, int64_t n, T p) {
    NNC_GRID_STRIDE(i, n) dx[i] = backward_one(op, dout[i], cache[i], p);
}

int check_op(int op, const char *who) {
    if (op < NNCORE_CUDA_RELU || op > NNCORE_CUDA_GELU_TANH)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: unknown activation %d", who, op);
    return NNCORE_CUDA_OK;
}

}  // namespace

extern "C" int nncore_cuda_activation_forward(int dtype, int op, void *y, const void *x,
                                              int64_t n, double p) {
    NNC_TRY(check_op(op, "activation_forward"));
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "activation_forward", [&](auto tag) {
        using T = decltype(tag);
        forward_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>(op, (T *)y, (const T *)x, n, (T)p);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_activation_backward(int dtype, int op, void *dx, const void *dout,
                                               const void *cache, int64_t n, double p) {
    NNC_TRY(check_op(op, "activation_backward"));
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "activation_backward", [&](auto tag) {
        using T = decltype(tag);
        backward_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>(op, (T *)dx, (const T *)dout,
                                                           (const T *)cache, n, (T)p);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
