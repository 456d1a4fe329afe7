"""Helpers of the device-resident CUDA tests: host views and a count of device-to-host copies."""
import contextlib

import numpy as np


def host(d):
    return d.copy_to_host() if hasattr(d, "copy_to_host") else np.asarray(d)


@contextlib.contextmanager
def count_copies():
    """Counts ``copy_to_host`` calls of device arrays (the simulator's array class)."""
    from numba import cuda

    cls = type(cuda.to_device(np.zeros(1)))
    orig = cls.copy_to_host
    n = [0]

    def counted(self, *a, **k):
        n[0] += 1
        return orig(self, *a, **k)

    cls.copy_to_host = counted
    try:
        yield n
    finally:
        cls.copy_to_host = orig
