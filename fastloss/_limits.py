"""Row results the fused kernels cannot form, recomputed exactly on the host.

``cosine_embedding`` divides by the row norms.  A row with an infinite entry, or whose
squared norm overflows float64 (entries beyond about 1.3e154), has no finite norm; the
kernel marks such a row with NaN and :func:`cosine_embedding_rows` recomputes it here
from the limit (or, for an overflow, from rows scaled by their largest entry):

* x1 with K1 infinite entries, x2 finite: cos → Σ_k s_k x2_k / (sqrt(K1) sqrt(Σx2² + eps))
  over the infinite entries k (s_k their signs); the gradient of x1 tends to 0;
* both with infinite entries: cos → Σ_{k in both} s1_k s2_k / sqrt(K1 K2), gradients 0.

Only rows that came back NaN from inputs without NaN are touched, so this never runs on
finite data of ordinary size.
"""
from __future__ import annotations

import numpy as np

__all__ = ["cosine_embedding_rows"]


def _direction(v):
    """(direction, infinite?) of a float64 row: the signs of its infinite entries (0
    elsewhere) when it has some, else the row itself."""
    inf = np.isinf(v)
    if inf.any():
        return np.where(inf, np.sign(v), 0.0), True
    return v, False


def _cos_parts(a, b, eps):
    """cos and its gradients (d cos/da, d cos/db) at the limit, float64 rows."""
    ua, ia = _direction(a)
    ub, ib = _direction(b)
    if ia and ib:
        cs = float(ua @ ub) / np.sqrt(float(ua @ ua) * float(ub @ ub))
        return cs, np.zeros_like(a), np.zeros_like(b)
    if ia or ib:   # one infinite side: its unit vector against the other, exact side
        u, x = (ua, b) if ia else (ub, a)
        u = u / np.sqrt(float(u @ u))
        sx = np.max(np.abs(x))
        if sx > 0 and np.isfinite(sx):
            xs = x / sx
            nx = np.sqrt(float(xs @ xs) + eps / sx / sx)   # ‖x‖ (with eps) / sx
            cs = float(u @ xs) / nx
            gx = (u / nx - cs * xs / (nx * nx)) / sx
        else:        # x = 0: cos = 0, d cos/dx = u / sqrt(eps)
            cs = 0.0
            gx = u / np.sqrt(eps) if eps > 0 else np.full_like(x, np.nan)
        g0 = np.zeros_like(a if ia else b)
        return (cs, g0, gx) if ia else (cs, gx, g0)
    # both finite, a norm overflowed: scale each row by its largest entry
    sa, sb = np.max(np.abs(a)), np.max(np.abs(b))
    sa = sa if sa > 0 else 1.0
    sb = sb if sb > 0 else 1.0
    xa, xb = a / sa, b / sb
    na = float(xa @ xa) + eps / sa / sa
    nb = float(xb @ xb) + eps / sb / sb
    den = np.sqrt(na * nb)
    cs = float(xa @ xb) / den
    ga = (xb / den - cs * xa / na) / sa
    gb = (xa / den - cs * xb / nb) / sb
    return cs, ga, gb


def cosine_embedding_rows(A, B, YL, out_l, gA, gB, rw, ws, gscale, margin, eps):
    """Recompute, in place, the rows of ``out_l`` (and of the gradient buffers ``gA``,
    ``gB`` of shape (N, D), or None) that the kernel left NaN although their inputs hold
    no NaN.  Returns the new total Σ rw·ℓ (float64, in row order)."""
    bad = np.flatnonzero(np.isnan(out_l))
    for i in bad:
        a = A[i].astype(np.float64)
        b = B[i].astype(np.float64)
        if np.isnan(a).any() or np.isnan(b).any():
            continue
        r = ws * (1.0 if rw is None else float(rw[i]))
        if r != r:
            continue
        cs, da, db = _cos_parts(a, b, float(eps))
        if YL[i] > 0:
            loss, dl = max(0.0, 1.0 - cs), -1.0
        else:
            d = cs - margin
            loss, dl = (d, 1.0) if d > 0 else (0.0, 0.0)
        out_l[i] = loss * r
        g = dl * r * gscale
        if gA is not None:
            gA[i] = g * da
        if gB is not None:
            gB[i] = g * db
    return float(np.sum(out_l, dtype=np.float64))
