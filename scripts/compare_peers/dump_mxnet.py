"""Run MXNet 1.9.1 Gluon losses on fixed inputs and save values and gradients to a .npz.

Runs in its own virtual environment (MXNet needs numpy <= 1.23.5; see setup_mxnet.sh):

    .venv-mxnet/bin/python scripts/compare_peers/dump_mxnet.py OUT.npz

tests/peers/test_mxnet.py reads OUT.npz (path in $FASTLOSS_MXNET_NPZ) and compares
fastloss.gluon against it.  Each case stores the class name, constructor and call keyword
arguments (JSON), the inputs, MXNet's per-sample losses, and the gradient of their sum with
respect to the first input (autograd).  Inputs come from a fixed seed and are saved, so
the comparison does not depend on either side's random generator.
"""
import json
import sys

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon, nd

rng = np.random.RandomState(1234)
B, D = 4, 3


def real(*s):
    return rng.normal(size=s) * 2


def unit(*s):
    return rng.uniform(size=s)


def pm1(*s):
    return np.where(rng.uniform(size=s) < 0.5, -1.0, 1.0)


def probs(*s):
    p = rng.uniform(0.05, 1.0, size=s)
    return p / p.sum(-1, keepdims=True)


CASES = [
    # (class name, ctor kwargs, input arrays, call kwargs, sample_weight or None)
    ("L1Loss", {"weight": 0.7}, [real(B, D), real(B, D)], {}, rng.uniform(0.5, 2, (B, 1))),
    ("L2Loss", {}, [real(B, D), real(B, D)], {}, None),
    ("L2Loss", {"batch_axis": 1}, [real(D, B), real(D, B)], {}, None),
    ("HuberLoss", {"rho": 0.8}, [real(B, D), real(B, D)], {}, None),
    ("SigmoidBCELoss", {}, [real(B, D), unit(B, D)], {}, None),
    ("SigmoidBCELoss", {"from_sigmoid": True}, [unit(B, D) * 0.9 + 0.05, unit(B, D)], {}, None),
    ("SigmoidBCELoss", {}, [real(B, D), unit(B, D)], {"pos_weight": np.array([2.5])}, None),
    ("SoftmaxCELoss", {}, [real(B, 5), rng.randint(0, 5, B).astype(np.float64)], {}, None),
    ("SoftmaxCELoss", {"sparse_label": False}, [real(B, 5), probs(B, 5)], {}, None),
    ("SoftmaxCELoss", {"axis": 1}, [real(B, 5, 2), rng.randint(0, 5, (B, 2)).astype(np.float64)],
     {}, None),
    ("KLDivLoss", {"from_logits": False}, [real(B, 4), probs(B, 4)], {}, None),
    ("KLDivLoss", {}, [np.log(probs(B, 4)), probs(B, 4)], {}, None),
    ("HingeLoss", {"margin": 1.5}, [real(B, D), pm1(B, D)], {}, None),
    ("SquaredHingeLoss", {"margin": 0.5}, [real(B, D), pm1(B, D)], {}, None),
    ("LogisticLoss", {}, [real(B, D), pm1(B, D)], {}, None),
    ("LogisticLoss", {"label_format": "binary"}, [real(B, D), (unit(B, D) < 0.5) * 1.0], {}, None),
    ("TripletLoss", {"margin": 1.0}, [real(B, D), real(B, D), real(B, D)], {}, None),
    ("PoissonNLLLoss", {}, [real(B, D) * 0.5, rng.poisson(2.0, (B, D)).astype(np.float64)], {},
     None),
    # compute_full: targets >= 1 only (MXNet returns NaN at target 0, a known quirk)
    ("PoissonNLLLoss", {"compute_full": True},
     [real(B, D) * 0.5, rng.poisson(3.0, (B, D)).astype(np.float64) + 1], {}, None),
    ("PoissonNLLLoss", {"from_logits": False},
     [unit(B, D) * 3 + 0.1, rng.poisson(2.0, (B, D)).astype(np.float64)], {}, None),
    ("CosineEmbeddingLoss", {"margin": 0.2}, [real(B, D), real(B, D), pm1(B)], {}, None),
    # CTC: blank is the last class, labels padded with -1
    ("CTCLoss", {}, [real(3, 8, 5), np.array([[0, 1, 2], [3, 3, -1], [1, -1, -1]], np.float64)],
     {}, None),
    ("CTCLoss", {"layout": "TNC"},
     [real(8, 3, 5), np.array([[0, 1, 2], [3, 3, -1], [1, -1, -1]], np.float64)],
     {"pred_lengths": np.array([8.0, 6.0, 5.0]), "label_lengths": np.array([3.0, 2.0, 1.0])}, None),
]

# the Gluon loss tutorial's worked examples
TUTORIAL = [
    ("L2Loss", {}, [np.ones(2), 2 * np.ones(2)], {}, None),
    ("L2Loss", {}, [np.ones(2), 2 * np.ones(2)], {}, np.array([1.0, 2.0])),
    ("SoftmaxCELoss", {}, [np.array([[1.0, 10.0], [8.0, 2.0]]), np.array([0.0, 1.0])], {}, None),
    ("KLDivLoss", {"from_logits": False},
     [np.array([[0.39056206, 1.3068528, 0.39056206, -0.30258512]]),
      np.array([[0.3, 0.4, 0.1, 0.2]])], {}, None),
    ("CosineEmbeddingLoss", {}, [np.array([[1.0, 0, 1, 0, 1, 0]]),
                                 np.array([[1.0, 0, 1, 0, 1, 0]]), np.array([1.0])], {}, None),
    ("CosineEmbeddingLoss", {}, [np.array([[1.0, 0, 1, 0, 1, 0]]),
                                 np.array([[0.0, 1, 0, 1, 0, 1]]), np.array([-1.0])], {}, None),
]


# CosineEmbeddingLoss builds a float32 epsilon internally and CTCLoss has a float32
# kernel only: both refuse float64 inputs
DTYPE = {"CosineEmbeddingLoss": "float32", "CTCLoss": "float32"}


def run(cls, ctor, inputs, call, sw):
    loss = getattr(gluon.loss, cls)(**ctor)
    dt = DTYPE.get(cls, "float64")
    arrs = [nd.array(a, dtype=dt) for a in inputs]
    arrs[0].attach_grad()
    # Block.__call__ takes positional arguments only: (inputs..., then the optional ones
    # in hybrid_forward's order)
    extra = {"SigmoidBCELoss": ["sample_weight", "pos_weight"],
             "CTCLoss": ["pred_lengths", "label_lengths", "sample_weight"]}.get(
        cls, ["sample_weight"])
    kw = dict(call)
    if sw is not None:
        kw["sample_weight"] = sw
    opt = [kw.get(k) for k in extra]
    while opt and opt[-1] is None:
        opt.pop()
    opt = [nd.array(v, dtype=dt) if isinstance(v, np.ndarray) else v for v in opt]
    try:
        with autograd.record():
            out = loss(*arrs, *opt)
        out.backward()
        return out.asnumpy(), arrs[0].grad.asnumpy()
    except mx.base.MXNetError:
        # PoissonNLLLoss(compute_full=True) updates in place inside the graph (`loss +=`),
        # which MXNet's autograd refuses: value only, gradient stored as NaN
        out = loss(*[nd.array(a, dtype=dt) for a in inputs], *opt)
        return out.asnumpy(), np.full(inputs[0].shape, np.nan)


def main(path):
    res = {"mxnet_version": np.array(mx.__version__)}
    for i, (cls, ctor, inputs, call, sw) in enumerate(CASES + TUTORIAL):
        try:
            v, g = run(cls, ctor, inputs, call, sw)
        except Exception as exc:  # an MXNet limitation for this case: reported, skipped
            print(f"case {i} {cls} {ctor}: MXNet failed ({str(exc).splitlines()[-1][:200]})")
            continue
        pre = f"c{i:03d}_"
        res[pre + "meta"] = np.array(json.dumps({
            "cls": cls, "ctor": ctor, "tutorial": i >= len(CASES),
            "dtype": DTYPE.get(cls, "float64"),
            "call": {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in call.items()},
            "n_inputs": len(inputs)}))
        for j, a in enumerate(inputs):
            res[pre + f"in{j}"] = a
        if sw is not None:
            res[pre + "sw"] = sw
        res[pre + "value"] = v
        res[pre + "grad"] = g
    np.savez(path, **res)
    print(f"wrote {sum(k.endswith('_meta') for k in res)} MXNet {mx.__version__} cases to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mxnet_results.npz")
