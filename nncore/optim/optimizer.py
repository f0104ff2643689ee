"""Optimizer: the base class of nncore.optim (param groups, per-parameter state, state_dict).

Mirrors torch.optim.Optimizer: `param_groups` is a list of dicts, each with a "params" list
and its hyper-parameters; `state` maps each parameter (by identity) to a dict of its buffers.
Subclasses implement `step()` with the fused kernels in `nncore._kernels.optim`, one call per
(param group, dtype).
"""
from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np

from .. import _device
from .._kernels import optim as _k
from ..autograd import enable_grad
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyper-parameter that every param group must give (no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_SET_MESSAGE = ("optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead.")


def _typename(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _grad_array(p: Tensor) -> Any:
    """The gradient of p as an array (p.grad may be a Tensor or, leniently, an ndarray)."""
    g = p.grad
    if g is None:
        return None
    return g if isinstance(g, np.ndarray) else g.data


def fused_kernel(items: list, name: str) -> Any:
    """The fused multi-parameter kernel `name` (e.g. "adam_step_multi") for the device that
    `items` [(param, grad)] live on: nncore._kernels.optim or nncore.cuda.ops."""
    fn = getattr(_device.kernels(items[0][0].data, _k), name, None)
    if fn is None:   # (every CPU optimizer has its kernel)
        raise NotImplementedError(f"{name.removesuffix('_step_multi')}: this optimizer has no "
                                  f"CUDA kernel yet; SGD, Adam and AdamW run on the GPU "
                                  f"(docs/cuda.md)")
    return fn


class Optimizer:
    """Base class for all optimizers.

    Args:
        params: an iterable of Tensors, or of dicts (param groups) each holding "params" and
            any hyper-parameters that override `defaults` for that group.
        defaults: default hyper-parameters (used where a group does not give its own).
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {_typename(params)}")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with optional per-group hyper-parameters)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("param_group must contain a 'params' entry")
        if isinstance(params, Tensor):
            group["params"] = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        else:
            group["params"] = list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(p))
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        ids = {id(p) for p in group["params"]}
        if len(ids) != len(group["params"]):
            # torch only warns, then steps such a parameter twice; the fused kernels would
            # update it twice inside one parallel region, so refuse instead.
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        for other in self.param_groups:
            if any(id(p) in ids for p in other["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        self._fix_group(group)
        self.param_groups.append(group)

    def _fix_group(self, group: dict[str, Any]) -> None:
        """Hook for subclasses: normalise a group's hyper-parameters (add or load)."""

    # ------------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters (to None, or to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif isinstance(p.grad, Tensor):
                    p.grad.zero_()
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; returns closure()'s loss if a closure is given."""
        raise NotImplementedError

    @staticmethod
    def _call_closure(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _grads_by_dtype(self, group: dict[str, Any], gi: int) -> dict[tuple, list]:
        """[(param, grad array)] of a group's params that have a grad, split by device and
        dtype (one fused kernel call each)."""
        out: dict[tuple, list] = {}
        for i, p in enumerate(group["params"]):
            g = _grad_array(p)
            if g is None:
                continue
            on_host = isinstance(p.data, np.ndarray)
            if g.dtype != p.data.dtype or g.shape != p.data.shape \
                    or isinstance(g, np.ndarray) != on_host:
                raise ValueError(f"param {i} of param group {gi}: grad has shape {g.shape} and "
                                 f"dtype {g.dtype} on {_device.device_of(g)}, but the param has "
                                 f"shape {p.data.shape} and dtype {p.data.dtype} on {p.device}")
            out.setdefault((on_host, p.data.dtype), []).append((p, g))
        return out

    # ------------------------------------------------------------------------ state_dict
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the optimizer: {"state": {index: {...}}, "param_groups": [...]}.

        Parameters are replaced by their integer index in group order, as in PyTorch. State
        arrays are host copies (later steps do not change a state_dict already taken);
        load_state_dict puts them back on each parameter's device.
        """
        index_of: dict[int, int] = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index_of.setdefault(id(p), i)
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            start += len(group["params"])
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if id(p) in index_of:
                state[index_of[id(p)]] = {
                    k: (v.copy() if isinstance(v, np.ndarray) else
                        _device.move(v, _device.CPU) if _device.is_device_array(v)
                        else copy.deepcopy(v))
                    for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()` (validated first: nothing changes if it does not fit)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict \
                or "param_groups" not in state_dict:
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if not isinstance(state_dict["state"], dict) or not isinstance(saved_groups, list) \
                or not all(isinstance(g, dict) for g in saved_groups):
            raise ValueError("state_dict['state'] must be a dict and state_dict['param_groups'] "
                             "a list of dicts")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        id_map: dict[int, Tensor] = {}
        for gi, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {gi} has "
                                 f"{len(saved.get('params', ()))} params in the state dict, "
                                 f"{len(group['params'])} in the optimizer")
            for index, p in zip(saved["params"], group["params"]):
                id_map[int(index)] = p
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for index, saved in state_dict["state"].items():
            if int(index) not in id_map:
                raise ValueError(f"state_dict has state for parameter index {index}, which no "
                                 "param group lists")
            p = id_map[int(index)]
            new_state[p] = {k: _load_value(v, p, index, k) for k, v in saved.items()}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new_group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            for k, v in self.defaults.items():
                new_group.setdefault(k, v)
            new_group["params"] = group["params"]
            self._fix_group(new_group)
            new_groups.append(new_group)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


def _load_value(value: Any, p: Tensor, index: Any, key: str) -> Any:
    """One state entry from a state_dict: "step" as an int, buffers as C arrays like p."""
    if key == "step":
        step = float(np.asarray(value))
        if step < 0 or step != int(step):
            raise ValueError(f"state_dict state[{index}]['step'] must be a non-negative "
                             f"integer, got {value!r}")
        return int(step)
    if isinstance(value, (numbers.Number, str, bool)) or value is None:
        return copy.deepcopy(value)
    arr = value.data if isinstance(value, Tensor) else value
    arr = _device.move(arr, _device.CPU) if _device.is_device_array(arr) else np.asarray(arr)
    if arr.shape != p.data.shape:
        raise ValueError(f"state_dict state[{index}][{key!r}] has shape {arr.shape}, but its "
                         f"parameter has shape {p.data.shape}")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"state_dict state[{index}][{key!r}] has non-numeric dtype {arr.dtype}")
    return _device.move(np.array(arr, dtype=p.data.dtype, order="C", copy=True), p.device)
