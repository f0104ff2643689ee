"""Convolution geometry: the checked sizes and options of conv2d (PyTorch's output size rule
and error messages; asymmetric padding as (top, bottom, left, right)), shared by the CPU
kernels (conv.pyx) and the CUDA ops. Pure Python: reads shapes only."""
from __future__ import annotations

import numpy as np

from ._checks import check_conv_shapes, int_pair


def _padding4(padding) -> tuple:
    """(top, bottom, left, right) from an int, (ph, pw) or (top, bottom, left, right)."""
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return p, p, p, p
    t = tuple(int(x) for x in padding)
    if len(t) == 1:
        return t * 4
    if len(t) == 2:
        return t[0], t[0], t[1], t[1]
    if len(t) == 4:
        return t
    raise ValueError(f"conv2d: padding must be an int, a pair or 4 values, got {padding!r}")


def conv2d_output_size(H: int, W: int, KH: int, KW: int, stride=1, padding=0,
                       dilation=1) -> tuple:
    """(OH, OW) of a convolution; raises ValueError when the kernel does not fit."""
    sh, sw = int_pair(stride, "stride", "conv2d")
    pt, pb, pl, pr = _padding4(padding)
    dh, dw = int_pair(dilation, "dilation", "conv2d")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"conv2d: stride must be positive, got {(sh, sw)}")
    if dh <= 0 or dw <= 0:
        raise ValueError(f"conv2d: dilation must be positive, got {(dh, dw)}")
    if min(pt, pb, pl, pr) < 0:
        raise ValueError(f"conv2d: padding must be non-negative, got {padding!r}")
    eh, ew = dh * (KH - 1) + 1, dw * (KW - 1) + 1
    if H + pt + pb < eh or W + pl + pr < ew:
        raise ValueError(
            f"conv2d: calculated padded input size per channel: ({H + pt + pb} x "
            f"{W + pl + pr}). Kernel size: ({eh} x {ew}). Kernel size can't be greater than "
            f"actual input size")
    return (H + pt + pb - eh) // sh + 1, (W + pl + pr - ew) // sw + 1


def conv2d_sizes(input_shape, weight_shape, stride, padding, dilation, groups) -> dict:
    """The checked sizes and options of conv2d on input (N, C, H, W) and weight
    (OC, C/groups, KH, KW): N, C, H, W, OC, Cg, OH, OW, KH, KW, sh, sw, pt, pb, pl, pr, dh, dw,
    G. Reads shapes only, so the CUDA ops use it too."""
    N, C, H, W = input_shape
    OC, Cg, KH, KW = weight_shape
    G = check_conv_shapes(tuple(input_shape), tuple(weight_shape), groups)
    pt, pb, pl, pr = _padding4(padding)
    OH, OW = conv2d_output_size(H, W, KH, KW, stride, (pt, pb, pl, pr), dilation)
    sh, sw = int_pair(stride, "stride", "conv2d")
    dh, dw = int_pair(dilation, "dilation", "conv2d")
    return dict(N=N, C=C, H=H, W=W, OC=OC, Cg=Cg, OH=OH, OW=OW, KH=KH, KW=KW, sh=sh, sw=sw,
                pt=pt, pb=pb, pl=pl, pr=pr, dh=dh, dw=dw, G=G)
