"""The MPI process group: lazy mpi4py import, rank/world size, collectives, fail-fast.

mpi4py is imported only by `init()` (or a collective called after it), so `import nncore` and
`import nncore.distributed` never need MPI. One process group per process, like
``torch.distributed``'s default group; `comm` arguments elsewhere take any mpi4py
communicator for users who split their own.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import numpy as np

from ..tensor import Tensor

_state: dict[str, Any] = {"comm": None, "mpi": None}

INSTALL_HINT = ("nncore.distributed needs mpi4py and an MPI library: "
                "`apt-get install openmpi-bin libopenmpi-dev` (or your cluster's MPI module), "
                "then `pip install 'nncore[distributed]'`")


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:  # mpi4py missing, or present without a loadable libmpi
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return MPI


def is_available() -> bool:
    """True when mpi4py imports (an MPI library is installed); never raises."""
    try:
        _import_mpi()
    except ImportError:
        return False
    return True


def init(comm: Any = None, threads_per_rank: int | None = None,
         abort_on_exception: bool = True) -> tuple[int, int]:
    """Join the MPI job (started by ``mpirun -np N python script.py``); returns (rank, size).

    comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
    threads_per_rank: nncore's OpenMP thread count in this rank. Default: ``OMP_NUM_THREADS``
        when set; else the cores this rank is bound to when mpirun bound it; else the machine's
        cores divided by the ranks on this node, so ranks x threads never oversubscribes.
    abort_on_exception: with more than one rank, an uncaught exception in any rank prints its
        traceback and calls ``MPI_Abort`` so mpirun ends the whole job instead of leaving the
        other ranks blocked in a collective forever.
    Calling it again returns the existing group.
    """
    if _state["comm"] is not None:
        return get_rank(), get_world_size()
    mpi = _import_mpi()
    comm = mpi.COMM_WORLD if comm is None else comm
    _state["mpi"], _state["comm"] = mpi, comm
    from .._kernels._parallel import set_num_threads

    set_num_threads(threads_per_rank if threads_per_rank is not None
                    else default_threads_per_rank(comm, mpi))
    if abort_on_exception and comm.Get_size() > 1:
        _install_abort_hook(comm)
    return comm.Get_rank(), comm.Get_size()


def default_threads_per_rank(comm: Any, mpi: Any) -> int:
    """OMP_NUM_THREADS if set; else bound cores; else node cores / ranks on the node."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    total = os.cpu_count() or 1
    bound = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    if bound < total:  # mpirun --bind-to core/socket: this rank owns exactly these cores
        return max(1, bound)
    node = comm.Split_type(mpi.COMM_TYPE_SHARED)
    local_ranks = node.Get_size()
    node.Free()
    return max(1, total // local_ranks)


def _install_abort_hook(comm: Any) -> None:
    previous = sys.excepthook

    def abort_job(exc_type, exc, tb):
        rank = comm.Get_rank()
        sys.stderr.write(f"nncore.distributed: uncaught exception on rank {rank}; "
                         f"aborting all {comm.Get_size()} ranks\n")
        traceback.print_exception(exc_type, exc, tb)
        sys.stderr.flush()
        sys.stdout.flush()
        if previous is not sys.__excepthook__ and previous is not abort_job:
            previous(exc_type, exc, tb)
        comm.Abort(1)

    sys.excepthook = abort_job


def is_initialized() -> bool:
    return _state["comm"] is not None


def _comm(comm: Any = None) -> Any:
    if comm is not None:
        return comm
    if _state["comm"] is None:
        raise RuntimeError("nncore.distributed is not initialized: call "
                           "nncore.distributed.init() first (and start the script with mpirun)")
    return _state["comm"]


def mpi() -> Any:
    """The mpi4py ``MPI`` module of the initialized group."""
    _comm()
    return _state["mpi"]


def get_rank(comm: Any = None) -> int:
    """This process's rank (0 when not initialized, so single-process code runs unchanged)."""
    if comm is None and _state["comm"] is None:
        return 0
    return _comm(comm).Get_rank()


def get_world_size(comm: Any = None) -> int:
    """Number of ranks (1 when not initialized)."""
    if comm is None and _state["comm"] is None:
        return 1
    return _comm(comm).Get_size()


def barrier(comm: Any = None) -> None:
    """Block until every rank reaches this call (no-op when not initialized)."""
    if comm is None and _state["comm"] is None:
        return
    _comm(comm).Barrier()


def _buffer(t: Any, what: str) -> np.ndarray:
    arr = t.data if isinstance(t, Tensor) else t
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{what}: expected a Tensor or ndarray, got {type(t).__name__}")
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise ValueError(f"{what}: the buffer must be C-contiguous and writeable "
                         f"(shape {arr.shape}, strides {arr.strides})")
    return arr


_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN", "prod": "PROD"}


def all_reduce(tensor: Any, op: str = "sum", comm: Any = None) -> Any:
    """Reduce `tensor` over all ranks in place (``op``: sum, mean, max, min, prod)."""
    comm = _comm(comm)
    arr = _buffer(tensor, "all_reduce")
    if op not in _OPS and op != "mean":
        raise ValueError(f"all_reduce: op must be one of {sorted([*_OPS, 'mean'])}, got {op!r}")
    mpi_op = getattr(_state["mpi"] or _import_mpi(), _OPS.get(op, "SUM"))
    comm.Allreduce(_in_place(), arr, op=mpi_op)
    if op == "mean":
        arr /= comm.Get_size()
    return tensor


def broadcast(tensor: Any, src: int = 0, comm: Any = None) -> Any:
    """Overwrite `tensor` on every rank with rank `src`'s values (in place)."""
    comm = _comm(comm)
    if not 0 <= src < comm.Get_size():
        raise ValueError(f"broadcast: src {src} is not a rank of a {comm.Get_size()}-rank job")
    comm.Bcast(_buffer(tensor, "broadcast"), root=src)
    return tensor


def _in_place() -> Any:
    return (_state["mpi"] or _import_mpi()).IN_PLACE
