"""NumPy baselines for convolution and pooling: what a good NumPy programmer would write.

conv2d: im2col by `sliding_window_view` (one strided view, one copy into a (N*OH*OW, C*KH*KW)
matrix), one `@` for the forward, two for the backward, and col2im as KH*KW strided slice adds.
Pooling: strided windows (`sliding_window_view`), argmax over each window; the backward
scatters through the argmax with `put_along_axis` and the same strided slice adds.
All functions take float32/float64 NCHW arrays, square or rectangular kernels, groups=1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_forward_backward",
           "maxpool2d_forward", "maxpool2d_backward", "maxpool2d_forward_backward",
           "avgpool2d_forward"]


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x


def _windows(xp: np.ndarray, kh: int, kw: int, s: int) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) strided view of every window (no copy)."""
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]


def _col2im(dwin: np.ndarray, shape: tuple, s: int) -> np.ndarray:
    """Sum window gradients dwin (N, C, OH, OW, KH, KW) back into a padded input of `shape`."""
    dxp = np.zeros(shape, dwin.dtype)
    _, _, oh, ow, kh, kw = dwin.shape
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] += dwin[..., i, j]
    return dxp


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int = 1,
                   padding: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(out (N, OC, OH, OW), cols (N*OH*OW, C*KH*KW)) of a groups=1 convolution."""
    n, c = x.shape[:2]
    oc, _, kh, kw = w.shape
    win = _windows(_pad(x, padding), kh, kw, stride)
    oh, ow = win.shape[2:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    out = cols @ w.reshape(oc, -1).T
    if b is not None:
        out += b
    return out.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2), cols


def conv2d_backward(dout: np.ndarray, cols: np.ndarray, x_shape: tuple, w: np.ndarray,
                    stride: int = 1, padding: int = 0) -> tuple:
    """(dx, dw, db) from the forward's im2col matrix."""
    n, c, h, wd = x_shape
    oc, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    d2 = dout.transpose(0, 2, 3, 1).reshape(-1, oc)
    dw = (d2.T @ cols).reshape(w.shape)
    db = d2.sum(axis=0)
    dcols = (d2 @ w.reshape(oc, -1)).reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    dxp = _col2im(dcols, (n, c, h + 2 * padding, wd + 2 * padding), stride)
    dx = dxp[:, :, padding:padding + h, padding:padding + wd] if padding else dxp
    return dx, dw, db


def conv2d_forward_backward(x: np.ndarray, w: np.ndarray, b: np.ndarray, dout: np.ndarray,
                            stride: int = 1, padding: int = 0) -> tuple:
    """One training step's worth of conv work: forward, then dx, dw, db."""
    out, cols = conv2d_forward(x, w, b, stride, padding)
    return (out,) + conv2d_backward(dout, cols, x.shape, w, stride, padding)


def maxpool2d_forward(x: np.ndarray, k: int, s: int | None = None) -> tuple:
    """(out (N, C, OH, OW), argmax within each window (N, C, OH, OW)), no padding."""
    s = k if s is None else s
    win = _windows(x, k, k, s)
    flat = win.reshape(win.shape[:4] + (k * k,))
    arg = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return out, arg


def maxpool2d_backward(dout: np.ndarray, arg: np.ndarray, x_shape: tuple, k: int,
                       s: int | None = None) -> np.ndarray:
    s = k if s is None else s
    dwin = np.zeros(dout.shape + (k * k,), dout.dtype)
    np.put_along_axis(dwin, arg[..., None], dout[..., None], axis=-1)
    return _col2im(dwin.reshape(dout.shape + (k, k)), x_shape, s)


def maxpool2d_forward_backward(x: np.ndarray, dout: np.ndarray, k: int,
                               s: int | None = None) -> tuple:
    out, arg = maxpool2d_forward(x, k, s)
    return out, maxpool2d_backward(dout, arg, x.shape, k, s)


def avgpool2d_forward(x: np.ndarray, k: int, s: int | None = None) -> np.ndarray:
    s = k if s is None else s
    return _windows(x, k, k, s).mean(axis=(-2, -1))
