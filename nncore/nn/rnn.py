"""Recurrent layers: LSTM, GRU (multi-layer, whole sequence) and LSTMCell, GRUCell (one step).

PyTorch's names, arguments, weight shapes, state_dict keys (weight_ih_l0, weight_hh_l0,
bias_ih_l0, bias_hh_l0, ..._l1) and init U(-1/sqrt(H), 1/sqrt(H)). Each layer runs as one
fused kernel call over the whole sequence (nncore/_kernels/lstm.pyx, gru.pyx).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _device
from ..functional import rnn as F_rnn
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["LSTM", "GRU", "LSTMCell", "GRUCell"]


def _check_sizes(name: str, input_size: int, hidden_size: int) -> None:
    if not isinstance(hidden_size, int) or hidden_size <= 0:
        raise ValueError(f"{name}: hidden_size must be an integer greater than zero, got "
                         f"{hidden_size!r}")
    if not isinstance(input_size, int) or input_size <= 0:
        raise ValueError(f"{name}: input_size must be an integer greater than zero, got "
                         f"{input_size!r}")


def _check_input_size(name: str, input: Tensor, input_size: int) -> None:  # noqa: A002
    if input.shape[-1] != input_size:
        raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                         f"{input_size}, got {input.shape[-1]}")


class _RNNBase(Module):
    """Shared parameter layout of LSTM (4 gates) and GRU (3 gates)."""

    _gates = 0
    _mode = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be an integer greater than zero, got "
                             f"{num_layers!r}")
        if not 0 <= float(dropout) <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        if bidirectional:
            raise NotImplementedError(f"{name}: bidirectional=True is not implemented in "
                                      f"nncore yet; run two {name}s over the sequence and its "
                                      f"reverse instead")
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size != 0 (LSTM projections) is not "
                                      f"implemented in nncore")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = False
        self.proj_size = 0
        dt = np.dtype(dtype or np.float32)
        G = self._gates * hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", Parameter(np.empty((G, in_size), dt)))
            setattr(self, f"weight_hh_l{layer}", Parameter(np.empty((G, hidden_size), dt)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(np.empty(G, dt)))
                setattr(self, f"bias_hh_l{layer}", Parameter(np.empty(G, dt)))
        self.reset_parameters()

    @property
    def _flat_weights_names(self) -> list[str]:
        names = []
        for layer in range(self.num_layers):
            names += [f"weight_ih_l{layer}", f"weight_hh_l{layer}"]
            if self.bias:
                names += [f"bias_ih_l{layer}", f"bias_hh_l{layer}"]
        return names

    @property
    def _flat_weights(self) -> list[Parameter]:
        return [getattr(self, n) for n in self._flat_weights_names]

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self._flat_weights:
            init.uniform_(w, -stdv, stdv)

    def _prepare(self, input: Tensor) -> None:  # noqa: A002
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D "
                             f"instead (shape {tuple(input.shape)})")
        _check_input_size(name, input, self.input_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


class LSTM(_RNNBase):
    """Multi-layer LSTM over a whole sequence (PyTorch's nn.LSTM).

    input (T, B, I) or (B, T, I) with batch_first, or unbatched (T, I); hx = (h_0, c_0), each
    (num_layers, B, H) (unbatched (num_layers, H)), zeros when omitted. Returns
    output (T, B, H) (batch-first / unbatched like input) and (h_n, c_n).

    >>> lstm = LSTM(10, 20, num_layers=2)
    >>> out, (h, c) = lstm(x)          # x (T, B, 10) -> out (T, B, 20), h, c (2, B, 20)
    """

    _gates = 4
    _mode = "LSTM"

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:  # noqa: A002
        self._prepare(input)
        return F_rnn.lstm(input, hx, self._flat_weights, self.num_layers, self.dropout,
                          self.training, self.batch_first, self.hidden_size)


class GRU(_RNNBase):
    """Multi-layer GRU over a whole sequence (PyTorch's nn.GRU; gates r, z, n).

    Same input conventions as LSTM; hx is h_0 (num_layers, B, H). Returns (output, h_n).
    """

    _gates = 3
    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple:  # noqa: A002
        self._prepare(input)
        return F_rnn.gru(input, hx, self._flat_weights, self.num_layers, self.dropout,
                         self.training, self.batch_first, self.hidden_size)


class _CellBase(Module):
    _gates = 0

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        dt = np.dtype(dtype or np.float32)
        G = self._gates * hidden_size
        self.weight_ih = Parameter(np.empty((G, input_size), dt))
        self.weight_hh = Parameter(np.empty((G, hidden_size), dt))
        if bias:
            self.bias_ih = Parameter(np.empty(G, dt))
            self.bias_hh = Parameter(np.empty(G, dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _prepare(self, input: Tensor, states: list) -> tuple:  # noqa: A002
        """Validate; return (input (B, I), states as (B, H), batched flag)."""
        from ..functional.shape import unsqueeze

        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D "
                             f"instead (shape {tuple(input.shape)})")
        _check_input_size(name, input, self.input_size)
        batched = input.ndim == 2
        x = input if batched else unsqueeze(input, 0)
        B, H = x.shape[0], self.hidden_size
        out = []
        for i, s in enumerate(states):
            if s is None:
                s = Tensor(_device.zeros((B, H), self.weight_ih.dtype, x.data))
            else:
                if s.ndim != input.ndim:
                    raise ValueError(f"{name}: hidden state {i} must be {input.ndim}-D like "
                                     f"the input, got shape {tuple(s.shape)}")
                if not batched:
                    s = unsqueeze(s, 0)
                if tuple(s.shape) != (B, H):
                    raise ValueError(f"{name}: hidden state {i} must have shape {(B, H)}, got "
                                     f"{tuple(s.shape)}")
            out.append(s)
        return x, out, batched

    def _params(self) -> tuple:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class LSTMCell(_CellBase):
    """One LSTM step (PyTorch's nn.LSTMCell): input (B, I), hx = (h, c) (B, H) -> (h', c')."""

    _gates = 4

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:  # noqa: A002
        from ..functional.shape import squeeze

        states = [None, None] if hx is None else list(hx)
        x, (h, c), batched = self._prepare(input, states)
        h_new, c_new = F_rnn.lstm_cell(x, h, c, *self._params())
        if not batched:
            return squeeze(h_new, 0), squeeze(c_new, 0)
        return h_new, c_new


class GRUCell(_CellBase):
    """One GRU step (PyTorch's nn.GRUCell): input (B, I), hx (B, H) -> h' (B, H)."""

    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        from ..functional.shape import squeeze

        x, (h,), batched = self._prepare(input, [hx])
        h_new = F_rnn.gru_cell(x, h, *self._params())
        return h_new if batched else squeeze(h_new, 0)
