#!/usr/bin/env python3
"""Fits the Chebyshev coefficient tables of musket-nn's GELU and softmax exponential.

Prints, for each table in crates/musket-nn/src/approx.rs, the coefficients (T_0 first) and the
method error they give, so that a changed edge or degree can be refitted the same way.

- GELU_TAIL, GELU_TANH_TAIL: the tail h(a) = a Phi(-a) (and its tanh form) on [0, 4] in
  v = a/2 - 1, degree 10, by iteratively reweighted least squares (Lawson's method, close to
  minimax) with the value at the edge pinned to h(4)/2: beyond 4 the clip holds the series at
  its edge value, so the error there is at most h(4)/2 instead of h(4).
- EXP_HALF_SERIES: e^w on [-8, 0] in v = w/4 + 1, degree 10, plain least squares.

Requirements (PyPI): numpy. Usage: python3 scripts/fit_series.py
"""
from math import erf, pi, sqrt

import numpy as np
from numpy.polynomial import chebyshev as C

EDGE = 4.0
DEGREE = 10


def gelu_tail(a):
    return a * (1 - 0.5 * (1 + np.vectorize(erf)(a / sqrt(2))))


def gelu_tanh_tail(a):
    return a * (1 - np.tanh(sqrt(2 / pi) * (a + 0.044715 * a**3))) / 2


def fit_tail(h):
    a = np.linspace(0, EDGE, 40001)
    v = a / (EDGE / 2) - 1
    target = h(a)
    edge_value = float(h(np.array([EDGE]))[0])
    vander = C.chebvander(v, DEGREE)
    pin = 1e3 * C.chebvander(np.array([1.0]), DEGREE)
    weights = np.ones_like(v)
    for _ in range(200):
        rows = np.vstack([vander * np.sqrt(weights)[:, None], pin])
        rhs = np.concatenate([target * np.sqrt(weights), [1e3 * edge_value / 2]])
        coefs = np.linalg.lstsq(rows, rhs, rcond=None)[0]
        err = np.abs(vander @ coefs - target)
        weights = weights * err / (weights * err).sum() * len(weights) + 1e-12
    beyond = np.linspace(EDGE, 60, 20001)
    worst = max(np.abs(vander @ coefs - target).max(), np.abs(h(beyond) - C.chebval(1.0, coefs)).max())
    return coefs, worst


def fit_exp_half():
    w = np.linspace(-8, 0, 40001)
    v = w / 4 + 1
    coefs = C.chebfit(v, np.exp(w), DEGREE)
    return coefs, np.abs(C.chebval(v, coefs) - np.exp(w)).max()


for name, (coefs, worst) in [
    ("GELU_TAIL", fit_tail(gelu_tail)),
    ("GELU_TANH_TAIL", fit_tail(gelu_tanh_tail)),
    ("EXP_HALF_SERIES", fit_exp_half()),
]:
    print(f"{name}: method error {worst:.2e}")
    for c in coefs:
        print(f"    {float(c)!r},")
