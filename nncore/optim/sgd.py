"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (torch.optim.SGD)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable

from .. import _device
from .optimizer import Optimizer, fused_kernel

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum.

    Per parameter, with g its gradient (negated if ``maximize``):

        g = g + weight_decay * p
        buf = g (first step),  buf = momentum * buf + (1 - dampening) * g (later steps)
        g = g + momentum * buf (nesterov)  or  g = buf
        p = p - lr * g

    Example:
        >>> opt = nncore.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _fix_group(self, group: dict[str, Any]) -> None:
        group.setdefault("nesterov", False)
        group.setdefault("maximize", False)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; one fused kernel call per (group, dtype)."""
        loss = self._call_closure(closure)
        for gi, group in enumerate(self.param_groups):
            momentum = float(group["momentum"])
            for items in self._grads_by_dtype(group, gi).values():
                params = [p.data for p, _ in items]
                grads = [g for _, g in items]
                bufs: list = []
                first: list[bool] = []
                for p, _ in items:
                    buf = self.state[p].get("momentum_buffer") if momentum != 0 else None
                    first.append(buf is None)
                    if momentum != 0 and buf is None:
                        buf = _device.empty(p.data.shape, p.data.dtype, p.data)
                    bufs.append(buf)
                fused_kernel(items, "sgd_step_multi")(
                    params, grads, bufs, float(group["lr"]), momentum,
                    float(group["dampening"]), float(group["weight_decay"]),
                    bool(group["nesterov"]), bool(group["maximize"]), first)
                if momentum != 0:
                    for (p, _), buf in zip(items, bufs):
                        self.state[p]["momentum_buffer"] = buf
        return loss
