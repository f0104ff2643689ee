"""The GEMM benchmark's cases and, per backend, the checked callable that runs one."""
from __future__ import annotations

__all__ = ["CASES", "FAMILY", "NNCORE_VARIANTS"]

FAMILY = "gemm"
# nncore with its default settings, and with the threads' shared op(B) packing forced on / off
NNCORE_VARIANTS = {"nncore": None, "nncore_shared": True, "nncore_private": False}

# (group, label, M, N, K, trans_a, trans_b, dtype, epilogue)
# epilogue "bias_relu": nncore fuses bias + ReLU; NumPy does matmul, += bias, maximum in place.
CASES: list[tuple] = (
    [("square", f"{n}^3", n, n, n, False, False, "float32", None) for n in (256, 512, 1024, 2048)]
    + [("square", "1024^3 f64", 1024, 1024, 1024, False, False, "float64", None)]
    + [
        ("nn", "64x128 @ 128x10", 64, 10, 128, False, False, "float32", None),
        ("nn", "50176x75 @ 75x6", 50176, 6, 75, False, False, "float32", None),
        ("nn", "32x256 @ 256x1024", 32, 1024, 256, False, False, "float32", None),
        ("nn", "x@W.T 64x784 W128x784", 64, 128, 784, False, True, "float32", None),
        ("nn", "x.T@dout 784x64 @ 64x128", 784, 128, 64, True, False, "float32", None),
        ("nn", "64x784@W.T +b relu", 64, 128, 784, False, True, "float32", "bias_relu"),
        ("wide", "256x256 @ 256x4096", 256, 4096, 256, False, False, "float32", None),
        ("lm", "1120x256 @ 256x10000", 1120, 10000, 256, False, False, "float32", None),
        # im2col, per sample as conv.pyx calls it: W (OC, C*KH*KW) @ col (C*KH*KW, OH*OW)
        ("im2col", "conv 3->32 3x3 32x32", 32, 1024, 27, False, False, "float32", None),
        ("im2col", "conv 32->64 3x3 16x16", 64, 256, 288, False, False, "float32", None),
        ("im2col", "conv 1->6 5x5 24x24", 6, 576, 25, False, False, "float32", None),
        ("im2col", "dW 32x1024 @ col.T", 32, 27, 1024, False, True, "float32", None),
        ("im2col", "dcol W.T 27x32 @ 32x1024", 27, 1024, 32, True, False, "float32", None),
        # im2col over the whole batch: (N*OH*OW, C*KH*KW) @ (C*KH*KW, OC)
        ("im2col", "batch 16384x288 @ 288x64", 16384, 64, 288, False, False, "float32", None),
    ]
)


def _case_fn(backend: str, case: tuple, threads: int):
    """(callable, flops) for one case, after checking the backend against float64 matmul."""
    import numpy as np

    _, label, M, N, K, ta, tb, dtype, epi = case
    rng = np.random.default_rng(0)
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    bias = rng.standard_normal(N).astype(dtype)
    a_op, b_op = (a.T if ta else a), (b.T if tb else b)
    out = np.empty((M, N), dtype)
    if backend in NNCORE_VARIANTS:
        from nncore._kernels import gemm as G
        from nncore._kernels._parallel import set_num_threads

        set_num_threads(threads)
        shared = NNCORE_VARIANTS[backend]  # None: the default setting
        act = "relu" if epi == "bias_relu" else "none"
        bias_arg = bias if epi == "bias_relu" else None
        if shared is None:  # nothing but the call: tiny cases take ~3 us
            def fn():
                return G.gemm(a, b, out, trans_a=ta, trans_b=tb, bias=bias_arg, activation=act)
        else:  # a variant: switch the setting for this call only
            def fn():
                G._set_shared_packing_for_testing(shared)
                try:
                    return G.gemm(a, b, out, trans_a=ta, trans_b=tb, bias=bias_arg,
                                  activation=act)
                finally:
                    G._set_shared_packing_for_testing(None)
    elif backend == "numpy":
        if epi == "bias_relu":
            def fn():
                np.matmul(a_op, b_op, out=out)
                np.add(out, bias, out=out)
                return np.maximum(out, 0, out=out)
        else:
            def fn():
                return np.matmul(a_op, b_op, out=out)
    else:
        raise ValueError(f"bench_gemm: unknown backend {backend!r}")
    got = fn().astype(np.float64)
    ref = a_op.astype(np.float64) @ b_op.astype(np.float64)
    if epi == "bias_relu":
        ref = np.maximum(ref + bias, 0)
    tol = 1e-3 * np.sqrt(K) * (1 + np.abs(ref)) if dtype == "float32" else 1e-9 * K
    if not np.all(np.abs(got - ref) <= tol):
        raise AssertionError(f"{backend} {label}: wrong result")
    return fn, 2.0 * M * N * K
