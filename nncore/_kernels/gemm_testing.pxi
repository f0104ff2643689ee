# gemm_testing.pxi: private test hooks of gemm.pyx (textually included at its end, since they
# set the C globals of gemm_kernels.h that gemm.pyx's extern block declares): cap the SIMD
# level, override the blocking, force a path, toggle shared packing, and read the plan.

_LEVELS = {"portable": 0, "avx2": 1, "avx2+fma": 1, "avx512": 2}


def _set_simd_level_for_testing(level=None) -> str:
    """Cap the micro-kernel level ("portable", "avx2", "avx512"; None resets); returns the
    level now dispatched (never above what the CPU supports)."""
    global nncore_gemm_level_cap
    nncore_gemm_level_cap = 2 if level is None else _LEVELS[level]
    return dispatched_simd()


def _set_blocking_for_testing(int mc=0, int kc=0, int nc=0) -> None:
    """Override MC/KC/NC (0 restores the default for each) to exercise block edges cheaply."""
    global nncore_gemm_override_mc, nncore_gemm_override_kc, nncore_gemm_override_nc
    nncore_gemm_override_mc = mc
    nncore_gemm_override_kc = kc
    nncore_gemm_override_nc = nc


def _force_path_for_testing(str path="auto") -> None:
    """Force the "packed" or "direct" (no packing) path, "direct_rows" (direct without the
    column-vector kernel for thin panels), "dot" (dot products, where op(A) rows and op(B)
    columns are contiguous; else direct) or "column" (the column-vector kernel for the whole
    product, where N is small enough for it; else direct), "column_packed" (the column path
    packing each panel before its k loop instead of block by block inside it); "auto" restores
    the heuristic."""
    global nncore_gemm_force_path, nncore_gemm_allow_tkr, nncore_gemm_allow_stream
    nncore_gemm_force_path = {"auto": 0, "packed": 1, "direct": 2, "direct_rows": 2,
                              "dot": 3, "column": 4, "column_packed": 4}[path]
    nncore_gemm_allow_tkr = path != "direct_rows"
    nncore_gemm_allow_stream = path != "column_packed"


def _set_shared_packing_for_testing(allow=None) -> None:
    """Allow (True) or forbid (False) the threads' shared op(B) packing, to compare both;
    None restores the default (env NNCORE_GEMM_SHARED_B=1 turns it on, off otherwise)."""
    global nncore_gemm_allow_shared
    if allow is None:
        allow = os.environ.get("NNCORE_GEMM_SHARED_B", "0") == "1"
    nncore_gemm_allow_shared = bool(allow)


_set_shared_packing_for_testing(None)


def _plan_for_testing(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, dtype=np.float32,
                      int nthreads=1, bint trans_a=False, bint trans_b=False) -> dict:
    """The plan gemm would use for this problem: path, split, parts, tile and block sizes."""
    cdef nncore_gemm_args_s ps
    cdef nncore_gemm_args_d pd
    memset(&ps, 0, sizeof(ps))
    memset(&pd, 0, sizeof(pd))
    ps.trans_a = pd.trans_a = trans_a
    ps.trans_b = pd.trans_b = trans_b
    if np.dtype(dtype) == np.float32:
        ps.M, ps.N, ps.K = M, N, K
        nncore_gemm_plan_s(&ps, nthreads)
        return dict(kernel=ps.impl.name.decode(), mr=ps.impl.mr, nr=ps.impl.nr,
                    direct=bool(ps.direct), dot=ps.direct == 2, column=ps.direct == 3,
                    split="N" if ps.split_n else "M", nparts=ps.nparts, mc=ps.mc, kc=ps.kc,
                    nc=ps.nc, shared_b=bool(ps.shared_b))
    pd.M, pd.N, pd.K = M, N, K
    nncore_gemm_plan_d(&pd, nthreads)
    return dict(kernel=pd.impl.name.decode(), mr=pd.impl.mr, nr=pd.impl.nr,
                direct=bool(pd.direct), dot=pd.direct == 2, column=pd.direct == 3,
                split="N" if pd.split_n else "M", nparts=pd.nparts, mc=pd.mc, kc=pd.kc,
                nc=pd.nc, shared_b=bool(pd.shared_b))
