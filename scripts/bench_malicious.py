#!/usr/bin/env python3
"""Measures the malicious-secure 3PC back end against the semi-honest one in the same session
(issue 14) and prints a markdown table: seconds (median of --reps runs), rounds, MB sent by the
busiest party, and the ratios; for models also the largest difference between the two outputs
and from the f64 reference (`--check`).

Usage: python3 scripts/bench_malicious.py [--reps N] [--musket target/release/musket]
Standard library only; run from anywhere after `cargo build --release`.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = ["lt-1e5", "relu-1e5", "matmul-256"]
MODELS = [
    ("digits MLP", "digits-mlp-opset17.onnx", "digits-mlp-sample.npy"),
    ("digits CNN", "digits-cnn-opset17.onnx", "digits-cnn-sample.npy"),
    ("ops model", "ops-opset17.onnx", "ops-input.npy"),
    ("digits transformer", "digits-transformer-opset17.onnx", "digits-transformer-sample.npy"),
    ("LeNet-5", "lenet5-28-opset17.onnx", "lenet5-28-sample.npy"),
    ("ResNet-18 32x32", "resnet18-32-opset17.onnx", "resnet18-32-sample.npy"),
]
SECURITY = ["semi-honest", "malicious"]


def run(musket, args):
    out = subprocess.run([musket] + args, cwd=ROOT, capture_output=True, text=True, check=True)
    text = out.stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text.splitlines()[-1])


def row(name, results):
    sh, mal = results["semi-honest"], results["malicious"]
    t = [statistics.median(r["seconds"]) for r in (sh, mal)]
    b = [max(r["bytes"]) / 1e6 for r in (sh, mal)]
    cells = [name, f"{t[0]:.3f}", f"{t[1]:.3f}", f"{t[1] / t[0]:.0f}x", f"{sh['rounds']}", f"{mal['rounds']}",
             f"{b[0]:.2f}", f"{b[1]:.2f}", f"{b[1] / b[0]:.2f}x", mal.get("extra", "")]
    print("| " + " | ".join(cells) + " |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--musket", default=os.path.join(ROOT, "target/release/musket"))
    a = ap.parse_args()
    print("| case | semi-honest s | malicious s | time | rounds sh | rounds mal | MB sh (max party) "
          "| MB mal | bytes | outputs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for amounts in [("5000000", "7000000")]:
        res = {}
        for sec in SECURITY:
            times, last = [], None
            for _ in range(a.reps):
                t0 = time.perf_counter()
                last = run(a.musket, ["millionaires", "--security", sec, "--json", "--", *amounts])
                times.append(time.perf_counter() - t0)
            res[sec] = {"seconds": times, "rounds": last["rounds"], "bytes": last["bytes_sent"],
                        "extra": f"{last['richer']} richer"}
        row("millionaires (process, end to end)", res)
    for op in OPS:
        res = {}
        for sec in SECURITY:
            r = run(a.musket, ["bench", "--only", op, "--protocol", "3pc", "--security", sec,
                               "--reps", str(a.reps), "--json"])[0]
            res[sec] = {"seconds": [r["seconds"]], "rounds": r["rounds"], "bytes": r["bytes_per_party"]}
        row(op, res)
    for name, model, inp in MODELS:
        res, outs = {}, {}
        for sec in SECURITY:
            times, last = [], None
            for _ in range(a.reps):
                last = run(a.musket, ["infer", "--model", f"examples/{model}", "--input", f"examples/{inp}",
                                      "--security", sec, "--check", "--json"])
                times.append(last["seconds"])
            outs[sec] = last["output"]
            res[sec] = {"seconds": times, "rounds": last["rounds"], "bytes": last["bytes_sent"],
                        "f64": last["check_max_abs_diff_float"]}
        diff = max(abs(x - y) for x, y in zip(outs["semi-honest"], outs["malicious"]))
        res["malicious"]["extra"] = (f"max diff between the two {diff:.1e}; "
                                     f"vs f64 {res['semi-honest']['f64']:.1e} / {res['malicious']['f64']:.1e}")
        row(name + " (1 item)", res)


if __name__ == "__main__":
    main()
