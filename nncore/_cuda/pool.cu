// pool.cu: 2-D max and average pooling (NCHW), forward and backward (the semantics of
// nncore/_kernels/pool.pyx, i.e. PyTorch's).
// Shapes: x/dinp (N, C, H, W), out/dout/argmax (N, C, OH, OW); P = N*C planes. argmax
// (int64) holds the flat index ih*W + iw of the chosen input in its plane. Kernel KH,KW,
// stride sh,sw, padding ph,pw, dilation dh,dw. OUT buffers are overwritten (=).
// Max pooling never picks a padded cell; a later element wins when it is larger or NaN.
// Average pooling divides by the window clipped to the padded input (count_include_pad), or
// to the real input, or by divisor_override.
// Forward: one thread per output. Backward: one thread per INPUT element, gathering from the
// outputs whose window holds it, in increasing output order (the CPU's order): no atomics,
// the same bits on every run. Max backward without the window geometry falls back to an
// atomicAdd scatter (exact when windows do not overlap).
#include "common.cuh"

namespace {

using Geo = nncore_cuda_pool_geom;

template <typename T>
__global__ void maxpool_forward_kernel(T *out, int64_t *argmax, const T *x, Geo g) {
    const int64_t osz = g.OH * g.OW, isz = g.H * g.W;
    NNC_GRID_STRIDE(e, g.P * osz) {
        int64_t p = e / osz, o = e % osz, oh = o / g.OW, ow = o % g.OW;
        int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
        const T *plane = x + p * isz;
        T best = -INFINITY;
        int64_t bi = -1;
        for (int64_t kh = 0; kh < g.KH; kh++) {
            int64_t ih = h0 + kh * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t kw = 0; kw < g.KW; kw++) {
                int64_t iw = w0 + kw * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                T v = plane[ih * g.W + iw];
                if (bi < 0 || v > best || v != v) {
                    best = v;
                    bi = ih * g.W + iw;
                }
            }
        }
        out[e] = best;
        argmax[e] = bi;
    }
}

// [first, last] outputs along one axis whose window (stride s, pad p, dilation d, size k)
// has a tap on input i: o * s - p + t * d == i for some tap t. Visits taps from the last one
// down, i.e. outputs in increasing order.
template <typename T, typename F>
__device__ __forceinline__ void for_windows(int64_t i, int64_t k, int64_t s, int64_t p,
                                            int64_t d, int64_t O, F f) {
    for (int64_t t = k - 1; t >= 0; t--) {
        int64_t num = i + p - t * d;
        if (num < 0 || num % s != 0) continue;
        int64_t o = num / s;
        if (o < O) f(o);
    }
}

template <typename T>
__global__ void maxpool_backward_gather_kernel(T *dinp, const T *dout, const int64_t *argmax,
                                               Geo g) {
    const int64_t osz = g.OH * g.OW, isz = g.H * g.W;
    NNC_GRID_STRIDE(e, g.P * isz) {
        int64_t p = e / isz, j = e % isz, ih = j / g.W, iw = j % g.W;
        const T *dp = dout + p * osz;
        const int64_t *ap = argmax + p * osz;
        T s = T(0);
        for_windows<T>(ih, g.KH, g.sh, g.ph, g.dh, g.OH, [&](int64_t oh) {
            for_windows<T>(iw, g.KW, g.sw, g.pw, g.dw, g.OW, [&](int64_t ow) {
                int64_t o = oh * g.OW + ow;
                if (ap[o] == j) s += dp[o];
            });
        });
        dinp[e] = s;
    }
}

template <typename T>
__global__ void maxpool_backward_scatter_kernel(T *dinp, const T *dout, const int64_t *argmax,
                                                Geo g) {
    const int64_t osz = g.OH * g.OW, isz = g.H * g.W;
    NNC_GRID_STRIDE(e, g.P * osz) {
        int64_t j = argmax[e];
        if (j >= 0 && j < isz) atomicAdd(&dinp[(e / osz) * isz + j], dout[e]);
    }
}

struct Window {
    int64_t h0, h1, w0, w1;
    double div;
};

__device__ __forceinline__ Window avg_window(const Geo &g, int64_t oh, int64_t ow) {
    Window r;
    int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    int64_t he = min(hs + g.KH, g.H + g.ph), we = min(ws + g.KW, g.W + g.pw);
    int64_t pool = (he - hs) * (we - ws);
    r.h0 = max(hs, (int64_t)0);
    r.w0 = max(ws, (int64_t)0);
    r.h1 = min(he, g.H);
    r.w1 = min(we, g.W);
    r.div = g.divisor > 0 ? (double)g.divisor
            : g.count_include_pad ? (double)pool : (double)((r.h1 - r.h0) * (r.w1 - r.w0));
    return r;
}

template <typename T>
__global__ void avgpool_forward_kernel(T *out, const T *x, Geo g) {
    const int64_t osz = g.OH * g.OW, isz = g.H * g.W;
    NNC_GRID_STRIDE(e, g.P * osz) {
        int64_t p = e / osz, o = e % osz;
        Window w = avg_window(g, o / g.OW, o % g.OW);
        if (w.h0 >= w.h1 || w.w0 >= w.w1) { out[e] = T(0); continue; }
        double s = 0;
        for (int64_t ih = w.h0; ih < w.h1; ih++)
            for (int64_t iw = w.w0; iw < w.w1; iw++) s += (double)x[p * isz + ih * g.W + iw];
        out[e] = (T)(s / w.div);
    }
}

template <typename T>
__global__ void avgpool_backward_kernel(T *dinp, const T *dout, Geo g) {
    const int64_t osz = g.OH * g.OW, isz = g.H * g.W;
    NNC_GRID_STRIDE(e, g.P * isz) {
        int64_t p = e / isz, j = e % isz, ih = j / g.W, iw = j % g.W;
        T s = T(0);
        // an output's window covers input rows [oh*sh - ph, oh*sh - ph + KH) (clipped)
        for_windows<T>(ih, g.KH, g.sh, g.ph, 1, g.OH, [&](int64_t oh) {
            for_windows<T>(iw, g.KW, g.sw, g.pw, 1, g.OW, [&](int64_t ow) {
                Window w = avg_window(g, oh, ow);
                if (ih >= w.h0 && ih < w.h1 && iw >= w.w0 && iw < w.w1)
                    s += (T)(dout[p * osz + oh * g.OW + ow] / w.div);
            });
        });
        dinp[e] = s;
    }
}

int check(const Geo *g, const char *who) {
    if (g->P < 0 || g->H < 0 || g->W < 0 || g->OH < 0 || g->OW < 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: negative size", who);
    return NNCORE_CUDA_OK;
}

int check_window(const Geo *g, const char *who) {
    if (g->KH <= 0 || g->KW <= 0 || g->sh <= 0 || g->sw <= 0 || g->dh <= 0 || g->dw <= 0)
        return nnc_set_error(NNCORE_CUDA_ERR_VALUE, "%s: invalid window geometry", who);
    return check(g, who);
}

}  // namespace

extern "C" int nncore_cuda_maxpool2d_forward(int dtype, void *out, int64_t *argmax,
                                             const void *x, const nncore_cuda_pool_geom *g) {
    NNC_TRY(check_window(g, "maxpool2d_forward"));
    const int64_t n = g->P * g->OH * g->OW;
    if (n == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "maxpool2d_forward", [&](auto tag) {
        using T = decltype(tag);
        maxpool_forward_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)out, argmax,
                                                                  (const T *)x, *g);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_maxpool2d_backward(int dtype, void *dinp, const void *dout,
                                              const int64_t *argmax,
                                              const nncore_cuda_pool_geom *g, int with_window) {
    NNC_TRY(with_window ? check_window(g, "maxpool2d_backward") : check(g, "maxpool2d_backward"));
    const int64_t ni = g->P * g->H * g->W, no = g->P * g->OH * g->OW;
    if (ni == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "maxpool2d_backward", [&](auto tag) {
        using T = decltype(tag);
        if (with_window) {
            maxpool_backward_gather_kernel<T><<<nnc_blocks(ni), NNC_THREADS>>>(
                (T *)dinp, (const T *)dout, argmax, *g);
        } else {
            NNC_TRY(nncore_cuda_memset_zero(dinp, (size_t)ni * sizeof(T)));
            if (no > 0)
                maxpool_backward_scatter_kernel<T><<<nnc_blocks(no), NNC_THREADS>>>(
                    (T *)dinp, (const T *)dout, argmax, *g);
        }
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_avgpool2d_forward(int dtype, void *out, const void *x,
                                             const nncore_cuda_pool_geom *g) {
    NNC_TRY(check_window(g, "avgpool2d_forward"));
    const int64_t n = g->P * g->OH * g->OW;
    if (n == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "avgpool2d_forward", [&](auto tag) {
        using T = decltype(tag);
        avgpool_forward_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)out, (const T *)x, *g);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}

extern "C" int nncore_cuda_avgpool2d_backward(int dtype, void *dinp, const void *dout,
                                              const nncore_cuda_pool_geom *g) {
    NNC_TRY(check_window(g, "avgpool2d_backward"));
    const int64_t n = g->P * g->H * g->W;
    if (n == 0) return NNCORE_CUDA_OK;
    return NNC_DISPATCH(dtype, "avgpool2d_backward", [&](auto tag) {
        using T = decltype(tag);
        avgpool_backward_kernel<T><<<nnc_blocks(n), NNC_THREADS>>>((T *)dinp,
                                                                   (const T *)dout, *g);
        NNC_LAUNCHED();
        return (int)NNCORE_CUDA_OK;
    });
}
