# conv_winograd.pyx: 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
# (Lavin & Gray, 2015), float32 and float64, used by conv.pyx for the forward, for the
# stride-1 input gradient (which it runs as a forward convolution) and for the weight and bias
# gradients (`dweight`, in conv_winograd_dweight.pxi, included at the end).
#
# Every 2x2 block of output ("tile") needs a 4x4 block of input; with the transforms
#   V = B^T d B (input, per channel and tile),  U = G g G^T (filter, per output/input channel)
#   Y = A^T M A,  M[xi] = sum_c U[xi][oc][c] V[xi][c][tile]   (16 GEMMs, xi = 4 i + j)
#   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
#   A^T = [1 1 1 0; 0 1 -1 -1]
# the 36 multiplications per output tile and channel pair of a direct 3x3 convolution become 16
# (2.25x fewer); the transforms are additions only. Per sample: one zero-padded copy of the
# input, V (16, C, P) for its P tiles, 16 GEMMs (OC, C) @ (C, P) into M (16, OC, P), then the
# output transform writes the tiles (cropped at odd edges) plus the bias.
# Threads: a batch of >= nthreads samples is split into one static chunk per thread; a smaller
# one runs sample by sample with the threads sharing out its channels and its 16 GEMMs. Every
# GEMM runs on one thread and every element is computed the same way at any thread count
# (same bits).
# Accuracy: the transforms only add and subtract, and the filter transform is exact in double.
# Against a float64 reference the float32 error on the test shapes was 2.1-2.7e-7 of the
# largest output, against 4.8-6.1e-7 for im2col (tests/kernels/test_conv_winograd.py).
from cython.parallel cimport prange

import numpy as np

from ._checks import capped_simd_level

from ._simd cimport nncore_simd_level, nncore_simd_name
from ._types cimport floating
from .gemm cimport dgemm, sgemm

# Where the path beats im2col + GEMM (and, for <= 16 output channels, the direct kernels),
# measured with the padded planes and the threaded filter transform (float32, 1 and 2 threads,
# fourth session of 2026-11-28; im2col/Winograd time ratios):
#   forward: 16 -> 32 channels at 16x16 1.26-1.45x, at 32x32 1.27-1.74x; 64 channels at 8x8
#     1.09-1.32x, 128 at 8x8 1.44-1.76x, 64 at 4x4 1.10-1.12x, 256 at 4x4 1.34-1.40x; but 32
#     channels at 8x8 0.80-1.10x and 32 at 4x4 0.80-0.99x; with few tiles the filter
#     transform dominates (batch 1, 512 channels at 4x4: 0.28-0.37x).
#   weight gradient: 32 channels at 8x8 1.17-1.23x, at 4x4 1.21-1.35x, 64-256 channels at 4x4
#     1.23-1.72x; 16 input channels 0.74-0.92x; few tiles lose (8 x 256 channels at 4x4:
#     0.57-0.74x, batch 1 x 256 at 8x8: 0.25-0.81x).
WINOGRAD_MIN_OC = 32        # forward: output channels (the direct kernels take <= 16)
WINOGRAD_MIN_C = 16         # forward: input channels at >= 16 x 16 output ...
WINOGRAD_SMALL_MIN_C = 64   # ... and at smaller outputs (down to WINOGRAD_MIN_SIZE)
WINOGRAD_MIN_TILES = 32     # forward: output tiles in the batch (pays for the filter transform)
WEIGHT_GRAD_MIN_C = 32      # weight gradient: input and output channels
WEIGHT_GRAD_MIN_TILES = 64  # weight gradient: output tiles in the batch
WINOGRAD_MIN_SIZE = 4       # output rows and columns
WEIGHT_GRAD_K = 256         # tiles per weight-gradient GEMM: whole samples, at least this many
_allowed = True


def _tiles(dict g) -> int:
    return g["N"] * ((g["OH"] + 1) // 2) * ((g["OW"] + 1) // 2)


def _shape_ok(dict g) -> bool:
    return (_allowed and g["KH"] == 3 and g["KW"] == 3 and g["sh"] == 1 and g["sw"] == 1
            and g["dh"] == 1 and g["dw"] == 1 and g["G"] == 1
            and min(g["OH"], g["OW"]) >= WINOGRAD_MIN_SIZE)


def winograd_ok(dict g) -> bool:
    """The forward (and the stride-1 input gradient, a forward convolution) takes the path:
    3x3, stride 1, dilation 1, one group, >= 32 output channels, >= 16 input channels at a
    >= 16 x 16 output or >= 64 at a >= 4 x 4 one, and >= 32 output tiles in the batch (see the
    measurements above). `g` is conv.pyx's geometry dict."""
    small = min(g["OH"], g["OW"]) < 16
    return (_shape_ok(g) and g["OC"] >= WINOGRAD_MIN_OC
            and g["C"] >= (WINOGRAD_SMALL_MIN_C if small else WINOGRAD_MIN_C)
            and _tiles(g) >= WINOGRAD_MIN_TILES)


def weight_grad_ok(dict g) -> bool:
    """The weight and bias gradients take the path: 3x3, stride 1, dilation 1, one group,
    >= 32 input and output channels, a >= 4 x 4 output and >= 64 output tiles in the batch."""
    return (_shape_ok(g) and g["C"] >= WEIGHT_GRAD_MIN_C and g["OC"] >= WEIGHT_GRAD_MIN_C
            and _tiles(g) >= WEIGHT_GRAD_MIN_TILES)


cdef extern from "simd.h" nogil:
    int nncore_simd_cached       # this module's cached level (simd.h keeps one per module)
    int nncore_simd_detect()


def dispatched_simd() -> str:
    """Instruction set the input and output transforms dispatch to on this CPU."""
    return nncore_simd_name(nncore_simd_level()).decode()


def _cap_simd(level=None) -> str:
    """Test hook: cap the transforms at `level` ('portable', 'avx2', 'avx512'), never above
    what the CPU supports; None restores the detected level. Returns the level in use."""
    global nncore_simd_cached
    nncore_simd_cached = capped_simd_level(level, nncore_simd_detect())
    return dispatched_simd()


def _set_allowed_for_testing(allowed: bool) -> bool:
    """Test hook: allow or forbid the Winograd path (to compare it with im2col); returns the
    previous setting."""
    global _allowed
    before, _allowed = _allowed, bool(allowed)
    return before


cdef extern from "conv_winograd.h" nogil:
    void nncore_wino_input_f32(float* V, float* E, float* Od, const float* x, Py_ssize_t C,
                               Py_ssize_t H, Py_ssize_t W, Py_ssize_t pt, Py_ssize_t pl,
                               Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t CP, int level)
    void nncore_wino_input_f64(double* V, double* E, double* Od, const double* x,
                               Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t pt,
                               Py_ssize_t pl, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t CP,
                               int level)
    void nncore_wino_output_f32(float* out, const float* M, const float* bias, float* row,
                                Py_ssize_t OC, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t TH,
                                Py_ssize_t TW, Py_ssize_t OP, int level)
    void nncore_wino_output_f64(double* out, const double* M, const double* bias,
                                double* row, Py_ssize_t OC, Py_ssize_t OH, Py_ssize_t OW,
                                Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t OP, int level)
    void nncore_wino_dout_f32(float* Y, const float* dy, float* row, Py_ssize_t OC,
                              Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t TH, Py_ssize_t TW,
                              Py_ssize_t OS, Py_ssize_t OP, int level)
    void nncore_wino_dout_f64(double* Y, const double* dy, double* row, Py_ssize_t OC,
                              Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t TH, Py_ssize_t TW,
                              Py_ssize_t OS, Py_ssize_t OP, int level)


cdef inline Py_ssize_t _plane(Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    """The stride of the 16 planes of n elements: >= n, and 64 bytes past a multiple of
    4 KiB. The transforms touch the same column of all 16 planes at once, and planes a
    multiple of 4 KiB apart (64 channels x 256 tiles of floats are 64 KiB) fall in one L1 set,
    which holds 8 lines: measured, that made the input, output and output-gradient transforms
    1.3-2.2x slower."""
    cdef Py_ssize_t nbytes = n * itemsize, r = nbytes % 4096
    return (nbytes - r + (64 if r <= 64 else 4096 + 64)) // itemsize


cdef inline void _inputs(floating* V, floating* E, floating* Od, const floating* x,
                         Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t TH, Py_ssize_t TW,
                         Py_ssize_t VP, int level) noexcept nogil:
    """Input transform of channels [c0, c1) of one sample into V (16 planes VP apart, each
    (C, P))."""
    cdef Py_ssize_t P = TH * TW
    if c1 <= c0:
        return
    if floating is float:
        nncore_wino_input_f32(V + c0 * P, E, Od, x + c0 * H * W, c1 - c0, H, W, pt, pl, TH,
                              TW, VP, level)
    else:
        nncore_wino_input_f64(V + c0 * P, E, Od, x + c0 * H * W, c1 - c0, H, W, pt, pl, TH,
                              TW, VP, level)


cdef inline void _outputs(floating* out, const floating* M, const floating* bias,
                          floating* row, Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t OH,
                          Py_ssize_t OW, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t MP,
                          int level) noexcept nogil:
    """Output transform of output channels [o0, o1) of one sample from M (16 planes MP
    apart, each (OC, P))."""
    cdef Py_ssize_t P = TH * TW
    cdef const floating* b = bias + o0 if bias != NULL else NULL
    if o1 <= o0:
        return
    if floating is float:
        nncore_wino_output_f32(out + o0 * OH * OW, M + o0 * P, b, row, o1 - o0, OH, OW, TH,
                               TW, MP, level)
    else:
        nncore_wino_output_f64(out + o0 * OH * OW, M + o0 * P, b, row, o1 - o0, OH, OW, TH,
                               TW, MP, level)


cdef inline void _gemm(floating* M, const floating* U, const floating* V, Py_ssize_t xi,
                       Py_ssize_t OC, Py_ssize_t C, Py_ssize_t P, Py_ssize_t UP,
                       Py_ssize_t VP, Py_ssize_t MP) noexcept nogil:
    """M[xi] (OC, P) = U[xi] (OC, C) @ V[xi] (C, P), on the calling thread (planes UP, VP,
    MP apart)."""
    if floating is float:
        sgemm(False, False, OC, P, C, 1.0, U + xi * UP, C, V + xi * VP, P, 0.0, M + xi * MP,
              P, NULL, 1)
    else:
        dgemm(False, False, OC, P, C, 1.0, U + xi * UP, C, V + xi * VP, P, 0.0, M + xi * MP,
              P, NULL, 1)


cdef void _run(floating* out, const floating* inp, const floating* U, const floating* bias,
               floating* V, floating* M, floating* scratch, Py_ssize_t N, Py_ssize_t C,
               Py_ssize_t H, Py_ssize_t W, Py_ssize_t OC, Py_ssize_t OH, Py_ssize_t OW,
               Py_ssize_t pt, Py_ssize_t pl, int nthreads, int level) noexcept nogil:
    """A batch of >= nthreads samples: one static chunk of samples per thread, each sample's
    transforms and GEMMs on that thread. A smaller batch: sample by sample, the threads
    sharing out its input channels, then its 16 GEMMs, then its output channels. Either way
    every element is computed by one thread in the same order: the same bits at any count."""
    cdef Py_ssize_t TH = (OH + 1) // 2, TW = (OW + 1) // 2, P = TH * TW
    cdef Py_ssize_t VP = _plane(C * P, sizeof(floating)), MP = _plane(OC * P, sizeof(floating))
    cdef Py_ssize_t UP = _plane(OC * C, sizeof(floating))
    cdef Py_ssize_t vsize = 16 * VP, msize = 16 * MP, plane = (2 * TH + 2) * (TW + 1)
    cdef Py_ssize_t ssize = 2 * plane + 4 * TW + 2
    cdef Py_ssize_t chunk, n, xi
    cdef floating* s
    cdef int t
    if N >= nthreads:
        chunk = (N + nthreads - 1) // nthreads
        for t in prange(nthreads, schedule='static', num_threads=nthreads):
            s = scratch + t * ssize
            for n in range(t * chunk, min(N, (t + 1) * chunk)):
                _inputs(V + t * vsize, s, s + plane, inp + n * C * H * W, 0, C, H, W, pt, pl,
                        TH, TW, VP, level)
                for xi in range(16):
                    _gemm(M + t * msize, U, V + t * vsize, xi, OC, C, P, UP, VP, MP)
                _outputs(out + n * OC * OH * OW, M + t * msize, bias, s + 2 * plane, 0, OC,
                         OH, OW, TH, TW, MP, level)
        return
    for n in range(N):
        for t in prange(nthreads, schedule='static', num_threads=nthreads):
            s = scratch + t * ssize
            _inputs(V, s, s + plane, inp + n * C * H * W, t * C // nthreads,
                    (t + 1) * C // nthreads, H, W, pt, pl, TH, TW, VP, level)
        for xi in prange(16, schedule='static', num_threads=nthreads):
            _gemm(M, U, V, xi, OC, C, P, UP, VP, MP)
        for t in prange(nthreads, schedule='static', num_threads=nthreads):
            s = scratch + t * ssize
            _outputs(out + n * OC * OH * OW, M, bias, s + 2 * plane, t * OC // nthreads,
                     (t + 1) * OC // nthreads, OH, OW, TH, TW, MP, level)


cdef void _filter_row(floating* U, const floating* w, Py_ssize_t oc, Py_ssize_t C,
                      Py_ssize_t UP) noexcept nogil:
    """U[xi][oc][c] (planes UP apart) = (G g G^T)[xi] of every 3x3 kernel g = w[oc][c] of one
    output channel, computed in double (G's halves make it exact there) and rounded once."""
    cdef Py_ssize_t c, k, i
    cdef const floating* g
    cdef double t[4][3]
    cdef floating* u
    for c in range(C):
        g = w + (oc * C + c) * 9
        for k in range(3):   # t = G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2
            t[0][k] = g[k]
            t[1][k] = 0.5 * (<double>g[k] + g[3 + k] + g[6 + k])
            t[2][k] = 0.5 * (<double>g[k] - g[3 + k] + g[6 + k])
            t[3][k] = g[6 + k]
        u = U + oc * C + c
        for i in range(4):   # (t G^T) row i, the same combinations over the columns
            u[(4 * i + 0) * UP] = <floating>t[i][0]
            u[(4 * i + 1) * UP] = <floating>(0.5 * (t[i][0] + t[i][1] + t[i][2]))
            u[(4 * i + 2) * UP] = <floating>(0.5 * (t[i][0] - t[i][1] + t[i][2]))
            u[(4 * i + 3) * UP] = <floating>t[i][2]


cdef void _filter_transform(floating* U, const floating* w, Py_ssize_t OC, Py_ssize_t C,
                            Py_ssize_t UP, int nthreads) noexcept nogil:
    """The filter transform of every output channel (_filter_row), the threads sharing them
    out. Serial and with the 16 planes 64 KiB apart (one L1 set), it had taken most of a
    batch-1 forward: 512 x 512 channels at 16 x 16 took 16.0 ms against im2col's 6.8."""
    cdef Py_ssize_t oc
    for oc in prange(OC, schedule='static', num_threads=nthreads):
        _filter_row(U, w, oc, C, UP)


def run(out, inp, weight, bias, Py_ssize_t pt, Py_ssize_t pl, int nthreads) -> None:
    """out (N, OC, OH, OW) = 3x3 stride-1 convolution of inp (N, C, H, W) zero-padded by pt
    rows on top and pl columns on the left (the far sides follow from out's size), plus bias;
    C-contiguous arrays of one float dtype, checked by conv.pyx."""
    cdef Py_ssize_t N = inp.shape[0], C = inp.shape[1], OC = out.shape[1]
    cdef Py_ssize_t TH = (out.shape[2] + 1) // 2, TW = (out.shape[3] + 1) // 2
    cdef int nt = max(1, nthreads)
    cdef int copies = nt if N >= nt else 1   # V and M per thread, or one shared (see _run)
    dt = inp.dtype
    scratch = np.empty(nt * (2 * (2 * TH + 2) * (TW + 1) + 4 * TW + 2), dt)
    _run_arrays(out.reshape(-1), inp.reshape(-1), weight.reshape(-1), bias,
                np.empty(16 * _plane(OC * C, dt.itemsize), dt),
                np.empty(copies * 16 * _plane(C * TH * TW, dt.itemsize), dt),
                np.empty(copies * 16 * _plane(OC * TH * TW, dt.itemsize), dt), scratch, N, C,
                inp.shape[2], inp.shape[3], OC, out.shape[2], out.shape[3], pt, pl, nt)


def _run_arrays(floating[::1] out, const floating[::1] inp, const floating[::1] w,
                const floating[::1] bias, floating[::1] U, floating[::1] V, floating[::1] M,
                floating[::1] scratch, Py_ssize_t N, Py_ssize_t C, Py_ssize_t H,
                Py_ssize_t W, Py_ssize_t OC, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t pt,
                Py_ssize_t pl, int nthreads):
    cdef const floating* b = &bias[0] if bias is not None else NULL
    cdef int level = nncore_simd_level()
    with nogil:
        _filter_transform(&U[0], &w[0], OC, C, _plane(OC * C, sizeof(floating)), nthreads)
        _run(&out[0], &inp[0], &U[0], b, &V[0], &M[0], &scratch[0], N, C, H, W, OC, OH, OW,
             pt, pl, nthreads, level)


include "conv_winograd_dweight.pxi"
