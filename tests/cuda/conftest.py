"""CUDA tests: run in their own pytest process, under the simulator or on a real GPU.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda -p no:cacheprovider

The simulator must be enabled before numba is imported, hence the separate process.
Without the simulator and without a GPU every test here is skipped.
"""
import os

import pytest


def _cuda_ok():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda
        return cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda_ok():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU and NUMBA_ENABLE_CUDASIM is not 1")
    for item in items:
        item.add_marker(skip)


def pytest_configure(config):
    # simulated device code is Python on NumPy scalars: 1/0 and log(0) warn instead of
    # silently giving inf as the GPU does
    config.addinivalue_line("filterwarnings", "ignore::RuntimeWarning")
