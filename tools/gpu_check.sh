#!/usr/bin/env bash
# One-shot GPU verification for the optional CUDA build (run on a machine with a GPU and nvcc):
# builds nncore with NNCORE_CUDA=1, runs the CUDA kernel and device-tensor tests, the GPU
# benchmark (nncore.bench.bench_cuda) and two examples with --device cuda.
# Logs go to $OUT (or ./gpu_out). Usage: bash tools/gpu_check.sh [pytest args]
# (SKIP_EXAMPLES=1 skips the examples; PROFILE=1 then runs tools/gpu_profile.py).
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
TESTS=("$@"); [ ${#TESTS[@]} -eq 0 ] && TESTS=(tests/cuda tests/test_device.py)
PY=${PYTHON:-python3}
nvidia-smi -L | tee "$OUT/gpu.txt"
$PY -c "import numpy, Cython, sys; print(sys.version, numpy.__version__, Cython.__version__)"
t0=$(date +%s)
NNCORE_CUDA=1 NNCORE_CUDA_ARCH=${NNCORE_CUDA_ARCH:-90} $PY setup.py -q build_ext --inplace \
    >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
$PY -c "import nncore.cuda as c; print('cuda available', c.is_available(), c.get_device_name())"
timeout ${TEST_TIMEOUT:-240} $PY -m pytest -q -p no:cacheprovider --maxfail=25 \
    "${TESTS[@]}" 2>&1 | tee "$OUT/cuda_tests.log" | tail -80
timeout ${BENCH_TIMEOUT:-200} $PY benchmarks/bench_cuda.py --json "$OUT/bench_cuda.json" 2>&1 \
    | tee "$OUT/bench_cuda.log"
if [ -z "${SKIP_EXAMPLES:-}" ]; then
    for ex in "cifar_cnn.py --epochs 3" "text_lstm.py --epochs 1 --sample-length 80" \
              "mnist_mlp.py --epochs 1"; do
        echo "== examples/$ex --device cuda"
        timeout 90 $PY examples/$ex --device cuda 2>&1 | tail -6 | tee -a "$OUT/examples.log"
    done
fi
if [ -n "${PROFILE:-}" ]; then
    timeout ${PROFILE_TIMEOUT:-120} $PY tools/gpu_profile.py 2>&1 | tee "$OUT/profile.log"
fi
