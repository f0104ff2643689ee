// embedding.cu: embedding lookup (gather) and its gradient (deterministic, no atomics), the
// semantics of nncore/_kernels/embedding.pyx.
// Shapes: N ids (the flattened input), V rows of the table, D embedding size. ids (N,) int64;
// weight, dweight (V, D); out, dout (N, D). OUT buffers are overwritten (=).
// Forward: every id is checked against [0, V) on the device first; the first bad position
// and its value come back as ERR_INDEX (Python raises IndexError).
// Backward: the caller groups positions by id with a stable sort (order, starts: row v owns
// order[starts[v] .. starts[v+1]), positions ascending). One thread per (v, d) sums its
// column in that order, starting from the first term, exactly as the CPU kernel: the same
// bits as the CPU and on every run. Rows no id touches, and padding_idx, are zero.
#include "common.cuh"

namespace {

template <typename T>
__global__ void gather_kernel(T *out, const int64_t *ids, const T *weight, int64_t N,
                              int64_t D) {
    NNC_GRID_STRIDE(e, N * D) out[e] = weight[ids[e / D] * D + e % D];
}

template <typename T>
__global__ void grad_kernel(T *dweight, const T *dout, const int64_t *order,
                            const int64_t *starts, int64_t V, int64_t D, int64_t pad,
                            int by_freq) {
    NNC_GRID_STRIDE(e, V * D) {
        int64_t v = e / D, d = e % D, lo = starts[v], hi = starts[v + 1];
        if (lo == hi || v == pad) { dweight[e] = T(0); continue; }
        T s = dout[order[lo] * D + d];
        for (int64_t k = lo + 1; k < hi; k++) s += dout[order[k] * D + d];
        if (by_freq && hi - lo > 1) s *= (T)(1.0 / (double)(hi - lo));
        dweight[e] = s;
    }
}

}  // namespace

extern "C" int nncore_cuda_embedding_forward(int dtype, void *out, const int64_t *ids,
                                             const void *weight, int64_t N, int64_t V,
                                             int64_t D, int host_checked, int64_t *bad_pos,
                                             int64_t *bad_value) {
    int64_t count = 0;
    if (N < 0 || V < 0 || D < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "embedding_forward: negative size");
    NNC_TRY(nnc_check_indices(ids, N, V, 0, 0, host_checked ? N : -1, &count, bad_pos,
                              bad_value, "embedding: index"));
    if (N * D == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "embedding_forward", [&](auto tag) {
        using T = decltype(tag);
        gather_kernel<T><<<nnc_blocks(N * D), NNC_THREADS>>>((T *)out, ids, (const T *)weight,
                                                             N, D);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_embedding_backward(int dtype, void *dweight, const void *dout,
                                              const int64_t *order, const int64_t *starts,
                                              int64_t V, int64_t D, int64_t padding_idx,
                                              int scale_by_freq) {
    if (V < 0 || D < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "embedding_backward: negative size");
    if (V * D == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "embedding_backward", [&](auto tag) {
        using T = decltype(tag);
        grad_kernel<T><<<nnc_blocks(V * D), NNC_THREADS>>>((T *)dweight, (const T *)dout,
                                                           order, starts, V, D, padding_idx,
                                                           scale_by_freq);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
