#!/usr/bin/env python3
"""Fit the polynomial coefficients of actq's fast float32 kernels
(ops/kernel/fast32.go) and print them as Go constants.

Needs numpy and mpmath (Debian: python3-numpy, python3-mpmath). Run:

    python3 scripts/fit/fit_kernels.py

Two approximations, each fitted for minimax *relative* error by Lawson's
iteratively reweighted least squares on Chebyshev nodes, against mpmath at
40 digits:

  exp(r) ≈ 1 + r + r²·(c2 + c3·r + … + c6·r⁴)      for |r| ≤ ln2/2 (+1%)

  erfcx(z) = exp(z²)·erfc(z) ≈ t·(1 + u·(s0 + s1·u + … + s7·u⁷))
      with t = 1/(1+p·z), u = 1−t = p·z·t,          for 0 ≤ z ≤ ZMAX

The second form gives erfcx(0) = 1 exactly (u = 0) and keeps relative
accuracy in the tail, where erfc(z) = exp(−z²)·erfcx(z) is tiny. ZMAX = 10.5
covers every x = −z·√2 with GELU(x) above the float32 underflow threshold.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
P = 0.5
ZMAX = 10.5
SDEG = 9
EXPDEG = 6


def lawson(V, f, base, scale, iters=100):
    """Minimise max |(base + scale·V·c − f)/f| over the nodes."""
    w = np.ones(len(f))
    for _ in range(iters):
        W = w * scale / np.abs(f)
        c, *_ = np.linalg.lstsq(V * W[:, None], (f - base) / scale * W, rcond=None)
        err = (base + scale * (V @ c) - f) / f
        w = w * np.abs(err)
        w /= w.sum()
    return c, np.max(np.abs(err))


def nodes(lo, hi, n=4000):
    k = np.arange(n)
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)


def fit_exp():
    half = float(mp.log(2) / 2) * 1.01
    r = nodes(-half, half)
    f = np.array([float(mp.exp(mp.mpf(v))) for v in r])
    V = np.vander(r, EXPDEG - 1, increasing=True)
    return lawson(V, f, 1 + r, r * r)


def fit_erfcx():
    umax = 1 - 1 / (1 + P * ZMAX)
    u = nodes(0, umax)
    z = u / (P * (1 - u))  # u = p·z/(1+p·z)
    t = 1 - u
    f = np.array([float(mp.exp(mp.mpf(v) ** 2) * mp.erfc(mp.mpf(v))) for v in z])
    V = np.vander(u, SDEG + 1, increasing=True)
    return lawson(V, f, t, t * u)


def go_consts(prefix, first, c):
    for i, v in enumerate(c):
        print("\t%s%d = %r" % (prefix, first + i, float(v)))


if __name__ == "__main__":
    c, e = fit_exp()
    print("// exp: degree %d, max relative error %.3g on |r| ≤ 1.01·ln2/2" % (EXPDEG, e))
    go_consts("expC", 2, c)
    c, e = fit_erfcx()
    print("// erfcx: p = %r, S of degree %d, max relative error %.3g on [0, %g]" % (P, SDEG, e, ZMAX))
    go_consts("erfcxS", 0, c)
