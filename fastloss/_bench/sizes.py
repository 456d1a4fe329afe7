"""Time against size: ``value_and_grad(huber)``, float32, n = 10² … 2·10⁷ (quick: 4·10⁶).

Peers: ``serial`` (the same call with ``n_threads=1``, fastloss's serial kernel), the
NumPy float64 reference and PyTorch CPU of the elementwise family.  Below
``fastloss._cpu.PARALLEL_MIN["elementwise"]`` elements fastloss runs its serial kernel
(same bits); the rows show where the parallel one starts to pay.
"""
from . import Case
from .elementwise import _make, _np_peer, _torch_peer

LOSS = "huber"
SIZES = (100, 1_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 4_000_000, 20_000_000)


def _serial_peer(args, kw):
    import fastloss
    vg = fastloss.value_and_grad(fastloss.huber)
    return lambda: vg(*args, n_threads=1, **kw)


def cases(quick=False):
    out = []
    for n in SIZES[:-1] if quick else SIZES:
        out.append(Case(
            loss=LOSS, label=f"n={n:.0e}", make=lambda dtype, n=n: _make(LOSS, n, dtype),
            nbytes=lambda args: 3 * args[0].nbytes,
            peers={"numpy": _np_peer(LOSS), "torch": _torch_peer(LOSS),
                   "serial": _serial_peer}, n=n))
    return out
