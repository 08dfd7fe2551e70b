"""CrypTen's Tutorial 2 ("Inside CrypTen tensors") for Musket: what the parties exchange. Each
secure operation costs communication rounds and bytes; linear ones (additions, public
scalings) cost nothing, products one exchange, comparisons a circuit. The two protocols:
"3pc" (three parties, replicated sharing) and "2pc" (two parties and a dealer of correlated
randomness, CrypTen's model). Run: python examples/python/tutorial_2_inside.py"""

import numpy as np

import musket

n = 10_000
rng = np.random.default_rng(0)
for protocol in ["2pc", "3pc"]:
    with musket.Session(protocol) as s:
        x = s.share(rng.uniform(-5, 5, n), owner=0)
        y = s.share(rng.uniform(-5, 5, n), owner=1)
        print(f"--- {protocol}, {n} elements")
        for name, f in [
            ("x + y (local)", lambda: x + y),
            ("3 * x (local)", lambda: 3 * x),
            ("x * y", lambda: x * y),
            ("x < y", lambda: x < y),
            ("relu(x)", lambda: x.relu()),
            ("sigmoid(x)", lambda: x.sigmoid()),
        ]:
            r0, b0 = s.stats()
            f()
            r1, b1 = s.stats()
            sent = [after - before for before, after in zip(b0, b1)]
            print(f"{name:16s} {r1 - r0:3d} rounds, bytes sent per party {sent}")
