"""Writes the large benchmark models (not committed: 45-500 MB each) to target/models/, with
PyTorch's default (dynamo) exporter, as users export today (weights in a `.onnx.data` file
beside each model):

- torchvision ResNet-18, ResNet-50 and MobileNetV2 for 3x224x224 inputs, random weights, and one
  random input image;
- Hugging Face `transformers` BERT-base (12 layers, hidden 768, 12 heads) on 128 token ids,
  GPT-2 small (with its language-model head: next-token logits) on a 32-token prompt, ViT-small (patch 16, 224x224, hidden 384, 12 layers, 6 heads),
  from their config classes (random weights, no download), with their inputs.

    /path/to/python scripts/make_big_models.py [resnet|transformers]
    # needs torch, torchvision, onnx, onnxscript (the dynamo exporter's), transformers, numpy

Weights are random (seeded) but realistic in scale: the CNNs' batch-norm running statistics
are calibrated on random images, so activations stay in the range real models have and the
fixed-point run is meaningful. `musket bench --only resnet50-224-1` (or bert-base-128, ...)
then uses them.
"""
import os
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(__file__), "..", "target", "models")


def export_cnn(name, model):
    torch.manual_seed(1)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(8, 3, 224, 224))
    model.eval()
    path = os.path.join(OUT, f"{name}-224.onnx")
    torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), path, dynamo=True,
                      input_names=["input"], output_names=["logits"])
    print("wrote", path)


class LastHidden(torch.nn.Module):
    def __init__(self, m, key):
        super().__init__()
        self.m, self.key = m, key

    def forward(self, x):
        return self.m(**{self.key: x}).last_hidden_state


class NextToken(torch.nn.Module):
    """A causal language model's logits for the token after the prompt."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids):
        return self.m(input_ids=ids).logits[:, -1, :]


def export_transformer(name, model, key, x, wrap=None):
    model.eval()
    path = os.path.join(OUT, f"{name}.onnx")
    torch.onnx.export(wrap(model) if wrap else LastHidden(model, key), (torch.from_numpy(x),), path, dynamo=True)
    np.save(os.path.join(OUT, f"{name}-input.npy"), x)
    print("wrote", path)


def main():
    os.makedirs(OUT, exist_ok=True)
    which = sys.argv[1:] or ["resnet", "transformers"]
    rng = np.random.default_rng(0)
    if "resnet" in which:
        import torchvision
        for name, make in [("resnet18", torchvision.models.resnet18), ("resnet50", torchvision.models.resnet50),
                           ("mobilenetv2", torchvision.models.mobilenet_v2)]:
            torch.manual_seed(0)
            export_cnn(name, make(weights=None))
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        np.save(os.path.join(OUT, "imagenet-224-sample.npy"), x)
        print("wrote", os.path.join(OUT, "imagenet-224-sample.npy"))
    if "transformers" in which:
        from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, ViTConfig, ViTModel
        torch.manual_seed(0)
        export_transformer("bert-base-128", BertModel(BertConfig()), "input_ids",
                           rng.integers(0, 30522, size=(1, 128)).astype(np.int64))
        torch.manual_seed(0)
        export_transformer("gpt2-small-32", GPT2LMHeadModel(GPT2Config(use_cache=False)), "input_ids",
                           rng.integers(0, 50257, size=(1, 32)).astype(np.int64), wrap=NextToken)
        torch.manual_seed(0)
        vit = ViTModel(ViTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                 intermediate_size=1536), add_pooling_layer=False)
        export_transformer("vit-small-224", vit, "pixel_values",
                           rng.standard_normal((1, 3, 224, 224)).astype(np.float32))


if __name__ == "__main__":
    main()
