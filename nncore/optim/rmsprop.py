"""RMSprop (torch.optim.RMSprop), with momentum, centered and maximize."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from .optimizer import Optimizer, fused_kernel

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square of recent gradients.

    Per parameter, with g its gradient (negated if ``maximize``):

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g^2
        centered: m = alpha * m + (1 - alpha) * g;  avg = sqrt(v - m^2) + eps
        otherwise: avg = sqrt(v) + eps
        momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
        otherwise: p = p - lr * g / avg

    State per parameter (PyTorch's keys): "step", "square_avg", "momentum_buffer" (momentum >
    0), "grad_avg" (centered).

    Example:
        >>> opt = nncore.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults)

    def _fix_group(self, group: dict[str, Any]) -> None:
        group.setdefault("momentum", 0)
        group.setdefault("centered", False)
        group.setdefault("maximize", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; one fused kernel call per (group, dtype)."""
        loss = self._call_closure(closure)
        for gi, group in enumerate(self.param_groups):
            momentum = float(group["momentum"])
            centered = bool(group["centered"])
            for items in self._grads_by_dtype(group, gi).values():
                states = [self.state[p] for p, _ in items]
                for (p, _), state in zip(items, states):
                    shape, dtype = p.data.shape, p.data.dtype
                    if len(state) == 0:  # lazy init, as torch
                        state["step"] = 0
                        state["square_avg"] = np.zeros(shape, dtype)
                    if momentum > 0 and "momentum_buffer" not in state:
                        state["momentum_buffer"] = np.zeros(shape, dtype)
                    if centered and "grad_avg" not in state:
                        state["grad_avg"] = np.zeros(shape, dtype)
                fused_kernel(items, "rmsprop_step_multi")(
                    [p.data for p, _ in items], [g for _, g in items],
                    [s["square_avg"] for s in states],
                    [s["momentum_buffer"] for s in states] if momentum > 0 else None,
                    [s["grad_avg"] for s in states] if centered else None,
                    float(group["lr"]), float(group["alpha"]), float(group["eps"]),
                    float(group["weight_decay"]), momentum, centered, bool(group["maximize"]))
                for s in states:
                    s["step"] = int(s["step"]) + 1
        return loss
