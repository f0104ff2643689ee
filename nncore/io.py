"""Saving and loading: safetensors files (no pickle) and atomic training checkpoints.

File format: safetensors, written and read in pure Python + NumPy by nncore._safetensors (the
layout and its checks are described there). Loading a file never runs code, and a truncated,
tampered or absurd file raises ValueError.

A checkpoint is a safetensors file whose tensors are the model's state_dict ("model.*") and the
optimizer's state buffers ("optimizer.*"); everything else (param groups, step counts, the
scheduler, the epoch, nncore's RNG state) is JSON in the metadata. Files are written to a
temporary file in the same folder, flushed, fsync'ed and renamed over the target, so a crash
mid-save leaves the previous file intact.

Example:
    >>> nncore.save(model.state_dict(), "model.safetensors")
    >>> model.load_state_dict(nncore.load("model.safetensors"))
    >>> nncore.io.save_checkpoint("ckpt.safetensors", model=model, optimizer=opt, epoch=3)
    >>> info = nncore.io.load_checkpoint("ckpt.safetensors", model=model, optimizer=opt)
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._safetensors import MAX_HEADER_BYTES, _as_array, _bad, _read, load, load_metadata, save
from .random import get_rng_state, set_rng_state
from .tensor import Tensor

__all__ = ["save", "load", "load_metadata", "save_checkpoint", "load_checkpoint",
           "from_torch_state_dict", "MAX_HEADER_BYTES"]

_CHECKPOINT_KEY = "nncore.checkpoint"


# ------------------------------------------------------------------------------ checkpoints
def _encode(obj: Any, where: str, tensors: dict[str, np.ndarray]) -> Any:
    """JSON-able form of a nested state; arrays go to `tensors` under the name `where`."""
    if isinstance(obj, (Tensor, np.ndarray)):
        name, n = where, 1
        while name in tensors:  # e.g. keys "a.b" and "a" -> "b" both map to "a.b"
            name, n = f"{where}#{n}", n + 1
        tensors[name] = _as_array(where, obj)
        return {"__tensor__": name}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{where}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{where}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{where}.{k}", tensors) for k, v in obj.items()}
        return {"__dict__": [[_encode(k, f"{where}.key", tensors),
                              _encode(v, f"{where}.{k}", tensors)] for k, v in obj.items()]}
    raise TypeError(f"save_checkpoint: cannot store {where} of type {type(obj).__name__} "
                    "(only tensors, arrays, numbers, str, None, lists, tuples and dicts)")


def _decode(obj: Any, tensors: Mapping[str, np.ndarray], path: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag == "__tensor__":
            if value not in tensors:
                raise _bad(path, f"checkpoint refers to missing tensor {value!r}")
            return tensors[value]
        if tag == "__tuple__":
            return tuple(_decode(v, tensors, path) for v in value)
        if tag == "__dict__":
            return {_decode(k, tensors, path): _decode(v, tensors, path) for k, v in value}
    return {k: _decode(v, tensors, path) for k, v in obj.items()}


def save_checkpoint(path: str | os.PathLike, model: Any = None, optimizer: Any = None,
                    scheduler: Any = None, epoch: int | None = None, rng: bool = True,
                    extra: Any = None) -> None:
    """Atomically save a training checkpoint (model, optimizer, scheduler, epoch, RNG, extra).

    `extra` may hold numbers, strings, lists, dicts and arrays (e.g. a metric history).
    """
    tensors: dict[str, np.ndarray] = {}
    payload: dict[str, Any] = {"version": 1, "epoch": epoch}
    if model is not None:
        for k, v in model.state_dict().items():
            tensors["model." + k] = _as_array("model." + k, v)
    if optimizer is not None:
        payload["optimizer"] = _encode(optimizer.state_dict(), "optimizer", tensors)
    if scheduler is not None:
        payload["scheduler"] = _encode(scheduler.state_dict(), "scheduler", tensors)
    if rng:
        payload["rng"] = get_rng_state()
    if extra is not None:
        payload["extra"] = _encode(extra, "extra", tensors)
    save(tensors, path, {_CHECKPOINT_KEY: json.dumps(payload)})


def load_checkpoint(path: str | os.PathLike, model: Any = None, optimizer: Any = None,
                    scheduler: Any = None, strict: bool = True,
                    rng: bool = True) -> dict[str, Any]:
    """Restore a `save_checkpoint` file into the given objects; returns {"epoch", "extra"}.

    The whole file (header, tensors, JSON state, RNG state) is read and validated before any
    object changes; each object's load_state_dict then checks its own part. With rng=True
    nncore's global generator continues exactly where it was when the checkpoint was saved.
    """
    arrays, meta = _read(path)
    if _CHECKPOINT_KEY not in meta:
        raise ValueError(f"{os.fspath(path)}: not an nncore checkpoint (no "
                         f"{_CHECKPOINT_KEY!r} metadata); use nncore.load for plain files")
    try:
        payload = json.loads(meta[_CHECKPOINT_KEY])
    except (json.JSONDecodeError, RecursionError) as e:
        raise _bad(path, f"checkpoint metadata is not valid JSON ({type(e).__name__})") from None
    if not isinstance(payload, dict):
        raise _bad(path, "checkpoint metadata must be a JSON object")
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None and name not in payload:
            raise ValueError(f"{os.fspath(path)}: the checkpoint holds no {name} state")
    try:
        opt_state = _decode(payload["optimizer"], arrays, path) if optimizer is not None \
            else None
        sched_state = _decode(payload["scheduler"], arrays, path) if scheduler is not None \
            else None
        extra = _decode(payload.get("extra"), arrays, path)
    except (TypeError, ValueError, RecursionError) as e:
        if isinstance(e, ValueError) and "not a valid safetensors file" in str(e):
            raise
        raise _bad(path, f"malformed checkpoint state ({type(e).__name__}: {e})") from None
    rng_state = payload.get("rng") if rng else None
    if rng_state is not None:
        try:  # check it on a scratch generator first
            np.random.PCG64().state = rng_state
        except (TypeError, ValueError, KeyError) as e:
            raise _bad(path, f"invalid RNG state ({type(e).__name__}: {e})") from None
    if model is not None:
        model.load_state_dict({k[len("model."):]: Tensor(v) for k, v in arrays.items()
                               if k.startswith("model.")}, strict=strict)
    if optimizer is not None:
        optimizer.load_state_dict(opt_state)
    if scheduler is not None:
        scheduler.load_state_dict(sched_state)
    if rng_state is not None:
        set_rng_state(rng_state)
    return {"epoch": payload.get("epoch"), "extra": extra}


# ------------------------------------------------------------------------------ interop
def from_torch_state_dict(state_dict: Mapping[str, Any]) -> OrderedDict:
    """A PyTorch state_dict as {name: numpy.ndarray} copies, ready for load_state_dict.

    Works on any objects with torch's `.detach().cpu().numpy()` (bfloat16 is widened to
    float32, which NumPy lacks). nncore never imports torch itself.
    """
    out: OrderedDict = OrderedDict()
    for name, value in state_dict.items():
        if isinstance(value, np.ndarray):
            out[name] = value.copy()
            continue
        if not hasattr(value, "detach"):
            raise TypeError(f"from_torch_state_dict: {name!r} is a {type(value).__name__}, "
                            "not a tensor")
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        out[name] = np.array(t.numpy(), copy=True)
    return out
