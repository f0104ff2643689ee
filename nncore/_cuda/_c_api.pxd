# _c_api.pxd: Cython declarations of the C API in nncore_cuda.h (one line per C function, in
# the header's order), cimported by _ext.pyx.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "nncore_cuda.h" nogil:
    int NNCORE_CUDA_F32, NNCORE_CUDA_F64, NNCORE_CUDA_I64
    int NNCORE_CUDA_OK, NNCORE_CUDA_ERR_CUDA, NNCORE_CUDA_ERR_OOM, NNCORE_CUDA_ERR_INDEX
    int NNCORE_CUDA_ERR_VALUE
    ctypedef struct nncore_cuda_conv_geom:
        int64_t N, C, H, W, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G
    ctypedef struct nncore_cuda_pool_geom:
        int64_t P, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw
        int64_t count_include_pad, divisor
    const char *nncore_cuda_last_error()
    int nncore_cuda_device_count(int *count)
    int nncore_cuda_device_name(int device, char *buf, int buflen)
    int nncore_cuda_set_device(int device)
    int nncore_cuda_runtime_version(int *version)
    int nncore_cuda_synchronize()
    int nncore_cuda_malloc(void **ptr, size_t nbytes)
    int nncore_cuda_free(void *ptr)
    int nncore_cuda_empty_cache()
    void nncore_cuda_memory_stats(size_t *allocated, size_t *peak, size_t *reserved)
    void nncore_cuda_reset_peak()
    int nncore_cuda_copy_h2d(void *dst, const void *src, size_t nbytes)
    int nncore_cuda_copy_d2h(void *dst, const void *src, size_t nbytes)
    int nncore_cuda_copy_d2d(void *dst, const void *src, size_t nbytes)
    int nncore_cuda_memset_zero(void *dst, size_t nbytes)
    int nncore_cuda_gemm(int dtype, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                         double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                         double beta, void *C, int64_t ldc, const void *bias, int act)
    int nncore_cuda_gemm_batched(int dtype, int trans_a, int trans_b, int64_t Bt, int64_t M,
                                 int64_t N, int64_t K, const void *A, int64_t lda,
                                 int64_t stride_a, const void *B, int64_t ldb,
                                 int64_t stride_b, void *C, int64_t ldc, int64_t stride_c)
    int nncore_cuda_activation_forward(int dtype, int op, void *y, const void *x, int64_t n,
                                       double p)
    int nncore_cuda_activation_backward(int dtype, int op, void *dx, const void *dout,
                                        const void *cache, int64_t n, double p)
    int nncore_cuda_binary(int dtype, int op, void *out, const void *a, const void *b,
                           int64_t n)
    int nncore_cuda_axpby(int dtype, void *out, double alpha, const void *x, double beta,
                          const void *y, int64_t n)
    int nncore_cuda_fill(int dtype, void *out, double value, int64_t n)
    int nncore_cuda_sum_rows(int dtype, void *out, const void *x, int64_t M, int64_t N)
    int nncore_cuda_affine(int dtype, void *out, double alpha, const void *x, double beta,
                           int64_t n)
    int nncore_cuda_cast(int dtype_out, void *out, int dtype_in, const void *x, int64_t n)
    int nncore_cuda_sum_all(int dtype, void *out, void *scratch, const void *x, int64_t n,
                            int square)
    int nncore_cuda_sum_all_scratch_size()
    int nncore_cuda_dropout(int dtype, void *out, const void *x, int64_t n, uint64_t seed,
                            uint64_t thr, double scale, int64_t G)
    int nncore_cuda_cross_entropy_forward(int dtype, void *probs, void *loss,
                                          const void *logits, const int64_t *target,
                                          int64_t N, int64_t C, int64_t ignore_index,
                                          double label_smoothing, int reduction,
                                          int64_t host_count, int64_t *count,
                                          int64_t *bad_pos, int64_t *bad_value)
    int nncore_cuda_cross_entropy_backward(int dtype, void *dlogits, const void *probs,
                                           const int64_t *target, const void *dloss,
                                           double scale, int64_t N, int64_t C,
                                           int64_t ignore_index, double label_smoothing,
                                           int reduction, int64_t host_count,
                                           int64_t *bad_pos, int64_t *bad_value)
    int nncore_cuda_conv2d_forward(int dtype, void *out, const void *inp, const void *weight,
                                   const void *bias, const nncore_cuda_conv_geom *g)
    int nncore_cuda_conv2d_backward(int dtype, void *dinp, void *dweight, void *dbias,
                                    const void *dout, const void *inp, const void *weight,
                                    const nncore_cuda_conv_geom *g)
    int nncore_cuda_maxpool2d_forward(int dtype, void *out, int64_t *argmax, const void *x,
                                      const nncore_cuda_pool_geom *g)
    int nncore_cuda_maxpool2d_backward(int dtype, void *dinp, const void *dout,
                                       const int64_t *argmax, const nncore_cuda_pool_geom *g,
                                       int with_window)
    int nncore_cuda_avgpool2d_forward(int dtype, void *out, const void *x,
                                      const nncore_cuda_pool_geom *g)
    int nncore_cuda_avgpool2d_backward(int dtype, void *dinp, const void *dout,
                                       const nncore_cuda_pool_geom *g)
    int nncore_cuda_lstm_pointwise_forward(int dtype, void *gates, const void *c_prev,
                                           void *c, void *tc, void *h, int64_t B, int64_t H)
    int nncore_cuda_lstm_pointwise_backward(int dtype, void *dgates, void *dc, const void *dh,
                                            const void *dout, const void *gates,
                                            const void *c_prev, const void *tc, int64_t B,
                                            int64_t H)
    int nncore_cuda_gru_pointwise_forward(int dtype, void *gates, const void *gh,
                                          const void *h_prev, void *h, int64_t B, int64_t H)
    int nncore_cuda_gru_pointwise_backward(int dtype, void *dgi, void *dgh, void *dh,
                                           const void *dout, const void *gates, const void *gh,
                                           const void *h_prev, int64_t B, int64_t H)
    int nncore_cuda_embedding_forward(int dtype, void *out, const int64_t *ids,
                                      const void *weight, int64_t N, int64_t V, int64_t D,
                                      int host_checked, int64_t *bad_pos, int64_t *bad_value)
    int nncore_cuda_embedding_backward(int dtype, void *dweight, const void *dout,
                                       const int64_t *order, const int64_t *starts, int64_t V,
                                       int64_t D, int64_t padding_idx, int scale_by_freq)
    int nncore_cuda_batch_norm_forward(int dtype, void *out, double *save_mean,
                                       double *save_invstd, void *running_mean,
                                       void *running_var, const void *inp, const void *weight,
                                       const void *bias, int64_t N, int64_t C, int64_t S,
                                       int training, int update, double momentum, double eps)
    int nncore_cuda_batch_norm_backward(int dtype, void *dinp, void *dweight, void *dbias,
                                        const void *dout, const void *inp,
                                        const double *save_mean, const double *save_invstd,
                                        const void *weight, int64_t N, int64_t C, int64_t S,
                                        int training)
    int nncore_cuda_sgd_step(int dtype, void *param, const void *grad, void *momentum_buf,
                             int64_t n, double lr, double momentum, double dampening,
                             double weight_decay, int nesterov, int maximize, int first_step)
    int nncore_cuda_adam_step(int dtype, void *param, const void *grad, void *exp_avg,
                              void *exp_avg_sq, void *max_exp_avg_sq, int64_t n, double lr,
                              double beta1, double beta2, double eps, double weight_decay,
                              int amsgrad, int maximize, int decoupled, double step_size,
                              double bc2_sqrt)
