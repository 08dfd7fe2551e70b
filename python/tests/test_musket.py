"""Tests of the Python package: the high-level functions against the bundled examples and
numpy, the tensor API against numpy on both protocols, and the exception hierarchy."""

import json
import os

import numpy as np
import pytest

import musket

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLES = os.path.join(ROOT, "examples")
PROTOCOLS = ["2pc", "3pc"]


def load(name):
    return np.load(os.path.join(EXAMPLES, name))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_matches_the_reference_outputs(protocol):
    x = load("digits-test-images.npy")  # the 360-image test split
    want = load("digits-cnn-opset17-reference.npy")  # onnxruntime's outputs on it
    y, report = musket.infer(os.path.join(EXAMPLES, "digits-cnn-opset17.onnx"), x, protocol=protocol, report=True)
    assert y.shape == want.shape
    assert np.abs(y - want).max() < 1e-2
    assert report["rounds"] > 0 and len(report["bytes_sent"]) == 3 and report["layers"]


def test_infer_with_the_dealer_material_made_first():
    x = load("digits-test-images.npy")
    want = load("digits-cnn-opset17-reference.npy")
    model = os.path.join(EXAMPLES, "digits-cnn-opset17.onnx")
    y, report = musket.infer(model, x, protocol="2pc", preprocess=True, report=True)
    assert np.abs(y - want).max() < 1e-2
    prep = report["preprocessing"]
    assert prep["requests"] > 0 and prep["material_bytes"] > 0
    assert 0 < prep["online_seconds"] < report["seconds"]
    assert "preprocessing" not in musket.infer(model, x[:2], protocol="2pc", report=True)[1]
    with pytest.raises(musket.BadInputError, match="applies to --protocol 2pc"):
        musket.infer(model, x[:2], protocol="3pc", preprocess=True)


def test_infer_accepts_bytes_and_the_whole_test_split():
    with open(os.path.join(EXAMPLES, "digits-cnn-opset17.onnx"), "rb") as f:
        model = f.read()
    x = load("digits-test-images.npy")
    y = musket.infer(model, x)
    labels = load("digits-test-y.npy")
    assert (y.argmax(1) == labels).mean() > 0.9


def test_millionaires():
    assert musket.millionaires(5_000_000, 7_000_000) == "bob"
    assert musket.millionaires(8, 7, protocol="2pc") == "alice"
    assert musket.millionaires(-3, -3) == "equal"
    with pytest.raises(musket.BadInputError):
        musket.millionaires(2**62, 0)


def test_malicious_security():
    assert musket.millionaires(5_000_000, 7_000_000, security="malicious") == "bob"
    assert musket.millionaires(1, 2, protocol="2pc", security="malicious") == "bob"
    x = load("digits-test-images.npy")[:2]
    want = load("digits-cnn-opset17-reference.npy")[:2]
    y = musket.infer(os.path.join(EXAMPLES, "digits-cnn-opset17.onnx"), x, security="malicious")
    assert np.abs(y - want).max() < 1e-2
    with musket.Session(security="malicious") as s:
        a = s.share(np.array([1.5, -2.0, 3.25]), owner=0)
        b = s.share(np.array([2.0, 0.5, -1.0]), owner=1)
        got = (a * b).reveal()
        assert np.allclose(got, [3.0, -1.0, -3.25], atol=1e-3)
        got[0] = 0.0  # outputs are ordinary writable arrays
    assert y.flags.writeable and got.dtype == np.float64


def test_train_reaches_the_plaintext_accuracy():
    d = os.path.join(EXAMPLES, "training", "digits-mlp")
    X, y = np.load(os.path.join(d, "data.npy")), np.load(os.path.join(d, "labels.npy"))
    ref = json.load(open(os.path.join(d, "reference.json")))
    result = musket.train(os.path.join(d, "model.onnx"), X, y, loss="cross-entropy", epochs=10, lr=0.1, batch_size=32)
    assert len(result.epochs) == 10 and result.losses[-1] < 0.4
    out = musket.infer(result.onnx, np.load(os.path.join(d, "test_data.npy")))
    acc = (out.argmax(1) == np.load(os.path.join(d, "test_labels.npy"))).mean()
    assert abs(acc - ref["plaintext_test_accuracy"]) <= 0.02


def test_train_with_malicious_security_agrees_with_semi_honest():
    d = os.path.join(EXAMPLES, "training", "logreg")
    X, y = np.load(os.path.join(d, "data.npy")), np.load(os.path.join(d, "labels.npy"))
    args = dict(loss="bce", epochs=2, lr=1.0, batch_size=1000)
    honest = musket.train(os.path.join(d, "model.onnx"), X, y, **args)
    checked = musket.train(os.path.join(d, "model.onnx"), X, y, security="malicious", **args)
    assert np.allclose(checked.losses, honest.losses, atol=2e-3)
    two = musket.train(os.path.join(d, "model.onnx"), X, y, protocol="2pc", security="malicious", **args)
    assert np.allclose(two.losses, honest.losses, atol=2e-3)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tensor_api_matches_numpy(protocol):
    rng = np.random.default_rng(1)
    a = rng.uniform(-4, 4, (3, 4))
    b = rng.uniform(-4, 4, (3, 4))
    m = rng.uniform(-2, 2, (4, 2))
    with musket.Session(protocol) as s:
        x, y, w = s.share(a, owner=0), s.share(b, owner=1), s.share(m, owner=0)
        checks = [
            (x + y, a + b, 1e-4),
            (x - 2.5, a - 2.5, 1e-4),
            (x * y, a * b, 1e-3),
            (x @ w, a @ m, 1e-3),
            ((x * 3).relu(), np.maximum(a * 3, 0), 1e-3),
            (x.sigmoid(), 1 / (1 + np.exp(-a)), 1e-3),
            (x.tanh(), np.tanh(a), 1e-3),
            (x.exp(), np.exp(a), 0.02 * np.exp(a) + 1e-3),
            (x.abs().sqrt(), np.sqrt(np.abs(a)), 2e-2),
            ((x.abs() + 0.5).log(), np.log(np.abs(a) + 0.5), 1e-2),
            ((x.abs() + 0.5).reciprocal(), 1 / (np.abs(a) + 0.5), 1e-2),
            (x.softmax(axis=1), np.exp(a) / np.exp(a).sum(1, keepdims=True), 1e-3),
            (x.sum(), a.sum(), 1e-3),
            (x.sum(axis=0), a.sum(0), 1e-3),
            (x.mean(), a.mean(), 1e-3),
            (x.reshape(4, 3), a.reshape(4, 3), 1e-4),
            (x.T, a.T, 1e-4),
            (x[1], a[1], 1e-4),
            (x[:, 1:3], a[:, 1:3], 1e-4),
            (x < y, (a < b).astype(float), 0),
            (x >= 0, (a >= 0).astype(float), 0),
            (x + np.ones(4), a + 1, 1e-4),
        ]
        for got, want, tol in checks:
            v = got.reveal()
            assert v.shape == np.shape(want)
            assert np.all(np.abs(v - want) <= tol + 1e-12), (got, v, want)
        assert np.allclose(x.reveal_to(1), a, atol=1e-4)
        rounds, sent = s.stats()
        assert rounds > 0 and len(sent) == (3 if protocol == "3pc" else 2)


def test_errors_form_a_hierarchy():
    assert issubclass(musket.BadModelError, musket.MusketError)
    assert issubclass(musket.BadInputError, musket.MusketError)
    assert issubclass(musket.PeerError, musket.MusketError)
    assert issubclass(musket.CheatingDetected, musket.MusketError)
    with pytest.raises(musket.BadModelError):
        musket.infer(b"not a model", np.zeros((1, 64)))
    with pytest.raises(musket.BadModelError):
        musket.infer(object(), np.zeros((1, 64)))
    with pytest.raises(musket.BadInputError):
        musket.infer(os.path.join(EXAMPLES, "digits-mlp-opset17.onnx"), np.full((1, 64), np.nan))
    with pytest.raises(musket.BadInputError):
        musket.infer(os.path.join(EXAMPLES, "digits-mlp-opset17.onnx"), np.zeros((1, 64)), protocol="4pc")
    with musket.Session() as s:
        a = s.share(np.ones((2, 3)), owner=0)
        with pytest.raises(musket.BadInputError):
            (a @ a).reveal()
    with pytest.raises(musket.MusketError):
        a.reveal()  # the session is closed


def test_values_that_cannot_be_encoded_are_refused_before_anything_is_sent():
    with musket.Session("3pc") as s:
        for bad in [np.array([1.0, np.nan]), np.array([np.inf]), np.array([0.0, 1e300])]:
            with pytest.raises(musket.BadInputError) as e:
                s.share(bad, owner=1)
        assert "1e300" not in str(e.value) and "index 1" in str(e.value)
        # Nothing was sent, so the session goes on; reveal_to reports the receiver's values.
        x = s.share(np.array([-2.5, 0.0, 3.25]), owner=1)
        np.testing.assert_array_equal(x.reveal_to(2), [-2.5, 0.0, 3.25])
        np.testing.assert_allclose((x * x).reveal(), [6.25, 0.0, 10.5625], atol=1e-3)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_the_tutorials_run_as_written(n):
    import glob
    import subprocess
    import sys

    (script,) = glob.glob(os.path.join(EXAMPLES, "python", f"tutorial_{n}_*.py"))
    out = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_torch_modules_in_and_out():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    d = os.path.join(EXAMPLES, "training", "digits-mlp")
    X, y = np.load(os.path.join(d, "data.npy")), np.load(os.path.join(d, "labels.npy"))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        plain = net(torch.tensor(X[:16])).numpy()
    assert np.abs(musket.infer(net, X[:16]) - plain).max() < 1e-2
    result = musket.train(net, X, y, loss="cross-entropy", epochs=3, lr=0.1, batch_size=32)
    trained = result.model
    assert isinstance(trained, torch.nn.Module) and trained is not net
    with torch.no_grad():
        acc = (trained(torch.tensor(np.load(os.path.join(d, "test_data.npy")))).argmax(1).numpy()
               == np.load(os.path.join(d, "test_labels.npy"))).mean()
    assert acc > 0.5  # three epochs of SGD from the CrypTen example's weights
    # The given module is unchanged.
    with torch.no_grad():
        assert np.allclose(net(torch.tensor(X[:16])).numpy(), plain)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_process_per_party_over_tls(protocol, tmp_path):
    import socket
    import subprocess
    import sys

    musket_bin = os.path.join(ROOT, "target", "release", "musket")
    if not os.path.exists(musket_bin):
        pytest.skip("needs the musket binary (cargo build --release) to make a cluster")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1]
    base = min(base, 65000)
    subprocess.run([musket_bin, "cluster", "init", "--dir", str(tmp_path), "--protocol", protocol,
                    "--base-port", str(base)], check=True, capture_output=True)
    script = os.path.join(os.path.dirname(__file__), "cluster_party.py")
    procs = [subprocess.Popen([sys.executable, script, str(tmp_path / "cluster.toml"), str(k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(3)]
    outs = []
    for p in procs:
        so, se = p.communicate(timeout=120)
        assert p.returncode == 0, se
        outs.append(json.loads(so.strip().splitlines()[-1]))
    a = np.array([[1.0, -2.0], [3.0, 4.0]])
    b = np.array([[0.5, 1.0], [-1.0, 2.0]])
    computes = [0, 1, 2] if protocol == "3pc" else [0, 1]
    for k in computes:
        assert np.allclose(outs[k]["sum"], a + b, atol=1e-4)
        assert np.allclose(outs[k]["relu_prod"], np.maximum(a @ b, 0), atol=1e-3)
    assert np.allclose(outs[1]["only1"], a * b, atol=1e-3)
    assert outs[0]["only1"] is None
    if protocol == "3pc":
        # The owner is refused, party 1 stopped rather than left waiting, party 2 not involved.
        assert outs[0]["bad_share"] == "BadInputError"
        assert outs[1]["bad_share"] == "PeerError"
        assert outs[2]["bad_share"] == "accepted"
