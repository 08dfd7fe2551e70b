"""CrypTen's Tutorial 4 ("Classification with encrypted neural networks") for Musket: train a
classifier on data nobody else sees, then use it privately. The model owner (party 0) gives
an untrained MLP, the data owner (party 1) the digits; the weights stay secret-shared through
training and only the model owner learns the result.
Run: python examples/python/tutorial_4_classification.py"""

import os

import numpy as np

import musket

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training", "digits-mlp")
X, y = np.load(os.path.join(d, "data.npy")), np.load(os.path.join(d, "labels.npy"))
X_test, y_test = np.load(os.path.join(d, "test_data.npy")), np.load(os.path.join(d, "test_labels.npy"))

result = musket.train(
    os.path.join(d, "model.onnx"), X, y, loss="cross-entropy", epochs=10, lr=0.1, batch_size=32, protocol="3pc"
)
for e in result.epochs:
    print(f"epoch {e['epoch']:2d}: loss {e['loss']:.4f}, {e['seconds']:.2f} s, {e['rounds']} rounds")

# The trained model, used privately on the test split.
logits = musket.infer(result.onnx, X_test)
print(f"test accuracy of the privately trained model: {(logits.argmax(1) == y_test).mean():.4f}")
