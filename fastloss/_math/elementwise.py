"""Scalar math of the elementwise losses, written once.

Every loss here is a plain Python function ``f(x, y, a, b, c) -> (value, d/dx, d²/dx²)``
of one prediction ``x``, one target ``y`` and up to three numeric parameters ``a, b, c``
(unused ones are ignored).  :mod:`fastloss._compile` rebinds the names ``exp``, ``log``,
``log1p`` ... of this module to each target's primitives and compiles the functions
for the CPU kernels (``njit(inline='always')``) and for CUDA (``cuda.jit(device=True)``);
the kernels call them element by element.  Adding an elementwise loss means adding one
decorated function here.

A loss of three arrays (``inputs=`` of three names in the decorator: ``gaussian_nll``,
``margin_ranking``) is ``f(x, y, z, a, b, c) -> (value, d/dx, d²/dx², d/dy, d/dz)``; it
runs in the three-array kernels, which store each gradient only when it is asked for.  A
parameter listed in ``per_element=`` also takes an array (``pos_weight``, ``alpha``): the
decorator generates the loss's three-array twin, which reads that parameter from ``z``,
and the two-array kernels of the loss stay as they are.

The code is branch-free where it matters (``a if cond else b`` compiles to a select that
LLVM vectorizes) and written so that NaN inputs propagate: comparisons with NaN are false,
so every select routes NaN to the arm that carries it, or adds ``nan_of(d)`` (0, or the
NaN).  ±inf inputs give the mathematical limit: a zero weight times an infinite term is 0
(``xmul``, ``wmul``, ``wdiv``), never ``0 * inf = NaN``.  Losses that are non-negative in exact
arithmetic are computed as sums of non-negative terms, so rounding and overflow never make
them negative.

The kernels compile with the ``reassoc`` fast-math flag (it vectorizes their sums): where
regrouping would change a result -- a small ``eps`` added to a difference, a difference of
nearly equal terms -- the math uses ``sadd``/``ssub``, which are evaluated as written
(:mod:`fastloss._math.strict`).

Subgradients at kinks: ``absolute_error`` and ``mean_absolute_percentage_error`` use 0
at ``d = 0``; ``hinge``, ``squared_hinge`` and ``hinge_embedding`` use 0 at the margin;
``quantile`` uses ``-q`` at ``d = 0`` (as scikit-learn's ``PinballLoss``).

Deviances and divergences that vanish at their minimum (``tweedie_deviance``,
``gamma_deviance``, ``generalized_kl``, ``convex_kl``) are a difference of nearly equal
terms there: within ``|s| < 1/4`` of it (``s`` the log-ratio of target and prediction)
they are computed from their Taylor series in ``s`` (no cancellation, non-negative), and
elsewhere from the closed form.  Targets outside their domain give NaN.
"""
from math import copysign, exp, log, log1p, sqrt
from operator import add as sadd, sub as ssub  # noqa: F401  (strict on the CPU targets)

from .spec import Param, elementwise

expn = exp  # exp of an argument <= 0; rebound per target (see fastloss._compile)
log1pu = log1p  # log1p of an argument in [0, 1]; rebound per target (cheaper on the CPU)

LN2 = 0.6931471805599453
LOG_2PI = 1.8378770664093453
INF = float("inf")
NAN = float("nan")


# --- helpers (compiled alongside the losses) -------------------------------------------

def sigmoid_parts(x):
    """(log1p(e^-|x|), σ(x), 1 - σ(x)) from one exponential; both probabilities are
    computed directly (no ``1 - p`` cancellation), so they are accurate for any |x|."""
    e = expn(-abs(x))
    r = 1.0 / (1.0 + e)
    er = e * r
    pos = x >= 0
    return log1pu(e), (r if pos else er), (er if pos else r)


def nan_of(d):
    """0, or NaN when ``d`` is NaN: added to a result to propagate NaN (``0 * d`` would
    turn an infinite ``d`` into NaN)."""
    return 0.0 if d == d else d


def xmul(w, z):
    """w * z with 0 * ±inf = 0 (a term with zero weight vanishes); NaN stays NaN."""
    return 0.0 if ((w == 0.0 and z == z) or (z == 0.0 and w == w)) else w * z


def wmul(w, z):
    """w * z, 0 for a zero weight w even when z is ±inf (or NaN: callers whose NaN
    inputs reach the result through another term; one compare instead of xmul's four)."""
    return 0.0 if w == 0.0 else w * z


def wdiv(w, z):
    """w / z, 0 for a zero w (the limit of a vanishing term; same NaN caveat as wmul)."""
    return 0.0 if w == 0.0 else w / z


def powpos(u, a):
    """u**a for u in [0, 1], a >= 0, with 0**0 = 1 (branch-free; a·log u <= 0)."""
    p = expn(a * log(u))
    return p if u > 0 else (1.0 if a == 0 else 0.0 * u)


def sign0(d):
    """sign(d) with sign(0) = 0 and sign(NaN) = NaN."""
    return 1.0 if d > 0 else (-1.0 if d < 0 else d * 0.0)


def expm1s(s):
    """e^s - 1 for |s| < 1/4 (Taylor series to s^13, relative error < 1e-17)."""
    t = 1.0 / 479001600.0 + s * (1.0 / 6227020800.0)
    t = 1.0 / 5040.0 + s * (1.0 / 40320.0 + s * (1.0 / 362880.0 + s * (
        1.0 / 3628800.0 + s * (1.0 / 39916800.0 + s * t))))
    return s * (1.0 + s * (0.5 + s * (1.0 / 6.0 + s * (1.0 / 24.0 + s * (
        1.0 / 120.0 + s * (1.0 / 720.0 + s * t))))))


def tweedie_series(s, a):
    """Σ_{k>=2} (1 - a^(k-1)) s^k / k! for |s| < 1/4, a in [0, 1): (a (e^s - 1) -
    (e^(a s) - 1)) / a without the cancellation at s = 0 (Taylor series to s^14)."""
    a2 = a * a
    a3 = a2 * a
    a4 = a2 * a2
    a5 = a4 * a
    a6 = a3 * a3
    a7 = a6 * a
    a8 = a4 * a4
    a9 = a8 * a
    a10 = a5 * a5
    a11 = a10 * a
    a12 = a6 * a6
    a13 = a12 * a
    t = (1.0 - a11) / 479001600.0 + s * ((1.0 - a12) / 6227020800.0
                                         + s * ((1.0 - a13) / 87178291200.0))
    t = (1.0 - a6) / 5040.0 + s * ((1.0 - a7) / 40320.0 + s * ((1.0 - a8) / 362880.0 + s * (
        (1.0 - a9) / 3628800.0 + s * ((1.0 - a10) / 39916800.0 + s * t))))
    return s * s * ((1.0 - a) / 2.0 + s * ((1.0 - a2) / 6.0 + s * ((1.0 - a3) / 24.0 + s * (
        (1.0 - a4) / 120.0 + s * ((1.0 - a5) / 720.0 + s * t)))))


def kl_series(u):
    """(u - 1) e^u + 1 = Σ_{k>=2} (k - 1) u^k / k! for |u| < 1/4 (Taylor series to u^14)."""
    t = 11.0 / 479001600.0 + u * (12.0 / 6227020800.0 + u * (13.0 / 87178291200.0))
    t = 6.0 / 5040.0 + u * (7.0 / 40320.0 + u * (8.0 / 362880.0 + u * (
        9.0 / 3628800.0 + u * (10.0 / 39916800.0 + u * t))))
    return u * u * (0.5 + u * (2.0 / 6.0 + u * (3.0 / 24.0 + u * (
        4.0 / 120.0 + u * (5.0 / 720.0 + u * t)))))


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


def ok_z_always(x, y, z, a, b, c):
    """No domain to check (a loss of three arrays)."""
    return True


def ok_z_nonneg(x, y, z, a, b, c):
    """The third array must be non-negative (NaN passes through to the result)."""
    return not (z < 0.0)


def ok_z_pm1(x, y, z, a, b, c):
    """The third array holds labels -1 or +1 (NaN passes through to the result)."""
    return (z == 1.0) or (z == -1.0) or (z != z)


# --- regression losses ------------------------------------------------------------------

@elementwise(hessian=True, formula="|pred - target|")
def absolute_error(x, y, a, b, c):
    """L1 loss |d|, d = pred - target (MAE; TF-Slim ``absolute_difference``)."""
    d = x - y
    return abs(d), sign0(d), nan_of(d)


@elementwise(hessian=True, formula="(pred - target)^2")
def squared_error(x, y, a, b, c):
    """Squared error d² (no ½ factor; MXNet Gluon's ``L2Loss`` applies its own ½)."""
    d = x - y
    return d * d, 2.0 * d, 2.0 + nan_of(d)


@elementwise(params=(Param("delta", 1.0, ">0"),), hessian=True,
             formula="0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta)")
def huber(x, y, delta, b, c):
    """Huber loss with threshold ``delta`` (PyTorch ``huber_loss``, optax, scikit-learn)."""
    d = x - y
    ad = abs(d)
    small = ad <= delta
    v = 0.5 * d * d if small else delta * (ad - 0.5 * delta)
    g = d if not (ad > delta) else (delta if d > 0 else -delta)   # NaN stays, ±inf: ±delta
    h = (1.0 if small else 0.0) + nan_of(d)
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
    h = (1.0 / beta if small else 0.0) + nan_of(d)
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
    small = ad < 0.125
    taylor = d2 * (0.5 - d2 * (1.0 / 12.0 - d2 * (1.0 / 45.0 - d2 * (17.0 / 2520.0 - d2 * (
        31.0 / 14175.0 - d2 * (691.0 / 935550.0 - d2 * (10922.0 / 42567525.0)))))))
    v = taylor if small else ad + log1pu(e) - LN2
    r = 1.0 / (1.0 + e)
    # tanh d: (1 - e) / (1 + e) cancels for small |d| (1.00000008e-10 at d = 1e-10, 0 at
    # 1e-138); below 1/8 its Taylor series (relative error < 1e-17 there)
    tt = d * (1.0 - d2 * (1.0 / 3.0 - d2 * (2.0 / 15.0 - d2 * (17.0 / 315.0 - d2 * (
        62.0 / 2835.0 - d2 * (1382.0 / 155925.0 - d2 * (21844.0 / 6081075.0 - d2 * (
            929569.0 / 638512875.0))))))))
    t = (1.0 - e) * r             # tanh|d|
    g = tt if small else (copysign(t, d) if d == d else d)
    return v, g, 4.0 * e * r * r


@elementwise(params=(Param("delta", 1.0, ">0"),), hessian=True,
             formula="delta^2 (sqrt(1 + (d / delta)^2) - 1)")
def pseudo_huber(x, y, delta, b, c):
    """Pseudo-Huber loss δ²(√(1 + (d/δ)²) − 1) (XGBoost ``reg:pseudohubererror`` with
    ``huber_slope=delta``); gradient d/s, Hessian 1/s³, s = √(1 + (d/δ)²).
    """
    # |d|·δ·(|u| / (s + 1)), u = d/δ: no cancellation for small |d|, no overflow of d²;
    # above |u| = 1e8, where s = |u| to working precision, δ(|d| − δ) (±inf: inf, ±δ, 0)
    d = x - y
    ad = abs(d)
    u = d / delta
    au = abs(u)
    big = au > 1e8
    s = sqrt(1.0 + u * u)
    v = delta * (ad - delta) if big else ad * (delta * (au / (s + 1.0)))
    g = (delta if d > 0 else -delta) if big else delta * (u / s)
    sb = au if big else s
    return v, g, 1.0 / (sb * sb * sb)


@elementwise(params=(Param("quantile", 0.5, "open01"),), hessian=True,
             formula="max(q (target - pred), (q - 1)(target - pred))")
def quantile(x, y, q, b, c):
    """Pinball loss of quantile ``q``; subgradient ``-q`` at ``pred == target``."""
    d = x - y
    v = -q * d if d <= 0 else (1.0 - q) * d
    g = (-q if d <= 0 else 1.0 - q) + nan_of(d)
    return v, g, nan_of(d)


# --- binary classification on logits -------------------------------------------------------

@elementwise(params=(Param("pos_weight", 1.0, ">=0"), Param("label_smoothing", 0.0, "closed01")),
             hessian=True, check=ok_unit_target, target_domain="[0, 1]",
             per_element=("pos_weight",),
             formula="c softplus(x) - pw y' x,  c = 1 + (pw - 1) y',  y' = y (1 - s) + s/2")
def sigmoid_binary_cross_entropy(x, y, pw, s, c):
    """Binary cross-entropy on logits ``x`` with labels ``y`` in [0, 1].

    ``pos_weight`` multiplies the positive term (PyTorch ``BCEWithLogitsLoss``,
    TF ``weighted_cross_entropy_with_logits``): a scalar, or an array broadcast to
    ``pred`` (per class: shape ``(C,)`` for ``pred`` of shape ``(N, C)``);
    ``label_smoothing`` s moves labels toward ½ (optax, TF): y' = y(1 - s) + s/2.
    """
    ys = y * (1.0 - s) + 0.5 * s
    yn = (1.0 - y) * (1.0 - s) + 0.5 * s        # 1 - y', never below 0 by rounding
    wp = pw * ys
    cw = yn + wp                                # 1 + (pw - 1) y'
    l1, p, q = sigmoid_parts(x)
    # cw softplus(x) - pw y' x = cw log1p(e^-|x|) + (1 - y') x⁺ + pw y' x⁻: all terms >= 0
    lin = wmul(yn if x >= 0 else wp, abs(x))    # NaN x: l1 carries it
    v = cw * l1 + lin
    g = yn * p - wp * q                         # cw σ(x) - pw y'
    h = cw * p * q
    return v, g, h


@elementwise(params=(Param("alpha", 0.25, "alpha"), Param("gamma", 2.0, ">=0")),
             hessian=True, check=ok_unit_target, target_domain="[0, 1]", per_element=("alpha",),
             fast=(((None, 2.0, None), "sigmoid_focal_g2"),),
             formula="alpha_t (1 - p_t)^gamma bce(x, y)")
def sigmoid_focal(x, y, alpha, gamma, c):
    """Focal loss on logits (Lin et al. 2017), as torchvision's ``sigmoid_focal_loss``.

    p = σ(x), p_t = p y + (1-p)(1-y), α_t = α y + (1-α)(1-y) (1 when α < 0);
    ``alpha`` must be in [0, 1], or negative (no weighting), so the loss is never negative;
    a scalar, or an array broadcast to ``pred`` (per class: shape ``(C,)`` for ``pred`` of
    shape ``(N, C)``), each entry under the same rule.
    """
    l1, p, pm = sigmoid_parts(x)
    q = p * pm
    yn = 1.0 - y
    ce = l1 + wmul(yn if x >= 0 else y, abs(x))  # bce(x, y) >= 0, no cancellation
    dce = p * yn - pm * y                       # p - y
    u = p * yn + pm * y                         # 1 - p_t
    sg = 2.0 * y - 1.0
    # f = u^gamma, fm1 = u^(gamma-1), fm2 = u^(gamma-2); the last two appear multiplied by
    # q, and at u = 0 (p_t = 1) their terms vanish.  gamma = 2 (the default): products
    ui = 1.0 / u if u > 0 else 0.0
    g2 = gamma == 2.0
    f = u * u if g2 else powpos(u, gamma)
    fm1 = u if g2 else f * ui
    fm2 = (1.0 if u > 0 else 0.0) if g2 else fm1 * ui
    df = -gamma * fm1 * sg * q
    d2f = -gamma * sg * (q * (1.0 - 2.0 * p) * fm1 - (gamma - 1.0) * sg * q * q * fm2)
    # strict: reassociated, α y + (1 − α)(1 − y) became (1 + (2α − 1) y) − α, 0 for tiny y
    at = sadd(alpha * y, (1.0 - alpha) * yn) if alpha >= 0 else 1.0
    # ce is infinite at x = ±inf where df, d2f vanish exponentially: their products -> 0
    v = wmul(at * f, ce)      # at·f = 0 (a zero weight, p_t = 1): 0 even where ce = inf
    g = at * (dce * f + wmul(df, ce))
    h = at * (q * f + 2.0 * dce * df + wmul(d2f, ce))
    return v, g, h


def sigmoid_focal_g2(x, y, alpha, gamma, c):
    """``sigmoid_focal`` at ``gamma=2`` (its default), the parameter a constant: the
    powers of 1 - p_t are products, without the logarithm, the exponential and the
    division that other values need (the CPU kernels' ``fast`` twin)."""
    return sigmoid_focal(x, y, alpha, 2.0, c)


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
    p1 = sadd(pc, add)                          # strict: never (pc + 1) - 1 + eps ...
    q1 = sadd(ssub(1.0, pc), add)
    yn = 1.0 - y
    # y log p with 0 log 0 = 0 (eps = 0 at the boundary); y and 1 - y are never both 0,
    # so a NaN p reaches the result through the other term
    v = -(wmul(y, log(p1)) + wmul(yn, log(q1)))
    live = 1.0 if (inside or not clip) else 0.0
    gy = wdiv(y, p1)
    gn = wdiv(yn, q1)
    g = live * (gn - gy)                        # NaN p: NaN through gy or gn
    h = live * (wdiv(gy, p1) + wdiv(gn, q1))
    return v, g, h


# --- margin losses, labels ±1 ---------------------------------------------------------------

@elementwise(params=(Param("margin", 1.0, "any"),), hessian=True, check=ok_pm1,
             target_domain="{-1, +1}", formula="max(0, margin - y x)")
def hinge(x, y, margin, b, c):
    """Hinge loss; subgradient 0 at the margin."""
    z = margin - y * x
    v = z if not (z <= 0) else 0.0
    g = (-y if z > 0 else 0.0) + nan_of(z)
    return v, g, nan_of(z)


@elementwise(params=(Param("margin", 1.0, "any"),), hessian=True, check=ok_pm1,
             target_domain="{-1, +1}", formula="max(0, margin - y x)^2")
def squared_hinge(x, y, margin, b, c):
    """Squared hinge loss (MXNet Gluon ``SquaredHingeLoss``)."""
    z = margin - y * x
    zp = z if not (z <= 0) else 0.0
    return zp * zp, -2.0 * y * zp, (2.0 * y * y if z > 0 else 0.0) + nan_of(z)


@elementwise(hessian=True, check=ok_pm1, target_domain="{-1, +1}",
             formula="log(1 + exp(-y x))")
def logistic(x, y, a, b, c):
    """Logistic loss softplus(-y x) for labels ±1 (MXNet Gluon ``LogisticLoss``)."""
    z = -y * x
    e = expn(-abs(z))
    r = 1.0 / (1.0 + e)
    s = r if z >= 0 else e * r                 # σ(z)
    # σ(z) σ(-z) = e r²: s (1 - s) cancelled to 0 at s ≈ 1 (float32 x = -17, float64 -40)
    return max(z, 0.0) + log1pu(e), -y * s, e * r * r


# --- counts -------------------------------------------------------------------------------

@elementwise(params=(Param("log_input", True, "bool"), Param("full", False, "bool"),
                     Param("eps", 1e-8, "eps")),
             hessian=True, fast=(((1.0, 0.0, None), "poisson_nll_rate"),),
             formula="exp(x) - y x (log_input) or x - y log(x + eps); full adds Stirling for y > 1")
def poisson_nll(x, y, log_input, full, eps):
    """Poisson negative log-likelihood with PyTorch's ``poisson_nll_loss`` semantics.

    ``full=True`` adds y log y - y + ½ log(2π y) where y > 1 (0 elsewhere).
    """
    ex = exp(x)
    xe = x + eps
    lx = x if log_input else log(xe)            # log of the rate
    st = full and y > 1.0
    ly = log(y)
    # ex - y x (+ y log y - y + ½ log(2π y)) = ex + y (log y - 1 - x) + ½ log(2π y): the
    # y terms grouped, so that a large or infinite target gives its limit, not inf - inf
    c = (ly - 1.0 if st else 0.0) - lx
    base = ex if log_input else x
    v = base + xmul(y, c) + (0.5 * (LOG_2PI + ly) if st else 0.0)
    v = INF if (x == INF and y == y) else v    # e^x (or x) dominates every other term
    # y = 0 at x + eps = 0 (log_input=False): the y terms vanish (gradient 1, Hessian 0)
    g = ex - y if log_input else 1.0 - wdiv(y, xe) + nan_of(xe)
    h = ex if log_input else wdiv(wdiv(y, xe), xe) + nan_of(xe)
    return v, g, h


def poisson_nll_rate(x, y, log_input, full, eps):
    """``poisson_nll`` for ``log_input=True, full=False`` (its defaults): e^x - y x, the
    same operations without the two logarithms and the divisions of the other settings
    (the CPU kernels' ``fast`` twin: a vectorized loop would compute them all)."""
    ex = exp(x)
    v = ex + xmul(y, 0.0 - x) + 0.0
    v = INF if (x == INF and y == y) else v
    return v, ex - y, ex


@elementwise(params=(Param("power", 1.5, "open12"),), hessian=True, target_domain="[0, inf)",
             formula="y^(2-p)/((1-p)(2-p)) - y mu^(1-p)/(1-p) + mu^(2-p)/(2-p),  mu = exp(x)")
def tweedie_deviance(x, y, p, b, c):
    """Half Tweedie deviance with log link, power ``p`` in (1, 2): ``x`` the raw
    prediction log μ, ``y`` >= 0 (negative targets give NaN).

    Gradient and Hessian are scikit-learn's ``HalfTweedieLoss(power)``; the value is its
    ``loss`` plus ``constant_to_optimal_zero``, so it is non-negative and 0 at μ = y.
    """
    a = 2.0 - p                                 # in (0, 1)
    nb = p - 1.0                                # -(1 - p), in (0, 1)
    ly = log(y) if y >= 0 else NAN
    s = ly - x                                  # log(y / μ)
    ea = exp(a * x)                             # μ^(2-p)
    yeb = wmul(y, exp(-nb * x))                 # y μ^(1-p); 0 for y = 0 even at x = -inf
    # closed form (a y μ^(1-p) + (p-1) μ^(2-p) - y^(2-p)) / (a (p-1)), away from μ = y
    v = ssub(sadd(a * yeb, nb * ea), exp(a * ly)) / (a * nb)   # strict: no fma
    v = INF if (y == INF and x < INF) else v    # y μ^(1-p) grows fastest
    small = abs(s) < 0.25
    v = ea * (tweedie_series(s, a) / nb) if small else v
    g = -ea * expm1s(s) if small else ea - yeb
    h = a * ea + nb * yeb
    return v, g + nan_of(ly), h + nan_of(ly)


@elementwise(hessian=True, target_domain="(0, inf)",
             formula="y / mu - log(y / mu) - 1,  mu = exp(x)")
def gamma_deviance(x, y, a, b, c):
    """Half Gamma deviance with log link (Tweedie power 2): ``x`` the raw prediction
    log μ, ``y`` > 0 (``y = 0`` gives +inf; negative targets give NaN).

    Gradient and Hessian are scikit-learn's ``HalfGammaLoss``; the value is its ``loss``
    plus ``constant_to_optimal_zero``, so it is non-negative and 0 at μ = y.
    """
    ly = log(y) if y >= 0 else NAN
    s = ly - x                                  # log(y / μ)
    es = wmul(y, exp(-x))                       # y / μ
    v = (es - 1.0) + (x - ly)
    big = (y == 0.0 or x == -INF or y == INF) and not (x == INF and y == INF)
    v = INF if (big and x == x and y == y) else v
    small = abs(s) < 0.25
    v = tweedie_series(s, 0.0) if small else v  # e^s - 1 - s
    g = -expm1s(s) if small else 1.0 - es
    return v, g + nan_of(ly), es + nan_of(ly)


@elementwise(params=(Param("eps", 1e-7, ">0"),), hessian=True,
             formula="100 |target - pred| / max(|target|, eps)")
def mean_absolute_percentage_error(x, y, eps, b, c):
    """Absolute percentage error (Keras ``MeanAbsolutePercentageError``, per element:
    Keras averages over the last axis), ``eps`` as Keras' backend epsilon; subgradient 0
    at pred = target.
    """
    d = x - y
    ay = abs(y)
    m = ay if ay > eps else eps
    r = ssub(x / m, y / m)                      # (x - y)/m without overflow of x - y
    yinf = ay == INF
    # |y| -> inf: the ratio tends to 1, or 2 when pred tends to -target (NaN: same sign)
    vinf = (200.0 if abs(x) == INF else 100.0) + nan_of(d)
    v = vinf if yinf else 100.0 * abs(r)
    return v, sign0(d) * (100.0 / m), nan_of(d)


@elementwise(params=(Param("eps", 1e-7, ">=0"),), hessian=True,
             formula="(log(max(pred, eps) + 1) - log(max(target, eps) + 1))^2")
def mean_squared_log_error(x, y, eps, b, c):
    """Squared log error (Keras ``MeanSquaredLogarithmicError``, per element); gradient
    and Hessian 0 where pred < eps (the clamp).
    """
    xc = eps if x < eps else x                  # NaN stays
    yc = eps if y < eps else y
    live = x >= eps
    d = log1p(xc) - log1p(yc)
    r = 1.0 / (1.0 + xc)
    g = (2.0 * wmul(r, d) if live else 0.0) + nan_of(d)          # r = 0 at pred = inf
    h = (2.0 * wmul(r * r, 1.0 - d) if live else 0.0) + nan_of(d)
    return d * d, g, h


@elementwise(params=(Param("margin", 1.0, "any"),), hessian=True, check=ok_pm1,
             target_domain="{-1, +1}", formula="x if y = 1 else max(0, margin - x)")
def hinge_embedding(x, y, margin, b, c):
    """Hinge embedding loss (PyTorch ``hinge_embedding_loss``): ``pred`` x where y = 1,
    max(0, margin - x) where y = -1; subgradient 0 at the margin.
    """
    pos = y == 1.0
    z = margin - x
    ny = nan_of(y)
    zp = z if not (z <= 0) else 0.0
    v = (x if pos else zp) + ny
    g = (1.0 if pos else (-1.0 if z > 0 else 0.0)) + nan_of(z) + ny
    return v, g, nan_of(z) + ny


@elementwise(params=(Param("epsilon", 2.0, "any"),), hessian=True, check=ok_unit_target,
             target_domain="[0, 1]", formula="bce(x, y) + epsilon (1 - p_t)")
def poly1_cross_entropy(x, y, eps, b, c):
    """Poly-1 loss (Leng et al. 2022) in its sigmoid form: binary cross-entropy on logits
    plus ε (1 - p_t), p = σ(x), p_t = p y + (1 - p)(1 - y) (optax's
    ``poly_loss_cross_entropy`` is the softmax form; the same default ε = 2).

    Non-negative for ε >= -1.
    """
    l1, p, q = sigmoid_parts(x)
    yn = 1.0 - y
    ce = sadd(l1, wmul(yn if x >= 0 else y, abs(x)))  # bce(x, y) >= 0; strict: no fma
    u = p * yn + q * y                           # 1 - p_t
    pq = p * q
    sg = yn - y                                  # 1 - 2y
    v = sadd(ce, eps * u)                        # strict: never contracted (see convex_kl)
    g = (p * yn - q * y) + eps * pq * sg
    h = pq * (1.0 + eps * (q - p) * sg)
    return v, g, h


@elementwise(hessian=True, target_domain="[0, inf)", pred_domain="[0, inf)",
             formula="t log(t / q) - t + q,  0 log 0 = 0")
def generalized_kl(x, y, a, b, c):
    """Generalized Kullback-Leibler divergence (I-divergence) of a non-negative
    prediction q = ``pred`` from a non-negative target t; gradient 1 - t/q.

    Negative inputs give NaN; t = 0 gives q (0 log 0 = 0), q = 0 < t gives +inf.
    """
    bad = not (x >= 0 and y >= 0)               # NaN too
    q = x if x > 0 else 0.0                     # (-0.0 -> 0)
    t = y if y > 0 else 0.0
    u = log(t) - log(q)                         # log(t / q)
    v = sadd(t * (u - 1.0) if t != 0.0 else 0.0, q)   # strict, as in convex_kl
    v = INF if (q == INF and t < INF) else v
    small = abs(u) < 0.25
    v = q * kl_series(u) if small else v
    rq = 1.0 / q
    tq = wmul(t, rq)                            # t / q, 0 for t = 0
    g = -expm1s(u) if small else ssub(1.0, tq)  # strict: never an fma (see convex_kl)
    nb = NAN if bad else 0.0
    return v + nb, g + nb, wmul(tq, rq) + nb


@elementwise(hessian=True, target_domain="[0, inf)",
             formula="t (log t - x) + exp(x) - t,  0 log 0 = 0")
def convex_kl(x, y, a, b, c):
    """Convex KL divergence per element (optax ``convex_kl_divergence``): ``pred`` the
    log-prediction x, target t >= 0; gradient e^x - t.

    optax sums over the last axis of each row; here each element is one term
    (``reduction="sum"`` over a row gives optax's value).  Negative targets give NaN.
    """
    bad = not (y >= 0) or x != x
    t = y if y > 0 else 0.0
    u = ssub(log(t), x)                         # log(t / e^x)
    ex = exp(x)
    # strict: an fma or a regrouping here would differ between the vector loop and the
    # scalar remainder loop (the results would depend on an element's position)
    v = sadd(t * ssub(u, 1.0) if t != 0.0 else 0.0, ex)
    v = INF if (ex == INF and t < INF) else v   # e^x beyond the range dominates
    small = abs(u) < 0.25
    v = ex * kl_series(u) if small else v
    g = -ex * expm1s(u) if small else ex - t
    nb = NAN if bad else 0.0
    return v + nb, g + nb, ex + nb


# --- losses of three arrays: fn(x, y, z, a, b, c) -> (value, d/dx, d²/dx², d/dy, d/dz) ------

@elementwise(params=(Param("full", False, "bool"), Param("eps", 1e-6, ">0")), hessian=True,
             inputs=("input", "target", "var"), differentiable=("input", "target", "var"),
             check=ok_z_nonneg, checked="var", target_domain="[0, inf)", z_shape="var",
             formula="0.5 (log v + (input - target)^2 / v) [+ 0.5 log(2 pi)],  v = max(var, eps)")
def gaussian_nll(x, y, var, full, eps, c):
    """Gaussian negative log-likelihood with PyTorch's ``gaussian_nll_loss`` semantics:
    ``input`` the mean, ``target`` a sample, ``var`` the variance (non-negative), clamped
    below at ``eps``; ``full=True`` adds ½ log(2π).

    The gradient w.r.t. ``var`` where it is clamped is PyTorch's: the derivative at
    ``eps`` (the clamp is not differentiated), 0.5 (1/eps - d²/eps²).
    """
    d = x - y
    vc = var if not (var < eps) else eps       # NaN stays
    r = d / vc
    q = r * d                                   # d² / v without overflow of d²
    v = 0.5 * (log(vc) + q) + (0.5 * LOG_2PI if full else 0.0)
    iv = 1.0 / vc
    return v, r, iv + nan_of(d), -r, 0.5 * (iv - r * r)


@elementwise(params=(Param("margin", 0.0, "any"),), hessian=True,
             inputs=("input1", "input2", "target"), differentiable=("input1", "input2"),
             check=ok_z_pm1, checked="target", target_domain="{-1, +1}",
             formula="max(0, -target (input1 - input2) + margin)")
def margin_ranking(x, y, t, margin, b, c):
    """Margin ranking loss (PyTorch ``margin_ranking_loss``): ``target`` 1 ranks
    ``input1`` above ``input2``, -1 below; gradients w.r.t. both inputs.

    Subgradient at the margin as PyTorch's ``clamp_min``: -target (w.r.t. ``input1``).
    """
    u = margin - t * (x - y)
    v = u if not (u <= 0) else 0.0
    live = u >= 0
    nu = nan_of(u)
    return v, (-t if live else 0.0) + nu, nu, (t if live else 0.0) + nu, 0.0
