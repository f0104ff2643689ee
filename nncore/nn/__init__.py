"""nncore.nn: layers, containers, losses and init (mirrors torch.nn)."""
from . import functional, init, utils
from .activation import (
    GELU,
    Flatten,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    Unflatten,
)
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout, Dropout2d
from .embedding import Embedding
from .linear import Identity, Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, GRUCell, LSTMCell

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Flatten", "GELU", "Identity",
    "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict", "ModuleList",
    "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "Unflatten",
    "functional", "init",
    "GRU", "GRUCell", "LSTM", "LSTMCell",
    "Embedding", "utils",
    "BatchNorm1d", "BatchNorm2d", "Dropout", "Dropout2d",
    "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
]
