"""nncore.bench: the benchmark suite that compares nncore with a NumPy baseline (and PyTorch
when installed). Run it with ``python -m nncore.bench [--quick] [--only mlp,conv,...]``.

Modules: `harness` (one import for the shared pieces: `timing` the measurement method,
`workers` per-thread-count worker processes, `records`, `tables`, `machine`, `cases`),
`numpy_baseline` / `baseline_conv` / `baseline_rnn` (the honest NumPy implementations, tested
against nncore), `bench_<family>` (one per op family), `run` (the CLI), `report` (renders
docs/benchmarks.md from JSON), `plot` (PNG charts).
"""
