#!/usr/bin/env python3
"""Training examples for `musket train`, with the plaintext PyTorch reference of each.

For every task: the initial model (random weights from a fixed seed, exported with PyTorch's
default exporter), the data and labels as .npy, and `reference.json` with the accuracy that
plaintext PyTorch training from the same initial weights and hyper-parameters reaches (SGD,
batches in file order, as `musket train` without --shuffle).

Tasks (the targets of issue 13):
  logreg      1000 x 100 synthetic points (CrypTen's benchmark data: torch seed 9), BCE,
              full batch, lr 1.0, 10 epochs
  digits-mlp  MLP 64-32-10 on scikit-learn's digits (1,347 training images, random_state 0,
              test 25%), cross-entropy, lr 0.1, batch 32, 10 epochs (torch seed 0: the same
              initial weights as CrypTen's section i); also Adam, lr 0.01, 3 epochs
  digits-cnn  conv 8x3x3 (pad 1), ReLU, max-pool 2, linear, on the 8x8 digits, cross-entropy,
              lr 0.1, batch 32, 5 epochs
  lenet       LeNet-5 on the digits resized to 28x28, cross-entropy, lr 0.1, momentum 0.9,
              batch 64, 1 epoch (4 MB of data: written under target/training/, not committed)

Usage: python scripts/make_training.py [OUT_DIR]   (default examples/training)
Needs: torch, onnx, onnxscript, onnxruntime, scikit-learn, numpy (PyPI).
"""
import copy
import json
import os
import sys

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "examples", "training")
BIG = os.path.join(ROOT, "target", "training")


def export(model, example, path):
    model.eval()
    torch.onnx.export(model, (example,), path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def train_plain(model, X, y, loss, lr, batch, epochs, momentum, adam=False):
    """Plaintext SGD (or Adam), batches in file order, as `musket train` without --shuffle."""
    if adam:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    crit = {"ce": torch.nn.CrossEntropyLoss(), "bce": torch.nn.BCELoss()}[loss]
    X = torch.tensor(X)
    y = torch.tensor(y)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for i in range(0, len(X), batch):
            opt.zero_grad()
            l = crit(model(X[i:i + batch]), y[i:i + batch])
            l.backward()
            opt.step()
            total += l.item() * len(X[i:i + batch])
        losses.append(total / len(X))
    return losses


def accuracy(model, X, y, loss):
    with torch.no_grad():
        out = model(torch.tensor(X)).numpy()
    if loss == "bce":
        return float(((out > 0.5).astype(np.float32) == y).mean())
    return float((out.argmax(1) == y).mean())


def write(task, model, X, y, loss, lr, batch, epochs, test=None, out_dir=OUT, note="", momentum=0.0, adam=None):
    initial = copy.deepcopy(model)
    d = os.path.join(out_dir, task)
    os.makedirs(d, exist_ok=True)
    example = torch.tensor(X[:batch])
    export(model, example, os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, "data.npy"), X)
    np.save(os.path.join(d, "labels.npy"), y)
    if test is not None:
        np.save(os.path.join(d, "test_data.npy"), test[0])
        np.save(os.path.join(d, "test_labels.npy"), test[1])
    # The exported initial model computes what the PyTorch model computes.
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"))
    with torch.no_grad():
        ref = model(example).numpy()
    assert np.allclose(sess.run(None, {"x": X[:batch]})[0], ref, atol=1e-5)
    losses = train_plain(model, X, y, loss, lr, batch, epochs, momentum)
    ref = {
        "task": task, "loss": {"ce": "cross-entropy", "bce": "bce"}[loss], "lr": lr,
        "batch_size": batch, "epochs": epochs, "momentum": momentum, "rows": int(len(X)),
        "plaintext_losses": losses,
        "plaintext_train_accuracy": accuracy(model, X, y, loss),
        "torch": torch.__version__, "note": note,
    }
    if test is not None:
        ref["plaintext_test_accuracy"] = accuracy(model, test[0], test[1], loss)
    if adam is not None:
        a_lr, a_epochs = adam
        losses = train_plain(initial, X, y, loss, a_lr, batch, a_epochs, 0.0, adam=True)
        ref["adam"] = {"lr": a_lr, "epochs": a_epochs, "plaintext_losses": losses,
                       "plaintext_test_accuracy": accuracy(initial, test[0], test[1], loss)}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print(task, {k: v for k, v in ref.items() if "accuracy" in k})


def digits():
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    return train_test_split(X, d.target.astype(np.int64), test_size=0.25, random_state=0)


def main():
    # Logistic regression on CrypTen's benchmark data.
    torch.manual_seed(9)
    n, dim = 1000, 100
    w_true = torch.randn(dim)
    X = torch.randn(n, dim)
    Y = (X @ w_true > 0).float().unsqueeze(1)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(dim, 1), torch.nn.Sigmoid())
    write("logreg", model, X.numpy(), Y.numpy(), "bce", 1.0, n, 10,
          note="CrypTen's data (torch seed 9); CrypTen's own initial weights differ")

    Xtr, Xte, ytr, yte = digits()
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    write("digits-mlp", mlp, Xtr, ytr, "ce", 0.1, 32, 10, test=(Xte, yte), adam=(0.01, 3),
          note="the initial weights of CrypTen's section i (torch seed 0); 'adam': the same start "
               "trained with torch.optim.Adam (defaults) instead")

    torch.manual_seed(2)
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10))
    img = lambda a: a.reshape(-1, 1, 8, 8)
    write("digits-cnn", cnn, img(Xtr), ytr, "ce", 0.1, 32, 5, test=(img(Xte), yte))

    # LeNet-5 on 28x28 (the digits resized bilinearly).
    big = lambda a: torch.nn.functional.interpolate(torch.tensor(img(a)), size=(28, 28), mode="bilinear",
                                                    align_corners=False).numpy()
    torch.manual_seed(3)
    lenet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 5 * 5, 120), torch.nn.ReLU(),
        torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
    write("lenet", lenet, big(Xtr), ytr, "ce", 0.1, 64, 1, test=(big(Xte), yte), out_dir=BIG, momentum=0.9,
          note="a cost benchmark: one epoch (21 steps) is too short for LeNet to learn the digits")


if __name__ == "__main__":
    main()
