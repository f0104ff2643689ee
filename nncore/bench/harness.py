"""The benchmark harness: one import for what every bench module shares.

The code lives in small modules, re-exported here so ``harness.X`` keeps working:

- `timing`: the measurement method (calibrated repeats, median, spread; peak memory);
- `records`: one dict per measured or failed cell, and the JSON file of them;
- `tables`: cell formatting, display units and the results table;
- `machine`: CPU, cores, load, NumPy/BLAS, nncore and torch builds;
- `workers`: one child process per (backend, threads) pair, and the shared command line;
- `cases`: measuring a table of (name, unit, [work,] builder) cases in one process.
"""
from __future__ import annotations

from nncore.bench.cases import autograd_lib as autograd_lib
from nncore.bench.cases import make_case as make_case
from nncore.bench.cases import run_cases as run_cases
from nncore.bench.cases import set_backend_threads as set_backend_threads
from nncore.bench.machine import machine_info as machine_info
from nncore.bench.records import error_record as error_record
from nncore.bench.records import memory_record as memory_record
from nncore.bench.records import record as record
from nncore.bench.records import write_json as write_json
from nncore.bench.tables import SPREAD_FLAG as SPREAD_FLAG
from nncore.bench.tables import display_value as display_value
from nncore.bench.tables import format_cell as format_cell
from nncore.bench.tables import format_table as format_table
from nncore.bench.tables import results_table as results_table
from nncore.bench.timing import measure as measure
from nncore.bench.timing import peak_memory_mb as peak_memory_mb
from nncore.bench.workers import REPO_ROOT as REPO_ROOT
from nncore.bench.workers import THREAD_VARS as THREAD_VARS
from nncore.bench.workers import add_worker_args as add_worker_args
from nncore.bench.workers import available_backends as available_backends
from nncore.bench.workers import collect as collect
from nncore.bench.workers import family_main as family_main
from nncore.bench.workers import measure_options as measure_options
from nncore.bench.workers import parse_list as parse_list
from nncore.bench.workers import run_worker as run_worker
from nncore.bench.workers import thread_env as thread_env

__all__ = [
    "REPO_ROOT",
    "SPREAD_FLAG",
    "format_cell",
    "format_table",
    "machine_info",
    "measure",
    "run_worker",
    "thread_env",
]
