// dropout.cu: inverted dropout with the CPU kernel's counter-based mask (dropout.pyx).
// Shapes: n elements viewed as (R, G): R groups of G elements sharing one keep/drop decision.
// Group r is kept iff splitmix64(seed, r) >> 11 >= thr (thr = ceil(p * 2^53)); kept elements
// are scaled by `scale` = 1/(1-p). The hash is the CPU kernel's, so a (seed, p, G) gives the
// same mask, bit for bit, on the GPU and on the CPU; backward is dropout(dout, same seed).
// OUT is overwritten (=) and may alias the input.
#include "common.cuh"

namespace {

__device__ __forceinline__ uint64_t dropout_hash(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

template <typename T>
__global__ void dropout_kernel(T *out, const T *x, int64_t n, uint64_t seed, uint64_t thr,
                               T scale, int64_t G) {
    NNC_GRID_STRIDE(i, n) {
        uint64_t r = (uint64_t)(G == 1 ? i : i / G);
        out[i] = (dropout_hash(seed, r) >> 11) >= thr ? x[i] * scale : (T)0;
    }
}

}  // namespace

extern "C" int nncore_cuda_dropout(int dtype, void *out, const void *x, int64_t n,
                                   uint64_t seed, uint64_t thr, double scale, int64_t G) {
    if (G < 1) return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "dropout: group %lld < 1",
                                    (long long)G);
    if (n <= 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "dropout", [&](auto tag) {
        using T = decltype(tag);
        dropout_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)out, (const T *)x, n, seed, thr,
                                                          (T)scale, G);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
