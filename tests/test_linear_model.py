"""fastloss.linear_model: scikit-learn's estimator checks, and coefficients equal to
scikit-learn's own estimators on the same data (tight tolerances, tiny data, float64)."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse as sp  # noqa: E402
from sklearn import linear_model as skl  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastloss.linear_model import LinearClassifier, LinearRegressor  # noqa: E402

# Tight tolerances: the sample-weight checks compare a weighted fit with a fit on repeated
# rows at rtol 1e-7, which needs both fits converged well below that.
CHECKED = [LinearRegressor(tol=1e-10, max_iter=1000), LinearClassifier(tol=1e-10, max_iter=1000)]


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    # check_array_api_input skips itself unless SCIPY_ARRAY_API=1 was set before SciPy was
    # imported (not the case inside this test session); test_array_api_check runs it in a
    # process that sets it.
    check(estimator)


def test_array_api_check():
    code = (
        "from sklearn.utils.estimator_checks import check_array_api_input as c\n"
        "from fastloss.linear_model import LinearRegressor as R, LinearClassifier as C\n"
        "for e in (R(tol=1e-10, max_iter=1000), C(tol=1e-10, max_iter=1000)):\n"
        "    c(type(e).__name__, e, array_namespace='numpy', expect_only_array_outputs=False)\n")
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def reg():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    w = np.array([1.5, -2.0, 0.0, 0.7, 3.0])
    y = X @ w + 0.5 + rng.standard_t(3, size=60)
    return X, y


@pytest.fixture(scope="module")
def clf():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    W = rng.normal(size=(3, 4))
    z = X @ W.T + rng.gumbel(size=(80, 3))
    return X, np.argmax(z, axis=1), (z[:, 0] > z[:, 1]).astype(int)


TIGHT = dict(tol=1e-12, max_iter=5000)


def test_logistic_regression_binary(clf):
    X, _, y = clf
    n, C = len(y), 0.5
    sk = skl.LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y)
    fl = LinearClassifier(alpha=1 / (C * n), **TIGHT).fit(X, y)
    assert fl.coef_.shape == sk.coef_.shape and fl.intercept_.shape == sk.intercept_.shape
    assert _rel(fl.coef_, sk.coef_) < 1e-5 and _rel(fl.intercept_, sk.intercept_) < 1e-5
    np.testing.assert_allclose(fl.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    assert (fl.predict(X) == sk.predict(X)).all()


def test_logistic_regression_multinomial(clf):
    X, y, _ = clf
    n, C = len(y), 2.0
    sk = skl.LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y)
    fl = LinearClassifier(alpha=1 / (C * n), **TIGHT).fit(X, y)
    assert fl.coef_.shape == (3, 4)
    assert _rel(fl.coef_, sk.coef_) < 1e-5
    # softmax is invariant to a common intercept shift: compare the centred intercepts
    assert _rel(fl.intercept_, sk.intercept_ - sk.intercept_.mean()) < 1e-5
    np.testing.assert_allclose(fl.predict_proba(X), sk.predict_proba(X), atol=1e-6)


def test_logistic_regression_class_weight_and_sample_weight(clf):
    X, _, y = clf
    sw = np.random.default_rng(3).uniform(0.2, 2.0, len(y))
    C = 1.0
    sk = skl.LogisticRegression(C=C, class_weight="balanced", tol=1e-12, max_iter=10000)
    sk.fit(X, y, sample_weight=sw)
    # scikit-learn's objective: C Σ s ℓ + ½‖w‖², s = sample weight × class weight
    from sklearn.utils.class_weight import compute_class_weight
    s = sw * compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=sw)[y]
    fl = LinearClassifier(alpha=1 / (C * s.sum()), class_weight="balanced", **TIGHT)
    fl.fit(X, y, sample_weight=sw)
    assert _rel(fl.coef_, sk.coef_) < 1e-5


def test_ridge(reg):
    X, y = reg
    a = 3.0
    sk = skl.Ridge(alpha=a, solver="cholesky").fit(X, y)
    # Ridge: ‖y - Xw‖² + a‖w‖²; ours: mean (y - Xw)² + ½ alpha ‖w‖²  ->  alpha = 2a / n
    fl = LinearRegressor(alpha=2 * a / len(y), **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5 and abs(fl.intercept_ - sk.intercept_) < 1e-5
    np.testing.assert_allclose(fl.predict(X), sk.predict(X), rtol=1e-6, atol=1e-6)


def test_elastic_net_and_exact_zeros(reg):
    X, y = reg
    sk = skl.ElasticNet(alpha=0.2, l1_ratio=0.7, tol=1e-14, max_iter=100000).fit(X, y)
    # ElasticNet: (1/2n)‖y - Xw‖² + a·R(w); ours: (1/n)‖y - Xw‖² + alpha·R(w) -> alpha = 2a
    fl = LinearRegressor(alpha=0.4, l1_ratio=0.7, **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5
    las = LinearRegressor(alpha=6.0, l1_ratio=1.0, **TIGHT).fit(X, y)
    sk = skl.Lasso(alpha=3.0, tol=1e-14, max_iter=100000).fit(X, y)
    assert (las.coef_ == 0).sum() >= 1 and ((las.coef_ == 0) == (sk.coef_ == 0)).all()
    assert _rel(las.coef_, sk.coef_) < 1e-5


def test_huber_fixed_scale(reg):
    """HuberRegressor minimizes over (w, σ) jointly; at its σ, its w minimizes
    (2/σ) Σ huber_{εσ}(r) + a‖w‖², i.e. ours with delta = εσ and alpha = aσ/n."""
    X, y = reg
    eps, a = 1.35, 0.5
    sk = skl.HuberRegressor(epsilon=eps, alpha=a, tol=1e-12, max_iter=10000).fit(X, y)
    sig = sk.scale_
    fl = LinearRegressor("huber", loss_params={"delta": eps * sig}, alpha=a * sig / len(y),
                         **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5 and abs(fl.intercept_ - sk.intercept_) < 1e-5


def test_poisson_regressor():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(70, 4)) * 0.5
    y = rng.poisson(np.exp(X @ np.array([0.5, -0.3, 0.2, 0.0]) + 0.3)).astype(float)
    sk = skl.PoissonRegressor(alpha=0.05, solver="newton-cholesky", tol=1e-12,
                              max_iter=1000).fit(X, y)
    fl = LinearRegressor("poisson", alpha=0.05, **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5 and abs(fl.intercept_ - sk.intercept_) < 1e-5
    np.testing.assert_allclose(fl.predict(X), sk.predict(X), rtol=1e-5)
    with pytest.raises(ValueError, match="valid range"):
        LinearRegressor("poisson").fit(X, -y - 1)


def test_quantile_regressor(reg):
    """Pinball is fitted as the limit of Huber-smoothed problems (see fastloss.linear_model);
    QuantileRegressor solves the linear program exactly (highs)."""
    X, y = reg
    q, a = 0.7, 0.01
    sk = skl.QuantileRegressor(quantile=q, alpha=a, solver="highs").fit(X, y)
    # QuantileRegressor: mean pinball + a‖w‖₁ -- ours with l1_ratio = 1
    fl = LinearRegressor("quantile", loss_params={"quantile": q}, alpha=a, l1_ratio=1.0,
                         **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5 and abs(fl.intercept_ - sk.intercept_) < 1e-5
    d = y - X @ sk.coef_ - sk.intercept_
    f_sk = np.mean(np.maximum(q * d, (q - 1) * d)) + a * np.abs(sk.coef_).sum()
    assert abs(fl.objective_ - f_sk) <= 1e-7 * f_sk


def test_linear_svc_hinge(clf):
    X, _, y = clf
    C = 0.3
    # liblinear's dual coordinate descent shuffles: random_state fixes its path (at tol=1e-12
    # it stops at max_iter, and unseeded some runs end 1e-2 away)
    sk = LinearSVC(C=C, loss="hinge", dual=True, fit_intercept=False, tol=1e-10,
                   max_iter=1000000, random_state=0).fit(X, y)
    fl = LinearClassifier("hinge", alpha=1 / (C * len(y)), fit_intercept=False,
                          **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5


def test_linear_svc_squared_hinge(clf):
    X, _, y = clf
    C = 0.3
    sk = LinearSVC(C=C, loss="squared_hinge", dual=False, fit_intercept=False, tol=1e-12,
                   max_iter=100000, random_state=0).fit(X, y)
    # LinearSVC: ½‖w‖² + C Σ max(0, 1 - t x·w)²  ->  alpha = 1 / (C n)
    fl = LinearClassifier("squared_hinge", alpha=1 / (C * len(y)), fit_intercept=False,
                          **TIGHT).fit(X, y)
    assert _rel(fl.coef_, sk.coef_) < 1e-5
    assert not hasattr(fl, "predict_proba")


def test_float32_sparse_and_one_vs_rest(clf):
    X, y, _ = clf
    ref = LinearClassifier("squared_hinge", alpha=0.01, **TIGHT).fit(X, y)
    assert ref.coef_.shape == (3, 4)      # one-vs-rest: three binary problems
    # each row equals the binary problem of that class against the rest
    one = LinearClassifier("squared_hinge", alpha=0.01, **TIGHT).fit(X, y == 1)
    assert _rel(ref.coef_[1], one.coef_[0]) < 1e-5
    spx = LinearClassifier("squared_hinge", alpha=0.01, **TIGHT).fit(sp.csr_matrix(X), y)
    assert _rel(spx.coef_, ref.coef_) < 1e-6
    assert (spx.predict(sp.csr_matrix(X)) == ref.predict(X)).all()
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():       # float32 gradients stop short of gtol = 1e-12
        warnings.simplefilter("ignore", ConvergenceWarning)
        f32 = LinearClassifier("squared_hinge", alpha=0.01, tol=1e-6, max_iter=5000).fit(X32, y)
    assert f32.coef_.dtype == np.float32 and f32.decision_function(X32).dtype == np.float32
    assert _rel(f32.coef_, ref.coef_) < 1e-3


def test_convergence_warning_warm_start_and_zero_weights(reg):
    X, y = reg
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        m = LinearRegressor("huber", max_iter=1, tol=1e-12).fit(X, y)
    assert m.n_iter_ == 1
    m = LinearRegressor("huber", **TIGHT).fit(X, y)
    w = LinearRegressor("huber", warm_start=True, **TIGHT)
    w.coef_, w.intercept_ = m.coef_.copy(), m.intercept_
    w.n_features_in_ = X.shape[1]
    w.fit(X, y)
    assert w.n_iter_ <= 3 and _rel(w.coef_, m.coef_) < 1e-8
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        LinearRegressor().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="LinearRegressor: loss must be one of"):
        LinearRegressor("nope").fit(X, y)
    with pytest.raises(ValueError, match="LinearClassifier: l1_ratio"):
        LinearClassifier(l1_ratio=2.0).fit(X, y > 0)
