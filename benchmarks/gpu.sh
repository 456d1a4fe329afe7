#!/usr/bin/env bash
# One call on a machine with an NVIDIA GPU (at most ~8 minutes): the CUDA test suite on the
# real GPU (every loss, both dtypes, against the CPU kernels), then fastloss CUDA against
# PyTorch CUDA on the CPU benchmark's shapes.  The short table comes last; everything is
# also written under $OUT (default ./gpu-out).
#
#   bash benchmarks/gpu.sh            # full sizes
#   QUICK=1 bash benchmarks/gpu.sh    # small sizes (a smoke run)
#
# Needs python3 with numba, numba-cuda, numpy, scipy, pytest (pytest-xdist optional),
# PyTorch with CUDA and CuPy.  Nothing is downloaded: on an offline machine the project
# runs from this checkout (PYTHONPATH), and a missing package is reported, not fetched.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/fastloss-nbcache}"
unset NUMBA_ENABLE_CUDASIM
PY="${PYTHON:-python3}"
T0=$(date +%s)

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  "$PY" - <<'PY'
import importlib
for m in ("numpy", "scipy", "numba", "numba_cuda", "cupy", "torch", "pytest", "xdist"):
    try:
        mod = importlib.import_module(m)
        print(f"{m} {getattr(mod, '__version__', '?')}")
    except Exception as exc:
        print(f"{m} MISSING ({type(exc).__name__}: {exc})")
from numba import cuda
print("numba.cuda implementation:", getattr(cuda, "implementation", "?"))
d = cuda.get_current_device()
print("device:", d.name, "cc", d.compute_capability, "SMs", d.MULTIPROCESSOR_COUNT,
      "max threads/SM", d.MAX_THREADS_PER_MULTI_PROCESSOR)
PY
} 2>&1 | tee "$OUT/env.txt"

# 1. tests on the GPU (simulator off); several processes when pytest-xdist is there
XDIST=""
"$PY" -c "import xdist" 2>/dev/null && XDIST="-n 8"
timeout 330 "$PY" -m pytest -q tests/cuda -p no:cacheprovider $XDIST -x -rfE 2>&1 \
  | tee "$OUT/tests.txt" | tail -n 25
TESTS=${PIPESTATUS[0]}
echo "tests exit status: $TESTS ($(( $(date +%s) - T0 )) s so far)" | tee -a "$OUT/tests.txt"

# 2. the benchmark (first calls include compiling; the disk cache is warm after step 1)
LEFT=$(( 470 - ($(date +%s) - T0) ))
if [ "$LEFT" -lt 60 ]; then LEFT=60; fi
timeout "$LEFT" "$PY" benchmarks/gpu_bench.py --out "$OUT" ${QUICK:+--quick} 2>&1 \
  | tee "$OUT/bench.txt" | tail -n 30
BENCH=${PIPESTATUS[0]}
echo "benchmark exit status: $BENCH; total $(( $(date +%s) - T0 )) s"
echo "tests: $(tail -n 2 "$OUT/tests.txt" | head -n 1)"
[ -f "$OUT/gpu_bench.md" ] && cat "$OUT/gpu_bench.md"
exit $(( TESTS != 0 || BENCH != 0 ))
