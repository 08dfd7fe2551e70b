"""CrypTen's Tutorial 3 ("Introduction to access control") for Musket: who owns what and who
learns what. Alice (party 0) owns a model, Bob (party 1) owns the data; Bob alone learns the
prediction, Alice learns nothing about Bob's data, Bob nothing about Alice's weights.
Run: python examples/python/tutorial_3_access_control.py"""

import os

import numpy as np

import musket

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
images = np.load(os.path.join(root, "digits-test-images.npy"))[:8]
labels = np.load(os.path.join(root, "digits-test-y.npy"))[:8]

# Alice's model: the bundled digits CNN as an ONNX file.
model = os.path.join(root, "digits-cnn-opset17.onnx")

# A torch.nn.Module works as the model too (exported with torch.onnx.export on an example of
# the input's shape), when PyTorch is installed.
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    private = musket.infer(net, images)
    with torch.no_grad():
        plain = net(torch.tensor(images, dtype=torch.float32)).numpy()
    print("a PyTorch module, privately: largest difference from PyTorch", float(np.abs(private - plain).max()))

logits, report = musket.infer(model, images, protocol="3pc", report=True)
print("Bob learns the predictions:", logits.argmax(1), "labels:", labels)
print(f"{report['seconds']:.3f} s, {report['rounds']} rounds, bytes sent per party {report['bytes_sent']}")

# Only a party named as the receiver learns a value.
with musket.Session("3pc") as s:
    salary = s.share(np.array([85_000.0 / 1000]), owner=0)  # Alice's, in thousands
    threshold = s.share(np.array([70_000.0 / 1000]), owner=1)  # Bob's
    above = salary > threshold
    print("Bob alone learns whether Alice earns more than his threshold:", above.reveal_to(1))

# Yao's millionaires' problem: who is richer, and nothing else.
print("richer:", musket.millionaires(5_000_000, 7_000_000))
