"""``fastloss.prepare``: a loss with its target, weights and parameters bound, for repeated
value+gradient calls on predictions of one shape (optimizer loops).

The checked call (``value_and_grad(loss)(pred, target, ...)``) validates and converts every
argument, resolves the device, the parameters, the weights and their total, and looks up
the kernel on every call; at 10 elements that is most of the time.  :func:`prepare` does
all of it once: it runs the checked call on the given arrays (so every error the checked
path raises is raised here, with the same message), copies the bound inputs (target or
labels, other non-differentiated inputs, ``sample_weight``) as the kernel reads them,
precomputes the scalars (parameters, weight total, gradient scale) and keeps the compiled
kernel.  The returned :class:`Prepared` then checks only what can change between calls
-- ``pred`` (and ``grad_out``) is a NumPy array of the prepared shape and dtype,
C-contiguous -- and calls the kernel.  Values and gradients equal the checked call's bit
for bit (same kernel, same arguments).

Why the target is bound instead of passed per call: an optimizer's target is fixed while
``pred`` changes, and validating a target (label ranges, ±1 / [0, 1] domains, integer
labels to int64, ``ignore_index``, the weighted denominator of ``"mean"``) is the larger
part of a small call; a per-call target would have to be re-validated to be safe.  Bound
inputs are copied, so changing the caller's arrays later changes nothing.

Limits (documented; the checked path stays the default): CPU and NumPy arrays only; the
gradient is with respect to the first input; the class axis of a row-wise loss must be
the last one; CTC is not supported.  Labels outside a loss's domain are validated once,
at prepare time; predictions outside the domain of ``binary_cross_entropy`` (a
probability) are counted by the kernel and raise ``ValueError`` after it ran, so a
``grad_out`` is then left with unspecified contents (the checked call leaves it untouched).
A ``grad_out`` that shares memory with ``pred`` raises ``ValueError``.
"""
from __future__ import annotations

import numpy as np

from . import _threads
from ._api import _info

__all__ = ["prepare", "Prepared"]


def _entry(kernel, args):
    """The compiled entry point of ``kernel`` for the types of ``args`` (the Numba
    dispatcher's type resolution skipped: about 0.3 µs instead of 0.7-3 µs per call), or
    the dispatcher itself when Numba does not expose one.  Safe only for arguments of
    exactly these types -- which :meth:`Prepared.__call__` checks."""
    kernel(*args)  # compiles (or loads) this signature
    try:
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        ep = kernel.overloads[sig].entry_point
    except Exception:  # another Numba: the dispatcher is correct, only slower
        return kernel
    return ep if callable(ep) else kernel


class Prepared:
    """``(pred, grad_out=None) -> (value, grad)`` of one loss with everything but ``pred``
    bound. Made by :func:`prepare`."""

    __slots__ = ("loss", "shape", "dtype", "reduction", "_run", "_fn", "__weakref__")

    def __repr__(self):
        return (f"<fastloss prepared {self.loss}: pred shape {self.shape}, {self.dtype}, "
                f"reduction={self.reduction!r}>")

    def _check(self, a, name):
        if type(a) is not np.ndarray:
            raise TypeError(f"{self._fn}: {name} must be a numpy.ndarray (prepared call), "
                            f"got {type(a).__name__}")
        if a.shape != self.shape or a.dtype != self.dtype:
            raise ValueError(f"{self._fn}: {name} must have the prepared shape {self.shape} "
                             f"and dtype {self.dtype}, got shape {a.shape} and dtype "
                             f"{a.dtype}")
        if not a.flags.c_contiguous or not a.flags.aligned:
            raise ValueError(f"{self._fn}: {name} must be C-contiguous (prepared call)")

    def _check_out(self, g, pred):
        self._check(g, "grad_out")
        if not g.flags.writeable:
            raise ValueError(f"{self._fn}: grad_out must be writable")
        if np.may_share_memory(g, pred):
            raise ValueError(f"{self._fn}: grad_out must not share memory with pred in a "
                             f"prepared call")

    def __call__(self, pred, grad_out=None):
        """Value and gradient with respect to ``pred``; the gradient is written into
        ``grad_out`` when given (returned as the second item)."""
        if (type(pred) is not np.ndarray or pred.shape != self.shape
                or pred.dtype != self.dtype or not pred.flags.c_contiguous
                or not pred.flags.aligned):
            self._check(pred, "pred")
        if grad_out is not None:
            self._check_out(grad_out, pred)
        return self._run(pred, grad_out)


def prepare(loss, *inputs, sample_weight=None, reduction="mean", n_threads=None, **params):
    """Bind a loss's inputs other than the first, its parameters and ``sample_weight``.

    ``prepare(fastloss.sigmoid_binary_cross_entropy, pred0, y)`` returns a
    :class:`Prepared` ``f``; ``f(pred)`` gives ``(value, grad)`` equal to
    ``value_and_grad(loss)(pred, y, ...)`` bit for bit, for any ``pred`` of ``pred0``'s
    shape and dtype (C-contiguous NumPy array); ``f(pred, grad_out=g)`` writes the
    gradient into ``g``.  Everything is validated here, once (the checked call runs on
    ``pred0``); a call checks only ``pred``'s type, shape, dtype and layout.  Bound
    inputs are copied.  ``n_threads=None`` follows :func:`fastloss.set_num_threads` /
    :func:`fastloss.threads` at call time, like the checked call.

    Returns
    -------
    Prepared
        ``f(pred) -> (value, grad)``, the same bits as ``value_and_grad(loss)(pred, ...)``.
    """
    info = _info(loss)
    fn = info.name
    if info.kind not in ("elementwise", "rowwise"):
        raise TypeError(f"prepare: {fn} is not supported (elementwise and row-wise losses only)")
    if len(inputs) != len(info.inputs):
        raise TypeError(f"prepare: {fn} takes {len(info.inputs)} inputs "
                        f"({', '.join(info.inputs)}), got {len(inputs)}")
    for k in ("device", "out", "stream", "device_result", "grad_out", "hess_out"):
        if k in params:
            raise TypeError(f"prepare: {k}= is not supported by a prepared call")
    first = inputs[0]
    if type(first) is not np.ndarray or first.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: {info.inputs[0]} must be a float32 or float64 numpy.ndarray "
                        f"to prepare a call, got {type(first).__name__}"
                        + (f" of dtype {first.dtype}" if isinstance(first, np.ndarray) else ""))
    # the checked call: every validation (and its message) of the default path
    common = dict(sample_weight=sample_weight, reduction=reduction, n_threads=n_threads,
                  device="cpu")
    info.call(inputs, dict(params, **common), want_grad=True, argnums=(0,), grad_out=None)
    _threads.resolve(n_threads, fn)
    full = dict(info.params)
    full.update(params)
    p = Prepared()
    p.loss, p.shape, p.dtype, p.reduction, p._fn = fn, first.shape, first.dtype, reduction, fn
    build = _build_elementwise if info.kind == "elementwise" else _build_rowwise
    p._run = build(info.spec, inputs, full, sample_weight, reduction, n_threads, fn)
    return p


# ------------------------------------------------------------------------ elementwise
def _build_elementwise(spec, inputs, params, sample_weight, reduction, n_threads, fn):
    from . import _cpu
    from . import _elementwise as E
    from ._validate import as_float, as_host_array, broadcast_to_shape, weight_total

    x = inputs[0]
    dt = x.dtype
    shape = x.shape
    n = x.size
    abc = E.loss_params(spec, params)
    y = broadcast_to_shape(as_float(as_host_array(inputs[1], "target", fn), dt, "target"),
                           shape, "target", "pred", fn)
    y = np.array(y, order="C").reshape(-1)            # a copy: bound by value
    w, ws = E._weights(sample_weight, shape, dt, fn)
    w = None if w is None else np.array(w, order="C").reshape(-1)
    wsum = ws * weight_total(w, n)
    gscale = E._gscale(reduction, wsum)
    scal = (dt.type(ws), *(dt.type(v) for v in abc), dt.type(gscale))
    none = reduction == "none"
    reduce_, err = E._reduce, E._domain_error
    if n == 0:
        def run(pred, grad_out):
            g = np.empty(shape, dt) if grad_out is None else grad_out
            return reduce_(0.0, wsum, reduction, np.empty(shape, dt) if none else None, dt), g
        return run
    kern = E.kernel_for_params(spec, dt, abc)
    family_min = _cpu.PARALLEL_MIN["elementwise"]
    if n < family_min:
        probe = (x.reshape(-1), y, w, *scal, np.empty(n, dt) if none else None,
                 np.empty(n, dt), None, 0.0)
        ep = _entry(_cpu.serial(kern), probe)
    else:
        ep = None
    launch, want_parallel, resolve = _cpu.launch, _cpu.want_parallel, _threads.resolve

    def run(pred, grad_out):
        g = np.empty(shape, dt) if grad_out is None else grad_out
        ol = np.empty(shape, dt) if none else None
        if ep is not None:
            s, bad = ep(pred.reshape(-1), y, w, *scal, None if ol is None else ol.reshape(-1),
                        g.reshape(-1), None, 0.0)
        else:
            nt = resolve(n_threads, fn)
            s, bad = launch(kern, pred.reshape(-1), y, w, *scal,
                            None if ol is None else ol.reshape(-1), g.reshape(-1), None, 0.0,
                            parallel=want_parallel("elementwise", n, nt), n_threads=nt)
        if bad:
            raise err(spec, bad)
        return reduce_(s, wsum, reduction, ol, dt), g
    return run


# -------------------------------------------------------------------------- row-wise
def _build_rowwise(spec, inputs, params, sample_weight, reduction, n_threads, fn):
    import math

    from . import _cpu
    from . import _rowwise as R
    from ._validate import as_float, as_host_array

    x = inputs[0]
    dt = x.dtype
    shape = x.shape
    names = spec.floats
    named = dict(zip(spec.order, inputs))
    if spec.flatten:
        batch = tuple(shape[:1])
        D = math.prod(shape[1:]) if x.ndim > 1 else 1
    else:
        ax = R._norm_axis(params.get("axis", -1), x.ndim, fn)
        if ax != x.ndim - 1:
            raise ValueError(f"{fn}: a prepared call needs the class axis last "
                             f"(axis=-1), got axis={params.get('axis')!r}")
        batch = shape[:-1]
        D = int(shape[-1])
    N = math.prod(batch)
    K = YL = None
    if spec.labels:
        lab = as_host_array(named[spec.labels], spec.labels, fn)
        if spec.label_kind == "int":
            K = np.array(lab, dtype=np.int64).reshape(-1)
        else:
            YL = np.array(lab, dtype=dt, order="C").reshape(-1)
    tag, need_max, pvals, extra = spec.prepare(params, D, dt, K, fn)
    CWh = extra.get("class_weight")
    has_cw = CWh is not None
    flags = R._flags(tag, need_max, spec, has_cw)
    w, ws = R._row_weights(sample_weight, batch, dt, fn)
    rw_h = None if w is None else np.array(w, order="C").reshape(-1)
    wsum = ws * R.weight_total(K, D, CWh, rw_h, N)     # the checked call's denominator
    gscale = (1.0 / wsum if wsum > 0 else float("nan")) if reduction == "mean" else 1.0
    others = [np.array(as_float(as_host_array(named[n], n, fn), dt, n), order="C").reshape(N, D)
              for n in names[1:]]                       # copies: bound by value
    Kp = K if K is not None else np.zeros(1, np.int64)
    YLp = YL if YL is not None else np.zeros(1, dt)
    CWp = CWh if has_cw else np.ones(1, dt)
    RWp = rw_h if rw_h is not None else np.ones(N, dt)
    scal = (dt.type(ws), *(dt.type(v) for v in pvals), dt.type(gscale))
    reduce_, perr, fix = R._reduce, R._prob_error, spec.fixup
    nB, nC = len(names) > 1, len(names) > 2
    if N == 0 or D == 0:
        def run(pred, grad_out):
            g = np.zeros(shape, dt) if grad_out is None else grad_out
            g[...] = 0
            return reduce_(0.0, wsum, reduction, np.zeros(N, dt), batch, dt), g
        return run
    work = N * D
    launch, want_parallel, resolve = _cpu.launch, _cpu.want_parallel, _threads.resolve
    B0 = others[0] if nB else None
    C0 = others[1] if nC else None
    ep = None
    # Σ w·ℓ: the checked call's fold over the per-row values (its compiled entry point)
    from ._cpu.fold import fold_kernel
    fold = _entry(fold_kernel(), (np.zeros(N, dt), 0.0))
    if work < _cpu.PARALLEL_MIN["rowwise"]:
        kern = R.cpu_kernel_for(tag, flags, dt, False)
        A = x.reshape(N, D)
        probe = (A, B0 if nB else A, C0 if nC else A, Kp, YLp, CWp, RWp, *scal,
                 np.empty(N, dt), np.empty((N, D), dt), None, None, None)
        ep = _entry(_cpu.serial(kern), probe)

    def run(pred, grad_out):
        A = pred.reshape(N, D)
        g = np.empty(shape, dt) if grad_out is None else grad_out
        ol = np.empty(N, dt)
        args = (A, B0 if nB else A, C0 if nC else A, Kp, YLp, CWp, RWp, *scal, ol,
                g.reshape(N, D), None, None, None)
        if ep is not None:
            s, bad = ep(*args)
        else:
            nt = resolve(n_threads, fn)
            par = want_parallel("rowwise", work, nt)
            chunked = par and R._use_chunks(N, D)
            kern = R.cpu_kernel_for(tag, flags, dt, chunked)
            if chunked:
                args = args + (R.CHUNK,)
            s, bad = launch(kern, *args, parallel=par, n_threads=nt)
        if bad:
            raise perr(spec, bad)
        if fix is not None and s != s:   # rows the kernel leaves to the host (_limits)
            fix(A, B0 if nB else A, YL, ol, (None, g.reshape(N, D)), None, rw_h, ws,
                gscale, pvals)
        return reduce_(fold(ol, 0.0), wsum, reduction, ol, batch, dt), g
    return run
