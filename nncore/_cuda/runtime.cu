// runtime.cu: error messages, device queries, the caching allocator and host<->device copies.
//
// Allocator: a request of n bytes is rounded up to its size class (at least 512 bytes; above
// that 4 classes per power of two, so at most 25% is wasted) and served from that class's
// free list when it has a block, else by cudaMalloc. nncore_cuda_free puts the block back on
// its list: no cudaMalloc/cudaFree per op. Reuse is safe without events because all kernels
// and copies run on the default stream, in order. empty_cache() cudaFree's every cached block;
// a failed cudaMalloc empties the cache and tries once more before reporting out-of-memory.
// Counters: allocated = bytes of live blocks (by size class), peak = its maximum, reserved =
// live + cached. One mutex guards the lists (Python may call from several threads).
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.cuh"

// ------------------------------------------------------------------------------- errors
static thread_local char nnc_message[1024] = "no error";

int nnc_set_error(int code, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(nnc_message, sizeof nnc_message, fmt, args);
    va_end(args);
    return code;
}

int nnc_cuda_failed(cudaError_t err, const char *call, const char *file, int line) {
    const char *base = strrchr(file, '/');
    int code = err == cudaErrorMemoryAllocation ? NNCORE_CUDA_ERR_OOM : NNCORE_CUDA_ERR_CUDA;
    return nnc_set_error(code, "CUDA error %s: %s (in %s at %s:%d)", cudaGetErrorName(err),
                         cudaGetErrorString(err), call, base ? base + 1 : file, line);
}

extern "C" const char *nncore_cuda_last_error(void) { return nnc_message; }

// ------------------------------------------------------------------------------- devices
extern "C" int nncore_cuda_device_count(int *count) {
    *count = 0;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();   // clear it: "no driver / no device" is not sticky
        return nnc_cuda_failed(err, "cudaGetDeviceCount", __FILE__, __LINE__);
    }
    *count = n;
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_device_name(int device, char *buf, int buflen) {
    cudaDeviceProp prop;
    NNC_CHECK(cudaGetDeviceProperties(&prop, device));
    snprintf(buf, (size_t)buflen, "%s", prop.name);
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_set_device(int device) {
    NNC_CHECK(cudaSetDevice(device));
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_runtime_version(int *version) {
    NNC_CHECK(cudaRuntimeGetVersion(version));
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_synchronize(void) {
    NNC_CHECK(cudaDeviceSynchronize());
    return NNCORE_CUDA_OK;
}

// ---------------------------------------------------------------------- caching allocator
namespace {

struct Pool {
    std::mutex lock;
    std::unordered_map<size_t, std::vector<void *>> free_lists;   // size class -> blocks
    std::unordered_map<void *, size_t> live;                       // block -> size class
    size_t allocated = 0, peak = 0, cached = 0;
};

Pool &pool() {
    static Pool *p = new Pool();   // never destroyed: blocks may be freed during interpreter exit
    return *p;
}

size_t size_class(size_t n) {
    if (n <= 512) return 512;
    int top = 63 - __builtin_clzll((unsigned long long)(n - 1));   // 2^top < n <= 2^(top+1)
    size_t step = (size_t)1 << (top - 1);                            // quarter of 2^(top+1)
    return (n + step - 1) / step * step;
}

// cudaFree every cached block; the caller holds the lock.
int release_cached(Pool &p) {
    for (auto &entry : p.free_lists) {
        for (void *block : entry.second) {
            NNC_CHECK(cudaFree(block));
            p.cached -= entry.first;
        }
        entry.second.clear();
    }
    p.free_lists.clear();
    return NNCORE_CUDA_OK;
}

}  // namespace

extern "C" int nncore_cuda_malloc(void **ptr, size_t nbytes) {
    *ptr = nullptr;
    if (nbytes == 0) return NNCORE_CUDA_OK;
    size_t cls = size_class(nbytes);
    Pool &p = pool();
    std::lock_guard<std::mutex> guard(p.lock);
    auto it = p.free_lists.find(cls);
    void *block = nullptr;
    if (it != p.free_lists.end() && !it->second.empty()) {
        block = it->second.back();
        it->second.pop_back();
        p.cached -= cls;
    } else {
        cudaError_t err = cudaMalloc(&block, cls);
        if (err == cudaErrorMemoryAllocation) {
            (void)cudaGetLastError();
            NNC_TRY(release_cached(p));
            err = cudaMalloc(&block, cls);
        }
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            return nnc_set_error(err == cudaErrorMemoryAllocation ? NNCORE_CUDA_ERR_OOM
                                                                  : NNCORE_CUDA_ERR_CUDA,
                                 "CUDA error %s: %s (cudaMalloc of %zu bytes; %zu allocated, "
                                 "%zu cached)", cudaGetErrorName(err), cudaGetErrorString(err),
                                 cls, p.allocated, p.cached);
        }
    }
    p.live[block] = cls;
    p.allocated += cls;
    if (p.allocated > p.peak) p.peak = p.allocated;
    *ptr = block;
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_free(void *ptr) {
    if (ptr == nullptr) return NNCORE_CUDA_OK;
    Pool &p = pool();
    std::lock_guard<std::mutex> guard(p.lock);
    auto it = p.live.find(ptr);
    if (it == p.live.end())
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "nncore_cuda_free: %p was not allocated "
                             "by nncore (or was freed twice)", ptr);
    size_t cls = it->second;
    p.live.erase(it);
    p.allocated -= cls;
    p.free_lists[cls].push_back(ptr);
    p.cached += cls;
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_empty_cache(void) {
    Pool &p = pool();
    std::lock_guard<std::mutex> guard(p.lock);
    return release_cached(p);
}

extern "C" void nncore_cuda_memory_stats(size_t *allocated, size_t *peak, size_t *reserved) {
    Pool &p = pool();
    std::lock_guard<std::mutex> guard(p.lock);
    *allocated = p.allocated;
    *peak = p.peak;
    *reserved = p.allocated + p.cached;
}

extern "C" void nncore_cuda_reset_peak(void) {
    Pool &p = pool();
    std::lock_guard<std::mutex> guard(p.lock);
    p.peak = p.allocated;
}

// -------------------------------------------------------------------------------- copies
extern "C" int nncore_cuda_copy_h2d(void *dst, const void *src, size_t nbytes) {
    if (nbytes == 0) return NNCORE_CUDA_OK;
    // Async on the default stream: it keeps stream order, and from pageable memory it returns
    // once the source is staged, without the stream sync that cudaMemcpy does first (so the
    // host keeps queueing work while earlier kernels run).
    NNC_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, 0));
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_copy_d2h(void *dst, const void *src, size_t nbytes) {
    if (nbytes == 0) return NNCORE_CUDA_OK;
    NNC_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_copy_d2d(void *dst, const void *src, size_t nbytes) {
    if (nbytes == 0) return NNCORE_CUDA_OK;
    NNC_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, 0));
    return NNCORE_CUDA_OK;
}

extern "C" int nncore_cuda_memset_zero(void *dst, size_t nbytes) {
    if (nbytes == 0) return NNCORE_CUDA_OK;
    NNC_CHECK(cudaMemsetAsync(dst, 0, nbytes, 0));
    return NNCORE_CUDA_OK;
}
