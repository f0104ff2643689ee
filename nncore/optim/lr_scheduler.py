"""Learning-rate schedules (torch.optim.lr_scheduler names, arguments and trajectories).

A scheduler owns an optimizer and rewrites each param group's "lr" when `step()` is called
(once per epoch, or per batch for OneCycleLR). Like PyTorch, the update rules are *chainable*:
each `get_lr()` starts from the group's current lr, so two schedulers may drive one optimizer.
`state_dict()` holds plain Python values (no optimizer, no functions), so it serialises to JSON.

Example:
    >>> opt = nncore.optim.SGD(model.parameters(), lr=0.1)
    >>> sched = nncore.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    >>> for epoch in range(100):
    ...     train(...); sched.step()
"""
from ._scheduler_adaptive import ChainedScheduler, OneCycleLR, ReduceLROnPlateau, SequentialLR
from ._scheduler_base import LRScheduler
from ._scheduler_schedules import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "LinearLR", "ConstantLR",
           "PolynomialLR", "OneCycleLR", "ReduceLROnPlateau", "ChainedScheduler",
           "SequentialLR"]
