"""Source-checkout entry point for nncore.bench.bench_cuda (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.bench_cuda", run_name="__main__", alter_sys=True)
