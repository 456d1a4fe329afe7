#!/usr/bin/env bash
# A separate virtual environment for MXNet 1.9.1 (it imports only with numpy <= 1.23.5).
# Usage: scripts/compare_peers/setup_mxnet.sh [VENV_DIR]   (default: .venv-mxnet)
# Gives up after ${MXNET_INSTALL_TIMEOUT:-600} s; MXNet wheels exist for CPython <= 3.9/3.10
# on x86-64 Linux, so a newer interpreter may need PYTHON=python3.9.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-.venv-mxnet}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
timeout "${MXNET_INSTALL_TIMEOUT:-600}" "$VENV/bin/python" -m pip install -q \
    "numpy<=1.23.5" "mxnet==1.9.1"
"$VENV/bin/python" -c "import mxnet, numpy; print('mxnet', mxnet.__version__, 'numpy', numpy.__version__)"
