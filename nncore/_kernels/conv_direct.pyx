# conv_direct.pyx: the direct few-channel convolution paths of conv.pyx (drivers of
# conv_direct.h: up to 8 output channels x 16 columns x 2 rows held in AVX-512 registers, and
# of conv_oclane.h: the output channels along the vector lanes).
#
# Shapes: src (N, C, H, W) unpadded; w (OC, C, KH, KW); out (N, OC, OH, OW) with stride 1 and
# dilation 1 on src zero-padded by pads = (top, bottom, left, right); bias (OC,) or None.
# conv.pyx takes these paths for float32 on AVX-512, stride 1, dilation 1, one group, not 1x1:
#   forward:         <= 16 output channels (run, or run_oc16 when oc16_ok);
#   input gradient:  <= 16 input channels: 16 samples along the lanes (dinp_batchlane when
#                    batchlane_ok), or a direct convolution of dout zero-padded by
#                    (K - 1 - pad) with the kernel flipped and its channel axes swapped (run);
#   weight gradient: <= 16 output channels (dweight_oclane).
# OUT is overwritten. Threads own static chunks of the batch; each sample is computed by one
# thread in a fixed order, so outputs and input gradients do not depend on the thread count;
# weight gradients add per-thread partial sums in thread order (fixed for a fixed count).
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

import numpy as np

from ._simd cimport NNCORE_SIMD_AVX512, nncore_simd_level


cdef extern from "conv_direct.h" nogil:
    void nncore_conv_pad_copy_f32(float* dst, const float* src, int64_t C, int64_t H,
                                  int64_t W, int64_t pt, int64_t pb, int64_t pl, int64_t pr)
    int nncore_conv_direct_f32(float* out, const float* inp, const float* wpack,
                               const float* bias, int64_t C, int64_t H, int64_t W, int64_t OC,
                               int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi,
                               int level)


cdef extern from "conv_oclane.h" nogil:
    int nncore_conv_oc16_fwd_f32(float* outT, const float* inp, const float* Wt,
                                 const float* bias16, int64_t C, int64_t H, int64_t W,
                                 int64_t KH, int64_t KW, int64_t r_lo, int64_t r_hi, int level)
    int nncore_conv_oclane_dw_f32(float* dWt, float* db, const float* doutT,
                                  const float* inp, int64_t C, int64_t H, int64_t W,
                                  int64_t KH, int64_t KW, int lanes, int level)


cdef extern from "conv_batchlane.h" nogil:
    int nncore_conv_batchlane_dinp_f32(float* dinpB, const float* doutB, const float* wpack,
                                       int64_t C, int64_t H, int64_t W, int64_t OC,
                                       int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                                       int64_t pt, int64_t pl, int level)


cdef extern from "transpose.h" nogil:
    void nncore_transpose_f32(float* dst, Py_ssize_t ldd, const float* src, Py_ssize_t lds,
                              Py_ssize_t R, Py_ssize_t C, int level)


cdef inline const float* _padded(const float* src, float* pad, Py_ssize_t C, Py_ssize_t H,
                                 Py_ssize_t W, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
                                 Py_ssize_t pr) noexcept nogil:
    """One sample src (C, H, W), or its zero-padded copy in pad when any padding is > 0."""
    if pt + pb + pl + pr > 0:
        nncore_conv_pad_copy_f32(pad, src, C, H, W, pt, pb, pl, pr)
        return pad
    return src


cdef void _sample(float* out, const float* src, float* pad, const float* wpack,
                  const float* bias, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC,
                  Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
                  Py_ssize_t pr, int level) noexcept nogil:
    src = _padded(src, pad, C, H, W, pt, pb, pl, pr)
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


def _pack_weights(w, int lanes=8) -> np.ndarray:
    """(A, B, KH, KW) -> (ceil(A/lanes), B, KH, KW, lanes): the first axis regrouped in blocks
    of `lanes` that become the innermost axis, zero-padded to whole blocks. The row kernel
    packs (OC, C, ...) by 8, the lane forward (OC, C, ...) by 16, and the batch-lane input
    gradient the swapped (C, OC, ...) by 8."""
    A = w.shape[0]
    nb = (A + lanes - 1) // lanes
    padded = np.zeros((nb * lanes,) + w.shape[1:], np.float32)
    padded[:A] = w
    return np.ascontiguousarray(
        padded.reshape((nb, lanes) + w.shape[1:]).transpose(0, 2, 3, 4, 1))


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


# ------------------------------------------------------- output channels along the lanes
# conv_oclane.h: the output channels along the vector lanes (16, or 8 for the weight gradient
# of <= 8 channels). Per sample and thread: a padded copy of the input, the forward's
# (OH OW, 16) tile transposed into NCHW afterwards, or the output gradient transposed to
# (OH OW, L) before the weight-gradient pass.

def oc16_ok(dict g, dt) -> bool:
    """The forward with channels along the lanes: the direct path's conditions, 9 <= OC <= 16,
    and more lanes busy than in the row kernel: OC / 16 > OW / (16 ceil(OW / 16)). (Measured
    at 2 threads: LeNet2's 16 channels 0.27 -> 0.20 ms; a tie at OW = 28 or 16.)"""
    OC, OW = g["OC"], g["OW"]
    return geometry_ok(g, dt) and 9 <= OC <= 16 and OC * ((OW + 15) // 16) > OW


cdef void _oc16_fwd_run(float* out, const float* src, float* pad, float* outT,
                        const float* Wt, const float* bias16, Py_ssize_t N, Py_ssize_t C,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC, Py_ssize_t KH,
                        Py_ssize_t KW, Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl,
                        Py_ssize_t pr, int level, int nparts) noexcept nogil:
    cdef Py_ssize_t Hp = H + pt + pb, Wp = W + pl + pr
    cdef Py_ssize_t OHW = (Hp - KH + 1) * (Wp - KW + 1), psize = C * Hp * Wp
    cdef Py_ssize_t chunk = (N + nparts - 1) // nparts, n
    cdef const float* x
    cdef int t
    for t in prange(nparts, schedule='static', num_threads=nparts):
        for n in range(t * chunk, min(N, (t + 1) * chunk)):
            x = _padded(src + n * C * H * W, pad + t * psize, C, H, W, pt, pb, pl, pr)
            nncore_conv_oc16_fwd_f32(outT + t * OHW * 16, x, Wt, bias16, C, Hp, Wp, KH, KW,
                                     pt, pt + H, level)
            nncore_transpose_f32(out + n * OC * OHW, OHW, outT + t * OHW * 16, 16, OHW, OC,
                                 level)


cdef void _oclane_dw_run(float* dWt, const float* dout, const float* src, float* pad,
                         float* doutT, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t OC, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt,
                         Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr, Py_ssize_t wsize,
                         bint need_db, int lanes, int level, int nparts) noexcept nogil:
    cdef Py_ssize_t Hp = H + pt + pb, Wp = W + pl + pr
    cdef Py_ssize_t OHW = (Hp - KH + 1) * (Wp - KW + 1), psize = C * Hp * Wp
    cdef Py_ssize_t chunk = (N + nparts - 1) // nparts, n
    cdef const float* x
    cdef int t
    for t in prange(nparts, schedule='static', num_threads=nparts):
        for n in range(t * chunk, min(N, (t + 1) * chunk)):
            x = _padded(src + n * C * H * W, pad + t * psize, C, H, W, pt, pb, pl, pr)
            # lanes OC..15 of doutT were zeroed once and are never written
            nncore_transpose_f32(doutT + t * OHW * lanes, lanes, dout + n * OC * OHW, OHW, OC,
                                 OHW, level)
            # the bias gradient rides in the row after the weight rows of each partial
            nncore_conv_oclane_dw_f32(dWt + t * wsize,
                                      dWt + (t + 1) * wsize - lanes if need_db else NULL,
                                      doutT + t * OHW * lanes, x, C, Hp, Wp, KH, KW, lanes,
                                      level)


def _oclane_scratch(Py_ssize_t nparts, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, pads,
                    Py_ssize_t OHW, int lanes) -> tuple:
    """Per-thread padded-input copies (or a 1-element dummy) and zeroed (OHW, lanes) tiles."""
    cdef Py_ssize_t psize = C * (H + pads[0] + pads[1]) * (W + pads[2] + pads[3])
    pad = np.empty(nparts * psize if any(pads) else 1, np.float32)
    return pad, np.zeros(nparts * OHW * lanes, np.float32)


def run_oc16(out, src, w, bias, pads, int nthreads) -> None:
    """out (N, OC, OH, OW) = conv of src (N, C, H, W) padded by pads = (t, b, l, r), with the
    12-16 output channels along the lanes (float32, C-contiguous, checked by conv.pyx)."""
    cdef Py_ssize_t N = src.shape[0], C = src.shape[1], H = src.shape[2], W = src.shape[3]
    cdef Py_ssize_t OC = w.shape[0], KH = w.shape[2], KW = w.shape[3]
    cdef int nparts = max(1, min(nthreads, N)), level = nncore_simd_level()
    cdef Py_ssize_t pt = pads[0], pb = pads[1], pl = pads[2], pr = pads[3]
    wt = _pack_weights(w, 16)   # (1, C, KH, KW, 16): (C KH KW, 16), channels in the lanes
    b16 = np.zeros(16, np.float32)
    if bias is not None:
        b16[:OC] = bias
    pad, tiles = _oclane_scratch(nparts, C, H, W, pads, out.shape[2] * out.shape[3], 16)
    cdef float[::1] o = out.reshape(-1), pd = pad, ot = tiles
    cdef const float[::1] s = src.reshape(-1), wv = wt.reshape(-1), bv = b16
    with nogil:
        _oc16_fwd_run(&o[0], &s[0], &pd[0], &ot[0], &wv[0], &bv[0], N, C, H, W, OC, KH, KW,
                      pt, pb, pl, pr, level, nparts)


def dweight_oclane(dout, src, tuple wshape, pads, int nthreads, bint need_dbias=False):
    """(dweight (OC, C, KH, KW), dbias (OC,) or None) of the convolution of src (N, C, H, W)
    padded by pads, for dout (N, OC, OH, OW); <= 16 output channels along 16 lanes, or 8 when
    OC <= 8. Each thread sums its static chunk of the batch; the chunks are added in order
    (fixed for a fixed thread count)."""
    cdef Py_ssize_t N = src.shape[0], C = src.shape[1], H = src.shape[2], W = src.shape[3]
    cdef Py_ssize_t OC = wshape[0], KH = wshape[2], KW = wshape[3], CKK = C * KH * KW
    cdef int lanes = 8 if OC <= 8 else 16
    # whole groups of 8 tap rows, then one bias row
    cdef Py_ssize_t rows = (CKK + 7) // 8 * 8 + 1, wsize = rows * lanes
    cdef int nparts = max(1, min(nthreads, N)), level = nncore_simd_level()
    cdef Py_ssize_t pt = pads[0], pb = pads[1], pl = pads[2], pr = pads[3]
    pad, tiles = _oclane_scratch(nparts, C, H, W, pads, dout.shape[2] * dout.shape[3], lanes)
    parts = np.zeros((nparts, wsize), np.float32)
    cdef float[::1] pd = pad, dt = tiles, pv = parts.reshape(-1)
    cdef const float[::1] s = src.reshape(-1), d = dout.reshape(-1)
    with nogil:
        _oclane_dw_run(&pv[0], &d[0], &s[0], &pd[0], &dt[0], N, C, H, W, OC, KH, KW, pt, pb,
                       pl, pr, wsize, need_dbias, lanes, level, nparts)
    total = parts[0]
    for t in range(1, nparts):
        total += parts[t]
    total = total.reshape(rows, lanes)
    dweight = np.ascontiguousarray(total[:CKK, :OC].T).reshape(wshape)
    return dweight, (total[rows - 1, :OC].copy() if need_dbias else None)


# ------------------------------------------------------ input gradient, samples in lanes
# conv_batchlane.h: 16 samples along the lanes, so no FMA multiplies padding. Per group of 16
# samples and thread: dout transposed to (OC, OH, OW, 16), the kernel, dinp transposed back.

cdef void _batchlane_dinp_run(float* dinp, const float* dout, float* doutB, float* dinpB,
                              const float* wpack, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H,
                              Py_ssize_t W, Py_ssize_t OC, Py_ssize_t OH, Py_ssize_t OW,
                              Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t pt, Py_ssize_t pl,
                              int level, int nparts) noexcept nogil:
    cdef Py_ssize_t osize = OC * OH * OW, isize = C * H * W, groups = (N + 15) // 16
    cdef Py_ssize_t chunk = (groups + nparts - 1) // nparts, grp, n0, ns
    cdef int t
    for t in prange(nparts, schedule='static', num_threads=nparts):
        for grp in range(t * chunk, min(groups, (t + 1) * chunk)):
            n0 = grp * 16
            ns = min(16, N - n0)
            if ns < 16:  # lanes past the last sample must be finite: zeros
                memset(doutB + t * osize * 16, 0, osize * 16 * sizeof(float))
            nncore_transpose_f32(doutB + t * osize * 16, 16, dout + n0 * osize, osize, ns,
                                 osize, level)
            nncore_conv_batchlane_dinp_f32(dinpB + t * isize * 16, doutB + t * osize * 16,
                                           wpack, C, H, W, OC, OH, OW, KH, KW, pt, pl, level)
            nncore_transpose_f32(dinp + n0 * isize, isize, dinpB + t * isize * 16, 16, isize,
                                 ns, level)


def batchlane_ok(dict g) -> bool:
    """The input gradient with samples along the lanes (the caller has checked the direct
    path's conditions): >= 16 samples fill the lanes, and >= 4 input channels give each
    16-sample load of dout enough FMAs. Measured at 2 threads: LeNet2's input gradient 0.31 ->
    0.16 ms; 1.2x slower than the row kernel on LeNet1's 3 channels, a tie on 32 x 32 images."""
    return g["N"] >= 16 and g["C"] >= 4


def dinp_batchlane(dinp, dout, w, Py_ssize_t pt, Py_ssize_t pl, int nthreads) -> None:
    """dinp (N, C, H, W) = the input gradient of a stride-1, dilation-1 convolution with
    weights w (OC, C, KH, KW) and top/left padding (pt, pl), for dout (N, OC, OH, OW); 16
    samples along the lanes (float32, C-contiguous, checked by conv.pyx)."""
    cdef Py_ssize_t N = dinp.shape[0], C = dinp.shape[1], H = dinp.shape[2], W = dinp.shape[3]
    cdef Py_ssize_t OC = w.shape[0], KH = w.shape[2], KW = w.shape[3]
    cdef Py_ssize_t OH = dout.shape[2], OW = dout.shape[3]
    cdef int nparts = max(1, min(nthreads, (N + 15) // 16)), level = nncore_simd_level()
    wp = _pack_weights(w.transpose(1, 0, 2, 3))   # (ceil(C/8), OC, KH, KW, 8)
    tiles_out = np.empty(nparts * OC * OH * OW * 16, np.float32)
    tiles_in = np.empty(nparts * C * H * W * 16, np.float32)
    cdef float[::1] di = dinp.reshape(-1), dB = tiles_out, iB = tiles_in
    cdef const float[::1] do = dout.reshape(-1), wv = wp.reshape(-1)
    with nogil:
        _batchlane_dinp_run(&di[0], &do[0], &dB[0], &iB[0], &wv[0], N, C, H, W, OC, OH, OW,
                            KH, KW, pt, pl, level, nparts)
