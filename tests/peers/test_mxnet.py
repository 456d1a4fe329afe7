"""fastloss.gluon against MXNet 1.9.1 Gluon, through a .npz of MXNet's results.

MXNet needs numpy <= 1.23.5, so it runs in its own virtual environment:
scripts/compare_peers/setup_mxnet.sh builds it and scripts/compare_peers/dump_mxnet.py
writes the inputs, per-sample losses and autograd gradients to the file named by
``$FASTLOSS_MXNET_NPZ`` (scripts/compare_peers/run.sh does both).  Skipped when the file
is absent.  Includes the Gluon loss tutorial's worked examples.

Known, deliberate differences (fastloss/gluon.py's docstring): ``KLDivLoss`` averages over
the non-batch axes (MXNet 1.8 / 2.0) where 1.9.x sums, so 1.9.x results are divided by the
number of non-batch elements here; ``CosineEmbeddingLoss`` returns (rows,) not (rows, 1).
"""
import json
import os

import numpy as np
import pytest

import fastloss as fl  # noqa: F401
from fastloss import gluon

PATH = os.environ.get("FASTLOSS_MXNET_NPZ", "/tmp/fastloss-peers/mxnet_results.npz")
if not os.path.exists(PATH):
    pytest.skip(f"no MXNet results at {PATH} (run scripts/compare_peers/run.sh)",
                allow_module_level=True)

DATA = np.load(PATH)
VERSION = str(DATA["mxnet_version"])
IDS = sorted({k.split("_")[0] for k in DATA.files if k.startswith("c")})


def _case(cid):
    meta = json.loads(str(DATA[f"{cid}_meta"]))
    ins = [DATA[f"{cid}_in{j}"] for j in range(meta["n_inputs"])]
    sw = DATA[f"{cid}_sw"] if f"{cid}_sw" in DATA.files else None
    return meta, ins, sw, DATA[f"{cid}_value"], DATA[f"{cid}_grad"]


def _label(cid):
    meta = json.loads(str(DATA[f"{cid}_meta"]))
    return f"{cid}-{meta['cls']}{'-tutorial' if meta['tutorial'] else ''}"


@pytest.mark.parametrize("cid", IDS, ids=[_label(c) for c in IDS])
def test_against_mxnet(cid):
    meta, ins, sw, mv, mg = _case(cid)
    cls = getattr(gluon, meta["cls"])
    loss = cls(**meta["ctor"])
    call = {k: (np.asarray(v, np.int64) if k.endswith("lengths") else np.asarray(v))
            for k, v in meta["call"].items()}
    if meta["cls"] == "CTCLoss":
        ins = [ins[0], ins[1].astype(np.int64)]
    if sw is not None:
        call["sample_weight"] = sw
    v, g = loss.loss_and_grad(*ins, **call)
    g = g[0] if isinstance(g, tuple) else g
    mv = mv.reshape(np.shape(v))
    if meta["cls"] == "KLDivLoss" and VERSION.startswith("1.9"):
        ba = meta["ctor"].get("batch_axis", 0)
        M = ins[0].size // ins[0].shape[ba]
        mv, mg = mv / M, mg / M
    rt = 1e-6 if meta.get("dtype", "float64") == "float64" else 2e-5
    np.testing.assert_allclose(v, mv, rtol=rt, atol=rt, err_msg=meta["cls"])
    if np.all(np.isnan(mg)):   # MXNet could not differentiate this case (see dump_mxnet.py)
        return
    np.testing.assert_allclose(g, mg, rtol=rt, atol=rt, err_msg=meta["cls"])
