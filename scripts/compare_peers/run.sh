#!/usr/bin/env bash
# Optional comparison of fastloss against the real peer libraries (tests/peers).
#
#   scripts/compare_peers/run.sh [--install] [--mxnet] [pytest args...]
#
# Runs in the active environment (the project's .venv): PyTorch, optax/JAX and
# TensorFlow/tf-slim tests run where those import and skip otherwise.
#   --install  pip-installs the small peers into the active environment first
#              (jax jaxlib optax; torch if absent).  TensorFlow is large: install it by hand
#              (pip install tensorflow-cpu tf-slim) if wanted.
#   --mxnet    builds .venv-mxnet (scripts/compare_peers/setup_mxnet.sh) if needed and dumps
#              MXNet 1.9.1's results to $FASTLOSS_MXNET_NPZ for tests/peers/test_mxnet.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
INSTALL=0; MXNET=0; ARGS=()
for a in "$@"; do
    case "$a" in
        --install) INSTALL=1 ;;
        --mxnet) MXNET=1 ;;
        *) ARGS+=("$a") ;;
    esac
done
export FASTLOSS_MXNET_NPZ="${FASTLOSS_MXNET_NPZ:-/tmp/fastloss-peers/mxnet_results.npz}"
if [ "$INSTALL" = 1 ]; then
    python -m pip install -q jax jaxlib optax
    python -c "import torch" 2>/dev/null || python -m pip install -q torch \
        --index-url https://download.pytorch.org/whl/cpu
fi
if [ "$MXNET" = 1 ]; then
    [ -x .venv-mxnet/bin/python ] || scripts/compare_peers/setup_mxnet.sh .venv-mxnet
    mkdir -p "$(dirname "$FASTLOSS_MXNET_NPZ")"
    .venv-mxnet/bin/python scripts/compare_peers/dump_mxnet.py "$FASTLOSS_MXNET_NPZ"
fi
python -m pytest -q tests/peers -p no:cacheprovider -rs "${ARGS[@]+"${ARGS[@]}"}"
