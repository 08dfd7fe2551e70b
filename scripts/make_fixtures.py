#!/usr/bin/env python3
"""Makes Musket's bundled example models and test fixtures.

Trains small models on scikit-learn's bundled digits data set (8x8 images, no download),
exports them to ONNX at opset 13 and 17, and stores onnxruntime's outputs as the reference
that tests compare secure inference against. Everything is written to examples/ and committed,
so the Rust tests need no Python.

Requirements (PyPI): torch, onnx, onnxruntime, scikit-learn, numpy.
Run from the repository root:  python3 scripts/make_fixtures.py
"""
import json
import os

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUT = "examples"
SEED = 7


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2),
        )
        self.head = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def train(model, x, y, epochs):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return model


def export(model, example, name, opset):
    path = os.path.join(OUT, f"{name}-opset{opset}.onnx")
    torch.onnx.export(
        model, example, path, opset_version=opset, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    return path


def main():
    torch.manual_seed(SEED)
    os.makedirs(OUT, exist_ok=True)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    np.save(os.path.join(OUT, "digits-test-x.npy"), x_te)
    np.save(os.path.join(OUT, "digits-test-images.npy"), x_te.reshape(-1, 1, 8, 8))
    np.save(os.path.join(OUT, "digits-test-y.npy"), y_te)
    summary = {}
    for name, model, shape in [("digits-mlp", Mlp(), (-1, 64)), ("digits-cnn", Cnn(), (-1, 1, 8, 8))]:
        xt = torch.from_numpy(x_tr).reshape(shape)
        model = train(model, xt, torch.from_numpy(y_tr), epochs=40)
        inputs = x_te.reshape(shape)
        np.save(os.path.join(OUT, f"{name}-sample.npy"), inputs[:1])
        for opset in (13, 17):
            path = export(model, torch.from_numpy(inputs[:1]), name, opset)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            logits = sess.run(None, {"input": inputs})[0]
            np.save(os.path.join(OUT, f"{name}-opset{opset}-reference.npy"), logits.astype(np.float32))
            acc = float((logits.argmax(1) == y_te).mean())
            summary[f"{name}-opset{opset}"] = {"test_accuracy": acc, "test_size": int(len(y_te))}
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
