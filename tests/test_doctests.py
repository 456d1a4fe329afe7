"""The ``>>>`` examples of the package and of the user guide run and print what they show.

The same examples as ``pytest --doctest-modules fastloss``, collected here so that the
default test run checks them: every module's docstrings, every loss function's generated
docstring (its example's output was checked against independent NumPy formulas when it was
written, ``fastloss/_doctext.py``), and the worked examples of ``docs/guide/*.md`` and
``docs/api/*.rst``.  Modules whose optional library is missing are skipped.  The examples use
float64 inputs of a few elements: the serial float64 kernels the rest of the suite compiles.
"""
from __future__ import annotations

import doctest
import glob
import importlib
import os
import pkgutil
import re

import pytest

import fastloss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


# fastloss.torch's module example prints nothing to check and costs an import of PyTorch
# plus a float32 compile; tests/test_torch_bridge.py runs the same calls with assertions
SKIP = ("fastloss.__main__", "fastloss.torch")


def _modules():
    names = ["fastloss"]
    for m in pkgutil.walk_packages(fastloss.__path__, "fastloss."):
        if m.name in SKIP:
            continue
        names.append(m.name)
    return sorted(names)


def _run(tests, name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for t in tests:
        runner.run(t)
    res = runner.summarize(verbose=False)
    assert res.failed == 0, f"{name}: {res.failed} of {res.attempted} examples failed (output above)"
    return res.attempted


@pytest.mark.parametrize("modname", _modules())
def test_module_docstrings(modname):
    try:
        mod = importlib.import_module(modname)
    except ImportError as exc:           # an optional library (torch, dask, ...) is missing
        pytest.skip(f"{modname}: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(mod, modname) if t.examples]
    if modname == "fastloss":            # the loss functions live in fastloss._api's globals:
        tests = [t for t in tests if t.name.split(".")[-1] not in fastloss.LOSSES]
    if not tests:
        pytest.skip(f"{modname}: no examples")
    _run(tests, modname)


@pytest.mark.parametrize("name", list(fastloss.LOSSES))
def test_loss_docstring_example(name):
    fn = fastloss.LOSSES[name].func
    doc = fn.__doc__ or ""
    assert "Returns\n-------" in doc, f"{name}: no Returns section"
    if ">>>" not in doc:
        pytest.skip(f"{name}: no example (no example inputs in fastloss/_doctext.py)")
    t = doctest.DocTestParser().get_doctest(doc, {}, f"fastloss.{name}", None, 0)
    assert _run([t], name) >= 3


def _doc_files():
    return sorted(glob.glob(os.path.join(ROOT, "docs", "guide", "*.md"))
                  + glob.glob(os.path.join(ROOT, "docs", "api", "*.rst")))


@pytest.mark.parametrize("path", _doc_files(), ids=os.path.basename)
def test_docs_examples(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if ">>>" not in text:
        pytest.skip("no examples")
    # Markdown code fences end an example's expected output
    text = re.sub(r"^\s*```.*$", "", text, flags=re.M)
    t = doctest.DocTestParser().get_doctest(text, {}, os.path.basename(path), path, 0)
    _run([t], os.path.basename(path))


# ---------------------------------------------------- the examples' outputs, independently
def _arr(text):
    import numpy as np
    return np.array(eval(text.replace("array(", "(").replace("\n", " ")), float)  # noqa: S307


def _fd(f, x, h=1e-6):
    import numpy as np
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name", sorted(__import__("fastloss._doctext").
                                        _doctext.EW_EXPECTED))
def test_elementwise_example_outputs_match_reference(name):
    """The printed outputs of the generated examples equal NumPy/SciPy formulas (no kernel)."""
    import numpy as np
    from fastloss import _doctext as T
    from reference import ref_loss
    if name == "pseudo_huber":
        ref = lambda x, y: np.sqrt(1 + (x - y) ** 2) - 1  # noqa: E731  (delta = 1)
    else:
        ref = lambda x, y: ref_loss(name, x, y)  # noqa: E731
    spec = fastloss.LOSSES[name].spec
    dom = ("poisson_nll" if name == "poisson_nll" else "prob" if spec.pred_domain
           else spec.target_domain or "regression")
    x, y = (np.array(eval(v), float) for v in T.EW_INPUTS[dom])  # noqa: S307
    none, mean, grad = T.EW_EXPECTED[name]
    np.testing.assert_allclose(_arr(none), ref(x, y), atol=6e-5)
    assert abs(float(mean) - ref(x, y).mean()) <= 6e-5
    np.testing.assert_allclose(_arr(grad), _fd(lambda z: ref(z, y).mean(), x), atol=6e-5)


def _row_refs():
    import numpy as np
    from scipy.special import log_softmax, logsumexp

    def cos(a, b, eps=1e-12):
        return (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + eps) * ((b * b).sum(-1) + eps))

    def mpse(p, t):
        n = p.shape[1]
        d = p - t
        return np.mean([sum((d[s, i] - d[s, j]) ** 2 for i in range(n) for j in range(i + 1, n))
                        / (n * (n - 1) / 2) for s in range(len(p))])

    def mlm(s, tg):   # PyTorch's pairs (target, non-target), divided by C
        out = []
        for si, ti in zip(s, tg):
            ys = list(ti[:list(ti).index(-1)] if -1 in list(ti) else ti)
            out.append(sum(max(0.0, 1 - si[j] + si[i]) for j in ys for i in range(len(si))
                           if i not in ys) / len(si))
        return np.mean(out)

    def msm(z, k):   # optax, with a sort-based sparsemax
        out = []
        for zi, ki in zip(z, k):
            zs = np.sort(zi)[::-1]
            r = np.arange(1, len(zi) + 1)
            kk = r[1 + r * zs > np.cumsum(zs)].max()
            p = np.maximum(zi - (np.cumsum(zs)[kk - 1] - 1) / kk, 0)
            out.append(p @ (zi - zi[ki]) + 0.5 * (1 - p @ p))
        return np.mean(out)

    return {
        "softmax_cross_entropy": lambda x, y: -(y * log_softmax(x, -1)).sum(-1).mean(),
        "softmax_cross_entropy_with_integer_labels":
            lambda x, k: (logsumexp(x, -1) - x[np.arange(len(k)), k]).mean(),
        "kl_divergence": lambda lp, t: (t * (np.log(t) - lp)).sum(-1).mean(),
        "softmax_kl_divergence": lambda x, t: (t * (np.log(t) - log_softmax(x, -1))).sum(-1).mean(),
        "multiclass_hinge": lambda s, k: np.mean([
            sum(max(0.0, s[i, j] - s[i, k[i]] + 1) for j in range(s.shape[1]) if j != k[i])
            for i in range(len(k))]),
        "cosine_embedding": lambda a, b, y: np.where(y == 1, 1 - cos(a, b),
                                                     np.maximum(0, cos(a, b))).mean(),
        "cosine_distance": lambda a, b: (1 - (a * b).sum(-1)).mean(),
        "triplet_margin": lambda a, p, n: np.maximum(
            0, np.linalg.norm(a - p + 1e-6, axis=-1) - np.linalg.norm(a - n + 1e-6, axis=-1)
            + 1).mean(),
        "mean_pairwise_squared_error": mpse,
        "nll_loss": lambda lp, k: -lp[np.arange(len(k)), k].mean(),
        "categorical_hinge": lambda p, t: np.maximum(
            0, ((1 - t) * p).max(-1) - (t * p).sum(-1) + 1).mean(),
        "poly1_softmax_cross_entropy": lambda x, y: (
            -(y * log_softmax(x, -1)).sum(-1) + 2.0 * (y * (1 - np.exp(log_softmax(x, -1))))
            .sum(-1)).mean(),
        "multilabel_soft_margin": lambda x, y: np.mean(
            -(y * np.log(1 / (1 + np.exp(-x))) + (1 - y) * np.log(1 / (1 + np.exp(x))))),
        "categorical_focal_cross_entropy": lambda x, k: np.mean(
            -0.25 * (1 - np.exp(log_softmax(x, -1)[np.arange(len(k)), k])) ** 2
            * log_softmax(x, -1)[np.arange(len(k)), k]),
        "multilabel_margin": mlm,
        "multiclass_sparsemax_loss": msm,
        "dice": lambda p, t: np.mean(1 - (2 * (p * t).sum(-1) + 1e-5)
                                     / (p.sum(-1) + t.sum(-1) + 1e-5)),
        "tversky": lambda p, t: np.mean(1 - ((p * t).sum(-1) + 1e-5) / (
            (p * t).sum(-1) + 0.5 * (p * (1 - t)).sum(-1) + 0.5 * ((1 - p) * t).sum(-1)
            + 1e-5)),
    }


@pytest.mark.parametrize("name", sorted(__import__("fastloss._doctext").
                                        _doctext.ROW_EXPECTED))
def test_rowwise_example_outputs_match_reference(name):
    import numpy as np
    from fastloss import _doctext as T
    setup, args = T.ROW_EXAMPLES[name]
    ns = {"np": np}
    for line in setup:
        exec(line, ns)  # noqa: S102
    a = [ns[n.strip()] for n in args.split(",")]
    ref = _row_refs()[name]
    mean, grad = T.ROW_EXPECTED[name]
    assert abs(float(mean) - ref(*a)) <= 6e-5
    np.testing.assert_allclose(_arr(grad), _fd(lambda z: ref(z, *a[1:]), a[0]), atol=6e-5)
