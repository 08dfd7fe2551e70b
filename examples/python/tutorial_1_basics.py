"""CrypTen's Tutorial 1 ("Basics of CrypTen tensors") for Musket: secret-share tensors, compute
on them, and open only the result. Run: python examples/python/tutorial_1_basics.py"""

import numpy as np

import musket

with musket.Session("3pc") as s:
    # Party 0 shares x, party 1 shares y: each share alone says nothing about the value.
    x = s.share(np.array([1.0, 2.0, 3.0]), owner=0)
    y = s.share(np.array([4.0, 5.0, 6.0]), owner=1)
    print("x + y =", (x + y).reveal())
    print("x * y =", (x * y).reveal())
    print("x - 1.5 =", (x - 1.5).reveal())
    print("x / 2 =", (x / 2).reveal())
    # Comparisons give secret 0/1 values; nothing is opened until reveal().
    print("x < y   =", (x < y).reveal())
    print("x > 2   =", (x > 2).reveal())
    # Functions of secret values (fixed-point approximations with documented error bounds).
    print("exp(x)  =", x.exp().reveal(), " numpy:", np.exp([1.0, 2.0, 3.0]))
    print("sqrt(y) =", y.sqrt().reveal(), " numpy:", np.sqrt([4.0, 5.0, 6.0]))
    print("1 / y   =", y.reciprocal().reveal())
    print("sigmoid(x - 2) =", (x - 2).sigmoid().reveal())
    print("softmax(x) =", x.softmax().reveal())
    # Matrices: products, transposes, indexing, sums.
    a = s.share(np.arange(6.0).reshape(2, 3), owner=0)
    b = s.share(np.ones((3, 2)), owner=1)
    print("a @ b =\n", (a @ b).reveal())
    print("a.T[1:] =\n", a.T[1:].reveal())
    print("sum(a, axis 1) =", a.sum(axis=1).reveal())
