// rnn.cu: the fused pointwise gate passes of LSTM and GRU steps, forward and backward (the
// formulas of nncore/_kernels/rnn_pointwise.h). The projections x W_ih^T and h W_hh^T are
// GEMMs (gemm.cu) run by the caller (nncore/cuda/ops.py) once per sequence / per step.
// Shapes: B batch rows, H hidden size; gate rows are batch-major: LSTM gates (B, 4H) in
// PyTorch's order i, f, g, o; GRU gates (B, 3H) in the order r, z, n. States (B, H).
// OUT buffers are overwritten (=) except the ones marked "in place".
// One thread per (row, hidden unit): each writes its own outputs, so results are exact and
// the same on every run.
#include "common.cuh"

namespace {

// gates: pre-activations in, activated out; c = f c_prev + i g; tc = tanh(c); h = o tc
template <typename T>
__global__ void lstm_forward_kernel(T *gates, const T *c_prev, T *c, T *tc, T *h, int64_t B,
                                    int64_t H) {
    NNC_GRID_STRIDE(e, B * H) {
        int64_t b = e / H, j = e % H;
        T *g = gates + b * 4 * H;
        T gi = nnc_sigmoid(g[j]), gf = nnc_sigmoid(g[H + j]);
        T gg = nnc_tanh(g[2 * H + j]), go = nnc_sigmoid(g[3 * H + j]);
        g[j] = gi;
        g[H + j] = gf;
        g[2 * H + j] = gg;
        g[3 * H + j] = go;
        T cv = gf * c_prev[e] + gi * gg;
        T t = nnc_tanh(cv);
        c[e] = cv;
        tc[e] = t;
        h[e] = go * t;
    }
}

// dH = dh + dout; dC = dc + dH o (1 - tc^2); dc <- dC f (in place)
template <typename T>
__global__ void lstm_backward_kernel(T *dgates, T *dc, const T *dh, const T *dout,
                                     const T *gates, const T *c_prev, const T *tc, int64_t B,
                                     int64_t H) {
    NNC_GRID_STRIDE(e, B * H) {
        int64_t b = e / H, j = e % H;
        const T *g = gates + b * 4 * H;
        T *d = dgates + b * 4 * H;
        T gi = g[j], gf = g[H + j], gg = g[2 * H + j], go = g[3 * H + j], t = tc[e];
        T dH = dout ? dh[e] + dout[e] : dh[e];
        T dC = dc[e] + dH * go * (T(1) - t * t);
        d[j] = dC * gg * (gi * (T(1) - gi));
        d[H + j] = dC * c_prev[e] * (gf * (T(1) - gf));
        d[2 * H + j] = dC * gi * (T(1) - gg * gg);
        d[3 * H + j] = dH * t * (go * (T(1) - go));
        dc[e] = dC * gf;
    }
}

// gates: x W_ih^T + b_ih in, activated r, z, n out; h = n + z (h_prev - n)
template <typename T>
__global__ void gru_forward_kernel(T *gates, const T *gh, const T *h_prev, T *h, int64_t B,
                                   int64_t H) {
    NNC_GRID_STRIDE(e, B * H) {
        int64_t b = e / H, j = e % H;
        T *g = gates + b * 3 * H;
        const T *q = gh + b * 3 * H;
        T r = nnc_sigmoid(g[j] + q[j]), z = nnc_sigmoid(g[H + j] + q[H + j]);
        T n = nnc_tanh(g[2 * H + j] + r * q[2 * H + j]);
        g[j] = r;
        g[H + j] = z;
        g[2 * H + j] = n;
        h[e] = n + z * (h_prev[e] - n);
    }
}

// dH = dh + dout; dgi/dgh: pre-activation gradients; dh <- dH z (in place)
template <typename T>
__global__ void gru_backward_kernel(T *dgi, T *dgh, T *dh, const T *dout, const T *gates,
                                    const T *gh, const T *h_prev, int64_t B, int64_t H) {
    NNC_GRID_STRIDE(e, B * H) {
        int64_t b = e / H, j = e % H, row = b * 3 * H;
        const T *g = gates + row;
        T r = g[j], z = g[H + j], n = g[2 * H + j];
        T dH = dout ? dh[e] + dout[e] : dh[e];
        T dn = dH * (T(1) - z) * (T(1) - n * n);
        T dz = dH * (h_prev[e] - n) * (z * (T(1) - z));
        T dr = dn * gh[row + 2 * H + j] * (r * (T(1) - r));
        dgi[row + j] = dr;
        dgi[row + H + j] = dz;
        dgi[row + 2 * H + j] = dn;
        dgh[row + j] = dr;
        dgh[row + H + j] = dz;
        dgh[row + 2 * H + j] = dn * r;
        dh[e] = dH * z;
    }
}

}  // namespace

#define NNC_RNN_LAUNCH(who, kernel, ...)                                                   \
    do {                                                                                  \
        if (B < 0 || H < 0)                                                               \
            return nnc_set_error(NNCORE_CUDA_ERR_VALUE, who ": negative size");           \
        if (B * H == 0) return NNCORE_CUDA_OK;                                            \
        return NNC_DISPATCH(dtype, who, [&](auto tag) {                                   \
            using T = decltype(tag);                                                      \
            kernel<T><<<nnc_blocks(B * H), NNC_THREADS>>>(__VA_ARGS__, B, H);             \
            NNC_LAUNCHED();                                                               \
            return (int)NNCORE_CUDA_OK;                                                   \
        });                                                                               \
    } while (0)

extern "C" int nncore_cuda_lstm_pointwise_forward(int dtype, void *gates, const void *c_prev,
                                                  void *c, void *tc, void *h, int64_t B,
                                                  int64_t H) {
    NNC_RNN_LAUNCH("lstm_pointwise_forward", lstm_forward_kernel, (T *)gates,
                   (const T *)c_prev, (T *)c, (T *)tc, (T *)h);
}

extern "C" int nncore_cuda_lstm_pointwise_backward(int dtype, void *dgates, void *dc,
                                                   const void *dh, const void *dout,
                                                   const void *gates, const void *c_prev,
                                                   const void *tc, int64_t B, int64_t H) {
    NNC_RNN_LAUNCH("lstm_pointwise_backward", lstm_backward_kernel, (T *)dgates, (T *)dc,
                   (const T *)dh, (const T *)dout, (const T *)gates, (const T *)c_prev,
                   (const T *)tc);
}

extern "C" int nncore_cuda_gru_pointwise_forward(int dtype, void *gates, const void *gh,
                                                 const void *h_prev, void *h, int64_t B,
                                                 int64_t H) {
    NNC_RNN_LAUNCH("gru_pointwise_forward", gru_forward_kernel, (T *)gates, (const T *)gh,
                   (const T *)h_prev, (T *)h);
}

extern "C" int nncore_cuda_gru_pointwise_backward(int dtype, void *dgi, void *dgh, void *dh,
                                                  const void *dout, const void *gates,
                                                  const void *gh, const void *h_prev,
                                                  int64_t B, int64_t H) {
    NNC_RNN_LAUNCH("gru_pointwise_backward", gru_backward_kernel, (T *)dgi, (T *)dgh, (T *)dh,
                   (const T *)dout, (const T *)gates, (const T *)gh, (const T *)h_prev);
}
