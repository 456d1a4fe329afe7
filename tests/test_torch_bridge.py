"""fastloss.torch: autograd Functions and nn.Modules generated from the loss registry.

Values and gradients are checked against fastloss's NumPy results, against PyTorch's own
losses where PyTorch defines them, and by ``torch.autograd.gradcheck`` (central finite
differences, float64) for every registered loss.
"""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastloss  # noqa: E402
import fastloss.torch as flt  # noqa: E402
from fastloss import LOSSES  # noqa: E402
from reference import PARAMS, make_inputs  # noqa: E402

F = torch.nn.functional
N, C = 4, 3


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _rowwise_case(name, rng):
    x = rng.normal(size=(N, C)) * 2
    p = rng.random((N, C)) + 0.05
    p /= p.sum(-1, keepdims=True)
    k = rng.integers(0, C, N)
    a, b, c = (rng.normal(size=(N, C)) for _ in range(3))
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    return {
        "softmax_cross_entropy": ((x, p), {"label_smoothing": 0.1}),
        "softmax_cross_entropy_with_integer_labels": ((x, k), {"label_smoothing": 0.1}),
        "kl_divergence": ((lp, p), {}),
        "softmax_kl_divergence": ((x, p), {}),
        "multiclass_hinge": ((x * 3, k), {"margin": 1.5}),
        "cosine_embedding": ((a, b, np.array([1, -1, 1, -1])), {"margin": -0.9}),
        "cosine_distance": ((a, b), {}),
        "triplet_margin": ((a, b, c), {"margin": 5.0}),
        "mean_pairwise_squared_error": ((a.reshape(N, 3), b.reshape(N, 3)), {}),
        "nll_loss": ((lp, k), {"class_weight": rng.random(C) + 0.5}),
        "categorical_hinge": ((a * 3, p), {}),
        "poly1_softmax_cross_entropy": ((x, p), {"epsilon": 1.5}),
        "multilabel_soft_margin": ((x, (p > 1 / C).astype(float)), {}),
        "categorical_focal_cross_entropy": ((x, k), {"gamma": 1.5}),
        "multilabel_margin": ((a, np.array([[0, -1, 0], [2, 1, -1], [1, 1, 1], [-1, 0, 0]])),
                              {}),
        "multiclass_sparsemax_loss": ((x, k), {}),
        "dice": ((p, (p > 1 / C).astype(float)), {}),
        "tversky": ((p, (p > 1 / C).astype(float)), {"alpha": 0.3, "beta": 0.7}),
    }[name]


def case(name, seed=0):
    """(inputs as NumPy arrays, params) for registered loss ``name``, away from kinks."""
    rng = np.random.default_rng(seed)
    info = LOSSES[name]
    if info.kind == "elementwise" and len(info.inputs) == 3:   # gaussian_nll, margin_ranking
        x, y = rng.standard_normal((2, 6))
        z = (rng.uniform(0.2, 2.0, 6) if name == "gaussian_nll"
             else np.where(rng.random(6) < 0.5, -1.0, 1.0))
        return (x, y, z), {}
    if info.kind == "elementwise":
        x, y = make_inputs(name, 6, rng)
        return (x, y), dict(PARAMS.get(name, {}))
    if info.kind == "ctc":
        T, Cc, L = 5, 4, 2
        x = rng.normal(size=(N, T, Cc))
        lab = rng.integers(1, Cc, size=(N, L))
        lab[:, 1] = np.where(lab[:, 1] == lab[:, 0], lab[:, 0] % (Cc - 1) + 1, lab[:, 1])
        return (x, lab, np.array([5, 4, 5, 3]), np.array([2, 1, 2, 2])), {}
    if info.kind == "metric":
        return _metric_case(name, rng)
    return _rowwise_case(name, rng)


def _metric_case(name, rng):
    """The metric-learning losses (tests/test_metric.py): 5 embeddings, 2 classes."""
    lab = np.array([0, 0, 1, 1, 0])
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    if name == "contrastive":
        return (np.array([1, 0, 1, 0, 0]), a, a + 0.3 * b), {}
    if name == "npairs":
        return (lab, a, b), {}
    return ((a, lab) if name == "ntxent" else (lab, a)), {}


def _skip_coupled_none(name, reduction):
    """The batch-coupled metric losses have no reduction="none" (values per anchor are not
    separable: the bridge's per-row backward would not apply)."""
    info = LOSSES[name]
    if reduction == "none" and info.kind == "metric" and "out" not in info.common:
        pytest.skip(f"{name}: no reduction='none'")


def _tensors(name, arrays, grad=True):
    info = LOSSES[name]
    return [_t(a, grad and n in info.differentiable and np.asarray(a).dtype.kind == "f")
            for n, a in zip(info.inputs, arrays)]


def test_every_registered_loss_has_a_case_function_and_module():
    for name in LOSSES:
        case(name)
        assert callable(getattr(flt, name))
        assert issubclass(getattr(flt, flt._camel(name)), torch.nn.Module)


def test_import_fastloss_does_not_import_torch():
    code = "import sys, fastloss; print('torch' in sys.modules, 'fastloss.torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- every loss: gradcheck, and equality with fastloss's NumPy results --------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck(name, reduction):
    _skip_coupled_none(name, reduction)
    arrays, params = case(name)
    ts = _tensors(name, arrays)
    idx = [i for i, t in enumerate(ts) if t.requires_grad]
    assert idx, name

    def f(*diff):
        args = list(ts)
        for i, d in zip(idx, diff):
            args[i] = d
        return getattr(flt, name)(*args, reduction=reduction, **params)

    assert torch.autograd.gradcheck(f, tuple(ts[i] for i in idx), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_equals_numpy(name, reduction):
    _skip_coupled_none(name, reduction)
    info = LOSSES[name]
    arrays, params = case(name, seed=1)
    ts = _tensors(name, arrays)
    idx = [i for i, t in enumerate(ts) if t.requires_grad]
    v = getattr(flt, name)(*ts, reduction=reduction, **params)
    ref_v, ref_g = fastloss.value_and_grad(info.func, argnums=tuple(idx))(
        *arrays, reduction=reduction, **params)
    assert isinstance(v, torch.Tensor) and v.dtype == torch.float64
    np.testing.assert_array_equal(v.detach().numpy(), ref_v)
    v.sum().backward()                          # the gradient of the sum, as fastloss defines
    for i, g in zip(idx, ref_g):
        np.testing.assert_array_equal(ts[i].grad.numpy(), g)


# --- against PyTorch's own losses ---------------------------------------------------------

def _both(ours, theirs, *arrays, dtype=torch.float64, tol=1e-12):
    a = [_t(x).to(dtype).requires_grad_(True) for x in arrays]
    b = [_t(x).to(dtype).requires_grad_(True) for x in arrays]
    v1, v2 = ours(*a), theirs(*b)
    assert v1.dtype == dtype
    torch.testing.assert_close(v1, v2, rtol=tol, atol=tol)
    (v1 * torch.linspace(0.5, 1.5, v1.numel(), dtype=dtype).reshape(v1.shape)).sum().backward()
    (v2 * torch.linspace(0.5, 1.5, v2.numel(), dtype=dtype).reshape(v2.shape)).sum().backward()
    torch.testing.assert_close(a[0].grad, b[0].grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_pytorch_regression_losses(reduction):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 3)) * 2, rng.normal(size=(5, 3))
    yd = lambda f: (lambda p, t: f(p, t.detach()))  # noqa: E731  (targets are constants)
    r = reduction
    _both(yd(lambda p, t: flt.huber(p, t, delta=0.7, reduction=r)),
          lambda p, t: F.huber_loss(p, t.detach(), delta=0.7, reduction=r), x, y)
    _both(yd(lambda p, t: flt.smooth_l1(p, t, beta=0.5, reduction=r)),
          lambda p, t: F.smooth_l1_loss(p, t.detach(), beta=0.5, reduction=r), x, y)
    _both(yd(lambda p, t: flt.squared_error(p, t, reduction=r)),
          lambda p, t: F.mse_loss(p, t.detach(), reduction=r), x, y)
    _both(yd(lambda p, t: flt.absolute_error(p, t, reduction=r)),
          lambda p, t: F.l1_loss(p, t.detach(), reduction=r), x, y)
    _both(yd(lambda p, t: flt.huber(p, t, reduction=r)),
          lambda p, t: F.huber_loss(p, t.detach(), reduction=r), x, y,
          dtype=torch.float32, tol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_matches_pytorch_bce_with_logits_pos_weight(reduction):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 3)) * 2, (rng.random((6, 3)) < 0.4).astype(float)
    _both(lambda p, t: flt.sigmoid_binary_cross_entropy(p, t.detach(), pos_weight=2.5,
                                                        reduction=reduction),
          lambda p, t: F.binary_cross_entropy_with_logits(
              p, t.detach(), pos_weight=torch.tensor(2.5, dtype=p.dtype), reduction=reduction),
          x, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_pytorch_cross_entropy_integer_labels(reduction):
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(7, 5)) * 2)
    k = torch.tensor(rng.integers(0, 5, 7))              # int64 label tensor
    cw = torch.tensor(rng.random(5) + 0.5)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    v1 = flt.softmax_cross_entropy_with_integer_labels(a, k, class_weight=cw,
                                                       label_smoothing=0.1, reduction=reduction)
    v2 = F.cross_entropy(b, k, weight=cw, label_smoothing=0.1, reduction=reduction)
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)
    w = torch.linspace(0.5, 1.5, v1.numel(), dtype=v1.dtype).reshape(v1.shape)
    (v1 * w).sum().backward()
    (v2 * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("log_target", [False, True])
def test_matches_pytorch_kl_div(log_target):
    rng = np.random.default_rng(5)
    lp = torch.log_softmax(torch.tensor(rng.normal(size=(4, 6))), -1)
    t = torch.softmax(torch.tensor(rng.normal(size=(4, 6))), -1)
    t = t.log() if log_target else t
    a, b = lp.clone().requires_grad_(), lp.clone().requires_grad_()
    ta, tb = t.clone().requires_grad_(), t.clone().requires_grad_()
    v1 = flt.kl_divergence(a, ta, log_target=log_target, reduction="sum")
    v2 = F.kl_div(b, tb, log_target=log_target, reduction="sum")
    torch.testing.assert_close(v1, v2, rtol=1e-12, atol=1e-12)
    v1.backward()
    v2.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ta.grad, tb.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_pytorch_ctc_with_log_softmax_in_graph(reduction):
    # PyTorch's ctc_loss backward is the gradient w.r.t. the logits (softmax folded in), so it
    # is compared with log_softmax in both graphs and gradients taken w.r.t. the logits.
    (x, lab, il, ll), _ = case("ctc_loss", seed=6)
    xt = torch.tensor(x).transpose(0, 1).contiguous()       # (T, N, C)
    a, b = xt.clone().requires_grad_(), xt.clone().requires_grad_()
    lab_t, il_t, ll_t = map(torch.tensor, (lab, il, ll))
    v1 = flt.ctc_loss(torch.log_softmax(a, -1), lab_t, il_t, ll_t, layout="TNC",
                      log_probs=True, reduction=reduction)
    v2 = F.ctc_loss(torch.log_softmax(b, -1), lab_t, il_t, ll_t, reduction=reduction)
    torch.testing.assert_close(v1, v2, rtol=1e-10, atol=1e-10)
    w = torch.linspace(0.5, 1.5, v1.numel(), dtype=v1.dtype).reshape(v1.shape)
    (v1 * w).sum().backward()
    (v2 * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)


# --- modes, memory, dtypes ----------------------------------------------------------------

def test_module_forms():
    rng = np.random.default_rng(7)
    x, y = _t(rng.normal(size=8), True), _t(rng.normal(size=8))
    m1, m2 = flt.Huber(delta=0.5, reduction="sum"), flt.Loss("huber", delta=0.5, reduction="sum")
    assert isinstance(m1, torch.nn.Module) and "delta=0.5" in repr(m1)
    v = m1(x, y)
    assert v.item() == m2(x, y).item() == fastloss.huber(x.detach().numpy(), y.numpy(),
                                                          delta=0.5, reduction="sum")
    v.backward()
    np.testing.assert_array_equal(x.grad.numpy(), fastloss.grad(fastloss.huber)(
        x.detach().numpy(), y.numpy(), delta=0.5, reduction="sum"))
    # a tensor keyword becomes a buffer (follows .to()); forward may override keywords
    m = flt.SoftmaxCrossEntropyWithIntegerLabels(
        class_weight=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
    assert "class_weight" in dict(m.named_buffers())
    lg, k = _t(rng.normal(size=(4, 3)), True), torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(m(lg, k), F.cross_entropy(lg, k, weight=m.class_weight))
    assert m(lg, k, reduction="none").shape == (4,)
    with pytest.raises(TypeError, match="delta"):
        flt.Loss("squared_error", delta=1.0)
    with pytest.raises(ValueError, match="unknown loss"):
        flt.Loss("nope")


def test_no_grad_and_no_requires_grad_compute_value_only(monkeypatch):
    rng = np.random.default_rng(8)
    x = _t(rng.normal(size=6), True)
    y = _t(rng.normal(size=6))
    calls = []
    info = LOSSES["huber"]
    orig = info.runner

    def spy(*a, **kw):
        calls.append(kw.get("want_grad", False))
        return orig(*a, **kw)

    ref = fastloss.huber(x.detach().numpy(), y.numpy())
    monkeypatch.setattr(info, "runner", spy)
    with torch.no_grad():
        v = flt.huber(x, y)
    assert not v.requires_grad and calls == [False] and v.item() == ref
    v2 = flt.huber(x.detach(), y)
    assert not v2.requires_grad and calls == [False, False]
    assert v.item() == v2.item()
    flt.huber(x, y).backward()
    assert calls == [False, False, True]          # one fused call: value and gradient
    assert x.grad is not None


def test_non_contiguous_and_zero_copy_in_and_out():
    rng = np.random.default_rng(9)
    base = _t(rng.normal(size=(6, 8)))
    x = base[:, ::2].T.requires_grad_()            # non-contiguous leaf view (4, 6)
    x = x.detach().requires_grad_()
    assert not x.is_contiguous()
    y = _t(rng.normal(size=(4, 6)))
    v = flt.squared_error(x, y, reduction="none")
    torch.testing.assert_close(v, (x.detach() - y) ** 2, rtol=0, atol=0)
    v.sum().backward()
    torch.testing.assert_close(x.grad, 2 * (x.detach() - y), rtol=0, atol=0)
    # a "none" value comes back through torch.from_numpy: no copy of fastloss's result
    assert v.shape == (4, 6) and v.dtype == torch.float64
    # row-wise over a non-last axis: the per-row incoming gradient broadcasts on that axis
    lg = _t(rng.normal(size=(3, 5)), True)
    k = torch.tensor([0, 2, 1, 1, 2])
    v = flt.softmax_cross_entropy_with_integer_labels(lg, k, axis=0, reduction="none")
    ref = F.cross_entropy(lg.detach().T, k, reduction="none")
    torch.testing.assert_close(v, ref)
    assert torch.autograd.gradcheck(
        lambda z: flt.softmax_cross_entropy_with_integer_labels(z, k, axis=0, reduction="none"),
        (lg,))


def test_float32_in_float32_out_and_half_refused():
    x = torch.randn(10, requires_grad=True)
    y = torch.randn(10)
    v = flt.huber(x, y)
    assert v.dtype == torch.float32
    v.backward()
    assert x.grad.dtype == torch.float32
    for dt in (torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match=r"huber: pred has dtype torch\.(b?float16)"):
            flt.huber(x.detach().to(dt).requires_grad_(), y)
        with pytest.raises(TypeError, match="float16"):
            flt.huber(x.detach(), y.to(dt))


def test_non_differentiable_input_requiring_grad_is_refused():
    x, y = torch.randn(5, dtype=torch.float64, requires_grad=True), torch.randn(5)
    with pytest.raises(TypeError, match="no gradient with respect to 'target'"):
        flt.huber(x, y.double().requires_grad_())
    with pytest.raises(TypeError, match="sample_weight"):
        flt.huber(x, y, sample_weight=torch.ones(5, requires_grad=True))
    with pytest.raises(TypeError, match="grad_out"):
        flt.huber(x, y, grad_out=np.empty(5))


def test_sample_weight_tensor_and_scaled_backward():
    rng = np.random.default_rng(10)
    x, y, w = rng.normal(size=7), rng.normal(size=7), rng.random(7)
    xt = _t(x, True)
    v = flt.log_cosh(xt, _t(y), sample_weight=_t(w))
    (3.0 * v).backward()
    g = fastloss.grad(fastloss.log_cosh)(x, y, sample_weight=w)
    np.testing.assert_allclose(xt.grad.numpy(), 3.0 * g, rtol=1e-15)
    # a graph reused with retain_graph: the saved gradient is not modified by backward
    xt.grad = None
    v = flt.log_cosh(xt, _t(y))
    v.backward(retain_graph=True)
    v.backward()
    np.testing.assert_allclose(xt.grad.numpy(), 2 * fastloss.grad(fastloss.log_cosh)(x, y))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_stay_on_device():
    x = torch.randn(1000, device="cuda", dtype=torch.float64, requires_grad=True)
    y = torch.randn(1000, device="cuda", dtype=torch.float64)
    v = flt.huber(x, y, delta=0.5)
    assert v.device == x.device and v.dtype == x.dtype
    v.backward()
    ref = F.huber_loss(x.detach(), y, delta=0.5)
    torch.testing.assert_close(v.detach(), ref)
    xr = x.detach().clone().requires_grad_()
    F.huber_loss(xr, y, delta=0.5).backward()
    torch.testing.assert_close(x.grad, xr.grad)
    lg = torch.randn(64, 10, device="cuda", requires_grad=True)
    k = torch.randint(0, 10, (64,), device="cuda")
    v = flt.softmax_cross_entropy_with_integer_labels(lg, k, reduction="none")
    assert v.device == lg.device and v.shape == (64,)
    v.sum().backward()
    lr = lg.detach().clone().requires_grad_()
    F.cross_entropy(lr, k, reduction="sum").backward()
    torch.testing.assert_close(lg.grad, lr.grad, rtol=1e-5, atol=1e-6)


# --- section 4 of the bridge's contract: every module, zero copy, grad modes ---------------

@pytest.mark.parametrize("name", list(LOSSES))
def test_every_module_equals_its_function(name):
    arrays, params = case(name, seed=2)
    m = getattr(flt, flt._camel(name))(reduction="sum", **params)
    assert isinstance(m, torch.nn.Module) and name in repr(m)
    ts1, ts2 = _tensors(name, arrays), _tensors(name, arrays)
    v1 = m(*ts1)
    v2 = getattr(flt, name)(*ts2, reduction="sum", **params)
    assert v1.dtype == v2.dtype == torch.float64
    assert v1.item() == v2.item()
    v1.backward()
    v2.backward()
    for a, b in zip(ts1, ts2):
        if a.requires_grad:
            torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_zero_copy_in_and_out(monkeypatch):
    """Inputs reach the kernels as views of the tensors' memory; the gradient is written
    by the kernel into the tensor that backward hands to autograd; per-element values come
    back as views of fastloss's result."""
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    y = torch.randn(50, dtype=torch.float64)
    seen = {}
    info = LOSSES["log_cosh"]
    orig = info.runner

    def spy(inputs, params, **kw):
        seen["inputs"] = dict(inputs)
        seen["grad_out"] = kw.get("grad_out")
        res = orig(inputs, params, **kw)
        seen["value"] = res[0]
        return res

    monkeypatch.setattr(info, "runner", spy)
    v = flt.log_cosh(x, y, reduction="none")
    assert seen["inputs"]["pred"].ctypes.data == x.data_ptr()
    assert seen["inputs"]["target"].ctypes.data == y.data_ptr()
    assert v.data_ptr() == seen["value"].ctypes.data           # torch.from_numpy: no copy
    gbuf = seen["grad_out"]
    ref = fastloss.grad(fastloss.log_cosh)(x.detach().numpy(), y.numpy(), reduction="none")
    np.testing.assert_array_equal(gbuf, ref)                 # written by the fused kernel
    v.backward(torch.ones(50, dtype=torch.float64))
    np.testing.assert_array_equal(x.grad.numpy(), ref)
    # a strided (non-contiguous) input is read in place as well
    base = torch.randn(100, dtype=torch.float64)
    xs = base[::2].requires_grad_()
    flt.log_cosh(xs, y)
    assert seen["inputs"]["pred"].ctypes.data == base.data_ptr()
    assert seen["inputs"]["pred"].strides == (16,)


def test_inference_mode_and_requires_grad_labels():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0, 2, 1, 1, 0])
    with torch.inference_mode():
        v = flt.softmax_cross_entropy_with_integer_labels(x, k)
    assert not v.requires_grad
    torch.testing.assert_close(v, F.cross_entropy(x.detach(), k))
    # dense labels are differentiable for softmax_cross_entropy: both get gradients
    p = torch.softmax(torch.randn(5, 3, dtype=torch.float64), -1).requires_grad_()
    flt.softmax_cross_entropy(x, p, reduction="sum").backward()
    torch.testing.assert_close(p.grad, -torch.log_softmax(x.detach(), -1))
    torch.testing.assert_close(x.grad, torch.softmax(x.detach(), -1) - p.detach())
