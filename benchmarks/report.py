"""Source-checkout entry point for nncore.bench.report (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.report", run_name="__main__", alter_sys=True)
