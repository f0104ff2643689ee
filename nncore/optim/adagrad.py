"""Adagrad (torch.optim.Adagrad), with lr_decay, initial_accumulator_value and maximize."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from .optimizer import Optimizer, fused_kernel

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad: per-element learning rates scaled by the accumulated squared gradients.

    Per parameter at step t, with g its gradient (negated if ``maximize``):

        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g^2
        p = p - clr * g / (sqrt(sum) + eps)

    State per parameter (PyTorch's keys), created at construction as in PyTorch: "step" (0)
    and "sum" (filled with ``initial_accumulator_value``).

    Example:
        >>> opt = nncore.optim.Adagrad(model.parameters(), lr=1e-2)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError("Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _init_state(self, p: Any, group: dict[str, Any]) -> None:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = 0
            state["sum"] = np.full(p.data.shape, group["initial_accumulator_value"],
                                   p.data.dtype)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; its parameters get their state at once (as PyTorch)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self._init_state(p, group)

    def _fix_group(self, group: dict[str, Any]) -> None:
        group.setdefault("maximize", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; one fused kernel call per (group, dtype)."""
        loss = self._call_closure(closure)
        for gi, group in enumerate(self.param_groups):
            for items in self._grads_by_dtype(group, gi).values():
                for p, _ in items:
                    self._init_state(p, group)
                states = [self.state[p] for p, _ in items]
                steps = [int(s["step"]) + 1 for s in states]
                fused_kernel(items, "adagrad_step_multi")(
                    [p.data for p, _ in items], [g for _, g in items],
                    [s["sum"] for s in states], steps, float(group["lr"]),
                    float(group["lr_decay"]), float(group["weight_decay"]),
                    float(group["eps"]), bool(group["maximize"]))
                for s, step in zip(states, steps):  # count the step only once it happened
                    s["step"] = step
        return loss
