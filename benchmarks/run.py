"""Source-checkout entry point for nncore.bench.run (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.run", run_name="__main__", alter_sys=True)
