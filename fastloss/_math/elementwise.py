"""Scalar math of the elementwise losses, written once.

Every loss here is a plain Python function ``f(x, y, a, b, c) -> (value, d/dx, d²/dx²)``
of one prediction ``x``, one target ``y`` and up to three numeric parameters ``a, b, c``
(unused ones are ignored).  :mod:`fastloss._compile` rebinds the names ``exp``, ``log``,
``log1p`` ... of this module to each target's primitives and compiles the functions
for the CPU kernels (``njit(inline='always')``) and for CUDA (``cuda.jit(device=True)``);
the kernels call them element by element.  Adding an elementwise loss means adding one
decorated function here.

The code is branch-free where it matters (``a if cond else b`` compiles to a select that
LLVM vectorizes) and written so that NaN inputs propagate: comparisons with NaN are false,
so every select routes NaN to the arm that carries it, or adds ``0 * d``.

Subgradients at kinks: ``absolute_error`` uses 0 at ``d = 0``; ``hinge`` and
``squared_hinge`` use 0 at the margin; ``quantile`` uses ``-q`` at ``d = 0`` (as
scikit-learn's ``PinballLoss``).
"""
from math import copysign, exp, log, log1p

from .spec import Param, elementwise

expn = exp  # exp of an argument <= 0; rebound per target (see fastloss._compile)

LN2 = 0.6931471805599453
LOG_2PI = 1.8378770664093453


# --- helpers (compiled alongside the losses) -------------------------------------------

def softplus_sigmoid(x):
    """(log(1 + e^x), 1 / (1 + e^-x)), stable for |x| up to float max, from one exponential
    e^-|x| (the compiler does not merge the exponentials of two separate helpers)."""
    e = expn(-abs(x))
    r = 1.0 / (1.0 + e)
    return max(x, 0.0) + log1p(e), (r if x >= 0 else e * r)


def powpos(u, a):
    """u**a for u in [0, 1], a >= 0, with 0**0 = 1 (branch-free; a·log u <= 0)."""
    p = expn(a * log(u))
    return p if u > 0 else (1.0 if a == 0 else 0.0 * u)


def sign0(d):
    """sign(d) with sign(0) = 0 and sign(NaN) = NaN."""
    return 1.0 if d > 0 else (-1.0 if d < 0 else d * 0.0)


def ok_always(x, y, a, b, c):
    """No domain to check."""
    return True


def ok_pm1(x, y, a, b, c):
    """Labels must be -1 or +1 (NaN passes through to the result)."""
    return (y == 1.0) or (y == -1.0) or (y != y)


def ok_unit_target(x, y, a, b, c):
    """Targets must lie in [0, 1]."""
    return not (y < 0.0 or y > 1.0)


def ok_unit_both(x, y, a, b, c):
    """Predicted probabilities and targets must lie in [0, 1]."""
    return not (y < 0.0 or y > 1.0 or x < 0.0 or x > 1.0)


# --- regression losses ------------------------------------------------------------------

@elementwise(hessian=True, formula="|pred - target|")
def absolute_error(x, y, a, b, c):
    """L1 loss |d|, d = pred - target (MAE; TF-Slim ``absolute_difference``)."""
    d = x - y
    return abs(d), sign0(d), 0.0 * d


@elementwise(hessian=True, formula="(pred - target)^2")
def squared_error(x, y, a, b, c):
    """Squared error d² (no ½ factor; MXNet Gluon's ``L2Loss`` applies its own ½)."""
    d = x - y
    return d * d, 2.0 * d, 2.0 + 0.0 * d


@elementwise(params=(Param("delta", 1.0, ">0"),), hessian=True,
             formula="0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta)")
def huber(x, y, delta, b, c):
    """Huber loss with threshold ``delta`` (PyTorch ``huber_loss``, optax, scikit-learn)."""
    d = x - y
    ad = abs(d)
    small = ad <= delta
    v = 0.5 * d * d if small else delta * (ad - 0.5 * delta)
    g = d if small else delta * d / ad
    h = (1.0 if small else 0.0) + 0.0 * d
    return v, g, h


@elementwise(params=(Param("beta", 1.0, ">=0"),), hessian=True,
             formula="0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta")
def smooth_l1(x, y, beta, b, c):
    """Smooth L1 = huber/beta (PyTorch ``smooth_l1_loss``; MXNet Gluon ``HuberLoss(rho=beta)``).

    ``beta = 0`` gives the L1 loss.
    """
    d = x - y
    ad = abs(d)
    small = ad < beta
    v = 0.5 * d * d / beta if small else ad - 0.5 * beta
    g = d / beta if small else sign0(d)
    h = (1.0 / beta if small else 0.0) + 0.0 * d
    return v, g, h


@elementwise(hessian=True, formula="log cosh(pred - target)")
def log_cosh(x, y, a, b, c):
    """log cosh d; gradient tanh d, Hessian 1 - tanh² d.

    |d| + log1p(e^{-2|d|}) - log 2, or its Taylor series below |d| = 1/8, where that
    difference would cancel (one exp and one log1p per element either way).
    """
    d = x - y
    ad = abs(d)
    e = expn(-2.0 * ad)
    d2 = d * d
    taylor = d2 * (0.5 - d2 * (1.0 / 12.0 - d2 * (1.0 / 45.0 - d2 * (17.0 / 2520.0 - d2 * (
        31.0 / 14175.0 - d2 * (691.0 / 467775.0 - d2 * (5461.0 / 6081075.0)))))))
    v = taylor if ad < 0.125 else ad + log1p(e) - LN2
    r = 1.0 / (1.0 + e)
    t = (1.0 - e) * r             # tanh|d|
    g = copysign(t, d) if d == d else d
    return v, g, 4.0 * e * r * r


@elementwise(params=(Param("quantile", 0.5, "open01"),), hessian=True,
             formula="max(q (target - pred), (q - 1)(target - pred))")
def quantile(x, y, q, b, c):
    """Pinball loss of quantile ``q``; subgradient ``-q`` at ``pred == target``."""
    d = x - y
    v = -q * d if d <= 0 else (1.0 - q) * d
    g = (-q if d <= 0 else 1.0 - q) + 0.0 * d
    return v, g, 0.0 * d


# --- binary classification on logits -------------------------------------------------------

@elementwise(params=(Param("pos_weight", 1.0, ">=0"), Param("label_smoothing", 0.0, "closed01")),
             hessian=True, check=ok_unit_target, target_domain="[0, 1]",
             formula="c softplus(x) - pw y' x,  c = 1 + (pw - 1) y',  y' = y (1 - s) + s/2")
def sigmoid_binary_cross_entropy(x, y, pw, s, c):
    """Binary cross-entropy on logits ``x`` with labels ``y`` in [0, 1].

    ``pos_weight`` multiplies the positive term (PyTorch ``BCEWithLogitsLoss``);
    ``label_smoothing`` s moves labels toward ½ (optax, TF): y' = y(1 - s) + s/2.
    """
    ys = y * (1.0 - s) + 0.5 * s
    cw = 1.0 + (pw - 1.0) * ys
    sp, p = softplus_sigmoid(x)
    v = cw * sp - pw * ys * x
    g = cw * p - pw * ys
    h = cw * p * (1.0 - p)
    return v, g, h


@elementwise(params=(Param("alpha", 0.25, "any"), Param("gamma", 2.0, ">=0")),
             hessian=True, check=ok_unit_target, target_domain="[0, 1]",
             formula="alpha_t (1 - p_t)^gamma bce(x, y)")
def sigmoid_focal(x, y, alpha, gamma, c):
    """Focal loss on logits (Lin et al. 2017), as torchvision's ``sigmoid_focal_loss``.

    p = σ(x), p_t = p y + (1-p)(1-y), α_t = α y + (1-α)(1-y) (1 when α < 0).
    """
    sp, p = softplus_sigmoid(x)
    q = p * (1.0 - p)
    ce = sp - x * y
    dce = p - y
    u = 1.0 - (p * y + (1.0 - p) * (1.0 - y))
    sg = 2.0 * y - 1.0
    f = powpos(u, gamma)
    # u^(gamma-1), u^(gamma-2) appear multiplied by q; at u = 0 (p_t = 1) their terms vanish
    ui = 1.0 / u if u > 0 else 0.0
    fm1 = f * ui
    fm2 = fm1 * ui
    df = -gamma * fm1 * sg * q
    d2f = -gamma * sg * (q * (1.0 - 2.0 * p) * fm1 - (gamma - 1.0) * sg * q * q * fm2)
    at = alpha * y + (1.0 - alpha) * (1.0 - y) if alpha >= 0 else 1.0
    v = at * ce * f
    g = at * (dce * f + ce * df)
    h = at * (q * f + 2.0 * dce * df + ce * d2f)
    return v, g, h


@elementwise(params=(Param("eps", 1e-7, "eps"), Param("clip", True, "bool")),
             hessian=True, check=ok_unit_both, target_domain="[0, 1]", pred_domain="[0, 1]",
             formula="-(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps]")
def binary_cross_entropy(x, y, eps, clip, c):
    """Binary cross-entropy on probabilities (TF ``log_loss``; Gluon ``from_sigmoid=True``).

    ``clip=True`` clips p to [eps, 1 - eps] (gradient 0 where clipped, as Keras);
    ``clip=False`` adds eps inside both logarithms (TF-Slim ``log_loss``, Gluon).
    """
    lo = eps if clip else 0.0
    hi = 1.0 - eps if clip else 1.0
    inside = (x >= lo) and (x <= hi)
    pc = x if inside else (lo if x < lo else (hi if x > hi else x))  # NaN stays
    add = 0.0 if clip else eps
    p1 = pc + add
    q1 = 1.0 - pc + add
    v = -(y * log(p1) + (1.0 - y) * log(q1))
    live = 1.0 if (inside or not clip) else 0.0
    g = live * (-y / p1 + (1.0 - y) / q1) + 0.0 * x
    h = live * (y / (p1 * p1) + (1.0 - y) / (q1 * q1)) + 0.0 * x
    return v, g, h


# --- margin losses, labels ±1 ---------------------------------------------------------------

@elementwise(params=(Param("margin", 1.0, "any"),), hessian=True, check=ok_pm1,
             target_domain="{-1, +1}", formula="max(0, margin - y x)")
def hinge(x, y, margin, b, c):
    """Hinge loss; subgradient 0 at the margin."""
    z = margin - y * x
    v = z if not (z <= 0) else 0.0
    g = (-y if z > 0 else 0.0) + 0.0 * z
    return v, g, 0.0 * z


@elementwise(params=(Param("margin", 1.0, "any"),), hessian=True, check=ok_pm1,
             target_domain="{-1, +1}", formula="max(0, margin - y x)^2")
def squared_hinge(x, y, margin, b, c):
    """Squared hinge loss (MXNet Gluon ``SquaredHingeLoss``)."""
    z = margin - y * x
    zp = z if not (z <= 0) else 0.0
    return zp * zp, -2.0 * y * zp, (2.0 * y * y if z > 0 else 0.0) + 0.0 * z


@elementwise(hessian=True, check=ok_pm1, target_domain="{-1, +1}",
             formula="log(1 + exp(-y x))")
def logistic(x, y, a, b, c):
    """Logistic loss softplus(-y x) for labels ±1 (MXNet Gluon ``LogisticLoss``)."""
    z = -y * x
    sp, s = softplus_sigmoid(z)
    return sp, -y * s, s * (1.0 - s)


# --- counts -------------------------------------------------------------------------------

@elementwise(params=(Param("log_input", True, "bool"), Param("full", False, "bool"),
                     Param("eps", 1e-8, "eps")),
             hessian=True,
             formula="exp(x) - y x (log_input) or x - y log(x + eps); full adds Stirling for y > 1")
def poisson_nll(x, y, log_input, full, eps):
    """Poisson negative log-likelihood with PyTorch's ``poisson_nll_loss`` semantics.

    ``full=True`` adds y log y - y + ½ log(2π y) where y > 1 (0 elsewhere).
    """
    ex = exp(x)
    xe = x + eps
    v_log = ex - y * x
    v_lin = x - y * log(xe)
    v = v_log if log_input else v_lin
    g = ex - y if log_input else 1.0 - y / xe
    h = ex if log_input else y / (xe * xe)
    st = y * log(y) - y + 0.5 * (LOG_2PI + log(y))
    v = v + (st if (full and y > 1.0) else 0.0)
    return v, g, h
