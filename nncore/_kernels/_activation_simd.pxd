# The vector exp / max / sum helpers of activation_simd.h (run-time SIMD level), shared by the
# softmax family (softmax.pyx) and the fused losses (loss.pyx).
cdef extern from "activation_simd.h" nogil:
    double nncore_exp_sub_f32(float *y, const float *x, float shift, Py_ssize_t n, int level)
    double nncore_exp_sub_f64(double *y, const double *x, double shift, Py_ssize_t n,
                              int level)
    double nncore_sum_exp_sub_f32(const float *x, float shift, Py_ssize_t n, int level)
    double nncore_sum_exp_sub_f64(const double *x, double shift, Py_ssize_t n, int level)
    double nncore_sum_f32(const float *x, Py_ssize_t n, int level)
    double nncore_sum_f64(const double *x, Py_ssize_t n, int level)
    float nncore_max_f32(const float *x, Py_ssize_t n, int level)
    double nncore_max_f64(const double *x, Py_ssize_t n, int level)
    void nncore_exp_sub_acc_f32(float *y, const float *x, const float *m, double *s,
                                Py_ssize_t n, int level)
    void nncore_exp_sub_acc_f64(double *y, const double *x, const double *m, double *s,
                                Py_ssize_t n, int level)
