"""Writes the large benchmark models (not committed: ~45-100 MB each) to target/models/:
torchvision ResNet-18 and ResNet-50 for 3x224x224 inputs with random weights, exported to ONNX
(opset 17), and one random input image.

    /path/to/python scripts/make_big_models.py     # needs torch, torchvision, onnx

Weights are random (seeded) but realistic in scale: batch-norm running statistics are
calibrated on random images, so activations stay in the range real models have and the
fixed-point run is meaningful. `musket bench --only resnet50-224-1` then uses them.
"""
import os

import numpy as np
import torch
import torchvision

OUT = os.path.join(os.path.dirname(__file__), "..", "target", "models")


def export(name, model):
    torch.manual_seed(1)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(8, 3, 224, 224))
    model.eval()
    path = os.path.join(OUT, f"{name}-224-opset17.onnx")
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print("wrote", path)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    export("resnet18", torchvision.models.resnet18(weights=None))
    torch.manual_seed(0)
    export("resnet50", torchvision.models.resnet50(weights=None))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(os.path.join(OUT, "imagenet-224-sample.npy"), x)
    print("wrote", os.path.join(OUT, "imagenet-224-sample.npy"))


if __name__ == "__main__":
    main()
