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
if s.protocol == "3pc":
    # A value its owner cannot encode, first thing in a new session (connecting is a barrier,
    # so no party is still busy with an earlier call): the owner is refused, and party 1,
    # which waits for the owner's message, is stopped rather than left waiting (by the
    # owner's abort, also when that comes while its thread is still setting up). Party 2
    # receives nothing in an input of party 0's, so its call completes.
    s = musket.Session.from_cluster(config, party)
    try:
        s.share(np.array([1e300]) if party == 0 else None, owner=0, shape=(1,))
        out["bad_share"] = "accepted"
    except musket.MusketError as e:
        out["bad_share"] = type(e).__name__
    s.close()
print(json.dumps(out))
