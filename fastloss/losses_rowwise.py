"""Public functions of the row-wise losses (reductions over the class/feature axis of a row).

Each is registered from its :class:`fastloss._rowwise.RowLoss` entry; the runner is
:func:`fastloss._rowwise.run`.  ``sample_weight`` is per row (broadcastable to the batch
shape, i.e. the input shape without the class axis); ``reduction="mean"`` is the weighted
mean Σ w·ℓ / Σ w (for integer-label cross-entropy, Σ w over the counted rows times their
class weights, as PyTorch).  Gradients: ``value_and_grad(fn, argnums=...)`` for any input in
the loss's ``differentiable`` list; a tuple ``argnums`` gives a tuple of gradients in
argument order.
"""
from functools import partial

from . import _rowplan, _rowwise
from ._api import LossInfo, register
from ._rowwise import ROWLOSSES


def _runner(spec, inputs, params, **kw):
    return _rowwise.run(spec, inputs, params, **kw)


for _spec in ROWLOSSES.values():
    globals()[_spec.name] = register(LossInfo(
        name=_spec.name, kind="rowwise", inputs=_spec.order, params=dict(_spec.params),
        runner=partial(_runner, _spec), differentiable=_spec.differentiable,
        has_hessian=_rowwise.has_hessian(_spec), formula=_spec.formula, doc=_spec.doc, spec=_spec,
        small=partial(_rowplan.small_call, _spec)))

__all__ = list(ROWLOSSES)
