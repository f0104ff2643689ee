"""nn.Embedding: a lookup table of num_embeddings vectors of size embedding_dim."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.embedding import _normalize_padding_idx, embedding
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """Row lookup `weight[input]`, weight (num_embeddings, embedding_dim) as PyTorch.

    Initialised N(0, 1) with the `padding_idx` row zeroed; that row never receives a
    gradient. `max_norm` and `sparse=True` are not supported (NotImplementedError).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Any = None, _freeze: bool = False, dtype: Any = None) -> None:
        super().__init__()
        if num_embeddings < 0 or embedding_dim < 0:
            raise ValueError(f"Embedding: sizes must be >= 0, got ({num_embeddings}, "
                             f"{embedding_dim})")
        if max_norm is not None:
            raise NotImplementedError("Embedding: max_norm is not supported by nncore")
        if sparse:
            raise NotImplementedError("Embedding: sparse gradients are not supported by nncore")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        if _weight is None:
            dt = np.dtype(dtype or np.float32)
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dt),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            data = _weight.data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if data.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {data.shape}, expected "
                                 f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(data, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002
        return embedding(input, self.weight, self.padding_idx, None, self.norm_type,
                         self.scale_grad_by_freq, False)

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose weight is (a copy of) the 2-D `embeddings`; frozen by default."""
        data = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if data.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{data.shape}")
        if data.dtype.kind != "f":
            raise TypeError(f"Embedding.from_pretrained: embeddings must be float32/float64, "
                            f"got {data.dtype}")
        return cls(data.shape[0], data.shape[1], padding_idx=padding_idx, max_norm=max_norm,
                   norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse,
                   _weight=data.copy(), _freeze=freeze)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        return s
