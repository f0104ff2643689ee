"""nncore: a compiled neural-network engine for Python.

Cython/C kernels with OpenMP under a thin define-by-run autograd and a PyTorch-like API:
``import nncore as nc; model = nc.nn.Linear(784, 10); nc.optim.Adam(model.parameters())``.
"""
from . import (  # noqa: E402,F401
    _tensor_methods,  # noqa: F401  (binds operators onto Tensor)
    data,
    io,
    memory,
    metrics,
    nn,
    optim,
    train,
)
from ._device import device
from ._kernels._parallel import get_num_threads, openmp_enabled, set_num_threads
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .build_info import build_info
from .creation import (
    arange,
    as_tensor,
    bool_,
    empty,
    eye,
    float32,
    float64,
    from_dlpack,
    from_numpy,
    full,
    int32,
    int64,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .functional import (
    abs,
    argmax,
    argmin,
    cat,
    clamp,
    exp,
    flatten,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    permute,
    reshape,
    sigmoid,
    sqrt,
    squeeze,
    stack,
    sum,
    tanh,
    transpose,
    unsqueeze,
    where,
)
from .io import load, save
from .random import get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .tensor import Tensor

__version__ = "0.1.0"

memory._configure_from_environment()

__all__ = [
    "from_dlpack", "io", "load", "memory", "metrics", "save", "train",
    "Tensor", "abs", "arange", "argmax", "argmin", "as_tensor", "bool_", "build_info", "cat",
    "clamp", "device", "empty", "enable_grad", "exp", "eye", "flatten", "float32", "float64",
    "from_numpy", "full", "get_num_threads", "get_rng_state", "initial_seed", "int32", "int64",
    "is_grad_enabled", "log", "manual_seed", "matmul", "max", "maximum", "mean", "min",
    "minimum", "no_grad", "ones", "ones_like", "openmp_enabled", "permute", "rand", "randint",
    "randn", "randn_like", "reshape", "seed", "set_grad_enabled", "set_num_threads",
    "set_rng_state", "sigmoid", "sqrt", "squeeze", "stack", "sum", "tanh", "tensor",
    "transpose", "unsqueeze", "where", "zeros", "zeros_like",
]
