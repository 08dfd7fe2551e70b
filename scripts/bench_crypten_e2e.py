"""CrypTen end to end, as scripts/bench_python.py measures Musket's tensor API: share the
inputs, run the op, reveal the result, for mul and ReLU of 10^6 elements; and the op alone,
as the reference figures in ../shared/reference/crypten/ time it. CrypTen's defaults, two
parties as two processes over gloo/TCP, one torch thread each (the reference's setup).

Run with the interpreter of the reference's virtual environment (its setup.sh makes it):

    /path/to/crypten/venv/bin/python scripts/bench_crypten_e2e.py [--reps 5]

Prints one line per case from party 0: the medians of the op alone and of end to end, and
the largest error of the revealed values against plaintext float64.
"""
import argparse
import statistics
import time

import numpy as np
import torch

import crypten
import crypten.communicator as comm
import crypten.mpc as mpc

N = 10**6


@mpc.run_multiprocess(world_size=2)
def run(reps):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    # The same inputs as bench_python.py: uniform in [-5, 5], a at party 0, b at party 1.
    a, b = rng.uniform(-5, 5, N), rng.uniform(-5, 5, N)
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    rank = comm.get().get_rank()
    cases = [("mul", lambda x, y: x * y, a * b), ("relu", lambda x, y: x.relu(), np.maximum(a, 0))]
    lines = []
    for name, op, want in cases:
        xa, xb = crypten.cryptensor(ta, src=0), crypten.cryptensor(tb, src=1)
        op(xa, xb)  # warm-up
        alone = []
        for _ in range(reps):
            comm.get().barrier()
            t = time.perf_counter()
            op(xa, xb)
            alone.append(time.perf_counter() - t)
        whole, err = [], 0.0
        for _ in range(reps):
            comm.get().barrier()
            t = time.perf_counter()
            out = op(crypten.cryptensor(ta, src=0), crypten.cryptensor(tb, src=1)).get_plain_text()
            whole.append(time.perf_counter() - t)
            err = max(err, float(np.abs(out.double().numpy() - want).max()))
        lines.append(
            f"crypten {name} 1e6 2pc: op median {statistics.median(alone):.4f} s; end to end "
            f"(share the inputs, op, reveal) {statistics.median(whole):.4f} s; max error {err:.2e}"
        )
    return lines if rank == 0 else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    results = run(args.reps)
    if results is None:
        raise SystemExit("a CrypTen party failed")
    for line in results[0]:
        print(line, flush=True)


if __name__ == "__main__":
    main()
