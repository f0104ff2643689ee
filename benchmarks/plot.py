"""Source-checkout entry point for nncore.bench.plot (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.plot", run_name="__main__", alter_sys=True)
