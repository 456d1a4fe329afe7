"""512-bit vectors for fastloss's kernels on AVX-512 machines, and not for other Numba code
(fastloss._cpu.wide)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastloss._cpu import wide

_SCRIPT = textwrap.dedent("""
    import json, re, numpy as np
    from numba import njit
    import fastloss
    from fastloss import _cpu, _elementwise
    from fastloss._compile import cpu_kernel
    from fastloss._cpu import wide
    from fastloss._cpu.fold import fold_array, lane_total_array
    from fastloss._math.spec import ELEMENTWISE
    v = np.arange(5000, dtype=np.float64)
    total = lane_total_array(v)
    fold = "".join(cpu_kernel(fold_array, "fold", {}, parallel=False).inspect_asm().values())
    x = np.linspace(-3, 3, 1000)
    y = np.where(x > 0, 1.0, -1.0)
    value = fastloss.logistic(x, y, reduction="sum")        # the serial kernel (small)
    k = _cpu.serial(_elementwise.cpu_kernel_for(ELEMENTWISE["logistic"], x.dtype))
    asm = "".join(k.inspect_asm().values())

    @njit(fastmath=True)
    def user(v):          # the user's own Numba code, compiled after a fastloss kernel
        t = 0.0
        for x in v:
            t += x
        return t
    user(v)
    u = "".join(user.inspect_asm().values())
    print(json.dumps({"enabled": wide.enabled(), "total": total, "value": float(value),
                      "zmm": "zmm" in asm, "ymm": "ymm" in asm, "fold_zmm": "zmm" in fold,
                      "user_zmm": "zmm" in u}))
""")


def _run(tmp_path, **env):
    e = {k: v for k, v in os.environ.items()
         if k not in ("NUMBA_ENABLE_CUDASIM", "FASTLOSS_VECTOR_WIDTH", "NUMBA_CPU_NAME",
                      "NUMBA_CPU_FEATURES")}
    e.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"), **env)
    r = subprocess.run([sys.executable, "-c", _SCRIPT], env=e, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_choice_follows_the_environment_variable():
    assert wide._decide("256") is False
    assert wide._decide("512") is True


def _host_avx512():
    import llvmlite.binding as ll
    return bool(ll.get_host_cpu_features().get("avx512f", False))


@pytest.mark.skipif(not _host_avx512(), reason="the host CPU has no AVX-512")
def test_kernels_use_zmm_registers_and_user_code_keeps_its_own(tmp_path):
    wide512 = _run(tmp_path / "a")
    narrow = _run(tmp_path / "b", FASTLOSS_VECTOR_WIDTH="256")
    assert wide512["enabled"] and not narrow["enabled"]
    assert wide512["zmm"]                      # 512-bit registers in a logistic kernel
    # LLVM's own choice is 256-bit on Intel targets (skylake-avx512 .. rocketlake) and
    # 512-bit on znver4/znver5: the fold and the user's code keep that choice either way
    assert wide512["fold_zmm"] == narrow["fold_zmm"]
    assert wide512["user_zmm"] == narrow["user_zmm"]
    if not narrow["user_zmm"]:                 # a host where LLVM prefers 256 bits
        assert not narrow["zmm"] and narrow["ymm"] and not wide512["fold_zmm"]
    assert wide512["total"] == narrow["total"] == sum(range(5000))
    x = np.linspace(-3, 3, 1000)
    ref = np.logaddexp(0, -np.where(x > 0, 1.0, -1.0) * x).sum()
    assert abs(wide512["value"] - ref) < 1e-12 * ref and abs(narrow["value"] - ref) < 1e-12 * ref


def test_a_set_numba_target_turns_it_off(tmp_path):
    got = _run(tmp_path, NUMBA_CPU_NAME="generic")
    assert not got["enabled"] and not got["zmm"]
