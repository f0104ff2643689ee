/* nncore_cuda.h: the C API of nncore's CUDA kernels (the .cu files beside it), wrapped by
 * _ext.pyx.
 *
 * Conventions (the same as the CPU kernels in nncore/_kernels):
 *   - every pointer named after an array is a DEVICE pointer, C-contiguous, of the element
 *     type given by `dtype` (NNCORE_CUDA_F32 or NNCORE_CUDA_F64); ids/targets/argmax are int64;
 *     batch-norm statistics (save_mean, save_invstd) are always double.
 *   - OUT buffers are overwritten (=), never accumulated; optimizer steps and running
 *     statistics are updated in place, as on the CPU.
 *   - every function returns NNCORE_CUDA_OK (0) or an error code; the message (with the CUDA
 *     error string where CUDA failed) is nncore_cuda_last_error() of the calling thread.
 *   - all work is queued on the default stream; a host<->device copy waits for it.
 * Shape letters: see the header comment of each .cu file (they match the CPU .pyx files).
 */
#ifndef NNCORE_CUDA_H
#define NNCORE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { NNCORE_CUDA_F32 = 0, NNCORE_CUDA_F64 = 1, NNCORE_CUDA_I64 = 2 };  /* I64: cast only */

enum {
    NNCORE_CUDA_OK = 0,
    NNCORE_CUDA_ERR_CUDA = 1,   /* a CUDA call failed: message has the CUDA error string */
    NNCORE_CUDA_ERR_OOM = 2,    /* cudaMalloc failed even after emptying the cache */
    NNCORE_CUDA_ERR_INDEX = 3,  /* a label / token id out of range: see bad_pos, bad_value */
    NNCORE_CUDA_ERR_VALUE = 4   /* a bad argument (dtype code, negative size, ...) */
};

/* ------------------------------------------------------------------ runtime (runtime.cu) */
const char *nncore_cuda_last_error(void);
int nncore_cuda_device_count(int *count);          /* error (e.g. no driver) -> count 0 */
int nncore_cuda_device_name(int device, char *buf, int buflen);
int nncore_cuda_set_device(int device);
int nncore_cuda_runtime_version(int *version);
int nncore_cuda_synchronize(void);

/* Caching allocator: blocks are rounded up to a size class (4 classes per power of two,
 * at least 512 bytes) and kept on a per-class free list when freed; cudaFree runs only in
 * empty_cache (or when cudaMalloc fails, which empties the cache and retries once). */
int nncore_cuda_malloc(void **ptr, size_t nbytes);  /* nbytes == 0 -> *ptr = NULL */
int nncore_cuda_free(void *ptr);                    /* NULL is a no-op */
int nncore_cuda_empty_cache(void);
void nncore_cuda_memory_stats(size_t *allocated, size_t *peak, size_t *reserved);
void nncore_cuda_reset_peak(void);

int nncore_cuda_copy_h2d(void *dst, const void *src, size_t nbytes);
int nncore_cuda_copy_d2h(void *dst, const void *src, size_t nbytes);
int nncore_cuda_copy_d2d(void *dst, const void *src, size_t nbytes);
int nncore_cuda_memset_zero(void *dst, size_t nbytes);

/* ------------------------------------------------------------------------ GEMM (gemm.cu) */
enum { NNCORE_CUDA_ACT_NONE = 0, NNCORE_CUDA_ACT_RELU = 1, NNCORE_CUDA_ACT_GELU = 2,
       NNCORE_CUDA_ACT_GELU_TANH = 3 };

/* C (M, N) = act(alpha * op(A) @ op(B) + beta * C + bias); op(A) (M, K), op(B) (K, N);
 * row-major with leading dimensions lda, ldb, ldc; C is not read when beta == 0; bias (N,)
 * or NULL. */
int nncore_cuda_gemm(int dtype, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                     double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                     double beta, void *C, int64_t ldc, const void *bias, int act);
/* Bt independent products: A + i*stride_a, ... (strides in elements), beta = 0. */
int nncore_cuda_gemm_batched(int dtype, int trans_a, int trans_b, int64_t Bt, int64_t M,
                             int64_t N, int64_t K, const void *A, int64_t lda, int64_t stride_a,
                             const void *B, int64_t ldb, int64_t stride_b, void *C, int64_t ldc,
                             int64_t stride_c);

/* ----------------------------------------------- elementwise / activations (activation.cu) */
enum { NNCORE_CUDA_RELU = 0, NNCORE_CUDA_LEAKY_RELU = 1, NNCORE_CUDA_SIGMOID = 2,
       NNCORE_CUDA_TANH = 3, NNCORE_CUDA_GELU = 4, NNCORE_CUDA_GELU_TANH = 5 };
/* y = f(x) (n elements); p: negative slope of leaky relu. */
int nncore_cuda_activation_forward(int dtype, int op, void *y, const void *x, int64_t n,
                                   double p);
/* dx = dout * f'(.) from `cache`: the output y for relu/sigmoid/tanh, the input x for leaky
 * relu and both GELUs (the same caches as activation.pyx). */
int nncore_cuda_activation_backward(int dtype, int op, void *dx, const void *dout,
                                    const void *cache, int64_t n, double p);

/* elementwise.cu */
enum { NNCORE_CUDA_ADD = 0, NNCORE_CUDA_SUB = 1, NNCORE_CUDA_MUL = 2, NNCORE_CUDA_DIV = 3 };
int nncore_cuda_binary(int dtype, int op, void *out, const void *a, const void *b, int64_t n);
int nncore_cuda_axpby(int dtype, void *out, double alpha, const void *x, double beta,
                      const void *y, int64_t n);      /* out = alpha x + beta y (y may be NULL) */
int nncore_cuda_fill(int dtype, void *out, double value, int64_t n);
int nncore_cuda_sum_rows(int dtype, void *out, const void *x, int64_t M, int64_t N);
                                                      /* out (N,) = column sums of x (M, N) */
int nncore_cuda_affine(int dtype, void *out, double alpha, const void *x, double beta,
                       int64_t n);                    /* out = alpha x + beta */
int nncore_cuda_cast(int dtype_out, void *out, int dtype_in, const void *x, int64_t n);
/* out (0-d) = sum of x (or of x*x when square); scratch holds
 * nncore_cuda_sum_all_scratch_size() doubles. Deterministic (fixed grid and tree). */
int nncore_cuda_sum_all(int dtype, void *out, void *scratch, const void *x, int64_t n,
                        int square);
int nncore_cuda_sum_all_scratch_size(void);

/* ------------------------------------------------------------------------ dropout.cu */
/* out = x * scale where splitmix64(seed, i / G) >> 11 >= thr, else 0 (the CPU kernel's mask) */
int nncore_cuda_dropout(int dtype, void *out, const void *x, int64_t n, uint64_t seed,
                        uint64_t thr, double scale, int64_t G);

/* ---------------------------------------------------------- cross-entropy (loss.cu) */
enum { NNCORE_CUDA_RED_NONE = 0, NNCORE_CUDA_RED_MEAN = 1, NNCORE_CUDA_RED_SUM = 2 };
/* probs (N, C) = softmax(logits); loss_rows (N,) when reduction == NONE, else loss (0-d).
 * Targets are checked first (one device sync): on a target neither ignore_index nor in
 * [0, C) nothing is computed, *bad_pos is its row and *bad_value its value, and ERR_INDEX is
 * returned. *count receives the number of non-ignored rows. host_count >= 0 says the caller
 * checked the targets on the host and counted host_count non-ignored rows: no check, no sync. */
int nncore_cuda_cross_entropy_forward(int dtype, void *probs, void *loss, const void *logits,
                                      const int64_t *target, int64_t N, int64_t C,
                                      int64_t ignore_index, double label_smoothing,
                                      int reduction, int64_t host_count, int64_t *count,
                                      int64_t *bad_pos, int64_t *bad_value);
/* dlogits (N, C) = g_i (probs - (1-eps) onehot - eps/C), 0 on ignored rows.
 * g_i = scale * (dloss == NULL ? 1 : reduction == NONE ? dloss[i] : dloss[0]) / d, where d
 * is the non-ignored row count for MEAN (nan when 0) and 1 otherwise. Targets and
 * host_count as in the forward. */
int nncore_cuda_cross_entropy_backward(int dtype, void *dlogits, const void *probs,
                                       const int64_t *target, const void *dloss, double scale,
                                       int64_t N, int64_t C, int64_t ignore_index,
                                       double label_smoothing, int reduction,
                                       int64_t host_count, int64_t *bad_pos,
                                       int64_t *bad_value);

/* ------------------------------------------------------------------------ conv (conv.cu) */
typedef struct {
    int64_t N, C, H, W, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G;
} nncore_cuda_conv_geom;
/* out (N, OC, OH, OW) = conv2d(inp (N, C, H, W), weight (OC, C/G, KH, KW)) + bias (OC,)? */
int nncore_cuda_conv2d_forward(int dtype, void *out, const void *inp, const void *weight,
                               const void *bias, const nncore_cuda_conv_geom *g);
/* Each of dinp, dweight, dbias may be NULL (not wanted). */
int nncore_cuda_conv2d_backward(int dtype, void *dinp, void *dweight, void *dbias,
                                const void *dout, const void *inp, const void *weight,
                                const nncore_cuda_conv_geom *g);

/* ------------------------------------------------------------------------ pool (pool.cu) */
typedef struct {
    int64_t P, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
    int64_t count_include_pad, divisor;   /* avg only; divisor > 0: divisor_override */
} nncore_cuda_pool_geom;
int nncore_cuda_maxpool2d_forward(int dtype, void *out, int64_t *argmax, const void *x,
                                  const nncore_cuda_pool_geom *g);
/* with_window: g has the forward's kernel/stride/padding/dilation -> a deterministic gather;
 * else only P, H, W, OH, OW are used and dout is scattered with atomicAdd. */
int nncore_cuda_maxpool2d_backward(int dtype, void *dinp, const void *dout,
                                   const int64_t *argmax, const nncore_cuda_pool_geom *g,
                                   int with_window);
int nncore_cuda_avgpool2d_forward(int dtype, void *out, const void *x,
                                  const nncore_cuda_pool_geom *g);
int nncore_cuda_avgpool2d_backward(int dtype, void *dinp, const void *dout,
                                   const nncore_cuda_pool_geom *g);

/* ------------------------------------------------------------------- LSTM / GRU (rnn.cu) */
/* LSTM step, B rows, gates (B, 4H) in the order i, f, g, o: pre-activations on entry,
 * activated on exit (the backward cache); c = f c_prev + i g, tc = tanh(c), h = o tc. */
int nncore_cuda_lstm_pointwise_forward(int dtype, void *gates, const void *c_prev, void *c,
                                       void *tc, void *h, int64_t B, int64_t H);
/* dH = dh + dout (dout may be NULL); dC = dc + dH o (1 - tc^2); dgates (B, 4H) = gradient of
 * the pre-activations; dc is updated in place to dC f (the gradient reaching c_prev). */
int nncore_cuda_lstm_pointwise_backward(int dtype, void *dgates, void *dc, const void *dh,
                                        const void *dout, const void *gates,
                                        const void *c_prev, const void *tc, int64_t B,
                                        int64_t H);
/* GRU step, gates (B, 3H) in the order r, z, n: x W_ih^T + b_ih on entry, activated r, z, n
 * on exit; gh (B, 3H) = h_prev W_hh^T + b_hh; h = (1 - z) n + z h_prev. */
int nncore_cuda_gru_pointwise_forward(int dtype, void *gates, const void *gh,
                                      const void *h_prev, void *h, int64_t B, int64_t H);
/* dH = dh + dout (dout may be NULL); dgi, dgh (B, 3H) gradients of the x- and h-side
 * pre-activations; dh is updated in place to dH z (the caller adds dgh @ W_hh). */
int nncore_cuda_gru_pointwise_backward(int dtype, void *dgi, void *dgh, void *dh,
                                       const void *dout, const void *gates, const void *gh,
                                       const void *h_prev, int64_t B, int64_t H);

/* ------------------------------------------------------------- embedding (embedding.cu) */
/* out (N, D) = weight[ids]; ids checked against [0, V) first (ERR_INDEX, as cross-entropy;
 * one device sync) unless host_checked says the caller checked them on the host. */
int nncore_cuda_embedding_forward(int dtype, void *out, const int64_t *ids, const void *weight,
                                  int64_t N, int64_t V, int64_t D, int host_checked,
                                  int64_t *bad_pos, int64_t *bad_value);
/* dweight (V, D): row v = sum of dout[order[j]] for j in [starts[v], starts[v+1]), in that
 * order (the caller groups the ids with a stable sort, so the result is deterministic);
 * row padding_idx (>= 0) is zero; scale_by_freq divides each row by its count. */
int nncore_cuda_embedding_backward(int dtype, void *dweight, const void *dout,
                                   const int64_t *order, const int64_t *starts, int64_t V,
                                   int64_t D, int64_t padding_idx, int scale_by_freq);

/* ---------------------------------------------------------------- batch norm (norm.cu) */
/* inp viewed as (N, C, S); weight/bias may be NULL (1, 0); save_mean/save_invstd double (C,);
 * training with update modifies running_mean/var in place (unbiased variance). */
int nncore_cuda_batch_norm_forward(int dtype, void *out, double *save_mean, double *save_invstd,
                                   void *running_mean, void *running_var, const void *inp,
                                   const void *weight, const void *bias, int64_t N, int64_t C,
                                   int64_t S, int training, int update, double momentum,
                                   double eps);
int nncore_cuda_batch_norm_backward(int dtype, void *dinp, void *dweight, void *dbias,
                                    const void *dout, const void *inp, const double *save_mean,
                                    const double *save_invstd, const void *weight, int64_t N,
                                    int64_t C, int64_t S, int training);

/* ------------------------------------------------------------- optimizers (optim.cu) */
/* torch.optim.SGD (foreach=False) order; momentum_buf NULL when momentum == 0. */
int nncore_cuda_sgd_step(int dtype, void *param, const void *grad, void *momentum_buf,
                         int64_t n, double lr, double momentum, double dampening,
                         double weight_decay, int nesterov, int maximize, int first_step);
/* torch.optim.Adam / AdamW; step_size = lr / (1 - beta1^step), bc2_sqrt = sqrt(1 -
 * beta2^step) computed by the caller in double; max_exp_avg_sq NULL unless amsgrad. */
int nncore_cuda_adam_step(int dtype, void *param, const void *grad, void *exp_avg,
                          void *exp_avg_sq, void *max_exp_avg_sq, int64_t n, double lr,
                          double beta1, double beta2, double eps, double weight_decay,
                          int amsgrad, int maximize, int decoupled, double step_size,
                          double bc2_sqrt);

#ifdef __cplusplus
}
#endif
#endif /* NNCORE_CUDA_H */
