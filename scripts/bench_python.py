"""Measures the Python package against the CLI (musket.infer on the digits CNN, 360 images) and
the tensor API (mul and ReLU of 10^6 elements). Usage: python scripts/bench_python.py (with the
package installed and target/release/musket built)."""
import json
import os
import statistics
import subprocess
import time

import numpy as np
import musket
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
x = np.load(f"{root}/examples/digits-test-images.npy")
model = f"{root}/examples/digits-cnn-opset17.onnx"
for protocol in ["3pc", "2pc"]:
    walls, protos = [], []
    for _ in range(5):
        t = time.perf_counter(); y, rep = musket.infer(model, x, protocol=protocol, report=True); walls.append(time.perf_counter() - t); protos.append(rep["seconds"])
    cli_walls, cli_protos = [], []
    for _ in range(5):
        t = time.perf_counter()
        o = subprocess.run([f"{root}/target/release/musket", "infer", "--model", model, "--input", f"{root}/examples/digits-test-images.npy", "--protocol", protocol, "--json"], capture_output=True, text=True, check=True)
        cli_walls.append(time.perf_counter() - t); r = json.loads(o.stdout); cli_protos.append(r["seconds"])
    same = np.abs(np.array(r["output"]).reshape(y.shape) - y).max()
    print(f"infer digits-cnn 360 {protocol}: python protocol {statistics.median(protos):.4f} s, wall {statistics.median(walls):.4f} s; CLI protocol {statistics.median(cli_protos):.4f} s, wall {statistics.median(cli_walls):.4f} s; max |python - CLI| {same:.2e}; top-1 equal {bool((np.array(r['output']).reshape(y.shape).argmax(1) == y.argmax(1)).all())}")
n = 10**6
rng = np.random.default_rng(0)
a, b = rng.uniform(-5, 5, n), rng.uniform(-5, 5, n)
for protocol in ["3pc", "2pc"]:
    with musket.Session(protocol) as s:
        xa, xb = s.share(a, owner=0), s.share(b, owner=1)
        for name, f in [("mul", lambda: xa * xb), ("relu", lambda: xa.relu())]:
            f()  # warm-up
            ts = []
            for _ in range(5):
                t = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t); del r
            # end to end: sharing both inputs, the op, revealing
            te = []
            for _ in range(3):
                t = time.perf_counter()
                ya = s.share(a, owner=0)
                out = (ya * s.share(b, owner=1) if name == "mul" else ya.relu()).reveal()
                te.append(time.perf_counter() - t)
            print(f"tensor API {name} 1e6 {protocol}: op median {statistics.median(ts):.4f} s; end to end (share the inputs, op, reveal) {statistics.median(te):.4f} s")
