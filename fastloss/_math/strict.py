"""Strict float ``sadd(a, b) = a + b`` and ``ssub(a, b) = a - b`` for the CPU targets.

The CPU kernels compile with the ``reassoc`` fast-math flag, which the loop vectorizer
needs for the float sums, but which also lets LLVM regroup ``(a - b) + eps`` into
``(a + eps) - b`` (27.63093 instead of 27.63102 for ``-log((1 - 1) + 1e-12)``; 0 instead
of 1e-6 for ``(1000 - 1000) + 1e-6`` in float32).  The math modules write the places
where the grouping matters -- a difference of nearly equal terms, a small constant
added to such a difference -- with ``sadd``/``ssub``; on the CPU targets
:func:`fastloss._compile.namespace` binds these to the intrinsics below, which emit the
``fadd``/``fsub`` with the flag ``afn`` only (see ``fastloss._fastmath._STRICT``: Numba's
fast-math pass leaves an instruction that already has a flag alone, and ``afn`` licenses
nothing on an add).  Such an instruction is a leaf for LLVM's reassociation, so the
operation is evaluated exactly as written; it still vectorizes.  On CUDA (no fast-math
in the device functions) and in plain Python the math modules' defaults,
``operator.add``/``operator.sub``, are used.

Mixed float32/float64 operands are computed in the wider type (as Numba would).
"""
from numba import types
from numba.extending import intrinsic

_FLAGS = ("afn",)


def _signature(a, b):
    if not (isinstance(a, (types.Float, types.Integer))
            and isinstance(b, (types.Float, types.Integer))):
        return None
    if not (isinstance(a, types.Float) or isinstance(b, types.Float)):
        return None
    fl = [t for t in (a, b) if isinstance(t, types.Float)]
    rt = types.float64 if any(t.bitwidth == 64 for t in fl) or len(fl) < 2 else fl[0]
    return rt(a, b)


def _operands(context, builder, sig, args):
    rt = sig.return_type
    return [context.cast(builder, v, t, rt) for v, t in zip(args, sig.args)]


@intrinsic
def sadd(typingctx, a, b):
    """``a + b``, never reassociated or contracted with neighbouring operations."""
    sig = _signature(a, b)
    if sig is None:
        return None

    def codegen(context, builder, signature, args):
        x, y = _operands(context, builder, signature, args)
        return builder.fadd(x, y, flags=_FLAGS)

    return sig, codegen


@intrinsic
def ssub(typingctx, a, b):
    """``a - b``, never reassociated or contracted with neighbouring operations."""
    sig = _signature(a, b)
    if sig is None:
        return None

    def codegen(context, builder, signature, args):
        x, y = _operands(context, builder, signature, args)
        return builder.fsub(x, y, flags=_FLAGS)

    return sig, codegen


STRICT_PRIMS = {"sadd": sadd, "ssub": ssub}
