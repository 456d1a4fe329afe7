"""Total losses without hidden global state: :class:`LossCollection`.

A collection holds weighted loss terms over several model outputs (multi-task heads),
custom terms, and L1/L2 regularization of parameter arrays, and returns the total with
the gradient with respect to every prediction and parameter::

    c = fastloss.LossCollection()
    c.add(fastloss.softmax_cross_entropy_with_integer_labels, logits, labels)   # head 1
    c.add(fastloss.huber, boxes, box_targets, weight=0.5, delta=1.0)           # head 2
    c.add_regularization(W, l2=1e-4)
    total, grads = c.value_and_grads()        # grads: [d/dlogits, d/dboxes, d/dW]

Every term is computed by its loss's fused kernel (``fastloss.value_and_grad``); nothing
here re-implements loss math.  ``grads`` holds one gradient per distinct input array
(identity, ``is``), in the order the arrays were first added: a prediction used by two
terms gets the sum of both terms' gradients.

Terms added with :meth:`LossCollection.add` and :meth:`add_regularization` are *live*:
each :meth:`value_and_grads` call recomputes them from the arrays as they are then (so a
parameter updated in place is seen).  Terms added by the ``fastloss.slim`` functions are
*snapshots* of the call (their value; their gradient too when the ``value_and_grad`` form
was used), as in TF-Slim where the collection holds the loss tensors.

For TF-Slim compatibility there is one default collection behind the module-level
:func:`add_loss`, :func:`get_losses`, :func:`get_regularization_losses` and
:func:`get_total_loss` (re-exported by ``fastloss.slim``).  ``with LossCollection() as c:``
makes ``c`` the default inside the block (per thread / async context, via
:mod:`contextvars`) and restores the previous default on exit; tests use this so that
nothing leaks between them.  :func:`reset_default_collection` clears the global one.

**Memory.**  A training loop that calls ``fastloss.slim`` functions runs in constant memory.
The process-wide default (outside every ``with`` block) keeps *values only* — no inputs,
gradients or recompute closures — and at most :data:`DEFAULT_MAX_TERMS` terms: when more
are added the oldest are dropped, with one ``RuntimeWarning`` per process.  (TF-Slim's
collection belongs to a graph that is built once; here each call adds a term, so a loop
must scope or reset the collection: ``with LossCollection() as c:`` per step, or
:func:`reset_default_collection`.)  A collection you create keeps everything (inputs,
gradients, recompute closures) until it is cleared or dropped; ``LossCollection(max_terms=k)``
bounds it to the k most recent terms as well.

This module also holds :func:`weighted_call`, the helper the ``gluon`` and ``slim`` layers
use to call a fastloss function with weights of any sign (fastloss's ``sample_weight`` must
be non-negative): a negative scalar flips the sign of the result, mixed signs split into
a positive and a negative pass.
"""
from __future__ import annotations

import collections
import contextvars
import re
import warnings

import numpy as np

__all__ = ["LossCollection", "get_default_collection", "reset_default_collection",
           "add_loss", "get_losses", "get_regularization_losses", "get_total_loss",
           "get_regularization_loss",
           "weighted_call"]


# ------------------------------------------------------------------ weighted calls
def weighted_call(fn, args, kwargs=None, weight=None, argnums=None, names=None, where=None):
    """``fn(*args, sample_weight=weight, **kwargs)`` for weights of any sign.

    ``fn`` is a fastloss loss function.  ``weight`` is None, a scalar or an array (passed
    on as ``sample_weight``).  With ``argnums`` (a tuple) the gradients come from
    ``fastloss.value_and_grad(fn, argnums)``.  Returns ``(value, grads)``: ``grads`` is a
    tuple aligned with ``argnums``, or None when no gradient was asked for.

    ``where`` (e.g. ``"fastloss.slim.log_loss"``) and ``names`` (the caller's names of
    ``args``): a ``TypeError``/``ValueError`` of ``fn`` is raised again in the caller's
    terms — its function and argument names instead of the core's.
    """
    if where is None:
        return _weighted_call(fn, args, kwargs, weight, argnums)
    try:
        return _weighted_call(fn, args, kwargs, weight, argnums)
    except (TypeError, ValueError) as exc:
        raise type(exc)(_in_callers_terms(str(exc), fn, names, where)) from None


def _in_callers_terms(msg, fn, names, where):
    info = getattr(fn, "__fastloss__", None)
    if info is None:
        return f"{where}: {msg}"
    if msg.startswith(info.name + ": "):
        msg = msg[len(info.name) + 2:]
    ren = {a: b for a, b in zip(info.inputs, names or ()) if a != b}
    if ren:
        msg = re.sub(r"\b(" + "|".join(map(re.escape, ren)) + r")\b",
                     lambda m: ren[m.group(1)], msg)
    return f"{where}: {msg}"


def _weighted_call(fn, args, kwargs=None, weight=None, argnums=None):
    from . import _api

    kwargs = dict(kwargs or {})

    def one(w):
        if argnums is None:
            return fn(*args, sample_weight=w, **kwargs), None
        return _api.value_and_grad(fn, tuple(argnums))(*args, sample_weight=w, **kwargs)

    def neg(res):
        v, g = res
        return -v, (None if g is None else tuple(-x for x in g))

    if weight is None:
        return one(None)
    w = np.asarray(weight)
    if w.ndim == 0:
        s = w.item()
        return neg(one(-s)) if s < 0 else one(s)
    if not np.any(w < 0):
        return one(w)
    if not np.any(w > 0):
        return neg(one(-w))
    vp, gp = one(np.maximum(w, 0))
    vn, gn = one(np.maximum(-w, 0))
    g = None if gp is None else tuple(a - b for a, b in zip(gp, gn))
    return vp - vn, g


def _total(v):
    """A term's value as a number (array values — per-sample losses — are summed)."""
    a = np.asarray(v)
    return a.item() if a.ndim == 0 else float(np.sum(a))


# ------------------------------------------------------------------------ terms
class _Term:
    """One term: ``compute(want_grad) -> (value, [grads])`` plus bookkeeping."""

    __slots__ = ("kind", "name", "compute", "slots", "weight", "value", "grads")

    def __init__(self, kind, name, compute, slots, weight=1.0, value=None, grads=None):
        self.kind = kind          # "loss" or "regularization"
        self.name = name
        self.compute = compute    # None for a constant value
        self.slots = slots        # gradient slot index per gradient compute() returns
        self.weight = weight
        self.value = value        # snapshot value (slim terms, constants)
        self.grads = grads        # snapshot gradients (slim value_and_grad form)

    def get_value(self):
        if self.value is not None or self.compute is None:
            return self.value if self.weight == 1.0 else self.weight * _total(self.value)
        v, _ = self.compute(False)
        return v if self.weight == 1.0 else self.weight * _total(v)

    def value_and_grads(self):
        if self.compute is None:
            return self.value, []
        if self.grads is not None:
            return self.value, self.grads
        return self.compute(True)


class LossCollection:
    """Weighted loss terms over several outputs, custom terms and regularization.

    Methods: :meth:`add`, :meth:`add_loss`, :meth:`add_regularization`,
    :meth:`value_and_grads`, :meth:`get_losses`, :meth:`get_regularization_losses`,
    :meth:`get_regularization_loss`, :meth:`get_collection`, :meth:`get_total_loss`,
    :meth:`clear`.  Terms belong to a TF collection key (:func:`collection_kind`):
    ``"losses"`` and ``"regularization_losses"`` make the totals; other keys are kept
    apart.  Usable as a context manager, which makes it the default collection (the one
    ``fastloss.slim`` adds to) inside the block.
    """

    def __init__(self, max_terms=None, keep_inputs=True):
        """``max_terms``: keep only the most recent terms (older ones are dropped, with a
        warning once); ``keep_inputs=False``: ``fastloss.slim`` calls record their value
        only (no input arrays, gradients or recompute closures are kept)."""
        if max_terms is not None and (isinstance(max_terms, bool)
                                      or not isinstance(max_terms, (int, np.integer))
                                      or max_terms < 1):
            raise ValueError(f"LossCollection: max_terms must be a positive integer or None, "
                             f"got {max_terms!r}")
        if not isinstance(keep_inputs, (bool, np.bool_)):
            raise TypeError(f"LossCollection: keep_inputs must be a bool, got {keep_inputs!r}")
        self._max_terms = None if max_terms is None else int(max_terms)
        self._keep_inputs = bool(keep_inputs)
        self._terms = collections.deque(maxlen=self._max_terms)
        self._inputs: list = []        # the arrays, one per gradient slot
        self._ids: dict = {}           # id(array) -> slot
        self._tokens: list = []
        self._dropped = 0

    def _append(self, term):
        if self._max_terms is not None and len(self._terms) == self._max_terms:
            if not self._dropped:
                warnings.warn(f"LossCollection: more than {self._max_terms} terms; the oldest "
                              f"are dropped (scope a training step with `with "
                              f"LossCollection() as c:` or call "
                              f"fastloss.slim.reset_default_collection())",
                              RuntimeWarning, stacklevel=4)
            self._dropped += 1
        self._terms.append(term)

    # -- slots
    def _slot(self, arr) -> int:
        k = id(arr)
        if k not in self._ids:
            self._ids[k] = len(self._inputs)
            self._inputs.append(arr)
        return self._ids[k]

    def _new_slot(self, placeholder) -> int:
        self._inputs.append(placeholder)
        return len(self._inputs) - 1

    @property
    def inputs(self) -> list:
        """The arrays the gradients of :meth:`value_and_grads` refer to, in order."""
        return list(self._inputs)

    def __len__(self):
        return len(self._terms)

    def __repr__(self):
        n_reg = sum(t.kind == "regularization" for t in self._terms)
        return (f"LossCollection({len(self._terms) - n_reg} loss terms, {n_reg} regularization "
                f"terms, {len(self._inputs)} gradients)")

    # -- adding terms
    def add(self, loss_fn, pred, *inputs, weight=1.0, argnums=0, name=None, **loss_params):
        """Add ``weight * loss_fn(pred, *inputs, **loss_params)``; returns pred's slot index.

        ``loss_fn``: a fastloss function (gradient w.r.t. the inputs ``argnums``, default
        the prediction), a ``fastloss.slim`` function (gradient w.r.t. its first argument;
        nothing is added to the default collection), or a ``fastloss.gluon`` loss object
        (its per-sample losses are summed; ``argnums`` may name several inputs of
        ``TripletLoss`` / ``CosineEmbeddingLoss``).  A value that is an array (for
        ``reduction="none"``) counts as its sum.  Computed when the total is asked for.

        Returns
        -------
        int
            The slot index of ``pred`` (its position in :attr:`inputs` and in the gradients
            of :meth:`value_and_grads`).
        """
        weight = _real(weight, "weight")
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        all_in = (pred,) + inputs
        for i in nums:
            if (isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer))
                    or not 0 <= i < len(all_in)):
                raise ValueError(f"LossCollection.add: argnums {argnums!r} must index the "
                                 f"{len(all_in)} inputs")
        compute = _make_compute(loss_fn, all_in, nums, loss_params)
        slots = [self._slot(all_in[i]) for i in nums]
        nm = name or getattr(loss_fn, "__name__", type(loss_fn).__name__)
        self._append(_Term("loss", nm, compute, slots, weight))
        return slots[0]

    def add_loss(self, loss, wrt=None, weight=1.0, name="loss", collection=None):
        """Add a custom term: a value, or a callable returning ``(value, grad)``.

        A plain value (a number or an array, counted as its sum) contributes no gradient.
        A callable is called with no arguments whenever the total is computed; its
        gradient is added to the slot of ``wrt`` (an input array, shared with other terms
        on the same array), or to a slot of its own when ``wrt`` is None.  With ``wrt`` a
        tuple of arrays the callable returns ``(value, (g1, g2, ...))``.

        ``collection``: the TF collection key the term belongs to (:func:`collection_kind`;
        None: ``GraphKeys.LOSSES``, ``"regularization_losses"`` makes it a regularization
        term; terms of other keys are read by :meth:`get_collection` only and are not part
        of the totals).

        Returns
        -------
        int or None
            The slot index of ``wrt``, or None without one.
        """
        weight = _real(weight, "weight")
        kind = collection_kind(collection)
        if not callable(loss):
            self._append(_Term(kind, name, None, [], weight, value=loss))
            return None
        if wrt is None:
            slots = [self._new_slot(None)]
            many = False
        elif isinstance(wrt, (tuple, list)):
            slots = [self._slot(a) for a in wrt]
            many = True
        else:
            slots = [self._slot(wrt)]
            many = False

        def compute(want_grad, _f=loss, _many=many):
            res = _f()
            if not (isinstance(res, tuple) and len(res) == 2):
                raise TypeError("LossCollection.add_loss: a callable term must return "
                                "(value, grad)")
            v, g = res
            return v, (list(g) if _many else [g])

        self._append(_Term(kind, name, compute, slots, weight))
        return slots[0] if len(slots) == 1 else slots

    def add_regularization(self, param, l2=0.0, l1=0.0, name="regularization"):
        """Add ``0.5 * l2 * ||param||² + l1 * ||param||₁``; returns param's slot index.

        Computed by the fused ``squared_error`` / ``absolute_error`` kernels against zero
        (the L1 subgradient at 0 is 0).

        Returns
        -------
        int
            The slot index of ``param``.
        """
        l2 = _real(l2, "l2")
        l1 = _real(l1, "l1")
        if l2 < 0 or l1 < 0:
            raise ValueError(f"LossCollection.add_regularization: l2 and l1 must be "
                             f"non-negative, got l2={l2}, l1={l1}")
        a = np.asarray(param) if not _masked(param) else None
        if a is None or a.dtype.kind not in "fiu":
            raise TypeError(f"LossCollection.add_regularization: param must be a real numeric "
                            f"array, got {type(param).__name__}"
                            + ("" if a is None else f" of dtype {a.dtype}"))
        slot = self._slot(param)

        def compute(want_grad, p=param, l2=l2, l1=l1):
            from . import losses_elementwise as ew

            x = np.asarray(p)
            if x.dtype.kind != "f":
                x = x.astype(np.float64)
            zero = np.zeros(x.shape, x.dtype)
            nums = (0,) if want_grad else None
            v, g = 0.0, None
            for fn, lam in ((ew.squared_error, 0.5 * l2), (ew.absolute_error, l1)):
                if lam == 0:
                    continue
                vi, gi = weighted_call(fn, (x, zero), {"reduction": "sum"}, lam, nums)
                v += float(vi)
                if want_grad:
                    g = gi[0] if g is None else g + gi[0]
            if want_grad and g is None:
                g = np.zeros(x.shape, x.dtype)
            return v, [g]

        self._append(_Term("regularization", name, compute, [slot]))
        return slot

    def _add_snapshot(self, name, pred, value, grad=None, compute=None, collection=None):
        """A term made by a ``fastloss.slim`` call (value and maybe gradient known);
        ``compute(want_grad) -> (value, grad w.r.t. pred)`` recomputes it.  Without
        ``keep_inputs`` only the value is kept.  ``collection``: as :meth:`add_loss`."""
        kind = collection_kind(collection)
        if not self._keep_inputs:
            self._append(_Term(kind, name, None, [], 1.0, value=value))
            return
        slots = [] if pred is None else [self._slot(pred)]
        grads = None if grad is None else [grad]
        wrapped = None
        if compute is not None:
            def wrapped(want_grad, _c=compute):
                v, g = _c(want_grad)
                return v, [g]
        self._append(_Term(kind, name, wrapped, slots, 1.0, value=value, grads=grads))

    # -- results
    def value_and_grads(self):
        """``(total, grads)``: the total loss and a list with the gradient with respect to
        each distinct prediction / parameter (:attr:`inputs`), in the order first added.
        A slot no term produced a gradient for holds None.

        Returns
        -------
        total : numpy scalar or float
            The weighted sum of every term.
        grads : list
            One gradient per slot (:attr:`inputs`), like its array; None where no term
            gives one.
        """
        total = 0.0
        grads = [None] * len(self._inputs)
        for t in self._terms:
            if t.kind not in ("loss", "regularization"):    # another TF collection key
                continue
            v, gs = t.value_and_grads()
            total += t.weight * _total(v)
            for s, g in zip(t.slots, gs):
                if g is None:
                    continue
                c = g if t.weight == 1.0 else t.weight * np.asarray(g)
                grads[s] = c if grads[s] is None else grads[s] + c
        return total, grads

    def get_losses(self, scope=None) -> list:
        """The values of the loss terms (not regularization), in order; ``scope`` filters
        by name with ``re.match`` as TF's collections do.

        Returns
        -------
        list
            The loss terms' values.
        """
        _scope(scope)
        return [t.get_value() for t in self._terms
                if t.kind == "loss" and (scope is None or re.match(scope, t.name))]

    def get_regularization_losses(self, scope=None) -> list:
        """The values of the regularization terms.

        Returns
        -------
        list
            The regularization terms' values, in order; ``scope`` filters by name with ``re.match``.
        """
        _scope(scope)
        return [t.get_value() for t in self._terms
                if t.kind == "regularization" and (scope is None or re.match(scope, t.name))]

    def get_regularization_loss(self, scope=None, name="total_regularization_loss"):
        """TF's ``get_regularization_loss``: the sum of the regularization terms (``scope``
        filters by name with ``re.match``), 0.0 when there are none.

        Returns
        -------
        float
            The total regularization loss.
        """
        return float(sum(_total(v) for v in self.get_regularization_losses(scope)))

    def get_collection(self, key, scope=None) -> list:
        """The values of the terms added under the TF collection ``key``
        (``"losses"``: :meth:`get_losses`; ``"regularization_losses"``:
        :meth:`get_regularization_losses`; any other key: the terms added with it).

        Returns
        -------
        list
            The terms' values, in order; ``scope`` filters by name with ``re.match``.
        """
        kind = collection_kind(key)
        _scope(scope)
        return [t.get_value() for t in self._terms
                if t.kind == kind and (scope is None or re.match(scope, t.name))]

    def get_total_loss(self, add_regularization_losses=True, name="total_loss"):
        """The sum of the loss terms (and of the regularization terms).

        Returns
        -------
        numpy scalar or float
            The sum of the loss terms, plus the regularization terms unless
            ``add_regularization_losses=False``.
        """
        vals = self.get_losses()
        if add_regularization_losses:
            vals += self.get_regularization_losses()
        return float(sum(_total(v) for v in vals))

    def clear(self):
        """Remove every term and slot.

        Returns
        -------
        None
        """
        self._terms.clear()
        self._inputs.clear()
        self._ids.clear()
        self._dropped = 0

    # -- default-collection scoping
    def __enter__(self):
        self._tokens.append(_CURRENT.set(self))
        return self

    def __exit__(self, *exc):
        _CURRENT.reset(self._tokens.pop())
        return False


LOSSES_KEY = "losses"                       # tf.GraphKeys.LOSSES
REGULARIZATION_LOSSES_KEY = "regularization_losses"   # tf.GraphKeys.REGULARIZATION_LOSSES


def collection_kind(key):
    """The term kind of a TF collection key: ``"loss"`` for ``"losses"`` (and None),
    ``"regularization"`` for ``"regularization_losses"``, ``"collection:<key>"`` for any
    other string."""
    if key is None or key == LOSSES_KEY:
        return "loss"
    if key == REGULARIZATION_LOSSES_KEY:
        return "regularization"
    if not isinstance(key, str):
        raise TypeError(f"LossCollection: a collection key must be a string or None, got "
                        f"{key!r}")
    return "collection:" + key


def _masked(x):
    from ._validate import is_masked
    return type(x) is not np.ndarray and is_masked(x)


def _scope(scope):
    if scope is not None and not isinstance(scope, (str, re.Pattern)):
        raise TypeError(f"LossCollection: scope must be a string (a regular expression) or "
                        f"None, got {scope!r}")


def _real(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"LossCollection: {name} must be a real number, got {v!r}")
    return float(v)


def _make_compute(loss_fn, all_in, nums, params):
    """compute(want_grad) -> (value, [grads per argnum]) for one kind of loss callable."""
    from . import _api

    if getattr(loss_fn, "__fastloss__", None) is not None:
        def compute(want_grad):
            if not want_grad:
                return loss_fn(*all_in, **params), []
            v, g = _api.value_and_grad(loss_fn, nums)(*all_in, **params)
            return v, list(g)
        return compute
    if hasattr(loss_fn, "loss_and_grad"):          # a fastloss.gluon loss object
        def compute(want_grad):
            if not want_grad:
                return loss_fn(*all_in, **params), []
            v, g = loss_fn.loss_and_grad(*all_in, **params)
            g = g if isinstance(g, tuple) else (g,)
            return v, [g[i] for i in nums]
        return compute
    if hasattr(loss_fn, "value_and_grad") and hasattr(loss_fn, "_slim_impl"):
        if nums != (0,):
            raise ValueError("LossCollection.add: fastloss.slim functions give the gradient "
                             "with respect to their first argument only (argnums=0)")

        def compute(want_grad):
            v, g = loss_fn._slim_impl(*all_in, want_grad=want_grad, **params)
            return v, [g]
        return compute
    raise TypeError(f"LossCollection.add: {loss_fn!r} is not a fastloss loss function, a "
                    f"fastloss.slim function or a fastloss.gluon loss")


# ----------------------------------------------------------- the default collection
DEFAULT_MAX_TERMS = 128
_DEFAULT = LossCollection(max_terms=DEFAULT_MAX_TERMS, keep_inputs=False)
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("fastloss_collection", default=None)


def get_default_collection() -> LossCollection:
    """The collection ``fastloss.slim`` adds to: the innermost ``with LossCollection()``
    block's, else the process-wide default (values only, at most
    :data:`DEFAULT_MAX_TERMS` recent terms: constant memory in a loop).

    Returns
    -------
    LossCollection
        The collection that ``fastloss.slim`` functions add to now.
    """
    c = _CURRENT.get()
    return _DEFAULT if c is None else c


def reset_default_collection():
    """Empty the process-wide default collection.

    Returns
    -------
    None
    """
    _DEFAULT.clear()


def add_loss(loss, loss_collection=True):
    """TF-Slim's ``add_loss``: add a value (or a callable returning value and gradient)
    to the default collection; ``loss_collection=None``/False adds nothing.  A string is
    TF's collection key: ``"losses"`` (``GraphKeys.LOSSES``, as True),
    ``"regularization_losses"`` (``GraphKeys.REGULARIZATION_LOSSES``: a regularization
    term), or any other key (read back by ``get_default_collection().get_collection(key)``).

    Returns
    -------
    None
    """
    if loss_collection is True or isinstance(loss_collection, str):
        key = None if loss_collection is True else loss_collection
        get_default_collection().add_loss(loss, collection=key)
    elif loss_collection:
        raise TypeError(f"add_loss: loss_collection must be a collection key (a string), "
                        f"True, False or None, got {loss_collection!r}")


def get_losses(scope=None, loss_collection=None):
    """TF-Slim's ``get_losses``: the loss values in the default collection (or in the
    given :class:`LossCollection`).

    Returns
    -------
    list
        The loss values, in the order they were added.
    """
    if isinstance(loss_collection, str):     # a TF collection key of the default collection
        return get_default_collection().get_collection(loss_collection, scope)
    c = get_default_collection() if loss_collection is None else loss_collection
    if not isinstance(c, LossCollection):
        raise TypeError(f"get_losses: loss_collection must be a LossCollection or None, "
                        f"got {type(loss_collection).__name__}")
    return c.get_losses(scope)


def get_regularization_losses(scope=None):
    """TF-Slim's ``get_regularization_losses``: the regularization values in the default
    collection (or in the given :class:`LossCollection`).

    Returns
    -------
    list
        The regularization values, in the order they were added.
    """
    return get_default_collection().get_regularization_losses(scope)


def get_regularization_loss(scope=None, name="total_regularization_loss"):
    """TF's ``get_regularization_loss``: the sum of the regularization values in the
    default collection (``scope`` filters by name with ``re.match``), 0.0 when there are
    none.

    Returns
    -------
    float
        The total regularization loss.
    """
    return get_default_collection().get_regularization_loss(scope, name)


def get_total_loss(add_regularization_losses=True, name="total_loss"):
    """TF-Slim's ``get_total_loss`` over the default collection.

    Returns
    -------
    numpy scalar or float
        The sum of the loss terms, plus the regularization terms unless
        ``add_regularization_losses=False``.
    """
    return get_default_collection().get_total_loss(add_regularization_losses, name)
