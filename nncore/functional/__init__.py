"""nncore.functional: every differentiable op as a function (mirrors torch.nn.functional)."""
from .activation import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import conv2d
from .dropout import dropout, dropout2d
from .elementwise import (
    abs,
    add,
    clamp,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from .embedding import embedding
from .gemm import linear, matmul
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .normalization import batch_norm
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .reduction import argmax, argmin, max, mean, min, sum
from .rnn import gru, gru_cell, gru_layer, lstm, lstm_cell, lstm_layer
from .shape import (
    cat,
    expand,
    flatten,
    getitem,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)

__all__ = [
    "abs", "add", "argmax", "argmin", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "cat", "clamp", "cross_entropy", "div", "exp", "expand", "flatten", "gelu", "getitem",
    "leaky_relu", "linear", "log", "log_softmax", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mse_loss", "mul", "neg", "nll_loss", "permute", "pow", "relu", "reshape",
    "sigmoid", "softmax", "sqrt", "squeeze", "stack", "sub", "sum", "tanh", "transpose",
    "unsqueeze", "where",
    "gru", "gru_cell", "gru_layer", "lstm", "lstm_cell", "lstm_layer",
    "embedding",
    "batch_norm", "dropout", "dropout2d",
    "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
]
