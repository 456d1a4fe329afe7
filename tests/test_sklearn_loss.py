"""fastloss.sklearn: loss objects in scikit-learn's ``sklearn._loss`` shape.

Values are checked against scikit-learn's own loss objects where the two define the same
function, and against float64 NumPy formulas / finite differences elsewhere.  Sizes are tiny;
float64 first (the kernels the rest of the suite compiles), one float32 case.
"""
import subprocess
import sys

import numpy as np
import pytest

import fastloss
import fastloss.sklearn as fs

sl = pytest.importorskip("sklearn._loss.loss")

N, K = 23, 4


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return dict(raw=rng.normal(size=N) * 2, y=rng.normal(size=N), w=rng.uniform(0.1, 2, N),
                yb=(rng.uniform(size=N) > 0.4).astype(np.float64),
                yc=rng.poisson(1.5, N).astype(np.float64),
                R=rng.normal(size=(N, K)) * 2, lab=rng.integers(0, K, N).astype(np.float64))


def _close(a, b, rtol=1e-12, atol=1e-13):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol,
                               atol=atol)


# (our object, scikit-learn's object, factor ours/theirs, same Hessian, y key)
PAIRS = [
    (lambda: fs.SquaredError(), lambda: sl.HalfSquaredError(), 2.0, True, "y"),
    (lambda: fs.AbsoluteError(), lambda: sl.AbsoluteError(), 1.0, False, "y"),
    (lambda: fs.Quantile(quantile=0.3), lambda: sl.PinballLoss(quantile=0.3), 1.0, False, "y"),
    (lambda: fs.PoissonNLL(), lambda: sl.HalfPoissonLoss(), 1.0, True, "yc"),
    (lambda: fs.SigmoidBinaryCrossEntropy(), lambda: sl.HalfBinomialLoss(), 1.0, True, "yb"),
    (lambda: fs.Logistic(), lambda: sl.HalfBinomialLoss(), 1.0, True, "yb"),
]
IDS = ["squared_error", "absolute_error", "pinball", "poisson", "binomial", "logistic"]


# Each method is one compiled kernel signature per loss (weighted and unweighted calls share
# it); every method is checked on the first two losses, loss_gradient and gradient_hessian
# (the calls estimators make) on all of them.
@pytest.mark.parametrize("ours,theirs,fac,same_h,ykey", PAIRS, ids=IDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_against_sklearn_objects(data, ours, theirs, fac, same_h, ykey, weighted):
    o, s = ours(), theirs()
    y, raw = data[ykey], data["raw"]
    w = data["w"] if weighted else None
    if type(o) in (fs.SquaredError, fs.SigmoidBinaryCrossEntropy):
        _close(o.loss(y, raw, w), fac * s.loss(y, raw, w))
        _close(o.gradient(y, raw, w), fac * s.gradient(y, raw, w))
        _close(o(y, raw, w), fac * s(y, raw, w))
    lv, g = o.loss_gradient(y, raw, w)
    _close(lv, fac * s.loss(y, raw, w))
    _close(g, fac * s.gradient(y, raw, w))
    g, h = o.gradient_hessian(y, raw, w)
    _close(g, fac * s.gradient(y, raw, w))
    if same_h:
        _close(h, fac * s.gradient_hessian(y, raw, w)[1])
    else:                           # pinball / absolute error: the exact Hessian is 0
        assert np.all(h == 0)
    _close(o.fit_intercept_only(y, w), s.fit_intercept_only(y, w), rtol=1e-10)
    assert o.is_multiclass is False and o.approx_hessian is False
    assert o.in_y_true_range(y) and s.in_y_true_range(y)
    if hasattr(s, "predict_proba"):
        _close(o.predict_proba(raw), s.predict_proba(raw))
    else:
        _close(o.predict(raw), s.link.inverse(raw))


@pytest.mark.parametrize("weighted", [False, True])
def test_multinomial_against_sklearn(data, weighted):
    o = fs.SoftmaxCrossEntropyWithIntegerLabels(n_classes=K)
    s = sl.HalfMultinomialLoss(n_classes=K)
    lab, R = data["lab"], data["R"]
    w = data["w"] if weighted else None
    lv, g = o.loss_gradient(lab, R, w)
    _close(lv, s.loss(lab, R, w))
    _close(g, s.gradient(lab, R, w))
    g, h = o.gradient_hessian(lab, R, w)
    g2, h2 = s.gradient_hessian(lab, R, w)
    _close(g, g2)
    _close(h, h2)                   # scikit-learn's diagonal: w p_k (1 - p_k)
    _close(o.fit_intercept_only(lab, w), s.fit_intercept_only(lab, w), rtol=1e-10)
    _close(o.predict_proba(R), s.predict_proba(R))
    assert o.is_multiclass and o.n_classes == K
    # scikit-learn's F-ordered buffers are filled in place
    go, ho = s.init_gradient_and_hessian(N, order="F")
    r = o.gradient_hessian(lab, R, w, gradient_out=go, hessian_out=ho)
    assert r[0] is go and r[1] is ho
    _close(go, g2)
    _close(ho, h2)


def _softmax(r):
    e = np.exp(r - r.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_multinomial_hessian_smoothing_class_weight_finite_differences(data):
    """The diagonal Hessian with label smoothing and class weights equals central finite
    differences of the kernel's gradient and the closed form A·p(1 - p).  (Gradients are
    taken from gradient_hessian: one compiled kernel signature per test.)"""
    cw = np.array([0.5, 2.0, 1.0, 3.0])
    s = 0.2
    o = fs.SoftmaxCrossEntropyWithIntegerLabels(n_classes=K, label_smoothing=s,
                                                class_weight=cw)
    lab, R, w = data["lab"], data["R"], data["w"]
    g, h = o.gradient_hessian(lab, R, w)
    li = lab.astype(int)
    a = w * ((1 - s) * cw[li] + s / K * cw.sum())
    p = _softmax(R)
    _close(h, a[:, None] * p * (1 - p), rtol=1e-12)
    eps = 1e-5
    for k in range(K):
        dp, dm = R.copy(), R.copy()
        dp[:, k] += eps
        dm[:, k] -= eps
        fd = (o.gradient_hessian(lab, dp, w)[0][:, k]
              - o.gradient_hessian(lab, dm, w)[0][:, k]) / (2 * eps)
        _close(h[:, k], fd, rtol=1e-6, atol=1e-9)
    # the NumPy stand-in (used where the row-wise kernel has no Hessian) agrees
    _close(fs.softmax_diag_hessian(R, li, w, s, cw), h, rtol=1e-12)
    # the gradient: a·p - (target weights)
    t = (1 - s) * np.eye(K)[li] * cw + s / K * cw
    _close(g, w[:, None] * (((1 - s) * cw[li] + s / K * cw.sum())[:, None] * p - t),
           rtol=1e-11)
    # the intercept-only model zeroes the summed gradient
    c = o.fit_intercept_only(lab, w)
    _close(o.gradient_hessian(lab, np.tile(c, (N, 1)), w)[0].sum(axis=0), np.zeros(K),
           atol=1e-12)


def test_dense_softmax_hessian(data):
    rng = np.random.default_rng(5)
    t = rng.dirichlet(np.ones(K), N) * rng.uniform(0.5, 1.5, (N, 1))   # rows sum != 1
    o = fs.SoftmaxCrossEntropy(n_classes=K, label_smoothing=0.1)
    g, h = o.gradient_hessian(t, data["R"], data["w"])
    a = data["w"] * (0.9 * t.sum(axis=1) + 0.1)
    p = _softmax(data["R"])
    _close(h, a[:, None] * p * (1 - p), rtol=1e-12)
    _close(fs.softmax_diag_hessian(data["R"], t, data["w"], 0.1, dense=True), h, rtol=1e-12)
    ts = 0.9 * t + 0.1 / K                      # y' = y (1 - s) + s / K
    _close(g, data["w"][:, None] * (ts.sum(axis=1, keepdims=True) * p - ts), rtol=1e-11)
    c = o.fit_intercept_only(t, data["w"])       # zeroes the summed gradient
    _close(o.gradient_hessian(t, np.tile(c, (N, 1)), data["w"])[0].sum(axis=0), np.zeros(K),
           atol=1e-12)


def test_float32(data):
    o = fs.SigmoidBinaryCrossEntropy()
    s = sl.HalfBinomialLoss()
    raw = data["raw"].astype(np.float32)
    y = data["yb"].astype(np.float32)
    lv, g = o.loss_gradient(y, raw)
    assert lv.dtype == np.float32 and g.dtype == np.float32
    _close(lv, s.loss(data["yb"], raw.astype(np.float64)), rtol=2e-6, atol=1e-6)
    _close(g, s.gradient(data["yb"], raw.astype(np.float64)), rtol=2e-6, atol=1e-6)


def _huber(d, delta):
    a = np.abs(d)
    return np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))


FORMULAS = [   # (object, value(raw, y) in float64, y key)
    (lambda: fs.Huber(delta=0.7), lambda r, y: _huber(r - y, 0.7), "y"),
    (lambda: fs.SquaredHinge(), lambda r, y: np.maximum(0, 1 - (2 * y - 1) * r) ** 2, "yb"),
    (lambda: fs.Hinge(margin=0.5), lambda r, y: np.maximum(0, 0.5 - (2 * y - 1) * r), "yb"),
]


@pytest.mark.parametrize("ours,ref,ykey", FORMULAS, ids=["huber", "squared_hinge", "hinge"])
def test_against_formulas(data, ours, ref, ykey):
    o = ours()
    y, raw, w = data[ykey], data["raw"], data["w"]
    lv, g = o.loss_gradient(y, raw, w)
    _close(lv, w * ref(raw, y))
    eps = 1e-6       # away from the kinks, the gradient is the derivative of the formula
    fd = (ref(raw + eps, y) - ref(raw - eps, y)) / (2 * eps)
    smooth = np.abs(fd - (ref(raw + 2 * eps, y) - ref(raw - 2 * eps, y)) / (4 * eps)) < 1e-6
    _close(g[smooth], (w * fd)[smooth], rtol=1e-6, atol=1e-8)
    # fit_intercept_only minimizes the weighted sum: no better constant nearby
    c = float(o.fit_intercept_only(y, w))
    f = lambda t: float(np.sum(w * ref(np.full(N, t), y)))  # noqa: E731
    for dc in (1e-3, 1e-2, 0.1):
        assert f(c) <= f(c + dc) + 1e-12 and f(c) <= f(c - dc) + 1e-12


def test_margin_labels_accept_minus_one(data):
    o = fs.Hinge()
    yb = data["yb"]
    _close(o.loss_gradient(yb, data["raw"])[1], o.loss_gradient(2 * yb - 1, data["raw"])[1])
    with pytest.raises(ValueError, match=r"Hinge\.loss: y_true"):
        o.loss(yb + 2, data["raw"])


def test_validation_names_method_and_argument(data):
    o = fs.SquaredError()
    with pytest.raises(ValueError, match=r"SquaredError\.gradient: raw_prediction"):
        o.gradient(data["y"], data["R"])
    with pytest.raises(ValueError, match=r"SquaredError\.loss: y_true"):
        o.loss(data["y"][:-1], data["raw"])
    with pytest.raises(ValueError, match=r"SquaredError\.loss: sample_weight"):
        o.loss(data["y"], data["raw"], np.ones(3))
    with pytest.raises(TypeError, match=r"raw_prediction must be a float32 or float64"):
        o.loss(data["y"], data["raw"].astype(np.complex128))
    with pytest.raises(ValueError, match=r"n_classes"):
        fs.SoftmaxCrossEntropyWithIntegerLabels(n_classes=3).loss(data["lab"], data["R"])
    with pytest.raises(TypeError, match=r"unexpected parameter"):
        fs.Huber(beta=1.0)
    with pytest.raises(ValueError, match=r"loss_object: name"):
        fs.loss_object("ctc_loss")


def test_nan_propagates(data):
    raw = data["raw"].copy()
    raw[3] = np.nan
    lv, g = fs.SquaredError().loss_gradient(data["y"], raw)
    assert np.isnan(lv[3]) and np.isnan(g[3]) and np.isfinite(np.delete(lv, 3)).all()


def test_links_and_domains(data):
    p = np.array([0.1, 0.5, 0.9])
    _close(fs.LogitLink.inverse(fs.LogitLink.link(p)), p)
    _close(fs.LogLink.inverse(fs.LogLink.link(p)), p)
    q = _softmax(data["R"])
    _close(fs.SoftmaxLink.inverse(fs.SoftmaxLink.link(q)), q)
    assert fs.PoissonNLL().in_y_true_range([0.0, 3.0]) and \
        not fs.PoissonNLL().in_y_true_range([-1.0])
    o = fs.SoftmaxCrossEntropyWithIntegerLabels(n_classes=K)
    assert o.in_y_true_range([0, 3]) and not o.in_y_true_range([0.5]) \
        and not o.in_y_true_range([K])
    assert fs.SquaredError().constant_hessian and \
        not fs.SquaredError(sample_weight=np.ones(3)).constant_hessian
    g, h = fs.SquaredError().init_gradient_and_hessian(5)
    assert g.shape == (5,) and h.shape == (1,) and h[0] == 2.0
    assert set(fs.LOSS_OBJECTS) <= set(fastloss.LOSSES)


def test_import_does_not_import_sklearn():
    code = ("import sys, fastloss, fastloss.sklearn as fs; "
            "assert not any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
