"""Start an N-rank job on this machine from Python (tests, benchmarks): ``run_mpi``.

Users normally type ``mpirun -np N python script.py`` themselves; this is the same command
with the settings a single machine or a container needs, kept in one place.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence


def find_mpirun() -> str | None:
    """Path of ``mpirun`` (or ``mpiexec``), or None when no MPI launcher is installed."""
    return shutil.which("mpirun") or shutil.which("mpiexec")


def local_env(threads_per_rank: int | None = None) -> dict[str, str]:
    """Environment for a local Open MPI job: allowed to run as root when we are root
    (containers, CI), with `threads_per_rank` as OMP_NUM_THREADS when given."""
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    if threads_per_rank is not None:
        env["OMP_NUM_THREADS"] = str(threads_per_rank)
    return env


def mpirun_argv(n: int, argv: Sequence[str]) -> list[str]:
    """``mpirun -np n --oversubscribe --bind-to none python ARGV...`` (threads placed by OpenMP,
    not pinned one core per rank, so a 1-rank job can still use every core)."""
    mpirun = find_mpirun()
    if mpirun is None:
        raise FileNotFoundError("no mpirun/mpiexec on PATH: install an MPI library "
                                "(e.g. `apt-get install openmpi-bin libopenmpi-dev`)")
    return [mpirun, "-np", str(n), "--oversubscribe", "--bind-to", "none",
            sys.executable, *argv]


def run_mpi(n: int, argv: Sequence[str], timeout: float = 120.0,
            threads_per_rank: int | None = None, cwd: str | None = None,
            extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGV`` on `n` local ranks; returns the completed process (stdout/stderr as
    text). `extra_env` is added to the ranks' environment. Raises
    ``subprocess.TimeoutExpired`` (after killing the job) past `timeout` s."""
    env = local_env(threads_per_rank)
    env.update(extra_env or {})
    return subprocess.run(mpirun_argv(n, argv), env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
