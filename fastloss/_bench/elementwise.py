"""Benchmark cases of the elementwise losses: value + gradient of the mean over n elements."""
import numpy as np

from . import Case

# quick: 48 MB moved per call, beyond the last-level caches of common CPUs (a smaller n
# reads from cache and shows more than 100 % of the triad), and milliseconds per call
N_FULL, N_QUICK = 20_000_000, 4_000_000
PM1 = ("hinge", "squared_hinge", "logistic", "hinge_embedding")
UNIT = ("sigmoid_binary_cross_entropy", "sigmoid_focal", "poly1_cross_entropy")
NONNEG_TARGET = ("tweedie_deviance", "gamma_deviance", "convex_kl", "generalized_kl",
                 "mean_squared_log_error")


def _inputs(name, n, dtype, seed=0):
    if name in THREE:    # (input, target, var) / (input1, input2, target)
        return _three_inputs(name, n, dtype, seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n, dtype=np.float32).astype(dtype)
    if name in PM1:
        y = np.where(rng.random(n, dtype=np.float32) < 0.5, -1, 1).astype(dtype)
    elif name in UNIT:
        y = (rng.random(n, dtype=np.float32) < 0.5).astype(dtype)
    elif name == "binary_cross_entropy":
        x = rng.uniform(0.01, 0.99, n).astype(dtype)
        y = (rng.random(n) < 0.5).astype(dtype)
    elif name == "poisson_nll":
        y = rng.poisson(2.0, n).astype(dtype)
    elif name in NONNEG_TARGET:
        y = rng.gamma(2.0, 1.0, n).astype(dtype)
        if name in ("generalized_kl", "mean_squared_log_error"):
            x = (np.abs(x) + 0.01).astype(dtype)
    else:
        y = rng.standard_normal(n, dtype=np.float32).astype(dtype)
    return x, y


def _np_peer(name):
    """float64 NumPy value+gradient of the mean (independent formulas)."""
    def run(args, kw):
        x, y = (a.astype(np.float64) for a in args)
        n = x.size

        def f():
            d = x - y
            if name == "squared_error":
                return np.mean(d * d), 2 * d / n
            if name == "absolute_error":
                return np.mean(np.abs(d)), np.sign(d) / n
            if name in ("huber", "smooth_l1"):
                a = np.abs(d)
                s = a <= 1
                return np.mean(np.where(s, 0.5 * d * d, a - 0.5)), np.where(s, d, np.sign(d)) / n
            if name == "log_cosh":
                return np.mean(np.logaddexp(d, -d) - np.log(2)), np.tanh(d) / n
            if name == "quantile":
                return np.mean(np.maximum(-0.5 * d, 0.5 * d)), np.where(d <= 0, -0.5, 0.5) / n
            if name in ("sigmoid_binary_cross_entropy", "sigmoid_focal"):
                p = 1 / (1 + np.exp(-x))
                return np.mean(np.logaddexp(0, x) - x * y), (p - y) / n
            if name == "binary_cross_entropy":
                return (np.mean(-(y * np.log(x) + (1 - y) * np.log1p(-x))),
                        (-y / x + (1 - y) / (1 - x)) / n)
            if name in ("hinge", "squared_hinge"):
                z = 1 - y * x
                return np.mean(np.maximum(z, 0)), np.where(z > 0, -y, 0) / n
            if name == "logistic":
                z = -y * x
                return np.mean(np.logaddexp(0, z)), -y / (1 + np.exp(-z)) / n
            if name == "poisson_nll":
                e = np.exp(x)
                return np.mean(e - y * x), (e - y) / n
            if name == "tweedie_deviance":
                e1, e2 = np.exp(-0.5 * x), np.exp(0.5 * x)
                v = 2 * e2 + 2 * y * e1 - 4 * np.sqrt(y)
                return np.mean(v), (e2 - y * e1) / n
            if name == "gamma_deviance":
                r = y * np.exp(-x)
                return np.mean(r - np.log(y) + x - 1), (1 - r) / n
            if name == "mean_absolute_percentage_error":
                m = np.maximum(np.abs(y), 1e-7)
                return np.mean(100 * np.abs(d) / m), 100 * np.sign(d) / m / n
            if name == "mean_squared_log_error":
                dl = np.log1p(np.maximum(x, 1e-7)) - np.log1p(np.maximum(y, 1e-7))
                return np.mean(dl * dl), np.where(x >= 1e-7, 2 * dl / (1 + x), 0) / n
            if name == "hinge_embedding":
                z = 1 - x
                return (np.mean(np.where(y == 1, x, np.maximum(z, 0))),
                        np.where(y == 1, 1.0, np.where(z > 0, -1.0, 0.0)) / n)
            if name == "poly1_cross_entropy":
                p = 1 / (1 + np.exp(-x))
                u = p * (1 - y) + (1 - p) * y
                return (np.mean(np.logaddexp(0, x) - x * y + 2 * u),
                        (p - y + 2 * p * (1 - p) * (1 - 2 * y)) / n)
            if name == "generalized_kl":
                lr = np.log(y / x)
                return np.mean(y * lr - y + x), (1 - y / x) / n
            if name == "convex_kl":
                e = np.exp(x)
                return np.mean(y * (np.log(y) - x) + e - y), (e - y) / n
            raise KeyError(name)
        return f
    return run


def _torch_peer(name):
    def run(args, kw):
        import torch
        F = torch.nn.functional
        x0, y0 = (torch.from_numpy(a) for a in args)

        def loss(x, y):
            if name == "squared_error":
                return F.mse_loss(x, y)
            if name == "absolute_error":
                return F.l1_loss(x, y)
            if name == "huber":
                return F.huber_loss(x, y)
            if name == "smooth_l1":
                return F.smooth_l1_loss(x, y)
            if name == "log_cosh":
                return torch.log(torch.cosh(x - y)).mean()
            if name == "quantile":
                d = y - x
                return torch.maximum(0.5 * d, -0.5 * d).mean()
            if name == "sigmoid_binary_cross_entropy":
                return F.binary_cross_entropy_with_logits(x, y)
            if name == "sigmoid_focal":
                p = torch.sigmoid(x)
                ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
                pt = p * y + (1 - p) * (1 - y)
                return ((0.25 * y + 0.75 * (1 - y)) * ce * (1 - pt) ** 2).mean()
            if name == "binary_cross_entropy":
                return F.binary_cross_entropy(x, y)
            if name == "hinge":
                return F.relu(1 - y * x).mean()
            if name == "squared_hinge":
                return (F.relu(1 - y * x) ** 2).mean()
            if name == "logistic":
                return F.soft_margin_loss(x, y)
            if name == "poisson_nll":
                return F.poisson_nll_loss(x, y)
            if name == "hinge_embedding":
                return F.hinge_embedding_loss(x, y)
            if name == "mean_squared_log_error":
                dl = torch.log1p(x.clamp_min(1e-7)) - torch.log1p(y.clamp_min(1e-7))
                return (dl ** 2).mean()
            if name == "mean_absolute_percentage_error":
                return (100 * (x - y).abs() / y.abs().clamp_min(1e-7)).mean()
            if name == "convex_kl":
                return (torch.special.xlogy(y, y) - y * x + torch.exp(x) - y).mean()
            raise KeyError(name)

        def f():
            x = x0.detach().requires_grad_(True)
            loss(x, y0).backward()
            return x.grad
        return f
    return run


_SKLEARN = {"squared_error": ("HalfSquaredError", {}), "absolute_error": ("AbsoluteError", {}),
            "huber": ("HuberLoss", {"delta": 1.0}), "quantile": ("PinballLoss", {"quantile": 0.5}),
            "sigmoid_binary_cross_entropy": ("HalfBinomialLoss", {}),
            "poisson_nll": ("HalfPoissonLoss", {}),
            "tweedie_deviance": ("HalfTweedieLoss", {"power": 1.5}),
            "gamma_deviance": ("HalfGammaLoss", {})}


def _sklearn_peer(name):
    def run(args, kw):
        if name not in _SKLEARN:
            raise ImportError("no scikit-learn counterpart")
        import numba
        from sklearn._loss import loss as skl
        cls, params = _SKLEARN[name]
        obj = getattr(skl, cls)(**params)
        x, y = args
        if name == "huber":
            obj.closs.delta = 1.0 if hasattr(obj.closs, "delta") else None
        g = np.empty_like(x)
        lo = np.empty_like(x)
        threads = numba.get_num_threads()
        return lambda: obj.loss_gradient(y_true=y, raw_prediction=x, loss_out=lo,
                                         gradient_out=g, n_threads=threads)
    return run


def _make(name, n, dtype):
    """Inputs, and a preallocated gradient buffer (as the triad has its output preallocated;
    a fresh 80 MB array per call would time page faults, not the loss)."""
    x, y = _inputs(name, n, dtype)
    return (x, y), {"grad_out": np.empty_like(x)}


def cases(quick=False):
    from .._math.spec import ELEMENTWISE

    n = N_QUICK if quick else N_FULL
    out = []
    for name in ELEMENTWISE:
        out.append(Case(
            loss=name, label=f"n={n:.0e}",
            make=lambda dtype, name=name: _make(name, n, dtype),
            nbytes=lambda args: 3 * args[0].nbytes,
            peers={"numpy": _np_peer(name), "torch": _torch_peer(name),
                   "sklearn": _sklearn_peer(name)}))
    return out + cases_three(quick)


# --- the losses of three arrays: value + gradients w.r.t. two inputs ----------------------
def _three_inputs(name, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n, dtype=np.float32).astype(dtype)
    y = rng.standard_normal(n, dtype=np.float32).astype(dtype)
    if name == "gaussian_nll":
        z = rng.uniform(0.1, 2.0, n).astype(dtype)
    else:
        z = np.where(rng.random(n, dtype=np.float32) < 0.5, -1, 1).astype(dtype)
    return x, y, z


THREE = {"gaussian_nll": (0, 2), "margin_ranking": (0, 1)}   # loss: the inputs differentiated


def _np_peer3(name):
    def run(args, kw):
        x, y, z = (a.astype(np.float64) for a in args)
        n = x.size

        def f():
            if name == "gaussian_nll":
                v = np.maximum(z, 1e-6)
                d = x - y
                return (np.mean(0.5 * (np.log(v) + d * d / v)), d / v / n,
                        0.5 * (1 / v - d * d / (v * v)) / n)
            u = -z * (x - y)
            live = u >= 0
            return np.mean(np.maximum(u, 0)), np.where(live, -z, 0) / n, np.where(live, z, 0) / n
        return f
    return run


def _torch_peer3(name):
    def run(args, kw):
        import torch
        F = torch.nn.functional
        t0 = [torch.from_numpy(a) for a in args]
        diff = THREE[name]

        def f():
            ts = [t.detach().requires_grad_(i in diff) for i, t in enumerate(t0)]
            if name == "gaussian_nll":
                loss = F.gaussian_nll_loss(*ts)
            else:
                loss = F.margin_ranking_loss(*ts)
            loss.backward()
            return tuple(ts[i].grad for i in diff)
        return f
    return run


def _make3(name, n, dtype):
    args = _three_inputs(name, n, dtype)
    return args, {"grad_out": tuple(np.empty_like(args[0]) for _ in THREE[name])}


def cases_three(quick=False):
    n = N_QUICK if quick else N_FULL
    return [Case(loss=name, label=f"n={n:.0e}", argnums=nums,
                 make=lambda dtype, name=name: _make3(name, n, dtype),
                 nbytes=lambda args: 5 * args[0].nbytes,
                 peers={"numpy": _np_peer3(name), "torch": _torch_peer3(name)})
            for name, nums in THREE.items()]
