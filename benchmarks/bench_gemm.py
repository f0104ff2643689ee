"""Source-checkout entry point for nncore.bench.bench_gemm (the code lives in nncore/bench/)."""
import runpy

runpy.run_module("nncore.bench.bench_gemm", run_name="__main__", alter_sys=True)
