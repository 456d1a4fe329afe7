"""Text of the generated loss docstrings: LaTeX formulas, parameter rules, subgradients at
kinks and checked examples, keyed by loss name.

:func:`fastloss._api._docstring` reads these tables (a loss's spec may carry a ``latex``
attribute instead).  A loss missing from a table still gets a complete docstring: its
plain-text ``formula``, its parameters' rules from the spec, and an example that checks the
gradient's shape and dtype.  Plain data, no imports: read at ``import fastloss``.
"""

LATEX = {
    "gaussian_nll":
        r"\ell(x, y, v) = \tfrac12 \Bigl(\log \tilde v + \frac{(x - y)^2}{\tilde v}\Bigr)"
        r"\ \bigl[+\, \tfrac12 \log(2\pi) \text{ if full}\bigr],"
        r"\qquad \tilde v = \max(v, \epsilon)",
    "margin_ranking": r"\ell(x_1, x_2, y) = \max\bigl(0,\ -y\,(x_1 - x_2) + m\bigr),"
                      r"\qquad y \in \{-1, +1\}",
    "absolute_error": r"\ell(x, y) = |x - y|",
    "squared_error": r"\ell(x, y) = (x - y)^2",
    "huber": r"\ell(x, y) = \begin{cases} \tfrac12 d^2 & |d| \le \delta \\"
             r" \delta\,(|d| - \tfrac12 \delta) & \text{otherwise} \end{cases},"
             r"\qquad d = x - y",
    "smooth_l1": r"\ell(x, y) = \begin{cases} \dfrac{d^2}{2\beta} & |d| < \beta \\"
                 r" |d| - \tfrac12 \beta & \text{otherwise} \end{cases},\qquad d = x - y",
    "log_cosh": r"\ell(x, y) = \log\cosh(x - y)",
    "pseudo_huber": r"\ell(x, y) = \delta^2 \Bigl(\sqrt{1 + (d / \delta)^2} - 1\Bigr),"
                    r"\qquad d = x - y",
    "quantile": r"\ell(x, y) = \max\bigl(q\,(y - x),\ (q - 1)\,(y - x)\bigr)",
    "sigmoid_binary_cross_entropy":
        r"\ell(x, y) = c\,\log(1 + e^{x}) - w_+\, y' x,\qquad c = 1 + (w_+ - 1)\, y',"
        r"\quad y' = y\,(1 - s) + s/2",
    "sigmoid_focal":
        r"\ell(x, y) = \alpha_t\,(1 - p_t)^{\gamma}\,\bigl(-y \log p - (1 - y)\log(1 - p)\bigr),"
        r"\qquad p = \sigma(x),\ p_t = p\,y + (1 - p)(1 - y),"
        r"\ \alpha_t = \alpha\,y + (1 - \alpha)(1 - y)",
    "binary_cross_entropy":
        r"\ell(p, y) = -\bigl(y \log \tilde p + (1 - y) \log(1 - \tilde p)\bigr),"
        r"\qquad \tilde p = \operatorname{clip}(p, \epsilon, 1 - \epsilon)",
    "hinge": r"\ell(x, y) = \max(0,\ m - y\,x),\qquad y \in \{-1, +1\}",
    "squared_hinge": r"\ell(x, y) = \max(0,\ m - y\,x)^2,\qquad y \in \{-1, +1\}",
    "logistic": r"\ell(x, y) = \log\bigl(1 + e^{-y x}\bigr),\qquad y \in \{-1, +1\}",
    "tweedie_deviance":
        r"\ell(x, y) = \frac{y^{2-p}}{(1-p)(2-p)} - \frac{y\,\mu^{1-p}}{1-p}"
        r" + \frac{\mu^{2-p}}{2-p},\qquad \mu = e^{x}",
    "gamma_deviance": r"\ell(x, y) = \frac{y}{\mu} - \log\frac{y}{\mu} - 1,\qquad \mu = e^{x}",
    "mean_absolute_percentage_error":
        r"\ell(x, y) = 100\,\frac{|y - x|}{\max(|y|, \epsilon)}",
    "mean_squared_log_error":
        r"\ell(x, y) = \bigl(\log(\max(x, \epsilon) + 1) - \log(\max(y, \epsilon) + 1)\bigr)^2",
    "hinge_embedding":
        r"\ell(x, y) = \begin{cases} x & y = 1 \\ \max(0,\ m - x) & y = -1 \end{cases}",
    "poly1_cross_entropy":
        r"\ell(x, y) = -y \log p - (1 - y)\log(1 - p) + \epsilon\,(1 - p_t),"
        r"\qquad p = \sigma(x),\ p_t = p\,y + (1 - p)(1 - y)",
    "generalized_kl": r"\ell(q, t) = t \log\frac{t}{q} - t + q,\qquad 0 \log 0 = 0",
    "convex_kl": r"\ell(x, t) = t\,(\log t - x) + e^{x} - t,\qquad 0 \log 0 = 0",
    "poisson_nll":
        r"\ell(x, y) = \begin{cases} e^{x} - y\,x & \text{log\_input} \\"
        r" x - y \log(x + \epsilon) & \text{otherwise} \end{cases}"
        r"\ \bigl[+\, y \log y - y + \tfrac12 \log(2\pi y) \text{ if full and } y > 1\bigr]",
    "softmax_cross_entropy":
        r"\ell(x, y) = -\sum_c y'_c \log \operatorname{softmax}(x)_c,"
        r"\qquad y' = y\,(1 - s) + s / C",
    "softmax_cross_entropy_with_integer_labels":
        r"\ell(x, k) = (1 - s)\, w_k \bigl(\operatorname{lse}(x) - x_k\bigr)"
        r" + \frac{s}{C} \sum_c w_c \bigl(\operatorname{lse}(x) - x_c\bigr),"
        r"\qquad \operatorname{lse}(x) = \log \sum_c e^{x_c}",
    "kl_divergence": r"\ell(\log p, t) = \sum_c t_c\,(\log t_c - \log p_c),\qquad 0 \log 0 = 0",
    "softmax_kl_divergence":
        r"\ell(x, t) = \sum_c t_c\,\bigl(\log t_c - \log \operatorname{softmax}(x)_c\bigr)",
    "multiclass_hinge":
        r"\ell(s, k) = \sum_{j \ne k} \max(0,\ s_j - s_k + m)^p\quad"
        r"\text{(crammer\_singer: } \max_{j \ne k} \max(0,\ s_j - s_k + m)^p\text{)}",
    "cosine_embedding":
        r"\ell(x_1, x_2, y) = \begin{cases} 1 - \cos(x_1, x_2) & y = 1 \\"
        r" \max(0,\ \cos(x_1, x_2) - m) & y = -1 \end{cases},\qquad"
        r" \cos(x_1, x_2) = \frac{\sum_i x_{1i} x_{2i}}"
        r"{\sqrt{(\sum_i x_{1i}^2 + \epsilon)(\sum_i x_{2i}^2 + \epsilon)}}",
    "cosine_distance": r"\ell(x, y) = 1 - \sum_i x_i\, y_i",
    "triplet_margin":
        r"\ell(a, p, n) = \max\bigl(0,\ \|a - p + \epsilon\|_2 - \|a - n + \epsilon\|_2 + m\bigr)",
    "mean_pairwise_squared_error":
        r"\ell(x, y) = \frac{2}{n(n - 1)} \sum_{i < j}"
        r" \bigl((x_i - x_j) - (y_i - y_j)\bigr)^2",
    "nll_loss": r"\ell(z, k) = -w_k\, z_k",
    "categorical_hinge":
        r"\ell(p, t) = \max\Bigl(0,\ \max_c\,(1 - t_c)\, p_c - \sum_c t_c\, p_c + 1\Bigr)",
    "poly1_softmax_cross_entropy":
        r"\ell(x, y) = -\sum_c y_c \log q_c + \epsilon \sum_c y_c\,(1 - q_c),"
        r"\qquad q = \operatorname{softmax}(x)",
    "multilabel_soft_margin":
        r"\ell(x, y) = -\frac{1}{C} \sum_c w_c \bigl(y_c \log \sigma(x_c)"
        r" + (1 - y_c) \log(1 - \sigma(x_c))\bigr)",
    "categorical_focal_cross_entropy":
        r"\ell(x, k) = -\alpha\,(1 - p_k)^{\gamma} \log p_k,"
        r"\qquad p = \operatorname{softmax}(x)",
    "ctc_loss": r"\ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(l)} \prod_t p_t(\pi_t)",
}

# what the one-letter symbols of LATEX stand for, per loss
SYMBOLS = {
    "gaussian_nll": "x = ``input`` (the mean), y = ``target``, v = ``var`` (the variance), "
                    "ε = ``eps``; PyTorch's ``gaussian_nll_loss``.",
    "margin_ranking": "m = ``margin``; PyTorch's ``margin_ranking_loss``.",
    "huber": "δ = ``delta``.",
    "pseudo_huber": "δ = ``delta``.",
    "smooth_l1": "β = ``beta``.",
    "quantile": "q = ``quantile``.",
    "sigmoid_binary_cross_entropy": "x the logit, y the label, w₊ = ``pos_weight``, "
                                    "s = ``label_smoothing``.",
    "sigmoid_focal": "x the logit, α = ``alpha`` (α_t = 1 when α < 0), γ = ``gamma``.",
    "binary_cross_entropy": "p the predicted probability, ε = ``eps``; with ``clip=False`` "
                            "ε is added inside both logarithms instead of clipping.",
    "hinge": "m = ``margin``.",
    "squared_hinge": "m = ``margin``.",
    "poisson_nll": "ε = ``eps``; ``log_input`` and ``full`` as in PyTorch.",
    "tweedie_deviance": "x the raw prediction (log link), p = ``power``; half the unit "
                        "deviance: scikit-learn's ``HalfTweedieLoss`` loss plus its "
                        "``constant_to_optimal_zero``.",
    "gamma_deviance": "x the raw prediction (log link); half the unit deviance: "
                      "scikit-learn's ``HalfGammaLoss`` loss plus its "
                      "``constant_to_optimal_zero``.",
    "mean_absolute_percentage_error": "ε = ``eps`` (Keras' backend epsilon); per element "
                                      "(Keras averages over the last axis).",
    "mean_squared_log_error": "ε = ``eps`` (Keras' backend epsilon); per element.",
    "hinge_embedding": "m = ``margin``; x is typically a distance.",
    "poly1_cross_entropy": "x the logit, ε = ``epsilon``.",
    "generalized_kl": "q the prediction, t the target, both non-negative.",
    "convex_kl": "x the log-prediction, t the target; per element (optax sums over the "
                 "last axis: ``reduction='sum'`` over a row gives its value).",
    "softmax_cross_entropy": "Per row along ``axis``; C classes, s = ``label_smoothing``.",
    "softmax_cross_entropy_with_integer_labels":
        "Per row along ``axis``; k the label, C classes, w = ``class_weight`` (all 1 by "
        "default), s = ``label_smoothing``.",
    "kl_divergence": "Per row along ``axis``; t = exp(target) with ``log_target=True``.",
    "softmax_kl_divergence": "Per row along ``axis``.",
    "multiclass_hinge": "Per row (last axis); k the label, m = ``margin``, p = ``p``.",
    "cosine_embedding": "Per row (last axis); m = ``margin``, ε = ``eps``.",
    "cosine_distance": "Per row along ``axis``.",
    "triplet_margin": "Per row (last axis); m = ``margin``, ε = ``eps``; ``squared=True``: "
                      "max(0, ‖a − p‖² − ‖a − n‖² + m).",
    "mean_pairwise_squared_error": "Per sample: the n non-batch elements of each sample.",
    "nll_loss": "Per row along ``axis``; z the log-probabilities, k the label, "
                "w = ``class_weight`` (all 1 by default).",
    "categorical_hinge": "Per row along ``axis``; p = ``pred``, t = ``target``.",
    "poly1_softmax_cross_entropy": "Per row along ``axis``; ε = ``epsilon``.",
    "multilabel_soft_margin": "Per row (last axis); C classes, w = ``class_weight`` (all 1 "
                              "by default), σ the logistic sigmoid.",
    "categorical_focal_cross_entropy": "Per row along ``axis``; k the label, "
                                       "α = ``alpha``, γ = ``gamma``.",
}

SUBGRADIENT = {
    "gaussian_nll": "Smooth where var > eps. Where var < eps (clamped) the gradient w.r.t. "
                    "``var`` is PyTorch's: the derivative at eps, ½ (1/eps − (x − y)²/eps²) "
                    "(PyTorch clamps without recording the clamp in autograd).",
    "margin_ranking": "At the margin (−y (x₁ − x₂) + m = 0) the subgradient is −y w.r.t. "
                      "``input1`` and y w.r.t. ``input2``, as PyTorch's ``clamp_min``.",
    "absolute_error": "At pred = target the gradient is 0 (sign(0) = 0).",
    "squared_error": "Smooth everywhere.",
    "huber": "Continuously differentiable; the Hessian is 1 for |d| ≤ delta, 0 beyond.",
    "smooth_l1": "Continuously differentiable for beta > 0; the Hessian is 1/beta for "
                 "|d| < beta, 0 from |d| = beta on. With beta = 0 (L1) the gradient at d = 0 "
                 "is 0.",
    "log_cosh": "Smooth everywhere.",
    "pseudo_huber": "Smooth everywhere (gradient d/s, Hessian 1/s³, s = √(1 + (d/δ)²)).",
    "quantile": "At pred = target the subgradient is −q (scikit-learn's ``PinballLoss``).",
    "sigmoid_binary_cross_entropy": "Smooth everywhere.",
    "sigmoid_focal": "Smooth for gamma ≥ 1; at p_t = 1 the terms with (1 − p_t)^(γ−1) vanish.",
    "binary_cross_entropy": "With ``clip=True`` the gradient and Hessian are 0 where p is "
                            "clipped (p < eps or p > 1 − eps), as Keras.",
    "hinge": "At the margin (y·x = margin) the subgradient is 0.",
    "squared_hinge": "At the margin the gradient is 0 and the Hessian 0.",
    "logistic": "Smooth everywhere.",
    "poisson_nll": "Smooth where defined.",
    "tweedie_deviance": "Smooth; gradient μ^(2−p) − y μ^(1−p), Hessian "
                        "(2−p) μ^(2−p) − (1−p) y μ^(1−p) (scikit-learn's).",
    "gamma_deviance": "Smooth; gradient 1 − y/μ, Hessian y/μ (scikit-learn's).",
    "mean_absolute_percentage_error": "At pred = target the subgradient is 0.",
    "mean_squared_log_error": "Where pred < eps the gradient and Hessian are 0 (the clamp).",
    "hinge_embedding": "For y = −1 at pred = margin the subgradient is 0.",
    "poly1_cross_entropy": "Smooth everywhere.",
    "generalized_kl": "Smooth for q > 0; gradient 1 − t/q, Hessian t/q².",
    "convex_kl": "Smooth; gradient e^x − t, Hessian e^x.",
    "softmax_cross_entropy": "Smooth everywhere.",
    "softmax_cross_entropy_with_integer_labels": "Smooth everywhere; rows whose label is "
                                                 "``ignore_index`` contribute 0 with a 0 "
                                                 "gradient.",
    "kl_divergence": "At t = 0 where log p = −inf the target gradient is NaN (the loss "
                     "jumps from 0 to +inf there).",
    "softmax_kl_divergence": "Smooth everywhere.",
    "multiclass_hinge": "A term exactly at its margin contributes a 0 subgradient; with "
                        "``kind='crammer_singer'`` tied maxima share the subgradient equally.",
    "cosine_embedding": "For y = −1 at cos = margin the subgradient is 0.",
    "cosine_distance": "Linear in each input: smooth.",
    "triplet_margin": "Where the hinge is exactly 0 the subgradient is 0.",
    "mean_pairwise_squared_error": "Smooth everywhere.",
    "nll_loss": "Linear in the log-probabilities; rows whose label is ``ignore_index`` "
                "contribute 0 with a 0 gradient.",
    "categorical_hinge": "Where the hinge is exactly 0 the subgradient is 0; tied maxima of "
                         "(1 − t)·p share the subgradient equally (TensorFlow's "
                         "``reduce_max`` gradient).",
    "poly1_softmax_cross_entropy": "Smooth everywhere.",
    "multilabel_soft_margin": "Smooth everywhere.",
    "categorical_focal_cross_entropy": "Smooth for gamma ≥ 1; at p_k = 1 the gradient is 0 "
                                       "(for gamma > 0).",
}

# parameter descriptions for losses whose spec carries no rule (row-wise); name -> text,
# or (loss, name) -> text for a loss-specific meaning
PARAMS = {
    "axis": "int, default -1. The class (feature) axis; the other axes are batch axes.",
    "label_smoothing": "float in [0, 1], default 0.0. Moves the labels toward the uniform "
                       "distribution.",
    "class_weight": "array (C,), non-negative, optional. Weight of each class.",
    "ignore_index": "int, default -100. Rows with this label contribute 0 (and no weight to "
                    "'mean').",
    "log_target": "bool, default False. ``target`` holds log-probabilities.",
    ("multiclass_hinge", "margin"): "float, default 1.0. Finite.",
    ("multiclass_hinge", "kind"): "'weston_watkins' | 'crammer_singer', default "
                                  "'weston_watkins'. Sum over the wrong classes, or their "
                                  "maximum.",
    ("multiclass_hinge", "p"): "int, 1 or 2, default 1. The power of each hinge term "
                               "(PyTorch's ``p``).",
    ("cosine_embedding", "margin"): "float, default 0.0. Finite; the margin of y = −1 pairs.",
    ("cosine_embedding", "eps"): "float >= 0, default 1e-12. Added to each squared norm.",
    ("triplet_margin", "margin"): "float, default 1.0. Finite.",
    ("triplet_margin", "squared"): "bool, default False. Squared distances without eps "
                                   "(MXNet Gluon's ``TripletLoss``).",
    ("triplet_margin", "eps"): "float >= 0, default 1e-6. Added to each difference before "
                               "the norm (PyTorch).",
    ("poly1_softmax_cross_entropy", "epsilon"): "float, default 2.0. Finite; the weight of "
                                                "the (1 − p_t) term (optax's default).",
    ("multilabel_soft_margin", "class_weight"): "array (C,), non-negative, optional. Weight "
                                                "of each class (PyTorch's ``weight``).",
    ("categorical_focal_cross_entropy", "alpha"): "float >= 0, default 0.25. Scales the "
                                                  "loss (Keras).",
    ("categorical_focal_cross_entropy", "gamma"): "float >= 0, default 2.0. The focusing "
                                                  "exponent; 0 gives alpha times the "
                                                  "cross-entropy.",
}

RULES = {
    "any": "finite", ">0": "> 0", ">=0": ">= 0", "open01": "in (0, 1)", "closed01": "in [0, 1]",
    "open12": "in (1, 2)",
    "eps": "in [0, 0.5)", "alpha": "in [0, 1], or negative to disable the weighting",
}

# the array inputs' shapes, per kind (and per loss where it differs)
INPUTS = {
    ("gaussian_nll", "input"): "float32 or float64 (integers become float64). Any shape: "
                               "the result's.",
    ("gaussian_nll", "target"): "Broadcastable to ``input``'s shape.",
    ("gaussian_nll", "var"): "Non-negative variances: ``input``'s shape, that shape without "
                             "the last axis, the same number of axes with one of size 1 "
                             "(PyTorch's rule), or a scalar.",
    ("margin_ranking", "input1"): "float32 or float64 (integers become float64). Any shape: "
                                  "the result's.",
    ("margin_ranking", "input2"): "Broadcastable to ``input1``'s shape.",
    ("margin_ranking", "target"): "Broadcastable to ``input1``'s shape. Labels -1 or +1 "
                                  "(PyTorch does not check them; fastloss raises).",
    ("elementwise", "pred"): "float32 or float64 (integers become float64). "
                             "Any shape.",
    ("elementwise", "target"): "Broadcastable to ``pred``'s shape.",
    ("rowwise", "labels", "int"): "Integers, the batch shape (``{first}``'s shape "
                                  "without the class axis). Class indices in [0, C).",
    ("rowwise", "labels", "pm1"): "The batch shape (one ±1 label per row).",
    ("rowwise", "float"): "float32 or float64; rows along the class axis, "
                          "the same shape as ``{first}``.",
    ("rowwise", "first"): "float32 or float64 (integers become float64); "
                          "at least 1-D, rows along the class axis.",
    ("rowwise", "flatten"): "float32 or float64, shape (N, ...): each sample's "
                            "non-batch elements form one row.",
}

# example inputs of the elementwise losses, by domain; per-loss overrides
EW_INPUTS = {
    "regression": ("[-1.0, 0.5, 2.0]", "[0.0, 0.0, 1.0]"),
    "{-1, +1}": ("[-2.0, 0.5, 2.0]", "[-1.0, 1.0, 1.0]"),
    "[0, 1]": ("[-1.0, 0.5, 2.0]", "[0.0, 1.0, 1.0]"),
    "prob": ("[0.1, 0.6, 0.9]", "[0.0, 1.0, 1.0]"),
    "poisson_nll": ("[-1.0, 0.5, 2.0]", "[0.0, 1.0, 3.0]"),
    "[0, inf)": ("[-1.0, 0.5, 2.0]", "[0.0, 1.0, 3.0]"),
    "(0, inf)": ("[-1.0, 0.5, 2.0]", "[0.5, 1.0, 3.0]"),
}

# checked outputs of the generated examples: (per-element losses, mean, gradient of the mean);
# tests/test_doctests.py runs the examples and compares these strings with independent
# NumPy/SciPy formulas (tests/reference.py) and their finite differences
EW_EXPECTED = {
    "pseudo_huber": (
        "array([0.4142, 0.118 , 0.4142])",
        "0.3155",
        "array([-0.2357,  0.1491,  0.2357])",
    ),
    "absolute_error": ("array([1. , 0.5, 1. ])", "0.8333", "array([-0.3333,  0.3333,  0.3333])"),
    "squared_error": ("array([1.  , 0.25, 1.  ])", "0.75", "array([-0.6667,  0.3333,  0.6667])"),
    "huber": ("array([0.5  , 0.125, 0.5  ])", "0.375", "array([-0.3333,  0.1667,  0.3333])"),
    "smooth_l1": ("array([0.5  , 0.125, 0.5  ])", "0.375", "array([-0.3333,  0.1667,  0.3333])"),
    "log_cosh": ("array([0.4338, 0.1201, 0.4338])", "0.3292", "array([-0.2539,  0.154 ,  0.2539])"),
    "quantile": ("array([0.5 , 0.25, 0.5 ])", "0.4167", "array([-0.1667,  0.1667,  0.1667])"),
    "sigmoid_binary_cross_entropy": (
        "array([0.3133, 0.4741, 0.1269])",
        "0.3048",
        "array([ 0.0896, -0.1258, -0.0397])",
    ),
    "sigmoid_focal": (
        "array([0.017 , 0.0169, 0.0005])",
        "0.0114",
        "array([ 0.0131, -0.0115, -0.0004])",
    ),
    "binary_cross_entropy": (
        "array([0.1054, 0.5108, 0.1054])",
        "0.2405",
        "array([ 0.3704, -0.5556, -0.3704])",
    ),
    "hinge": ("array([0. , 0.5, 0. ])", "0.1667", "array([ 0.    , -0.3333,  0.    ])"),
    "squared_hinge": ("array([0.  , 0.25, 0.  ])", "0.0833", "array([ 0.    , -0.3333, -0.    ])"),
    "logistic": ("array([0.1269, 0.4741, 0.1269])", "0.2426", "array([ 0.0397, -0.1258, -0.0397])"),
    "poisson_nll": ("array([0.3679, 1.1487, 1.3891])", "0.9686", "array([0.1226, 0.2162, 1.463 ])"),
    "tweedie_deviance": (
        "array([1.2131, 0.1257, 0.7156])",
        "0.6848",
        "array([0.2022, 0.1684, 0.5382])",
    ),
    "gamma_deviance": (
        "array([0.0523, 0.1065, 0.3074])",
        "0.1554",
        "array([-0.1197,  0.1312,  0.198 ])",
    ),
    "mean_squared_log_error": (
        "array([0.    , 0.1644, 0.1644])",
        "0.1096",
        "array([0.    , 0.1802, 0.0901])",
    ),
    "hinge_embedding": ("array([3. , 0.5, 2. ])", "1.8333", "array([-0.3333,  0.3333,  0.3333])"),
    "poly1_cross_entropy": (
        "array([0.8511, 1.2292, 0.3653])",
        "0.8152",
        "array([ 0.2207, -0.2825, -0.1097])",
    ),
    "generalized_kl": (
        "array([0.1   , 0.1108, 0.0054])",
        "0.0721",
        "array([ 0.3333, -0.2222, -0.037 ])",
    ),
    "convex_kl": (
        "array([0.3679, 0.1487, 1.6849])",
        "0.7338",
        "array([0.1226, 0.2162, 1.463 ])",
    ),
}

# row-wise and sequence examples: (setup lines, call, expected) -- the call's output checked
ROW_EXAMPLES = {
    "softmax_cross_entropy": (
        ["logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])",
         "labels = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])"],
        "logits, labels"),
    "softmax_cross_entropy_with_integer_labels": (
        ["logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])",
         "labels = np.array([0, 2])"],
        "logits, labels"),
    "kl_divergence": (
        ["log_probs = np.log([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])",
         "target = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])"],
        "log_probs, target"),
    "softmax_kl_divergence": (
        ["logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])",
         "target = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])"],
        "logits, target"),
    "multiclass_hinge": (
        ["scores = np.array([[2.0, 1.5, 0.1], [0.5, 2.5, 0.3]])",
         "labels = np.array([0, 2])"],
        "scores, labels"),
    "cosine_embedding": (
        ["x1 = np.array([[1.0, 0.0], [1.0, 1.0]])",
         "x2 = np.array([[1.0, 1.0], [0.0, 1.0]])",
         "labels = np.array([1, -1])"],
        "x1, x2, labels"),
    "cosine_distance": (
        ["pred = np.array([[0.6, 0.8], [1.0, 0.0]])",
         "target = np.array([[0.8, 0.6], [0.0, 1.0]])"],
        "pred, target"),
    "triplet_margin": (
        ["anchor = np.array([[0.0, 0.0], [1.0, 1.0]])",
         "positive = np.array([[0.0, 1.0], [1.0, 0.0]])",
         "negative = np.array([[1.0, 1.0], [3.0, 1.0]])"],
        "anchor, positive, negative"),
    "mean_pairwise_squared_error": (
        ["pred = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])",
         "target = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])"],
        "pred, target"),
    "nll_loss": (
        ["log_probs = np.log([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])",
         "labels = np.array([0, 2])"],
        "log_probs, labels"),
    "categorical_hinge": (
        ["pred = np.array([[0.9, 0.4, 0.1], [0.2, 0.3, 0.8]])",
         "target = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])"],
        "pred, target"),
    "poly1_softmax_cross_entropy": (
        ["logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])",
         "labels = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])"],
        "logits, labels"),
    "multilabel_soft_margin": (
        ["logits = np.array([[2.0, -1.0, 0.1], [0.5, 2.5, -0.3]])",
         "target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])"],
        "logits, target"),
    "categorical_focal_cross_entropy": (
        ["logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])",
         "labels = np.array([0, 2])"],
        "logits, labels"),
}

# (mean, gradient of the mean w.r.t. the first input), checked the same way
ROW_EXPECTED = {
    "softmax_cross_entropy": (
        "0.8685",
        "array([[-0.1705,  0.1212,  0.0493],\n       [ 0.0543,  0.1512, -0.2055]])",
    ),
    "softmax_cross_entropy_with_integer_labels": (
        "1.4185",
        "array([[-0.1705,  0.1212,  0.0493],\n       [ 0.0543,  0.4012, -0.4555]])",
    ),
    "kl_divergence": ("0.0586", "array([[-0.3 , -0.15, -0.05],\n       [-0.1 , -0.25, -0.15]])"),
    "softmax_kl_divergence": (
        "0.1297",
        "array([[ 0.0295, -0.0288, -0.0007],\n       [-0.0457,  0.1512, -0.1055]])",
    ),
    "multiclass_hinge": ("2.45", "array([[-0.5,  0.5,  0. ],\n       [ 0.5,  0.5, -1. ]])"),
    "cosine_embedding": ("0.5", "array([[-0.    , -0.3536],\n       [-0.1768,  0.1768]])"),
    "cosine_distance": ("0.52", "array([[-0.4, -0.3],\n       [-0. , -0.5]])"),
    "triplet_margin": ("0.2929", "array([[ 0.3536, -0.1464],\n       [ 0.5   ,  0.5   ]])"),
    "mean_pairwise_squared_error": ("2.0", "array([[-1.,  0.,  1.],\n       [ 0., -1.,  1.]])"),
    "nll_loss": ("0.6365", "array([[-0.5,  0. ,  0. ],\n       [ 0. ,  0. , -0.5]])"),
    "categorical_hinge": ("1.0", "array([[-0.5,  0.5,  0. ],\n       [ 0. , -0.5,  0.5]])"),
    "poly1_softmax_cross_entropy": (
        "1.7638",
        "array([[-0.3952,  0.281 ,  0.1142],\n       [ 0.1027,  0.1077, -0.2104]])",
    ),
    "multilabel_soft_margin": (
        "0.4487",
        "array([[-0.0199,  0.0448, -0.0792],\n       [ 0.1037, -0.0126,  0.0709]])",
    ),
    "categorical_focal_cross_entropy": (
        "0.2572",
        "array([[-0.0129,  0.0092,  0.0037],\n       [ 0.0166,  0.1226, -0.1392]])",
    ),
}

# examples of the elementwise losses of three arrays: (setup lines, call), as ROW_EXAMPLES
EW3_EXAMPLES = {
    "gaussian_nll": (
        ["input = np.array([0.5, 1.0, 2.0])",
         "target = np.array([0.0, 1.5, 1.0])",
         "var = np.array([0.5, 1.0, 2.0])"],
        "input, target, var"),
    "margin_ranking": (
        ["input1 = np.array([1.0, 0.2, -0.5])",
         "input2 = np.array([0.5, 0.4, 0.0])",
         "target = np.array([-1.0, 1.0, 1.0])"],
        "input1, input2, target"),
}

# (mean, gradient of the mean w.r.t. the first input), checked by tests/test_elementwise_third.py
EW3_EXPECTED = {
    "gaussian_nll": ("0.2083", "array([ 0.3333, -0.1667,  0.1667])"),
    "margin_ranking": ("0.4", "array([ 0.3333, -0.3333, -0.3333])"),
}


# ------------------------------------------------ row-wise options and losses (class axis)
LATEX.update({
    "multilabel_margin":
        r"\ell(s, Y) = \frac{1}{C} \sum_{j \in Y} \sum_{i \notin Y} \max(0,\ 1 - s_j + s_i)",
    "multiclass_sparsemax_loss":
        r"\ell(z, k) = \sum_c p_c\,(z_c - z_k) + \tfrac{1}{2}\Bigl(1 - \sum_c p_c^2\Bigr),"
        r"\qquad p = \operatorname{sparsemax}(z) = \max(z - \tau, 0),\ \sum_c p_c = 1",
    "dice": r"\ell(p, t) = 1 - \frac{2 \sum_i p_i t_i + s_{nr}}{\sum_i p_i + \sum_i t_i"
            r" + s_{dr}}",
    "tversky": r"\ell(p, t) = 1 - \frac{\sum_i p_i t_i + s_{nr}}{\sum_i p_i t_i"
               r" + \alpha \sum_i p_i (1 - t_i) + \beta \sum_i (1 - p_i)\, t_i + s_{dr}}",
})
SYMBOLS.update({
    "multilabel_margin": "Per row (last axis); Y the row's listed target classes (with "
                         "repeats), C classes.",
    "multiclass_sparsemax_loss": "Per row along ``axis``; k the label, τ the sparsemax "
                                 "threshold.",
    "dice": "Per sample: i runs over every non-batch element; s_nr = ``smooth_nr``, "
            "s_dr = ``smooth_dr``.",
    "tversky": "Per sample: i runs over every non-batch element; α = ``alpha`` (false "
               "positives), β = ``beta`` (false negatives).",
})
SUBGRADIENT.update({
    "multilabel_margin": "At a pair's kink (s_j − s_i = 1) that pair's subgradient is 0.",
    "multiclass_sparsemax_loss": "Continuously differentiable; the Hessian jumps where the "
                                 "support changes (its diagonal there is that of the "
                                 "support z_c > τ).",
    "dice": "Smooth where the denominator is positive.",
    "tversky": "Smooth where the denominator is positive.",
})
PARAMS.update({
    ("softmax_cross_entropy", "class_weight"): "array (C,), non-negative, optional. Weight "
                                               "of each class (PyTorch's ``weight`` with "
                                               "probability targets; 'mean' still divides "
                                               "by the number of rows).",
    ("multiclass_hinge", "class_weight"): "array (C,), non-negative, optional. w_y scales "
                                          "the row (PyTorch's ``weight``; 'mean' divides by "
                                          "the number of rows).",
    ("cosine_embedding", "epsilon"): "float >= 0, optional. optax's form: norms clamped "
                                     "below at epsilon, max(‖x‖, epsilon); ``eps`` is then "
                                     "not used.",
    ("triplet_margin", "p"): "float >= 1, default 2.0. The norm degree of the distances "
                             "(PyTorch's ``p``).",
    ("triplet_margin", "swap"): "bool, default False. Use min(d(a, n), d(p, n)) as the "
                                "negative distance (PyTorch's distance swap).",
    ("kl_divergence", "elementwise"): "bool, default False. Per-element terms for "
                                      "'none', a mean over elements for 'mean' (PyTorch's "
                                      "``kl_div`` semantics); ``reduction='batchmean'`` is "
                                      "also taken (sum / size of the first axis).",
    ("dice", "smooth_nr"): "float >= 0, default 1e-5. Added to the numerator (MONAI).",
    ("dice", "smooth_dr"): "float >= 0, default 1e-5. Added to the denominator (MONAI).",
    ("tversky", "alpha"): "float >= 0, default 0.5. Weight of the false positives.",
    ("tversky", "beta"): "float >= 0, default 0.5. Weight of the false negatives.",
    ("tversky", "smooth_nr"): "float >= 0, default 1e-5. Added to the numerator (MONAI).",
    ("tversky", "smooth_dr"): "float >= 0, default 1e-5. Added to the denominator (MONAI).",
})
INPUTS.update({
    ("multilabel_margin", "target"): "Integers, ``scores``' shape: each row lists target "
                                     "class indices in [0, C), ended by the first "
                                     "negative entry (-1).",
})
ROW_EXAMPLES.update({
    "multilabel_margin": (
        ["scores = np.array([[0.1, 0.2, 0.4, 0.8], [0.9, -0.5, 0.3, 0.0]])",
         "target = np.array([[3, 0, -1, 1], [1, 2, -1, -1]])"],
        "scores, target"),
    "multiclass_sparsemax_loss": (
        ["scores = np.array([[2.0, 1.0, 0.1], [0.5, 1.2, 1.0]])",
         "labels = np.array([0, 2])"],
        "scores, labels"),
    "dice": (
        ["pred = np.array([[0.9, 0.2, 0.7], [0.1, 0.6, 0.4]])",
         "target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])"],
        "pred, target"),
    "tversky": (
        ["pred = np.array([[0.9, 0.2, 0.7], [0.1, 0.6, 0.4]])",
         "target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])"],
        "pred, target"),
})
ROW_EXPECTED.update({
    "multilabel_margin": ("1.2", "array([[-0.25,  0.25,  0.25, -0.25],\n"
                                 "       [ 0.25, -0.25, -0.25,  0.25]])"),
    "multiclass_sparsemax_loss": ("0.18", "array([[ 0. ,  0. ,  0. ],\n"
                                          "       [ 0. ,  0.3, -0.3]])"),
    "dice": ("0.2564", "array([[-0.1524,  0.1108, -0.1524],\n"
                       "       [ 0.1041, -0.2185, -0.2185]])"),
    "tversky": ("0.2564", "array([[-0.1524,  0.1108, -0.1524],\n"
                          "       [ 0.1041, -0.2185, -0.2185]])"),
})
