"""One party of the cluster test (tests/test_musket.py runs three of these): every party runs
this same script, as with CrypTen's one process per party."""

import json
import sys

import numpy as np

import musket

config, party = sys.argv[1], int(sys.argv[2])
s = musket.Session.from_cluster(config, party)
out = {"party": party, "protocol": s.protocol}
if s.party is not None and (s.protocol == "3pc" or party < 2):
    a = np.array([[1.0, -2.0], [3.0, 4.0]])
    b = np.array([[0.5, 1.0], [-1.0, 2.0]])
    x = s.share(a if party == 0 else None, owner=0, shape=(2, 2))
    y = s.share(b if party == 1 else None, owner=1, shape=(2, 2))
    out["sum"] = (x + y).reveal().tolist()
    out["relu_prod"] = (x @ y).relu().reveal().tolist()
    only1 = (x * y).reveal_to(1)
    out["only1"] = None if only1 is None else only1.tolist()
    s.close()
print(json.dumps(out))
