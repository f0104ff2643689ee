"""Source-checkout entry point for nncore.bench.bench_pool (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.bench_pool", run_name="__main__", alter_sys=True)
