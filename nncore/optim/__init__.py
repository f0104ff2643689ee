"""nncore.optim: optimizers with fused, multi-tensor step kernels (mirrors torch.optim)."""
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD"]
