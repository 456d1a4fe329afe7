"""The gallery of every loss, drawn from ``fastloss.LOSSES`` at build time.

For each registered loss: the value, the gradient and (where the loss has one) the diagonal
Hessian against the prediction, with the target fixed as in the MXNet Gluon loss tutorial
(regression losses at target 0, classification losses at label 1); for row-wise losses a
slice through one entry of a 3-class (3-feature) row; for CTC the loss and heat maps of the
softmax and of the gradient of a short sequence.  Everything is float64 and small, so the
figures cost the kernels' compile time and little else.  A loss added to the registry gets
its figure at the next build without anyone drawing it.

Writes ``docs/gallery/index.rst`` and ``docs/gallery/images/*.png`` (both generated, not
committed).
"""
from __future__ import annotations

import os

import numpy as np

X = np.linspace(-4.0, 4.0, 401)


def _elementwise(info):
    spec = info.spec
    if spec.pred_domain:                               # probabilities in
        x, y, what = np.linspace(0.002, 0.998, 499), 1.0, "label 1"
    elif spec.target_domain:                           # labels ±1 or [0, 1]
        x, y, what = X, 1.0, "label 1"
    elif info.name == "poisson_nll":
        x, y, what = X, 1.0, "count 1"
    else:
        x, y, what = X, 0.0, "target 0"
    t = np.full_like(x, y)
    args = (x, t)
    if len(info.inputs) == 3:    # gaussian_nll: target 0, variance 1; margin_ranking:
        args = (x, np.zeros_like(x), np.ones_like(x))   # input2 0, label 1
        what = "target 0, var 1" if info.name == "gaussian_nll" else "input2 0, label 1"
    v = info.func(*args, reduction="none")
    import fastloss
    if info.has_hessian:
        g, h = fastloss.grad_and_hessian(info.func)(*args, reduction="none")
    else:
        h = None
        g = fastloss.grad(info.func)(*args, reduction="none")
    return x, v, g, h, what


_OTHER = (np.array([1.0, 0.5, -0.5]), np.array([-1.0, 0.5, 0.5]))


def _rowwise(info):
    """A slice through entry ``k`` of the first input of a 3-wide row, the rest fixed."""
    spec = info.spec
    n, C = X.size, 3
    k = 1                                              # the labelled class
    first = info.inputs[0]
    args, floats = [], 0
    for name in info.inputs:
        if name == first:
            base = np.tile(np.array([0.0, 0.3, -0.2]), (n, 1))
            base[:, k] = X
            args.append(base)
        elif name == getattr(spec, "labels", None):
            args.append(np.full(n, k if spec.label_kind == "int" else 1))
        elif info.name == "multilabel_margin":         # class indices, ended by -1: {k}
            args.append(np.tile(np.array([k, -1, -1]), (n, 1)))
        elif name == getattr(spec, "prob", None):
            if "cross_entropy" in info.name:           # one-hot label k
                args.append(np.tile(np.eye(C)[k], (n, 1)))
            else:
                args.append(np.tile(np.array([0.2, 0.5, 0.3]), (n, 1)))
        else:
            args.append(np.tile(_OTHER[floats % 2], (n, 1)))
            floats += 1
    import fastloss
    v = info.func(*args, reduction="none")
    g = fastloss.grad(info.func)(*args, reduction="none")
    h = (fastloss.grad_and_hessian(info.func)(*args, reduction="none")[1]
         if info.has_hessian else None)
    label = ("label 1" if getattr(spec, "labels", None) else
             "target (0.2, 0.5, 0.3)" if getattr(spec, "prob", None) else
             "other inputs fixed")
    return X, v, g, h, k, label


def _plot_curves(ax_v, ax_g, ax_h, x, v, g, h, xlabel):
    ax_v.plot(x, v, color="C0")
    ax_v.set_title("loss")
    ax_g.plot(x, g, color="C1")
    ax_g.set_title("gradient")
    for a in (ax_v, ax_g) + ((ax_h,) if ax_h is not None else ()):
        a.axhline(0, color="0.8", lw=0.8, zorder=0)
        a.set_xlabel(xlabel)
        a.grid(alpha=0.3)
    if ax_h is not None:
        ax_h.plot(x, h, color="C2")
        ax_h.set_title("diagonal Hessian")


def _metric(info, plt):
    """A batch of 2-D embeddings (3 classes of 4, seed 0) and the descent direction −∇ of
    the loss at each one (for ``contrastive``: 8 pairs, solid similar, dotted dissimilar)."""
    import fastloss
    rng = np.random.default_rng(0)
    name = info.name
    fig, ax = plt.subplots(1, 1, figsize=(4.6, 3.6), constrained_layout=True)
    if name in ("contrastive", "npairs"):
        n = 8
        a = rng.normal(size=(n, 2))
        b = a + 0.8 * rng.normal(size=(n, 2))
        lab = (np.arange(n) % 2) if name == "contrastive" else np.arange(n) % 4
        v, (ga, gb) = fastloss.value_and_grad(info.func, argnums=(1, 2))(lab, a, b)
        for i in range(n):
            c = f"C{lab[i]}"
            ax.plot(*np.stack([a[i], b[i]]).T, color=c, lw=1,
                    ls="-" if name == "npairs" or lab[i] else ":")
        pts, g = np.vstack([a, b]), np.vstack([ga, gb])
        cols = [f"C{k}" for k in np.concatenate([lab, lab])]
        what = ("8 pairs (solid: label 1, dotted: label 0)" if name == "contrastive"
                else "8 anchor–positive pairs of 4 classes")
    else:
        lab = np.repeat(np.arange(3), 4)
        pts = rng.normal(size=(12, 2)) + 0.8 * np.repeat(rng.normal(size=(3, 2)), 4, axis=0)
        args = (pts, lab) if name == "ntxent" else (lab, pts)
        v, g = fastloss.value_and_grad(info.func, argnums=0 if name == "ntxent" else 1)(*args)
        cols = [f"C{k}" for k in lab]
        what = "12 embeddings of 3 classes"
    ax.scatter(pts[:, 0], pts[:, 1], c=cols, s=18, zorder=3)
    ax.quiver(pts[:, 0], pts[:, 1], -g[:, 0], -g[:, 1], color=cols, angles="xy", width=0.004)
    ax.set_title(f"{name} = {float(v):.3f}: −gradient")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    caption = (f"``{name}`` of {what} in 2-D (random, seed 0), default parameters: the "
               f"arrows are the descent direction −∇ at every embedding.")
    return fig, caption


def draw(info, path):
    """Draw one loss's figure into ``path``; return the caption."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = info.name
    if info.kind == "elementwise":
        x, v, g, h, what = _elementwise(info)
        ncol = 3 if h is not None else 2
        fig, axs = plt.subplots(1, ncol, figsize=(3.2 * ncol, 2.7), constrained_layout=True)
        _plot_curves(axs[0], axs[1], axs[2] if h is not None else None, x, v, g, h, "pred")
        caption = (f"``{name}`` at {what} with default parameters: value, gradient"
                   + (" and diagonal Hessian" if h is not None else "") + " against ``pred``.")
    elif info.kind == "rowwise":
        x, v, g, h, k, what = _rowwise(info)
        first = info.inputs[0]
        ncol = 3 if h is not None else 2
        fig, axs = plt.subplots(1, ncol, figsize=(3.2 * ncol, 2.7), constrained_layout=True)
        axs[0].plot(x, v, color="C0")
        axs[0].set_title("loss")
        for j in range(g.shape[1]):
            axs[1].plot(x, g[:, j], color=f"C{j + 1}", ls="-" if j == k else "--",
                        label=f"∂/∂{first}[{j}]")
        axs[1].set_title("gradient")
        axs[1].legend(fontsize=7, frameon=False)
        if h is not None:
            for j in range(h.shape[1]):
                axs[2].plot(x, h[:, j], color=f"C{j + 1}", ls="-" if j == k else "--")
            axs[2].set_title("diagonal Hessian")
        for a in axs:
            a.axhline(0, color="0.8", lw=0.8, zorder=0)
            a.set_xlabel(f"{first}[{k}]")
            a.grid(alpha=0.3)
        caption = (f"``{name}``: a slice through ``{first}[{k}]`` of a 3-wide row "
                   f"(the other entries 0 and −0.2), {what}, default parameters"
                   + (": value, gradient and diagonal Hessian." if h is not None else
                      ": value and gradient (no Hessian)."))
    elif info.kind == "ctc":
        import fastloss
        rng = np.random.default_rng(0)
        T, C = 12, 5
        logits = rng.standard_normal((1, T, C)) * 1.5
        labels = np.array([[1, 2, 2, 3]])
        il, ll = np.array([T]), np.array([4])
        v, g = fastloss.value_and_grad(info.func)(logits, labels, il, ll, reduction="sum")
        p = np.exp(logits[0] - logits[0].max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        fig, axs = plt.subplots(1, 2, figsize=(7.0, 2.9), constrained_layout=True)
        im0 = axs[0].imshow(p.T, aspect="auto", cmap="viridis", origin="lower")
        axs[0].set_title("softmax(logits)")
        fig.colorbar(im0, ax=axs[0])
        lim = float(np.abs(g).max())
        im1 = axs[1].imshow(g[0].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                            origin="lower")
        axs[1].set_title(f"gradient (loss = {float(v):.3f})")
        fig.colorbar(im1, ax=axs[1])
        for a in axs:
            a.set_xlabel("frame t")
            a.set_ylabel("class (0 = blank)")
        caption = (f"``{name}`` of one sequence of 12 frames, 5 classes (random logits, seed 0),"
                   f" labels 1 2 2 3: the softmax, and the gradient softmax − posterior "
                   f"occupancy (loss {float(v):.4f}).")
    elif info.kind == "metric":                        # fastloss._metric
        fig, caption = _metric(info, plt)
    else:                                              # a family the gallery does not know
        return None
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return caption


TITLES = {"elementwise": "Elementwise losses", "rowwise": "Class-axis and row-wise losses",
          "ctc": "Sequence losses", "metric": "Metric-learning losses"}


def build(srcdir):
    import fastloss

    out_dir = os.path.join(srcdir, "gallery")
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    lines = ["..", "   Generated by docs/_ext/gallery.py from fastloss.LOSSES; do not edit.", "",
             "Gallery of losses", "=================", "",
             "Every registered loss, drawn at build time from ``fastloss.LOSSES`` in float64 "
             "with the fused kernels themselves (the same ``value_and_grad`` / "
             "``grad_and_hessian`` calls as user code). Regression losses are drawn at "
             "target 0 and classification losses at label 1, as in the MXNet Gluon loss "
             "tutorial; row-wise losses as a slice through one entry of a row.", ""]
    kinds = []
    for info in fastloss.LOSSES.values():
        if info.kind not in kinds:
            kinds.append(info.kind)
    for kind in kinds:
        title = TITLES.get(kind, f"{kind} losses")
        lines += [title, "-" * len(title), ""]
        for name, info in fastloss.LOSSES.items():
            if info.kind != kind:
                continue
            png = os.path.join(img_dir, f"{name}.png")
            caption = draw(info, png)
            lines += [f".. _gallery-{name}:", "", name, "~" * len(name), ""]
            if caption is None:
                lines += [f"No figure for the {kind} family yet: see :func:`fastloss.{name}`.", ""]
                continue
            lines += [f".. figure:: images/{name}.png", f"   :alt: {name}: value and gradient",
                      "   :width: 100%", "", f"   {caption} API: :func:`fastloss.{name}`.", ""]
    text = "\n".join(lines) + "\n"
    index = os.path.join(out_dir, "index.rst")
    old = open(index).read() if os.path.exists(index) else None
    if old != text:
        with open(index, "w") as f:
            f.write(text)


def setup(app):
    app.connect("config-inited", lambda app, config: build(app.srcdir))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
