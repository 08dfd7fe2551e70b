"""Writes CrypTen's benchmark LeNet to examples/, so that `musket bench --only lenet-crypten-64`
runs the very network (same weights, same input) that ../shared/reference/crypten/bench.py
times in its section f:

    /path/to/python scripts/make_crypten_lenet.py     # torch 2.0.1 (CrypTen's), onnx

The architecture and the seeds are those of bench.py: torch.manual_seed(7) before the model is
built (random initial weights), torch.manual_seed(6) then torch.rand(batch, 1, 28, 28) for the
input. With the same torch version the weights and inputs are bit-identical to CrypTen's run.
Also writes the plaintext PyTorch output, which the tests compare against.
"""
import os

import numpy as np
import torch

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


class LeNet(torch.nn.Module):
    """bench.py's LeNet-like CNN: conv 1->16 (5x5), conv 16->16 (5x5), 256-100-10 head."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 5)
        self.conv2 = torch.nn.Conv2d(16, 16, 5)
        self.fc1 = torch.nn.Linear(256, 100)
        self.fc2 = torch.nn.Linear(100, 10)
        self.pool = torch.nn.MaxPool2d(2)
        self.relu = torch.nn.ReLU()
        self.flat = torch.nn.Flatten()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flat(x)
        x = self.relu(self.fc1(x))
        return self.fc2(x)


def main():
    torch.manual_seed(7)
    model = LeNet().eval()
    torch.manual_seed(6)
    x = torch.rand(64, 1, 28, 28)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(EXAMPLES, "lenet-crypten-opset17.onnx")
    torch.onnx.export(model, x[:1], path, opset_version=17, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(os.path.join(EXAMPLES, "lenet-crypten-input-64.npy"), x.numpy())
    np.save(os.path.join(EXAMPLES, "lenet-crypten-output-64.npy"), y.numpy())
    print("wrote", path, "and the 64-image input and output")


if __name__ == "__main__":
    main()
