"""Adam and AdamW (torch.optim.Adam / torch.optim.AdamW), with AMSGrad and maximize."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

from .. import _device
from .optimizer import Optimizer, fused_kernel

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam; with ``decoupled_weight_decay=True`` it is AdamW.

    Per parameter at step t, with g its gradient (negated if ``maximize``):

        g = g + weight_decay * p            (Adam: L2 penalty)
        p = p * (1 - lr * weight_decay)     (AdamW: decoupled decay)
        m = beta1 * m + (1 - beta1) * g;    v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v)               (amsgrad; used in place of v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: "step" (int), "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with
    amsgrad.

    Example:
        >>> opt = nncore.optim.Adam(model.parameters(), lr=1e-3)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
                    "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _fix_group(self, group: dict[str, Any]) -> None:
        group.setdefault("amsgrad", False)
        group.setdefault("maximize", False)
        group.setdefault("decoupled_weight_decay", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; one fused kernel call per (group, dtype)."""
        loss = self._call_closure(closure)
        for gi, group in enumerate(self.param_groups):
            beta1, beta2 = group["betas"]
            amsgrad = bool(group["amsgrad"])
            for items in self._grads_by_dtype(group, gi).values():
                states = [self.state[p] for p, _ in items]
                for (p, _), state in zip(items, states):
                    zeros = (p.data.shape, p.data.dtype, p.data)
                    if len(state) == 0:  # lazy init, as torch
                        state["step"] = 0
                        state["exp_avg"] = _device.zeros(*zeros)
                        state["exp_avg_sq"] = _device.zeros(*zeros)
                    if amsgrad and "max_exp_avg_sq" not in state:
                        state["max_exp_avg_sq"] = _device.zeros(*zeros)
                steps = [int(s["step"]) + 1 for s in states]
                fused_kernel(items, "adam_step_multi")(
                    [p.data for p, _ in items], [g for _, g in items],
                    [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                    [s["max_exp_avg_sq"] for s in states] if amsgrad else None, steps,
                    float(group["lr"]), float(beta1), float(beta2), float(group["eps"]),
                    float(group["weight_decay"]), amsgrad, bool(group["maximize"]),
                    bool(group["decoupled_weight_decay"]))
                for s, step in zip(states, steps):  # count the step only once it happened
                    s["step"] = step
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: p = p * (1 - lr * weight_decay) before the Adam step.

    Example:
        >>> opt = nncore.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _fix_group(self, group: dict[str, Any]) -> None:
        super()._fix_group(group)
        group["decoupled_weight_decay"] = True  # as torch: AdamW stays AdamW on load
