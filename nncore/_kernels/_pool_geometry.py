"""Pooling geometry: the checked output sizes and window parameters of max, average and
adaptive average pooling (PyTorch's rules and error messages), shared by the CPU kernels
(pool.pyx) and the CUDA ops. Pure Python: no kernel code."""
from __future__ import annotations

import numpy as np

from ._checks import check_float_4d, int_pair


def _check_input(x, fn: str) -> np.ndarray:
    check_float_4d(x, "input", fn, " (N, C, H, W)")
    return np.ascontiguousarray(x)


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (ceil_mode drops a last window starting in padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, fn: str, is_max: bool):
    KH, KW = int_pair(kernel_size, "kernel_size", fn)
    sh, sw = int_pair(kernel_size if stride is None or stride == () else stride, "stride", fn)
    ph, pw = int_pair(padding, "padding", fn)
    dh, dw = int_pair(dilation, "dilation", fn)
    if KH <= 0 or KW <= 0:
        raise ValueError(f"{fn}: kernel_size must be greater than zero, got {(KH, KW)}")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{fn}: stride must be greater than zero, got {(sh, sw)}")
    if dh <= 0 or dw <= 0:
        raise ValueError(f"{fn}: dilation must be greater than zero, got {(dh, dw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"{fn}: padding must be non-negative, got {(ph, pw)}")
    for p, k, d in ((ph, KH, dh), (pw, KW, dw)):
        limit = ((k - 1) * d + 1) // 2 if is_max else k // 2
        if p > limit:
            raise ValueError(f"{fn}: pad should be at most half of effective kernel size, but "
                             f"got pad={p}, kernel_size={k} and dilation={d}")
    N, C, H, W = x.shape
    OH = pool_output_size(H, KH, sh, ph, dh, ceil_mode)
    OW = pool_output_size(W, KW, sw, pw, dw, ceil_mode)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{fn}: given input size ({C}x{H}x{W}), calculated output size "
                         f"({C}x{OH}x{OW}): output size is too small")
    return dict(P=N * C, H=H, W=W, OH=OH, OW=OW, KH=KH, KW=KW, sh=sh, sw=sw, ph=ph, pw=pw,
                dh=dh, dw=dw, count_include_pad=True, divisor=0)


class _Shape:
    """Stands in for an input array where only the shape is known (backward passes)."""

    def __init__(self, shape) -> None:
        self.shape = tuple(int(s) for s in shape)


def _adaptive_geometry(x, output_size, fn: str) -> dict:
    N, C, H, W = x.shape
    if isinstance(output_size, (int, np.integer)):
        sizes = (int(output_size), int(output_size))
    else:
        sizes = tuple(output_size)
        if len(sizes) == 1:
            sizes = sizes * 2
        if len(sizes) != 2:
            raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
    OH = H if sizes[0] is None else int(sizes[0])
    OW = W if sizes[1] is None else int(sizes[1])
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{fn}: output_size must be positive, got {output_size!r}")
    if H <= 0 or W <= 0:
        raise ValueError(f"{fn}: input spatial size must be non-empty, got shape {x.shape}")
    return dict(P=N * C, H=H, W=W, OH=OH, OW=OW, KH=0, KW=0, sh=1, sw=1, ph=0, pw=0, dh=1,
                dw=1, count_include_pad=True, divisor=0)
