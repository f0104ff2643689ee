# conv.pyx: 2-D convolution (cross-correlation, as PyTorch), forward and backward.
#
# Shapes (NCHW): inp (N, C, H, W), weight (OC, C/G, KH, KW), bias (OC,), out (N, OC, OH, OW).
# G groups; Cg = C/G and OCg = OC/G channels per group; CKK = Cg*KH*KW; OHW = OH*OW.
# Padding is zeros and may be asymmetric (top, bottom, left, right) so that "same" padding with
# an even kernel needs no padded copy of the input.
# OUT buffers are overwritten (=), never accumulated.
#
# Algorithm: per sample and group, im2col the group's input into a per-thread buffer
# col (CKK, OHW), then one GEMM with nncore's packed GEMM (gemm.pxd):
#   forward  out_g (OCg, OHW)  = W_g (OCg, CKK) @ col              (+ bias per row)
#   dinp     dcol (CKK, OHW)   = W_g^T @ dout_g, then col2im adds dcol back into dinp
#   dweight  dW_g (OCg, CKK)  += dout_g @ col^T
# A 1x1, stride-1, pad-0 convolution reads the input in place as col (no im2col, no col2im).
# Few channels (float32, AVX-512, stride 1, dilation 1, one group, <= 16 output channels):
# direct convolutions instead (conv_direct.pyx), whose GEMMs would be too thin:
#   forward  up to 8 channels x 16 columns x 2 rows in registers (conv_direct.h), or, when it
#            keeps more lanes busy, 16 channels along the lanes (conv_oclane.h);
#   dinp     (input with <= 16 channels) 16 samples along the lanes (conv_batchlane.h) when
#            the batch has >= 16 samples and the input >= 4 channels, else the row kernel on
#            the zero-padded output gradient with the flipped, channel-swapped kernel;
#   dweight  channels along 16 (or 8) lanes, 8 taps per pass over the pixels (conv_oclane.h).
# 3x3, stride 1, dilation 1, one group, enough channels and output tiles (winograd_ok,
# weight_grad_ok): the forward runs Winograd's F(2x2, 3x3) (conv_winograd.pyx), and so do the
# stride-1 input gradient of >= 32 channels, which conv2d_backward runs as a forward
# convolution, and the weight and bias gradients (conv_winograd.dweight: 16 GEMMs over the
# transformed tiles).
# Workspace is one col (and one dcol) per thread: bounded in the batch size.
#
# Parallelism: the batch is split into one static chunk per thread (GEMMs inside run with
# nthreads=1); a batch smaller than the thread count runs sample by sample with threaded
# GEMMs instead. dweight/dbias: each chunk accumulates into its own partial buffer, reduced in
# chunk order afterwards, so the result is bit-identical for a fixed thread count.
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

import functools

import numpy as np

from . import conv_direct, conv_winograd
from ._checks import check_float_4d, check_same_dtype
from ._conv_geometry import conv2d_output_size, conv2d_sizes  # noqa: F401  (re-exported)
from ._parallel import get_num_threads

from ._simd cimport NNCORE_SIMD_AVX512, nncore_simd_level
from ._types cimport floating
from .gemm cimport dgemm, sgemm

cnp.import_array()


cdef extern from "conv_im2col.h" nogil:
    int NNCORE_CONV_SLACK   # elements im2col may write past the end of col (vector spill)
    ctypedef struct nncore_conv_geom:
        int64_t Cg, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw
    void nncore_im2col_f32(float* col, const float* img, const nncore_conv_geom* g, int level)
    void nncore_im2col_f64(double* col, const double* img, const nncore_conv_geom* g,
                           int level)
    void nncore_col2im_add_f32(float* img, const float* col, const nncore_conv_geom* g,
                               int level)
    void nncore_col2im_add_f64(double* img, const double* col, const nncore_conv_geom* g,
                               int level)
    void nncore_row_sums_f32(float* out, const float* x, int64_t m, int64_t n, int accumulate)
    void nncore_row_sums_f64(double* out, const double* x, int64_t m, int64_t n,
                             int accumulate)


cdef enum:
    # from this many input channels, a stride-1 input gradient runs as a forward convolution
    # of dout (GEMM M = C, K = OC KH KW, then no col2im) rather than W^T @ dout + col2im
    # (M = C KH KW, K = OC). At 2 threads: 32x64x32x32 3x3 -> 64: 14.2 -> 13.5 ms;
    # 64x64x8x8: 2.25 -> 1.81 ms; with 16 channels (64x16x32x32 -> 32) it lost 1-7%.
    TRANSPOSED_FORWARD_MIN_C = 32


cdef struct Geom:
    Py_ssize_t N, C, H, W, OC, OH, OW, KH, KW
    Py_ssize_t sh, sw, pt, pl, dh, dw
    Py_ssize_t G, Cg, OCg, CKK, OHW
    bint direct          # 1x1, stride 1, no padding: the input is its own col matrix
    nncore_conv_geom cg  # the im2col view of the same geometry (conv_im2col.h)
    int level            # SIMD level of the im2col/col2im bodies (simd.h)


cdef inline void _gemm(bint ta, bint tb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                       const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                       floating beta, floating* C, Py_ssize_t ldc, int nthreads) noexcept nogil:
    if floating is float:
        sgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc, NULL, nthreads)
    else:
        dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc, NULL, nthreads)


cdef inline void _im2col(floating* col, const floating* img, const Geom* g) noexcept nogil:
    if floating is float:
        nncore_im2col_f32(col, img, &g.cg, g.level)
    else:
        nncore_im2col_f64(col, img, &g.cg, g.level)


cdef inline void _col2im_add(floating* img, const floating* col, const Geom* g) noexcept nogil:
    if floating is float:
        nncore_col2im_add_f32(img, col, &g.cg, g.level)
    else:
        nncore_col2im_add_f64(img, col, &g.cg, g.level)


cdef inline void _row_sums(floating* out, const floating* x, Py_ssize_t m, Py_ssize_t n,
                           bint accumulate) noexcept nogil:
    if floating is float:
        nncore_row_sums_f32(out, x, m, n, accumulate)
    else:
        nncore_row_sums_f64(out, x, m, n, accumulate)


cdef void _forward_chunk(floating* out, floating* col, const floating* inp,
                         const floating* weight, const floating* bias, const Geom* g,
                         Py_ssize_t lo, Py_ssize_t hi, int inner) noexcept nogil:
    cdef Py_ssize_t n, grp, o, i
    cdef const floating* src
    cdef floating* dst
    cdef floating b
    for n in range(lo, hi):
        for grp in range(g.G):
            src = inp + (n * g.C + grp * g.Cg) * g.H * g.W
            if not g.direct:
                _im2col(col, src, g)
                src = col
            _gemm(False, False, g.OCg, g.OHW, g.CKK, weight + grp * g.OCg * g.CKK, g.CKK,
                  src, g.OHW, 0, out + (n * g.OC + grp * g.OCg) * g.OHW, g.OHW, inner)
        if bias != NULL:
            for o in range(g.OC):
                dst = out + (n * g.OC + o) * g.OHW
                b = bias[o]
                for i in range(g.OHW):
                    dst[i] += b


cdef void _conv_forward(floating* out,          # OUT (N, OC, OH, OW)
                        floating* col,          # SCRATCH (nparts, CKK*OHW + slack)
                        const floating* inp,    # IN (N, C, H, W)
                        const floating* weight, # IN (OC, Cg, KH, KW)
                        const floating* bias,   # IN (OC,) or NULL
                        const Geom* g, int nparts, int inner) noexcept nogil:
    cdef Py_ssize_t chunk = (g.N + nparts - 1) // nparts
    cdef Py_ssize_t colsize = 0 if g.direct else g.CKK * g.OHW + NNCORE_CONV_SLACK
    cdef int t
    if nparts == 1:
        _forward_chunk(out, col, inp, weight, bias, g, 0, g.N, inner)
        return
    for t in prange(nparts, schedule='static', num_threads=nparts):
        _forward_chunk(out, col + t * colsize, inp, weight, bias, g, t * chunk,
                       min(g.N, (t + 1) * chunk), 1)


cdef void _backward_chunk(floating* dinp, floating* dw, floating* db, floating* col,
                          floating* dcol, const floating* dout, const floating* inp,
                          const floating* weight, const Geom* g, Py_ssize_t lo, Py_ssize_t hi,
                          int inner) noexcept nogil:
    """Samples [lo, hi): dinp rows written; dw (OC, CKK) and db (OC,) overwritten with this
    chunk's sums (zeros when the chunk is empty). Any of dinp, dw, db may be NULL."""
    cdef Py_ssize_t n, grp, o, i
    cdef const floating* src
    cdef const floating* dO
    cdef const floating* w
    cdef floating* dimg
    if hi <= lo:
        if dw != NULL:
            memset(dw, 0, g.OC * g.CKK * sizeof(floating))
        if db != NULL:
            memset(db, 0, g.OC * sizeof(floating))
        return
    for n in range(lo, hi):
        for grp in range(g.G):
            dO = dout + (n * g.OC + grp * g.OCg) * g.OHW
            w = weight + grp * g.OCg * g.CKK
            if dw != NULL:
                src = inp + (n * g.C + grp * g.Cg) * g.H * g.W
                if not g.direct:
                    _im2col(col, src, g)
                    src = col
                _gemm(False, True, g.OCg, g.CKK, g.OHW, dO, g.OHW, src, g.OHW,
                      0 if n == lo else 1, dw + grp * g.OCg * g.CKK, g.CKK, inner)
            if dinp != NULL:
                dimg = dinp + (n * g.C + grp * g.Cg) * g.H * g.W
                if g.direct:
                    _gemm(True, False, g.CKK, g.OHW, g.OCg, w, g.CKK, dO, g.OHW, 0, dimg,
                          g.OHW, inner)
                else:
                    _gemm(True, False, g.CKK, g.OHW, g.OCg, w, g.CKK, dO, g.OHW, 0, dcol,
                          g.OHW, inner)
                    memset(dimg, 0, g.Cg * g.H * g.W * sizeof(floating))
                    _col2im_add(dimg, dcol, g)
        if db != NULL:
            _row_sums(db, dout + n * g.OC * g.OHW, g.OC, g.OHW, n != lo)


cdef void _conv_backward(floating* dinp,        # OUT (N, C, H, W) or NULL
                         floating* dweight,     # OUT (OC, Cg, KH, KW) or NULL
                         floating* dbias,       # OUT (OC,) or NULL
                         floating* dw_part,     # SCRATCH (nparts, OC*CKK) (nparts > 1)
                         floating* db_part,     # SCRATCH (nparts, OC) (nparts > 1)
                         floating* col,         # SCRATCH (nparts, CKK*OHW + slack)
                         floating* dcol,        # SCRATCH (nparts, CKK*OHW + slack)
                         const floating* dout,  # IN (N, OC, OH, OW)
                         const floating* inp,   # IN (N, C, H, W)
                         const floating* weight,  # IN (OC, Cg, KH, KW)
                         const Geom* g, int nparts, int inner) noexcept nogil:
    cdef Py_ssize_t chunk = (g.N + nparts - 1) // nparts
    cdef Py_ssize_t colsize = 0 if g.direct else g.CKK * g.OHW + NNCORE_CONV_SLACK
    cdef Py_ssize_t wsize = g.OC * g.CKK, i
    cdef int t
    if nparts == 1:
        _backward_chunk(dinp, dweight, dbias, col, dcol, dout, inp, weight, g, 0, g.N, inner)
        return
    for t in prange(nparts, schedule='static', num_threads=nparts):
        _backward_chunk(dinp, dw_part + t * wsize if dweight != NULL else NULL,
                        db_part + t * g.OC if dbias != NULL else NULL,
                        col + t * colsize, dcol + t * colsize, dout, inp, weight, g,
                        t * chunk, min(g.N, (t + 1) * chunk), 1)
    # reduce the chunk partials in chunk order (deterministic for a fixed thread count)
    if dweight != NULL:
        memcpy(dweight, dw_part, wsize * sizeof(floating))
        for t in range(1, nparts):
            for i in range(wsize):
                dweight[i] += dw_part[t * wsize + i]
    if dbias != NULL:
        memcpy(dbias, db_part, g.OC * sizeof(floating))
        for t in range(1, nparts):
            for i in range(g.OC):
                dbias[i] += db_part[t * g.OC + i]


# ------------------------------------------------------------------------------ wrappers

def _flipped(weight) -> np.ndarray:
    """(C, OC, KH, KW): the kernel flipped in space with its channel axes swapped, the weight
    of the convolution that gives a stride-1 input gradient."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def _geometry(inp, weight, stride, padding, dilation, groups):
    """Validate the arrays and options; return (Geom as dict, dtype). The dict is shared by
    calls with the same shapes and options (callers only read it)."""
    check_float_4d(inp, "input", "conv2d")
    check_float_4d(weight, "weight", "conv2d")
    check_same_dtype(input=inp, weight=weight)
    args = (inp.shape, weight.shape, stride, padding, dilation, groups, nncore_simd_level())
    try:
        return _cached_geometry(*args), inp.dtype
    except TypeError:   # an unhashable option (a list): same checks, no cache
        return _geometry_dict(*args), inp.dtype


def _geometry_dict(in_shape, w_shape, stride, padding, dilation, groups, level) -> dict:
    """The checked sizes (conv2d_sizes) and what the kernels derive from them."""
    sz = conv2d_sizes(in_shape, w_shape, stride, padding, dilation, groups)
    pb, pr = sz.pop("pb"), sz.pop("pr")
    KH, KW, OH, OW, Cg = sz["KH"], sz["KW"], sz["OH"], sz["OW"], sz["Cg"]
    direct = (KH == 1 and KW == 1 and sz["sh"] == 1 and sz["sw"] == 1
              and sz["pt"] + pb + sz["pl"] + pr == 0)
    g = dict(sz, OCg=sz["OC"] // sz["G"], CKK=Cg * KH * KW, OHW=OH * OW, direct=direct,
             level=level)
    g["cg"] = {k: sz[k] for k in ("Cg", "H", "W", "OH", "OW", "KH", "KW", "sh", "sw", "pt",
                                  "pl", "dh", "dw")}
    return g


# a training step asks for the same few geometries every call (6 us each, twice per layer)
_cached_geometry = functools.lru_cache(maxsize=256)(_geometry_dict)


cdef inline void* _ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def _parts(Py_ssize_t N, int nthreads) -> tuple:
    """(nparts, inner): one batch chunk per thread, or threaded GEMMs for tiny batches."""
    if nthreads <= 1 or N <= 1:
        return 1, max(1, nthreads)
    if N >= nthreads:
        return nthreads, 1
    return 1, nthreads


def conv2d_forward(inp, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """out (N, OC, OH, OW) = conv2d(inp (N, C, H, W), weight (OC, C/groups, KH, KW)) + bias.

    padding: int, (ph, pw) or (top, bottom, left, right); zeros. Returns a new array.
    """
    cdef Geom g
    gd, dt = _geometry(inp, weight, stride, padding, dilation, groups)
    g = gd
    inp = np.ascontiguousarray(inp)
    weight = np.ascontiguousarray(weight)
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.shape != (g.OC,):
            raise ValueError(f"conv2d: bias must be an array of shape ({g.OC},), got "
                             f"{getattr(bias, 'shape', type(bias).__name__)}")
        check_same_dtype(input=inp, bias=bias)
        bias = np.ascontiguousarray(bias)
    out = np.empty((g.N, g.OC, g.OH, g.OW), dt)
    if out.size == 0 or g.C == 0:
        out[...] = 0 if bias is None else bias[:, None, None]
        return out
    if g.OC <= 16 and conv_direct.geometry_ok(gd, dt):
        far_bottom, far_right = conv_direct.far_paddings(gd)
        run = conv_direct.run_oc16 if conv_direct.oc16_ok(gd, dt) else conv_direct.run
        run(out, inp, weight, bias, (g.pt, far_bottom, g.pl, far_right), get_num_threads())
        return out
    if conv_winograd.winograd_ok(gd):
        conv_winograd.run(out, inp, weight, bias, g.pt, g.pl, get_num_threads())
        return out
    nparts, inner = _parts(g.N, get_num_threads())
    col = np.empty(0 if g.direct else nparts * (g.CKK * g.OHW + NNCORE_CONV_SLACK), dt)
    cdef void* po = _ptr(out)
    cdef void* pc = _ptr(col)
    cdef void* pi = _ptr(inp)
    cdef void* pw = _ptr(weight)
    cdef void* pb = _ptr(bias)
    cdef int np_ = nparts, inn = inner
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            _conv_forward(<float*>po, <float*>pc, <const float*>pi, <const float*>pw,
                          <const float*>pb, &g, np_, inn)
        else:
            _conv_forward(<double*>po, <double*>pc, <const double*>pi, <const double*>pw,
                          <const double*>pb, &g, np_, inn)
    return out


def conv2d_backward(dout, inp, weight, stride=1, padding=0, dilation=1, groups=1,
                    need_dinp=True, need_dweight=True, need_dbias=True):
    """(dinp, dweight, dbias) of conv2d_forward for `dout` (N, OC, OH, OW); each entry is None
    when not requested. The options must be those of the forward call."""
    cdef Geom g
    gd, dt = _geometry(inp, weight, stride, padding, dilation, groups)
    g = gd
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"conv2d: dout must be a numpy.ndarray, got {type(dout).__name__}")
    check_same_dtype(input=inp, dout=dout)
    if dout.shape != (g.N, g.OC, g.OH, g.OW):
        raise ValueError(f"conv2d_backward: dout shape {dout.shape} != output shape "
                         f"{(g.N, g.OC, g.OH, g.OW)}")
    inp = np.ascontiguousarray(inp)
    weight = np.ascontiguousarray(weight)
    dout = np.ascontiguousarray(dout)
    if g.N == 0 or g.C == 0:
        return (np.zeros(inp.shape, dt) if need_dinp else None,
                np.zeros(weight.shape, dt) if need_dweight else None,
                np.zeros(g.OC, dt) if need_dbias else None)
    # each gradient is allocated by the path that computes it
    dinp = dweight = dbias = None
    pb_, pr_ = conv_direct.far_paddings(gd)
    # a stride-1 input gradient is a convolution of dout zero-padded by (K - 1 - pad) with the
    # kernel flipped and its channel axes swapped (needs pad <= K - 1 on every side)
    tpads = (g.KH - 1 - g.pt, g.KH - 1 - pb_, g.KW - 1 - g.pl, g.KW - 1 - pr_)
    transposable = (g.G == 1 and g.sh == 1 and g.sw == 1 and g.dh == 1 and g.dw == 1
                    and min(tpads) >= 0)
    if need_dinp and g.C <= 16 and conv_direct.geometry_ok(gd, dt) and transposable:
        dinp = np.empty(inp.shape, dt)
        if conv_direct.batchlane_ok(gd):
            conv_direct.dinp_batchlane(dinp, dout, weight, g.pt, g.pl, get_num_threads())
        else:
            conv_direct.run(dinp, dout, _flipped(weight), None, tpads, get_num_threads())
        need_dinp = False
    if (need_dinp and transposable and not g.direct
            and g.C >= TRANSPOSED_FORWARD_MIN_C):
        # as a forward convolution: its GEMM has K = OC KH KW instead of OC, and no col2im
        dinp = conv2d_forward(dout, _flipped(weight), None, padding=tpads)
        need_dinp = False
    if need_dweight and conv_winograd.weight_grad_ok(gd):
        dweight, db = conv_winograd.dweight(dout, inp, g.pt, g.pl, get_num_threads(),
                                            need_dbias)
        if need_dbias:
            dbias = db
        need_dweight = need_dbias = False
    if need_dweight and g.OC <= 16 and conv_direct.geometry_ok(gd, dt):
        dweight, db = conv_direct.dweight_oclane(dout, inp, weight.shape,
                                                 (g.pt, pb_, g.pl, pr_), get_num_threads(),
                                                 need_dbias)
        if need_dbias:
            dbias = db
        need_dweight = need_dbias = False
    if not (need_dinp or need_dweight or need_dbias):
        return dinp, dweight, dbias
    if need_dinp:
        dinp = np.empty(inp.shape, dt)
    if need_dweight:
        dweight = np.empty(weight.shape, dt)
    if need_dbias:
        dbias = np.empty(g.OC, dt)
    nparts, inner = _parts(g.N, get_num_threads())
    ncol = 0 if g.direct else nparts * (g.CKK * g.OHW + NNCORE_CONV_SLACK)
    col = np.empty(ncol if need_dweight else 0, dt)
    dcol = np.empty(ncol if need_dinp else 0, dt)
    dw_part = np.empty(nparts * g.OC * g.CKK if (need_dweight and nparts > 1) else 0, dt)
    db_part = np.empty(nparts * g.OC if (need_dbias and nparts > 1) else 0, dt)
    cdef void* pdi = _ptr(dinp) if need_dinp else NULL
    cdef void* pdw = _ptr(dweight) if need_dweight else NULL
    cdef void* pdb = _ptr(dbias) if need_dbias else NULL
    cdef void* pwp = _ptr(dw_part)
    cdef void* pbp = _ptr(db_part)
    cdef void* pc = _ptr(col)
    cdef void* pdc = _ptr(dcol)
    cdef void* pdo = _ptr(dout)
    cdef void* pi = _ptr(inp)
    cdef void* pw = _ptr(weight)
    cdef int np_ = nparts, inn = inner
    cdef bint f32 = dt == np.float32
    with nogil:
        if f32:
            _conv_backward(<float*>pdi, <float*>pdw, <float*>pdb, <float*>pwp, <float*>pbp,
                           <float*>pc, <float*>pdc, <const float*>pdo, <const float*>pi,
                           <const float*>pw, &g, np_, inn)
        else:
            _conv_backward(<double*>pdi, <double*>pdw, <double*>pdb, <double*>pwp,
                           <double*>pbp, <double*>pc, <double*>pdc, <const double*>pdo,
                           <const double*>pi, <const double*>pw, &g, np_, inn)
    return dinp, dweight, dbias


def dispatched_simd() -> str:
    """The SIMD paths taken: im2col/col2im bodies, and the GEMM the convolution runs on."""
    from .gemm import dispatched_simd as gemm_simd

    level = nncore_simd_level()
    im2col = "avx512" if level >= NNCORE_SIMD_AVX512 else "portable"
    return f"im2col {im2col}; gemm {gemm_simd()}"
