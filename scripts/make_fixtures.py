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
import math
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


class EncoderBlock(nn.Module):
    """A transformer encoder block written with standard modules (torch 2.0's exporter cannot
    export nn.TransformerEncoderLayer): multi-head attention, LayerNorm, GELU feed-forward.
    Reads an 8x8 digit as 8 tokens of 8 pixels."""

    def __init__(self, d=16, heads=2, ff=32, classes=10):
        super().__init__()
        self.heads, self.dk = heads, d // heads
        self.embed = nn.Linear(8, d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.act = nn.GELU()
        self.head = nn.Linear(d, classes)

    def split(self, t):
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, self.dk).transpose(1, 2)

    def forward(self, x):
        x = self.embed(x)
        b, n, d = x.shape
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.dk), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, d)
        x = self.ln1(x + self.o(y))
        x = self.ln2(x + self.ff2(self.act(self.ff1(x))))
        return self.head(x.mean(1))


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 inputs (here: digits upsampled to 28x28)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def upsample28(x):
    t = torch.from_numpy(x.reshape(-1, 1, 8, 8))
    return torch.nn.functional.interpolate(t, size=(28, 28), mode="bilinear", align_corners=False).numpy()


def upsample32rgb(x):
    t = torch.from_numpy(x.reshape(-1, 1, 8, 8))
    t = torch.nn.functional.interpolate(t, size=(32, 32), mode="bilinear", align_corners=False)
    return t.repeat(1, 3, 1, 1).numpy()


def resnet18():
    import torchvision

    return torchvision.models.resnet18(num_classes=10)


def ops_model(opset):
    """A graph built by hand to cover ops PyTorch's exports above do not use: Conv with
    auto_pad SAME_UPPER and stride 2, MaxPool with SAME_LOWER, Slice, Split, Concat, Gather
    with constant indices, Expand, Flatten, Gemm. Input [1, 3, 7, 7]; output [2, 5]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(SEED)
    w = numpy_helper.from_array(rng.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.uniform(-1, 1, (4,)).astype(np.float32), "b")
    fc = numpy_helper.from_array(rng.uniform(-1, 1, (5, 36)).astype(np.float32), "fc")
    consts = [
        numpy_helper.from_array(np.array(v, dtype=np.int64), name)
        for name, v in [
            ("starts", [0, 1]), ("ends", [4, 100]), ("axes", [1, 3]), ("split", [1, 3]),
            ("idx", [3, 0, 0]), ("shape", [2, 4, 3, 3]),
        ]
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w", "b"], ["c"], name="conv_same", auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("MaxPool", ["c"], ["m"], name="pool_same", auto_pad="SAME_LOWER", kernel_shape=[2, 2]),
        helper.make_node("Slice", ["m", "starts", "ends", "axes"], ["s"], name="slice"),
        helper.make_node("Split", ["s", "split"] if opset >= 13 else ["s"], ["s0", "s1"], name="split", axis=1, **({} if opset >= 13 else {"split": [1, 3]})),
        helper.make_node("Concat", ["s1", "s0"], ["cat"], name="concat", axis=1),
        helper.make_node("Gather", ["cat", "idx"], ["g"], name="gather", axis=2),
        helper.make_node("Expand", ["g", "shape"], ["e"], name="expand"),
        helper.make_node("Flatten", ["e"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "ops", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 7, 7])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 5])], [w, b, fc] + consts,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def train(model, x, y, epochs, lr=0.01):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
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


def export(model, example, name, opset, dynamic=True):
    path = os.path.join(OUT, f"{name}-opset{opset}.onnx")
    torch.onnx.export(
        model, example, path, opset_version=opset, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None,
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
    np.save(os.path.join(OUT, "digits-test-tokens.npy"), x_te.reshape(-1, 8, 8))
    np.save(os.path.join(OUT, "digits-test-y.npy"), y_te)
    summary = {}
    # The encoder block is exported with a fixed batch of 1 (its reshapes then fold to
    # constants); its test inputs are evaluated one at a time by onnxruntime and by the tests.
    cases = [
        ("digits-mlp", Mlp(), x_tr.reshape(-1, 64), x_te.reshape(-1, 64), True, 40),
        ("digits-cnn", Cnn(), x_tr.reshape(-1, 1, 8, 8), x_te.reshape(-1, 1, 8, 8), True, 40),
        ("digits-transformer", EncoderBlock(), x_tr.reshape(-1, 8, 8), x_te.reshape(-1, 8, 8), False, 60),
        ("lenet5-28", LeNet5(), upsample28(x_tr), upsample28(x_te), True, 15),
        # torchvision's ResNet-18 (11M weights, 45 MB): exported at opset 17 only.
        ("resnet18-32", resnet18(), upsample32rgb(x_tr), upsample32rgb(x_te), True, 4),
    ]
    for name, model, train_x, inputs, dynamic, epochs in cases:
        model = train(model, torch.from_numpy(train_x), torch.from_numpy(y_tr), epochs=epochs)
        np.save(os.path.join(OUT, f"{name}-sample.npy"), inputs[:1])
        if name == "lenet5-28":
            np.save(os.path.join(OUT, "digits-test-28x28.npy"), inputs)
        if name == "resnet18-32":
            np.save(os.path.join(OUT, "digits-test-32x32x3.npy"), inputs)
        for opset in (17,) if name == "resnet18-32" else (13, 17):
            path = export(model, torch.from_numpy(inputs[:1]), name, opset, dynamic)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            if dynamic:
                logits = sess.run(None, {"input": inputs})[0]
            else:
                logits = np.concatenate([sess.run(None, {"input": inputs[i : i + 1]})[0] for i in range(len(inputs))])
            np.save(os.path.join(OUT, f"{name}-opset{opset}-reference.npy"), logits.astype(np.float32))
            acc = float((logits.argmax(1) == y_te).mean())
            summary[f"{name}-opset{opset}"] = {"test_accuracy": acc, "test_size": int(len(y_te))}
        if name == "digits-transformer":
            # Also with a dynamic batch: PyTorch then computes reshape targets with Shape,
            # Gather, Unsqueeze and Concat, which Musket folds when it loads the model for a
            # concrete input.
            path = export(model, torch.from_numpy(inputs[:2]), f"{name}-dyn", 17, True)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            logits = sess.run(None, {"input": inputs})[0]
            np.save(os.path.join(OUT, f"{name}-dyn-opset17-reference.npy"), logits.astype(np.float32))
    import onnx

    x_ops = np.random.RandomState(SEED + 1).uniform(-2, 2, (1, 3, 7, 7)).astype(np.float32)
    np.save(os.path.join(OUT, "ops-input.npy"), x_ops)
    for opset in (13, 17):
        m = ops_model(opset)
        onnx.checker.check_model(m)
        path = os.path.join(OUT, f"ops-opset{opset}.onnx")
        onnx.save(m, path)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        np.save(os.path.join(OUT, f"ops-opset{opset}-reference.npy"), sess.run(None, {"input": x_ops})[0])
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
