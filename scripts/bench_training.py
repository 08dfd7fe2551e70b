#!/usr/bin/env python3
"""Measures `musket train` on the training tasks of issue 13, both back ends, and prints a
markdown table: seconds (median of --reps runs), rounds, MB sent per party, and accuracy
(training accuracy for logistic regression; test accuracy of the written model, evaluated
with onnxruntime, for the others) next to plaintext PyTorch's from reference.json.

Usage: python scripts/bench_training.py [--reps N] [--musket target/release/musket]
Needs the examples (scripts/make_training.py; LeNet's data under target/training/) and
onnxruntime, numpy.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = [
    ("logreg", "examples/training/logreg", ["--loss", "bce", "--lr", "1.0", "--batch-size", "1000", "--epochs", "10"]),
    ("digits-mlp", "examples/training/digits-mlp",
     ["--loss", "cross-entropy", "--lr", "0.1", "--batch-size", "32", "--epochs", "10"]),
    ("digits-cnn", "examples/training/digits-cnn",
     ["--loss", "cross-entropy", "--lr", "0.1", "--batch-size", "32", "--epochs", "5"]),
    ("lenet", "target/training/lenet",
     ["--loss", "cross-entropy", "--lr", "0.1", "--momentum", "0.9", "--batch-size", "64", "--epochs", "1"]),
]


def accuracy(model, x, y, bce=False):
    out = ort.InferenceSession(model).run(None, {"x": x})[0]
    if bce:
        return float(((out > 0.5).astype(np.float32) == y).mean())
    return float((out.argmax(1) == y).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--musket", default=os.path.join(ROOT, "target", "release", "musket"))
    args = ap.parse_args()
    print("| task | protocol | seconds (median of %d) | s/epoch | rounds | MB sent per party | accuracy | plaintext PyTorch |" % args.reps)
    print("|---|---|---|---|---|---|---|---|")
    for name, d, flags in TASKS:
        d = os.path.join(ROOT, d)
        if not os.path.exists(d):
            print(f"| {name} | - | (missing: run scripts/make_training.py) |")
            continue
        ref = json.load(open(os.path.join(d, "reference.json")))
        for protocol in ["2pc", "3pc"]:
            times, report = [], None
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "trained.onnx")
                for _ in range(args.reps):
                    cmd = [args.musket, "train", "--model", f"{d}/model.onnx", "--data", f"{d}/data.npy",
                           "--labels", f"{d}/labels.npy", "--protocol", protocol, "--json", "--output", out] + flags
                    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                    times.append(report["seconds"])
                if name == "logreg":
                    acc = accuracy(out, np.load(f"{d}/data.npy"), np.load(f"{d}/labels.npy"), bce=True)
                    plain = ref["plaintext_train_accuracy"]
                    kind = "train"
                else:
                    acc = accuracy(out, np.load(f"{d}/test_data.npy"), np.load(f"{d}/test_labels.npy"))
                    plain = ref["plaintext_test_accuracy"]
                    kind = "test"
            mb = ", ".join(f"{b / 1e6:.1f}" for b in report["bytes_sent"])
            med = statistics.median(times)
            print(f"| {name} | {protocol} | {med:.2f} | {med / report['epochs']:.3f} | {report['rounds']} | {mb} | "
                  f"{kind} {acc:.4f} | {plain:.4f} |", flush=True)


if __name__ == "__main__":
    main()
