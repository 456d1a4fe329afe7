"""Public functions of the elementwise losses, generated from their specs."""
from functools import partial

from . import _elementwise
from ._api import LossInfo, register
from ._math import elementwise as _math  # noqa: F401  (registers the specs)
from ._math.spec import ELEMENTWISE, ELEMENTWISE3


def _runner(spec, inputs, params, **kw):
    return _elementwise.run(spec, inputs, params, **kw)


for _spec in ELEMENTWISE.values():
    globals()[_spec.name] = register(LossInfo(
        name=_spec.name, kind="elementwise", inputs=("pred", "target"),
        params={p.name: p.default for p in _spec.params}, runner=partial(_runner, _spec),
        differentiable=("pred",), has_hessian=_spec.hessian, formula=_spec.formula,
        doc=_spec.doc, spec=_spec,
        small=partial(_elementwise.small_call, _spec, _elementwise.default_tail(_spec))))


def _runner3(spec, inputs, params, **kw):
    kw.pop("want_value", None)     # (the three-array kernel always sums the values)
    return _elementwise.run3(spec, inputs, params, **kw)


for _spec in ELEMENTWISE3.values():   # the losses of three arrays
    globals()[_spec.name] = register(LossInfo(
        name=_spec.name, kind="elementwise", inputs=_spec.inputs,
        params={p.name: p.default for p in _spec.params}, runner=partial(_runner3, _spec),
        differentiable=_spec.differentiable, has_hessian=_spec.hessian,
        formula=_spec.formula, doc=_spec.doc, spec=_spec))

__all__ = list(ELEMENTWISE) + list(ELEMENTWISE3)
