"""CUDA kernels on DeviceArrays, with the names, argument order and results of the CPU kernel
wrappers in nncore._kernels (gemm, activation, loss, conv, pool, lstm, gru, embedding, norm,
optim). Each function validates shapes and dtypes (errors name the argument, as the CPU
wrappers' do), allocates outputs from the caching allocator and queues the kernels; nothing
waits for the GPU except where a result must come back (label / id bounds checks, the id
grouping of embedding_backward).

    >>> import numpy as np
    >>> from nncore.cuda import ops
    >>> a = ops.DeviceArray.from_numpy(np.ones((3, 4), np.float32))
    >>> ops.gemm(a, a, trans_b=True).numpy()          # (3, 3) of 4.0

Differences from the CPU wrappers: arrays are DeviceArrays (class/token ids may also be NumPy
integer arrays); lstm_forward's cache is a CUDA-side LSTMCache; maxpool2d_backward takes the
forward's window options (optional) to gather deterministically instead of scattering.
Importing this module without a CUDA build raises RuntimeError (see nncore.cuda).
"""
from ._ops_activation import (  # noqa: F401
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from ._ops_base import (  # noqa: F401
    DeviceArray,
    add,
    affine,
    axpby,
    cast,
    div,
    dropout_forward,
    fill,
    gemm,
    gemm_batched,
    mul,
    sub,
    sum_all,
    sum_rows,
)
from ._ops_layers import (  # noqa: F401
    avgpool2d_backward,
    avgpool2d_forward,
    batch_norm_backward,
    batch_norm_forward,
    conv2d_backward,
    conv2d_forward,
    embedding_backward,
    embedding_forward,
    maxpool2d_backward,
    maxpool2d_forward,
)
from ._ops_loss import (  # noqa: F401
    cross_entropy_backward,
    cross_entropy_forward,
)
from ._ops_optim import adam_step, adam_step_multi, sgd_step, sgd_step_multi  # noqa: F401
from ._ops_rnn import (  # noqa: F401
    LSTMCache,
    gru_backward,
    gru_cell_backward,
    gru_cell_forward,
    gru_forward,
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
)
