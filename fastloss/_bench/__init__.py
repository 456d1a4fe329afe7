"""Benchmark cases, one module per loss family; read by ``python -m fastloss bench`` and asv.

Each family module defines ``cases(quick: bool) -> list[Case]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

FAMILIES = ("elementwise", "rowwise", "ctc", "metric", "workflows", "sizes")
# what a plain ``python -m fastloss bench`` runs; the workflows (model fits, boosting, a
# contention case that starts busy processes) take minutes and run with --family workflows
DEFAULT_FAMILIES = ("elementwise", "rowwise", "ctc", "metric")


@dataclass
class Case:
    """One benchmark workload.

    ``make(dtype)`` returns ``(args, kwargs)`` for ``fastloss.value_and_grad(LOSSES[loss].func)``
    (host NumPy arrays); ``nbytes`` is the traffic of one value+gradient pass (inputs read,
    gradients written); ``peers`` maps a peer name ("numpy", "torch", "sklearn") to a
    function ``(args, kwargs) -> zero-argument callable`` doing the same work, or raising
    ``ImportError`` when the peer is missing.
    """

    loss: str
    label: str
    make: Callable
    nbytes: Callable  # (args) -> int
    peers: dict
    argnums: object = 0
    # workflow cases (fastloss._bench.workflows): ``run(args, kwargs)`` returns the
    # zero-argument fastloss side instead of value_and_grad(LOSSES[loss]); ``load()`` starts
    # a background load just before timing and returns its stopper; ``note(args, kwargs)``
    # returns a line printed under the row (accuracy, counts).  ``nbytes`` may return None.
    run: Optional[Callable] = None
    load: Optional[Callable] = None
    note: Optional[Callable] = None
    n: Optional[int] = None   # elements of the prediction, where a family sets it (sizes)
    family: str = ""          # set by all_cases


def all_cases(quick: bool = False, families=DEFAULT_FAMILIES) -> list:
    import importlib

    out = []
    for fam in families:
        try:
            mod = importlib.import_module(f"fastloss._bench.{fam}")
        except ImportError:
            continue
        for c in mod.cases(quick):
            c.family = fam
            out.append(c)
    return out
