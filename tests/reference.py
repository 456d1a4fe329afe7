"""Independent float64 NumPy/SciPy formulas and input generators for the elementwise losses.

Written from the papers and peers' documentation, not from fastloss's math module.
"""
import numpy as np
from scipy.special import expit, log_expit, xlogy


def _bce_logits(x, y):
    return -(y * log_expit(x) + (1 - y) * log_expit(-x))


def ref_loss(name, x, y, **p):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    d = x - y
    if name == "absolute_error":
        return np.abs(d)
    if name == "squared_error":
        return d ** 2
    if name == "huber":
        de = p.get("delta", 1.0)
        return np.where(np.abs(d) <= de, 0.5 * d ** 2, de * (np.abs(d) - 0.5 * de))
    if name == "smooth_l1":
        b = p.get("beta", 1.0)
        return np.where(np.abs(d) < b, 0.5 * d ** 2 / b, np.abs(d) - 0.5 * b)
    if name == "log_cosh":
        return np.logaddexp(d, -d) - np.log(2.0)
    if name == "pseudo_huber":
        de = p.get("delta", 1.0)
        # δ²(√(1 + (d/δ)²) − 1) with √(1 + t) − 1 = expm1(½ log1p(t)): no cancellation
        return de ** 2 * np.expm1(0.5 * np.log1p((d / de) ** 2))
    if name == "quantile":
        q = p.get("quantile", 0.5)
        r = y - x
        return np.maximum(q * r, (q - 1) * r)
    if name == "sigmoid_binary_cross_entropy":
        pw, s = p.get("pos_weight", 1.0), p.get("label_smoothing", 0.0)
        ys = y * (1 - s) + 0.5 * s
        return -(pw * ys * log_expit(x) + (1 - ys) * log_expit(-x))
    if name == "sigmoid_focal":
        a, g = p.get("alpha", 0.25), p.get("gamma", 2.0)
        prob = expit(x)
        ce = _bce_logits(x, y)
        pt = prob * y + (1 - prob) * (1 - y)
        loss = ce * (1 - pt) ** g
        if a >= 0:
            loss = (a * y + (1 - a) * (1 - y)) * loss
        return loss
    if name == "binary_cross_entropy":
        eps, clip = p.get("eps", 1e-7), p.get("clip", True)
        if clip:
            pc = np.clip(x, eps, 1 - eps)
            return -(xlogy(y, pc) + xlogy(1 - y, 1 - pc))
        return -(y * np.log(x + eps) + (1 - y) * np.log(1 - x + eps))
    if name == "hinge":
        return np.maximum(0, p.get("margin", 1.0) - y * x)
    if name == "squared_hinge":
        return np.maximum(0, p.get("margin", 1.0) - y * x) ** 2
    if name == "logistic":
        return np.logaddexp(0, -y * x)
    if name == "poisson_nll":
        li, full, eps = p.get("log_input", True), p.get("full", False), p.get("eps", 1e-8)
        v = np.exp(x) - y * x if li else x - y * np.log(x + eps)
        if full:
            with np.errstate(all="ignore"):
                st = xlogy(y, y) - y + 0.5 * np.log(2 * np.pi * y)
            v = v + np.where(y > 1, st, 0.0)
        return v
    if name == "tweedie_deviance":
        # scikit-learn's HalfTweedieLoss: loss + constant_to_optimal_zero (log link)
        pw = p.get("power", 1.5)
        return (np.exp((2 - pw) * x) / (2 - pw) - y * np.exp((1 - pw) * x) / (1 - pw)
                + y ** (2 - pw) / ((1 - pw) * (2 - pw)))
    if name == "gamma_deviance":
        # scikit-learn's HalfGammaLoss: x + y e^-x, plus -log y - 1
        return x + y * np.exp(-x) - np.log(y) - 1
    if name == "mean_absolute_percentage_error":
        return 100 * np.abs((y - x) / np.maximum(np.abs(y), p.get("eps", 1e-7)))
    if name == "mean_squared_log_error":
        eps = p.get("eps", 1e-7)
        return (np.log(np.maximum(x, eps) + 1) - np.log(np.maximum(y, eps) + 1)) ** 2
    if name == "hinge_embedding":
        return np.where(y == 1, x, np.maximum(0, p.get("margin", 1.0) - x))
    if name == "poly1_cross_entropy":
        prob = expit(x)
        pt = prob * y + (1 - prob) * (1 - y)
        return _bce_logits(x, y) + p.get("epsilon", 2.0) * (1 - pt)
    if name == "generalized_kl":
        return xlogy(y, y) - xlogy(y, x) - y + x
    if name == "convex_kl":
        return xlogy(y, y) - y * x + np.exp(x) - y
    raise KeyError(name)


PM1 = ("hinge", "squared_hinge", "logistic", "hinge_embedding")
UNIT_TARGET = ("sigmoid_binary_cross_entropy", "sigmoid_focal", "poly1_cross_entropy")
PARAMS = {  # non-default parameter values exercised by the tests
    "huber": {"delta": 0.7},
    "pseudo_huber": {"delta": 0.8},
    "smooth_l1": {"beta": 0.5},
    "quantile": {"quantile": 0.3},
    "sigmoid_binary_cross_entropy": {"pos_weight": 2.5, "label_smoothing": 0.1},
    "sigmoid_focal": {"alpha": 0.3, "gamma": 1.5},
    "binary_cross_entropy": {"eps": 1e-7},
    "hinge": {"margin": 0.8},
    "squared_hinge": {"margin": 1.2},
    "poisson_nll": {"log_input": True, "full": True},
    "tweedie_deviance": {"power": 1.3},
    "mean_absolute_percentage_error": {"eps": 1e-3},
    "mean_squared_log_error": {"eps": 1e-7},
    "hinge_embedding": {"margin": 0.8},
    "poly1_cross_entropy": {"epsilon": 1.5},
}
# log-link deviances and divergences: inputs kept |log(target/prediction)| >= 0.05 away
# from the minimum (where the float64 reference formulas cancel)
_LOGRATIO = {"tweedie_deviance": "log", "gamma_deviance": "log", "convex_kl": "log",
             "generalized_kl": "rate"}


def make_inputs(name, n, rng, scale=2.0):
    """(pred, target) float64 arrays inside the loss's domain, away from kinks."""
    x = rng.standard_normal(n) * scale
    if name in PM1:
        y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        m = PARAMS.get(name, {}).get("margin", 1.0)
        z = m - (x if name == "hinge_embedding" else y * x)
        x = np.where(np.abs(z) < 1e-2, x + 0.05, x)
    elif name in _LOGRATIO:
        y = rng.gamma(2.0, 1.0, n)
        if name != "gamma_deviance":
            y = np.where(rng.random(n) < 0.1, 0.0, y)
        if name == "generalized_kl":
            x = rng.uniform(0.05, 5.0, n)
            lr = np.log(np.where(y > 0, y, 1.0) / x)
            x = np.where((y > 0) & (np.abs(lr) < 0.05), x * 1.2, x)
        else:
            x = 0.7 * x
            lr = np.log(np.where(y > 0, y, 1.0)) - x
            x = np.where((y > 0) & (np.abs(lr) < 0.05), x + 0.12, x)
    elif name == "mean_squared_log_error":
        x = rng.uniform(-0.5, 5.0, n)
        e = PARAMS[name]["eps"]
        x = np.where(np.abs(x - e) < 1e-2, x + 0.05, x)
        y = np.where(rng.random(n) < 0.1, -1.0, rng.uniform(0.0, 5.0, n))
    elif name in UNIT_TARGET:
        y = np.where(rng.random(n) < 0.3, rng.random(n), (rng.random(n) < 0.5).astype(float))
    elif name == "binary_cross_entropy":
        x = rng.uniform(0.02, 0.98, n)
        y = rng.random(n)
    elif name == "poisson_nll":
        y = rng.poisson(2.0, n).astype(float)
    else:
        y = rng.standard_normal(n)
        d = x - y
        x = np.where(np.abs(d) < 1e-2, x + 0.05, x)
        if name in ("huber", "smooth_l1"):
            t = PARAMS[name].get("delta", PARAMS[name].get("beta"))
            d = x - y
            x = np.where(np.abs(np.abs(d) - t) < 1e-2, x + 0.05, x)
    return x, y
