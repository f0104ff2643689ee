"""Source-checkout entry point for nncore.bench.bench_rnn (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.bench_rnn", run_name="__main__", alter_sys=True)
