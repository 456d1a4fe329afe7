"""Small row-wise calls from a plan.

Below the parallel threshold a row-wise call spends most of its time in the Python layer:
binding, validation, the parameters' preparation, the weight total, the kernel lookup
and Numba's type dispatch (about 20 µs for 20 rows of 5 classes, against under 1 µs of
kernel).  After one checked call, :func:`remember` keeps, under the call's metadata (loss,
request, dtypes and shapes of the positional inputs), everything that depends on the
metadata only: the prepared parameters, the compiled serial kernel's entry point for
exactly these argument types, the fold's entry point.  A later positional call with the
default parameters and the same metadata (:func:`small_call`) then does only what depends
on the values:

* integer labels are copied to int64 and scanned by one compiled loop that maps
  ``ignore_index`` to -1 (what the checked path does) and counts the rows in [0, C), the
  denominator of ``"mean"``; a label outside the classes sends the call back to the
  checked path, which raises its usual error;
* the kernel runs on the caller's arrays and fresh outputs, its domain count raises as in
  the checked path, and the loss is the same fold of the per-row values.

So the value and the gradient have the bits of the checked call (same kernel, same
arguments, same fold).  Plans are made only for host NumPy arrays that need no conversion
(the loss's dtype, C-contiguous), the class axis last, no ``sample_weight``, no output
buffers, ``reduction="mean"``, the gradient (if any) with respect to the first input, no
Hessian, no ``pre`` step, no ±1 labels, and parameters equal to their defaults.
"""
from __future__ import annotations

import numpy as np

_PLANS: dict = {}
_SCAN: list = []   # the compiled label scan's dispatcher, once built


def _scan_kernel():
    if not _SCAN:
        from ._compile import cpu_kernel
        from ._cpu.rowwise import scan_labels
        _SCAN.append(cpu_kernel(scan_labels, "scan", {}, parallel=False))
    return _SCAN[0]


def _key(spec, args, want_grad):
    """The plan key of positional ``args``, or None when one is not a plain aligned
    C-contiguous ndarray."""
    meta = []
    for a in args:
        if type(a) is not np.ndarray or not (a.flags.c_contiguous and a.flags.aligned):
            return None
        meta.append((a.dtype, a.shape))
    return (spec.name, want_grad, *meta)


def _plain_defaults(spec, params) -> bool:
    for k, d in spec.params.items():
        v = params.get(k, d)
        if type(v) is not type(d) or v != d:
            return False
    return len(params) == len(spec.params)


def remember(spec, inputs, params, want_grad, wanted, dt, N, D, shape, batch, pvals, ign,
             kern):
    """Keep the plan of a finished checked call (see the module docstring); the caller
    has checked the call-level conditions (no weights, buffers, running totals, threads
    or device, ``reduction="mean"``, serial, class axis last)."""
    from . import _cpu
    from ._cpu.fold import fold_kernel
    from ._prepared import _entry

    if (spec.pre is not None or spec.label_kind == "pm1" or spec.floats[0] != spec.order[0]
            or not _plain_defaults(spec, params)):
        return
    if want_grad and list(wanted) != [spec.floats[0]]:
        return
    args = tuple(inputs[n] for n in spec.order)
    key = _key(spec, args, want_grad)
    if key is None or key in _PLANS or any(inputs[n].dtype != dt for n in spec.floats):
        return
    if spec.labels and spec.label_kind == "int" and inputs[spec.labels].dtype.kind not in "iu":
        return
    nf = len(spec.floats)
    # the kernel's unused and constant inputs (no ±1 labels, class or sample weights, the
    # scalars), made once: the kernel only reads them
    fixed = (np.zeros(1, dt), np.ones(1, dt), np.ones(N, dt), dt.type(1.0),
             *(dt.type(v) for v in pvals))
    probe_A = np.zeros((N, D), dt)
    K = np.zeros(N if spec.labels else 1, np.int64)
    probe = (probe_A, probe_A, probe_A, K, *fixed, dt.type(1.0), np.empty(N, dt),
             np.empty((N, D), dt) if want_grad else None, None, None, None)
    ep = _entry(_cpu.serial(kern), probe)
    fold = _entry(fold_kernel(), (np.zeros(N, dt), 0.0))
    scan = _entry(_scan_kernel(), (K, 1, 0, False)) if spec.labels else None
    if len(_PLANS) >= 256:
        _PLANS.clear()
    _PLANS[key] = (ep, fold, scan, dt, N, D, shape, batch, nf, pvals, fixed, np.zeros(1, np.int64),
                   -1 if ign is None else int(ign), ign is not None, spec.fixup is not None)


def small_call(spec, args, want_grad, want_hess):
    """A positional call with the default parameters run from its plan; None when there
    is none or the labels need the checked path's error (the caller then takes it)."""
    if want_hess or len(args) != len(spec.order):
        return None
    key = _key(spec, args, want_grad)
    plan = _PLANS.get(key) if key is not None else None
    if plan is None:
        return None
    ep, fold, scan, dt, N, D, shape, batch, nf, pvals, fixed, K0, ign, has_ign, has_fix = plan
    named = dict(zip(spec.order, args))
    A = named[spec.floats[0]].reshape(N, D)
    B = named[spec.floats[1]].reshape(N, D) if nf > 1 else A
    Cm = named[spec.floats[2]].reshape(N, D) if nf > 2 else A
    if scan is not None:
        lab = named[spec.labels]
        # a copy where ignored labels will be rewritten (or the dtype differs), else a view
        K = (np.array(lab, dtype=np.int64) if has_ign else
             np.ascontiguousarray(lab, dtype=np.int64)).reshape(-1)
        W = scan(K, D, ign, has_ign)
        if W < 0:
            return None
    else:
        K = K0
        W = N
    from ._rowwise import _prob_error, _reduce

    wsum = float(W)
    gscale = 1.0 / wsum if wsum > 0 else float("nan")
    ol = np.empty(N, dt)
    g = np.empty(shape, dt) if want_grad else None
    s, bad = ep(A, B, Cm, K, *fixed, dt.type(gscale), ol,
                None if g is None else g.reshape(N, D), None, None, None)
    if bad:
        raise _prob_error(spec, bad)
    if has_fix and s != s:   # rows the kernel leaves to the host (fastloss._limits)
        spec.fixup(A, B, None, ol, (None, None if g is None else g.reshape(N, D)), None, None,
                   1.0, gscale, pvals)
    grads = {spec.floats[0]: g} if want_grad else {}
    return _reduce(fold(ol, 0.0), wsum, "mean", ol, batch, dt), grads, None
