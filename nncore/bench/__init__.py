"""nncore.bench: the benchmark suite that compares nncore with a NumPy baseline (and PyTorch
when installed). Run it with ``python -m nncore.bench [--quick] [--only mlp,conv,...]``.

Modules: `harness` (measurement method, per-thread-count worker processes, tables),
`numpy_baseline` / `baseline_conv` / `baseline_rnn` (the honest NumPy implementations, tested
against nncore), `bench_<family>` (one per op family), `run` (the CLI), `report` (renders
docs/benchmarks.md from JSON), `plot` (PNG charts).
"""
