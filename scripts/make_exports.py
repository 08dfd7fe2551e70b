#!/usr/bin/env python3
"""Makes the export fixtures: small models written by the exporters users run today, with an
input and onnxruntime's output for each, so that Rust tests check that Musket imports them and
matches onnxruntime (crates/musket-cli/tests/exports.rs).

- PyTorch's default exporter (`torch.onnx.export(..., dynamo=True)`: opset 18+, weights in an
  external `.onnx.data` file beside the model) and its TorchScript exporter (`dynamo=False`);
- `tf2onnx` on Keras models (`tf2onnx.convert.from_function` on the model's call: its
  `from_keras` fails on Keras 3): an NHWC CNN with batch norm and an MLP with softmax;
- Hugging Face `transformers` models built from their config classes (random weights, no
 download): BERT, DistilBERT, RoBERTa, GPT-2 (its TorchScript export fails in transformers 5:
  `aten::diff`), ViT; token-id models take int64 `input_ids`.

Requirements (PyPI): torch, torchvision, onnx, onnxruntime, onnxscript, transformers, numpy,
tensorflow-cpu, tf2onnx.
Run from the repository root:  python3 scripts/make_exports.py [--only conv1d|conv3d|deconv1d|pool3d|einsum|keras-mha]
Writes examples/exports/ and examples/exports/manifest.json (`--only NAME`: that model's
fixtures alone, keeping the manifest's other entries).
"""
import json
import os
import warnings

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
OUT = "examples/exports"
torch.manual_seed(0)


def trained_looking_batch_norms(module, affine=False):
    """Gives every batch norm of `module` the statistics (and, with `affine`, the scale and
    shift) of a trained network instead of the initial zeros and ones."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            if affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.c = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                               nn.Linear(84, 10))

    def forward(self, x):
        return self.c(torch.flatten(self.f(x), 1))


class TinyResNet(nn.Module):
    """ResNet's parts: conv + batch norm + ReLU, a residual block, max pooling, adaptive
    average pooling, flatten and a classifier; trained-looking batch-norm statistics."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                   nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 10)
        trained_looking_batch_norms(self, affine=True)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.head(torch.flatten(x, 1))


class MobileBlock(nn.Module):
    """MobileNetV2's inverted residual: expand, depthwise conv, ReLU6, project."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU6())
        self.inv = nn.Sequential(nn.Conv2d(8, 24, 1), nn.ReLU6(), nn.Conv2d(24, 24, 3, 1, 1, groups=24),
                                 nn.ReLU6(), nn.Conv2d(24, 8, 1))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.inv(x)
        return self.head(x.mean([2, 3]))


class Conv1dNet(nn.Module):
    """A 1-D CNN as used on audio and sequences: strided, padded and dilated 1-D convolutions
    with batch norm, 1-D max and average pooling (one with ceil_mode), a classifier."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv1d(4, 8, 5, stride=2, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
                               nn.MaxPool1d(3, 2, ceil_mode=True),
                               nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=2), nn.ReLU(),
                               nn.AvgPool1d(2))
        self.head = nn.Linear(8, 5)
        trained_looking_batch_norms(self)

    def forward(self, x):
        return self.head(self.f(x).mean(2))


class Pool3dNet(nn.Module):
    """3-D pooling as volume and video networks use it: max pooling padded along every axis
    (the depth included) with ceil_mode, average pooling padded with count_include_pad off and
    (along the depth only) on."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1)
        self.f = nn.Sequential(nn.ReLU(), nn.MaxPool3d(3, stride=2, padding=1, ceil_mode=True),
                               nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False),
                               nn.AvgPool3d((3, 1, 1), stride=1, padding=(1, 0, 0)))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.f(self.conv(x)).mean((2, 3, 4)))


class Deconv1dNet(nn.Module):
    """A 1-D encoder-decoder as in audio models: a strided 1-D convolution, a transposed 1-D
    convolution that upsamples it back, a dilated 1-D max pooling, a classifier."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv1d(4, 8, 4, stride=2, padding=1), nn.ReLU(),
                               nn.ConvTranspose1d(8, 6, 4, stride=2, padding=1, output_padding=1), nn.ReLU(),
                               nn.MaxPool1d(3, stride=1, dilation=2))
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        return self.head(self.f(x).mean(2))


class Conv3dNet(nn.Module):
    """A 3-D CNN as used on CT/MRI volumes: padded, strided, dilated and grouped 3-D
    convolutions with batch norm, 3-D max and average pooling, a classifier."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(4), nn.ReLU(),
                               nn.MaxPool3d(2),
                               nn.Conv3d(4, 4, (3, 1, 1), padding=(2, 0, 0), dilation=(2, 1, 1), groups=2),
                               nn.ReLU(), nn.AvgPool3d((1, 2, 2)))
        self.head = nn.Linear(4, 3)
        trained_looking_batch_norms(self)

    def forward(self, x):
        return self.head(self.f(x).mean([2, 3, 4]))


class EinsumAttention(nn.Module):
    """Attention written with torch.einsum: both PyTorch exporters write Einsum nodes (a
    projection by a 3-D weight, the scores, the weighted sum, an output projection)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 2, 8) * 0.3)
        self.out = nn.Parameter(torch.randn(2, 8, 3) * 0.3)

    def forward(self, x):
        q = torch.einsum("bsd,dhk->bshk", x, self.w)
        a = torch.einsum("bqhk,bshk->bhqs", q, q).softmax(-1)
        y = torch.einsum("bhqs,bshk->bqhk", a, q)
        return torch.einsum("bqhk,hkc->bqc", y, self.out)


class LastHidden(nn.Module):
    """A transformers model called with input_ids only, returning the last hidden state."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids):
        return self.m(input_ids=ids).last_hidden_state


class Pixels(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(pixel_values=x).last_hidden_state


def transformers_models():
    from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, GPT2Config,
                              GPT2Model, RobertaConfig, RobertaModel, ViTConfig, ViTModel)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    yield "bert", LastHidden(BertModel(BertConfig(vocab_size=120, max_position_embeddings=64, **small))), "ids"
    yield "distilbert", LastHidden(DistilBertModel(DistilBertConfig(
        vocab_size=120, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64))), "ids"
    # RoBERTa computes its position ids from the token ids (a cumulative count of the
    # non-padding tokens): its input ends in padding (id 1) to exercise that.
    yield "roberta", LastHidden(RobertaModel(RobertaConfig(vocab_size=120, max_position_embeddings=64, **small))), "ids-padded"
    yield "gpt2", LastHidden(GPT2Model(GPT2Config(vocab_size=120, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                                  use_cache=False))), "ids"
    yield "vit", Pixels(ViTModel(ViTConfig(image_size=32, patch_size=8, num_channels=3, **small))), "image32"


def example(kind, rng):
    if kind == "ids":
        return rng.integers(0, 120, size=(2, 8)).astype(np.int64)
    if kind == "ids-padded":
        ids = rng.integers(3, 120, size=(2, 8)).astype(np.int64)
        ids[1, 5:] = 1  # RoBERTa's padding id
        return ids
    if kind == "sequence":
        return rng.standard_normal((2, 5, 4)).astype(np.float32)
    if kind == "volume":
        return rng.standard_normal((2, 2, 8, 12, 12)).astype(np.float32)
    if kind == "signal":
        return rng.standard_normal((2, 4, 50)).astype(np.float32)
    if kind == "image28":
        return rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    return rng.standard_normal((2, 3, 32, 32)).astype(np.float32)


def export(model, name, kind, dynamo, manifest, rng, dynamic=False, opset=None):
    """With `dynamic`, batch and sequence axes are dynamic, and the fixture's input has another
    shape (3 x 12) than the export's example (2 x 8)."""
    model.eval()
    x = example(kind, rng)
    trace = x
    path = os.path.join(OUT, f"{name}.onnx")
    for stale in (path, path + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    try:
        if dynamic:
            x = rng.integers(3, 120, size=(3, 12)).astype(np.int64)
        if dynamo and dynamic:
            dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=64)}
            torch.onnx.export(model, (torch.from_numpy(trace),), path, dynamo=True, dynamic_shapes={"ids": dims})
        elif dynamo and opset:
            torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=True, opset_version=opset)
        elif dynamo:
            torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=True)
        else:
            axes = {"input": {0: "batch", 1: "seq"}} if dynamic else None
            torch.onnx.export(model, (torch.from_numpy(trace),), path, dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["output"], dynamic_axes=axes)
    except Exception as e:  # noqa: BLE001 - record what the exporter cannot do
        print(f"{name}: the exporter failed: {type(e).__name__}: {str(e)[:200]}")
        return
    sess = ort.InferenceSession(path)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.save(os.path.join(OUT, f"{name}-input.npy"), x)
    np.save(os.path.join(OUT, f"{name}-reference.npy"), y.astype(np.float32))
    import onnx
    m = onnx.load(path, load_external_data=False)
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    manifest.append({"name": name, "exporter": "dynamo" if dynamo else "torchscript", "opset": opset,
                     "external_data": os.path.exists(path + ".data"),
                     "ops": sorted({n.op_type for n in m.graph.node})})
    print(f"{name}: opset {opset}, output {list(y.shape)}, max |y| {np.abs(y).max():.3g}")


def keras_models():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    tf.random.set_seed(0)
    layers = tf.keras.layers
    cnn = tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)), layers.Conv2D(4, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.BatchNormalization(), layers.Conv2D(8, 3, activation="relu"), layers.GlobalAveragePooling2D(),
        layers.Dense(10)])
    for layer in cnn.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_mean.assign(tf.random.uniform(layer.moving_mean.shape, -0.2, 0.2))
            layer.moving_variance.assign(tf.random.uniform(layer.moving_variance.shape, 0.5, 1.5))
    mlp = tf.keras.Sequential([tf.keras.Input((64,)), layers.Dense(32, activation="tanh"), layers.Dense(10, activation="softmax")])
    yield "keras-cnn", cnn, (2, 28, 28, 1)
    yield "keras-mlp", mlp, (2, 64)


def keras_attention():
    """Keras's MultiHeadAttention (self-attention): tf2onnx writes its projections and
    attention products as Einsum nodes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    tf.random.set_seed(3)
    layers = tf.keras.layers
    x = tf.keras.Input((8, 16))
    y = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    y = layers.LayerNormalization()(x + y)
    y = layers.Dense(3)(layers.GlobalAveragePooling1D()(y))
    return "keras-mha", tf.keras.Model(x, y), (2, 8, 16)


def export_keras(name, model, shape, manifest, rng):
    import tensorflow as tf
    import tf2onnx
    spec = (tf.TensorSpec((None,) + shape[1:], tf.float32, name="x"),)
    call = tf.function(lambda x: model(x), input_signature=spec)
    path = os.path.join(OUT, f"{name}.onnx")
    tf2onnx.convert.from_function(call, input_signature=spec, opset=17, output_path=path)
    x = rng.standard_normal(shape).astype(np.float32)
    sess = ort.InferenceSession(path)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.save(os.path.join(OUT, f"{name}-input.npy"), x)
    np.save(os.path.join(OUT, f"{name}-reference.npy"), y.astype(np.float32))
    import onnx
    m = onnx.load(path)
    manifest.append({"name": name, "exporter": "tf2onnx", "opset": 17, "external_data": False,
                     "ops": sorted({n.op_type for n in m.graph.node})})
    print(f"{name}: tf2onnx, output {list(y.shape)}, max |y| {np.abs(y).max():.3g}")


SEPARATE = {"conv1d": (lambda: Conv1dNet(), "signal", 1), "conv3d": (lambda: Conv3dNet(), "volume", 2),
            "deconv1d": (lambda: Deconv1dNet(), "signal", 4), "pool3d": (lambda: Pool3dNet(), "volume", 5),
            "einsum": (lambda: EinsumAttention(), "sequence", 3)}


def only(which):
    """`--only conv1d` / `--only conv3d`: (re)writes that CNN's fixtures alone and keeps the
    manifest's other entries, so the other fixtures need no torch, transformers or tensorflow
    run."""
    path = os.path.join(OUT, "manifest.json")
    with open(path) as f:
        old = json.load(f)
    manifest = [m for m in old["models"] if not m["name"].startswith(which + "-")]
    make, kind, seed = SEPARATE[which]
    torch.manual_seed(seed)
    rng = np.random.default_rng(12 + seed)
    model = make()
    export(model, f"{which}-dynamo", kind, True, manifest, rng)
    export(model, f"{which}-torchscript", kind, False, manifest, rng)
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "models": manifest}, f, indent=1)


def only_keras_attention():
    """`--only keras-mha`: the Keras attention fixture alone (tensorflow, tf2onnx)."""
    path = os.path.join(OUT, "manifest.json")
    with open(path) as f:
        old = json.load(f)
    manifest = [m for m in old["models"] if m["name"] != "keras-mha"]
    name, model, shape = keras_attention()
    export_keras(name, model, shape, manifest, np.random.default_rng(16))
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "models": manifest}, f, indent=1)


def main():
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--only" and sys.argv[2] in SEPARATE:
        return only(sys.argv[2])
    if sys.argv[1:] == ["--only", "keras-mha"]:
        return only_keras_attention()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(12)
    manifest = []
    cnns = [("lenet", LeNet(), "image28"), ("tinyresnet", TinyResNet(), "image32"),
            ("mobileblock", MobileBlock(), "image32")]
    for name, model, kind in cnns:
        export(model, f"{name}-dynamo", kind, True, manifest, rng)
        export(model, f"{name}-torchscript", kind, False, manifest, rng)
        if name == "tinyresnet":
            for opset in (18, 21):  # the dynamo exporter's other opsets
                export(model, f"{name}-dynamo-opset{opset}", kind, True, manifest, rng, opset=opset)
    for name, model, kind in transformers_models():
        export(model, f"{name}-dynamo", kind, True, manifest, rng)
        export(model, f"{name}-torchscript", kind, False, manifest, rng)
        if name == "bert":
            for opset in (18, 21):
                export(model, f"{name}-dynamo-opset{opset}", kind, True, manifest, rng, opset=opset)
        if name in ("bert", "gpt2"):
            # Dynamic batch and sequence axes (the shape and mask computations fold for the
            # input's shape at import).
            export(model, f"{name}-dynamic-dynamo", kind, True, manifest, rng, dynamic=True)
            if name == "bert":
                export(model, f"{name}-dynamic-torchscript", kind, False, manifest, rng, dynamic=True)
    for name, model, shape in keras_models():
        export_keras(name, model, shape, manifest, rng)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"torch": torch.__version__, "models": manifest}, f, indent=1)
    for which in SEPARATE:
        only(which)
    only_keras_attention()


if __name__ == "__main__":
    main()
