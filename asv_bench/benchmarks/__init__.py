"""asv benchmarks of fastloss.

Before any benchmark module imports fastloss (and so Numba), ``NUMBA_CACHE_DIR`` defaults
to ``~/.cache/fastloss-asv/numba``: one kernel cache outside asv's environment directories,
kept between runs.  Kernel names carry a digest of the kernel source files' contents
(``fastloss._compile.digest``, independent of the install location); Numba (0.68) keys a
cache entry by the source folder's absolute path and a hash of the source file's contents.
``asv continuous`` installs both commits into the same environment folder, so a commit that
did not change the kernel sources loads every kernel from the cache instead of compiling.
"""
import os

os.environ.setdefault("NUMBA_CACHE_DIR",
                      os.path.join(os.path.expanduser("~"), ".cache", "fastloss-asv", "numba"))

# every timed benchmark: auto `number` (samples of >= sample_time), 10-30 samples per round,
# at least 10 runs, 4 rounds (each a new process: the spread between processes is
# larger than within one), a warm-up before sampling
TIMING = dict(number=0, sample_time=0.02, repeat=(10, 30, 10.0), min_run_count=10,
              warmup_time=0.2, rounds=4)


def timing(cls):
    """Class decorator: the shared timing attributes (a class may override them)."""
    for k, v in TIMING.items():
        if k not in vars(cls):
            setattr(cls, k, v)
    return cls
