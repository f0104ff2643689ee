"""Embedding lookup on the compiled gather / deterministic scatter-add kernels."""
from __future__ import annotations

import numpy as np

from .. import _device
from .._kernels import embedding as _k
from ..autograd import Context, Function
from ..tensor import Tensor

__all__ = ["embedding"]


class Embedding(Function):
    """out = weight[ids]; d(weight) is the scatter-add of dout over the ids."""

    @staticmethod
    def forward(ctx: Context, ids: np.ndarray, weight: np.ndarray, padding_idx: int | None,
                scale_grad_by_freq: bool) -> np.ndarray:
        flat = ids.reshape(-1)
        out = _device.kernels(weight, _k).embedding_forward(flat, weight)
        ctx.save_for_backward(flat)
        ctx.meta = (ids.shape, weight.shape[0], padding_idx, scale_grad_by_freq)
        return out.reshape(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Context, dout: np.ndarray) -> tuple:
        (flat,) = ctx.saved_tensors
        _, V, padding_idx, by_freq = ctx.meta
        if not ctx.needs_input_grad[1]:
            return None, None, None, None
        dweight = _device.kernels(dout, _k).embedding_backward(
            dout.reshape(len(flat), dout.shape[-1]), flat, V, padding_idx, by_freq)
        return None, dweight, None, None


def _normalize_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    if padding_idx is None:
        return None
    padding_idx = int(padding_idx)
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"embedding: padding_idx {padding_idx} must be within "
                         f"[-{num_embeddings}, {num_embeddings}) for a vocabulary of "
                         f"{num_embeddings}")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,  # noqa: A002
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of `weight` (V, D) for the integer ids in `input` (any shape).

    out[..., :] = weight[input[...], :], shape input.shape + (D,). The gradient w.r.t. weight
    sums dout over repeated ids (deterministically); the `padding_idx` row gets no gradient.
    Every id is bounds-checked: one outside [0, V) raises IndexError naming it.

    Example:
        >>> w = nncore.randn(10, 3, requires_grad=True)
        >>> F.embedding(nncore.tensor([[1, 2], [4, 1]]), w).shape
        (2, 2, 3)
    """
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not supported by nncore")
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported by nncore")
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer ids (int64/int32), got dtype "
                        f"{ids.dtype}")
    w = weight.data if isinstance(weight, Tensor) else weight
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {w.shape}")
    if _device.is_device_array(ids) and isinstance(w, np.ndarray):
        raise RuntimeError("embedding: Expected all tensors to be on the same device, but "
                           "the ids are on cuda:0 and the weight on cpu")
    pad = _normalize_padding_idx(padding_idx, w.shape[0])
    return Embedding.apply(ids, weight, pad, bool(scale_grad_by_freq))
