"""Source-checkout entry point for nncore.bench.bench_cnn (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.bench_cnn", run_name="__main__", alter_sys=True)
