# conv_direct.pyx: the direct few-channel convolution path of conv.pyx (driver of
# conv_direct.h: 8 output channels x 16 columns x 2 rows held in AVX-512 registers).
#
# Shapes: src (N, C, H, W) unpadded; w (OC, C, KH, KW); out (N, OC, OH, OW) with stride 1 and
# dilation 1 on src zero-padded by pads = (top, bottom, left, right); bias (OC,) or None.
# conv.pyx takes this path for float32 on AVX-512, stride 1, dilation 1, one group, not 1x1:
#   forward:         <= 16 output channels;
#   input gradient:  <= 16 input channels, as a direct convolution of dout zero-padded by
#                    (K - 1 - pad) with the kernel flipped and its channel axes swapped.
# OUT is overwritten. Threads own static chunks of the batch; each sample is computed by one
# thread in a fixed order, so results do not depend on the thread count.
from cython.parallel cimport prange
from libc.stdint cimport int64_t

import numpy as np

from ._simd cimport NNCORE_SIMD_AVX512, nncore_simd_level


cdef extern from "conv_direct.h" nogil:
    void nncore_conv_pad_copy_f32(float* dst, const float* src, int64_t C, int64_t H,
                                  int64_t W, int64_t pt, int64_t pb, int64_t pl, int64_t pr)
    int nncore_conv_direct_f32(float* out, const float* inp, const float* wpack,
                               const float* bias, int64_t C, int64_t H, int64_t W, int64_t OC,
                               int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi,
                               int level)


cdef void _sample(float* out, const float* src, float* pad, const float* wpack,
                  const float* bias, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
                  Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
                  Py_ssize_t pr, int level) noexcept nogil:
    if pt + pb + pl + pr > 0:
        nncore_conv_pad_copy_f32(pad, src, C, H, W, pt, pb, pl, pr)
        src = pad
    # rows outside [pt, pt + H) of the padded input are zeros: the kernel skips them
    nncore_conv_direct_f32(out, src, wpack, bias, C, H + pt + pb, W + pl + pr, OC, KH, KW,
                           pt, pt + H, level)


cdef void _run(float* out,            # OUT (N, OC, OH, OW)
               const float* src,      # IN (N, C, H, W), unpadded
               float* pad,            # SCRATCH (nparts, C, H + pt + pb, W + pl + pr)
               const float* wpack,    # IN (ceil(OC/8), C, KH, KW, 8), see conv_direct.h
               const float* bias,     # IN (OC,) or NULL
               Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
               Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
               Py_ssize_t pr, int level, int nparts) noexcept nogil:
    cdef Py_ssize_t Hp = H + pt + pb, Wp = W + pl + pr
    cdef Py_ssize_t osize = OC * (Hp - KH + 1) * (Wp - KW + 1), psize = C * Hp * Wp
    cdef Py_ssize_t chunk = (N + nparts - 1) // nparts, n
    cdef int t
    for t in prange(nparts, schedule='static', num_threads=nparts):
        for n in range(t * chunk, min(N, (t + 1) * chunk)):
            _sample(out + n * osize, src + n * C * H * W, pad + t * psize, wpack, bias,
                    C, H, W, OC, KH, KW, pt, pb, pl, pr, level)


cdef bint _allowed = True


def _set_direct_for_testing(enabled: bool = True) -> bool:
    """Test hook: allow (True) or forbid the direct few-channel path; returns the old setting."""
    global _allowed
    old = _allowed
    _allowed = bool(enabled)
    return old


def geometry_ok(dict g, dt) -> bool:
    """float32 on AVX-512, stride 1, dilation 1, one group, not 1x1 (those read in place);
    `g` is conv.pyx's geometry dict."""
    return (_allowed and dt == np.float32 and g["level"] >= NNCORE_SIMD_AVX512
            and g["G"] == 1 and g["sh"] == 1 and g["sw"] == 1 and g["dh"] == 1
            and g["dw"] == 1 and not g["direct"])


def far_paddings(dict g) -> tuple:
    """(bottom, right) padding of a stride-1, dilation-1 convolution, from its output size."""
    return g["OH"] - 1 + g["KH"] - g["H"] - g["pt"], g["OW"] - 1 + g["KW"] - g["W"] - g["pl"]


def _pack_weights(w) -> np.ndarray:
    """(OC, C, KH, KW) -> (ceil(OC/8), C, KH, KW, 8), zero-padded to whole blocks of 8."""
    OC = w.shape[0]
    nb = (OC + 7) // 8
    padded = np.zeros((nb * 8,) + w.shape[1:], np.float32)
    padded[:OC] = w
    return np.ascontiguousarray(padded.reshape((nb, 8) + w.shape[1:]).transpose(0, 2, 3, 4, 1))


def run(out, src, w, bias, pads, int nthreads) -> None:
    """out (N, OC, OH, OW) = direct conv of src (N, C, H, W) padded by pads = (t, b, l, r);
    all float32 and C-contiguous (conv.pyx checked them)."""
    cdef Py_ssize_t N = src.shape[0], C = src.shape[1], H = src.shape[2], W = src.shape[3]
    cdef Py_ssize_t OC = w.shape[0], KH = w.shape[2], KW = w.shape[3]
    cdef Py_ssize_t pt = pads[0], pb = pads[1], pl = pads[2], pr = pads[3]
    cdef int nparts = max(1, min(nthreads, N)), level = nncore_simd_level()
    cdef float[::1] o = out.reshape(-1)
    cdef const float[::1] s = src.reshape(-1)
    cdef const float[::1] wp = _pack_weights(w).reshape(-1)
    cdef float[::1] pad = np.empty(max(1, nparts * C * (H + pt + pb) * (W + pl + pr)
                                       if pt + pb + pl + pr else 1), np.float32)
    cdef const float[::1] b
    cdef const float* pbias = NULL
    if bias is not None:
        b = bias.reshape(-1)
        pbias = &b[0]
    with nogil:
        _run(&o[0], &s[0], &pad[0], &wp[0], pbias, N, C, H, W, OC, KH, KW, pt, pb, pl, pr,
             level, nparts)
