"""Musket: secure multi-party computation for machine learning.

Parties who do not trust each other compute on private inputs and learn only the result.
This package runs every party as a thread of this process (as `musket infer` and
`musket train` do); the protocols are Musket's Rust back ends:

- ``"3pc"``: three parties, replicated secret sharing (semi-honest, honest majority);
- ``"2pc"``: two parties and a dealer of correlated randomness (CrypTen's model).

High level::

    y = musket.infer("model.onnx", x)                  # party 0 owns the model, party 1 x
    trained = musket.train(model, X, y, loss="cross-entropy", epochs=10, lr=0.1, batch_size=32)
    musket.millionaires(5_000_000, 7_000_000)           # -> "bob"

Tensor API (CrypTen's model)::

    with musket.Session("3pc") as s:
        a = s.share(np.array([1.0, -2.0]), owner=0)
        b = s.share(np.array([3.0, 4.0]), owner=1)
        print((a * b + 1).relu().reveal())
"""

from __future__ import annotations

import io
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import BadInputError, BadModelError, CheatingDetected, MusketError, PeerError

__all__ = [
    "infer",
    "train",
    "millionaires",
    "Session",
    "SecretTensor",
    "TrainResult",
    "MusketError",
    "BadModelError",
    "BadInputError",
    "PeerError",
    "CheatingDetected",
]

__version__ = "0.1.0"

ModelLike = Union[str, "os.PathLike[str]", bytes, Any]


def _array(x: Any, what: str) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as e:  # noqa: BLE001 - any conversion failure is a bad input
        raise BadInputError(f"{what} is not an array: {e}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise BadInputError(f"{what} must hold numbers, not {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _bytes(a: np.ndarray) -> bytes:
    """A float64 array as little-endian bytes (what the native module reads)."""
    return np.ascontiguousarray(a, dtype="<f8").tobytes()


def _from_bytes(b: bytearray, shape: Sequence[int]) -> np.ndarray:
    """Wraps the native module's float64 bytes (a fresh bytearray: writable, no copy)."""
    return np.frombuffer(b, dtype="<f8").reshape(shape)


def _is_torch_module(model: Any) -> bool:
    return type(model).__module__.startswith("torch") or any(
        c.__module__.startswith("torch.nn") for c in type(model).__mro__
    )


def _torch_to_onnx(model: Any, example: np.ndarray) -> bytes:
    """Exports a torch.nn.Module to ONNX bytes on an example of the input's shape, with a
    dynamic batch axis: PyTorch's default (dynamo) exporter, or its TorchScript exporter when
    that fails (for instance without onnxscript)."""
    try:
        import torch
    except ImportError:
        raise BadModelError(
            "the model is not an ONNX file or bytes, and PyTorch is not installed to export it"
        ) from None
    if example.shape[0] < 2:  # a batch of one would be specialised away
        example = np.concatenate([example, example])
    x = torch.tensor(example, dtype=torch.float32)
    was_training = model.training
    model.eval()
    errors = []
    try:
        try:
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
            return program.model_proto.SerializeToString()
        except Exception as e:  # noqa: BLE001 - fall back to the older exporter
            errors.append(f"dynamo exporter: {e}")
        buf = io.BytesIO()
        try:
            torch.onnx.export(
                model, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            )
            return buf.getvalue()
        except Exception as e:  # noqa: BLE001
            errors.append(f"TorchScript exporter: {e}")
        raise BadModelError("torch.onnx.export failed: " + "; ".join(errors))
    finally:
        model.train(was_training)


def _model_arg(model: ModelLike, example: np.ndarray) -> Union[str, bytes]:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if _is_torch_module(model):
        return _torch_to_onnx(model, example)
    raise BadModelError(f"a model is an ONNX path, ONNX bytes or a torch.nn.Module, not {type(model).__name__}")


def infer(
    model: ModelLike,
    x: Any,
    protocol: str = "3pc",
    frac_bits: int = 16,
    report: bool = False,
    security: str = "semi-honest",
    preprocess: bool = False,
) -> Union[np.ndarray, Tuple[np.ndarray, Dict[str, Any]]]:
    """Private inference: party 0 owns the model, party 1 owns ``x`` and alone learns the output.

    ``model`` is an ONNX path, ONNX bytes, or a ``torch.nn.Module`` (exported with
    ``torch.onnx.export`` on an example of ``x``'s shape). The range audit runs first: an input
    that would overflow raises :class:`BadInputError` naming the layer. With ``report=True``
    also returns a dict: ``seconds``, ``rounds``, ``bytes_sent`` per party and ``layers``
    (name, op, bytes, rounds, seconds per layer). ``security="malicious"`` makes a cheating
    party stop the others with :class:`CheatingDetected` instead of changing the answer (3pc:
    distributed proofs; 2pc: MACs, with the dealer honest). ``preprocess=True`` (semi-honest
    2pc only) has the dealer make all of its correlated randomness first,
    from a plan traced from the model's architecture, so that the inference never waits for
    it; the report then has ``preprocessing`` (``trace_seconds``, ``seconds``,
    ``online_seconds``, ``requests``, ``material_bytes``).
    """
    a = _array(x, "the input")
    data, shape, rep = _native.infer(
        _model_arg(model, a), _bytes(a), list(a.shape), protocol, frac_bits, security, preprocess
    )
    out = _from_bytes(data, shape)
    return (out, rep) if report else out


def millionaires(alice: int, bob: int, protocol: str = "3pc", security: str = "semi-honest") -> str:
    """Yao's millionaires' problem: ``"alice"``, ``"bob"`` or ``"equal"``, and nothing else."""
    return _native.millionaires(int(alice), int(bob), protocol, security)


class TrainResult:
    """What :func:`train` returns: the trained model and the per-epoch statistics."""

    def __init__(self, model: Any, onnx: bytes, epochs: List[Dict[str, Any]]):
        #: The trained model: a ``torch.nn.Module`` when one was given, else ONNX bytes.
        self.model = model
        #: The trained model as ONNX bytes (the same graph with the trained initializers).
        self.onnx = onnx
        #: Per epoch: ``epoch``, ``loss`` (with ``report_loss``), ``seconds``, ``rounds``, ``bytes_sent``.
        self.epochs = epochs

    @property
    def losses(self) -> List[Optional[float]]:
        """Each epoch's mean loss (``None`` without ``report_loss``)."""
        return [e["loss"] for e in self.epochs]


def _load_trained_into(module: Any, onnx_bytes: bytes) -> Any:
    """Copies the trained initializers into a copy of ``module`` (matching by parameter name)."""
    import copy

    import torch

    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise BadModelError("returning a torch.nn.Module needs the onnx package") from None
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load_from_string(onnx_bytes).graph.initializer}
    trained = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if name in inits:
                p.copy_(torch.tensor(inits[name], dtype=p.dtype).reshape(p.shape))
    return trained


def train(
    model: ModelLike,
    X: Any,
    y: Any,
    loss: str = "cross-entropy",
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 32,
    momentum: float = 0.0,
    optimizer: str = "sgd",
    protocol: str = "3pc",
    shuffle: Optional[int] = None,
    report_loss: bool = True,
    frac_bits: int = 16,
    security: str = "semi-honest",
) -> TrainResult:
    """Private training: party 0 owns the model, party 1 owns ``X`` and ``y``.

    ``loss`` is ``"cross-entropy"`` (logits; ``y`` class indices), ``"bce"`` (a final Sigmoid;
    ``y`` 0 or 1) or ``"mse"``. The weights stay secret-shared; the model owner learns the
    trained weights and, with ``report_loss``, each epoch's mean loss. Returns a
    :class:`TrainResult` whose ``model`` is a ``torch.nn.Module`` with the trained weights when
    a module was given, else the ONNX bytes. ``security="malicious"`` verifies every product of
    every step and checks every opening before a loss or the weights are revealed: a cheating
    party makes the others stop with :class:`CheatingDetected`.
    """
    Xa = _array(X, "X")
    ya = _array(y, "y")
    torch_module = None if isinstance(model, (bytes, bytearray, str, os.PathLike)) else model
    arg = _model_arg(model, Xa[: min(batch_size, len(Xa))])
    onnx_bytes, stats = _native.train(
        arg,
        _bytes(Xa),
        list(Xa.shape),
        _bytes(ya),
        list(ya.shape),
        loss,
        int(epochs),
        float(lr),
        int(batch_size),
        float(momentum),
        optimizer,
        protocol,
        shuffle,
        bool(report_loss),
        int(frac_bits),
        security,
    )
    epochs_out = [
        {"epoch": e, "loss": l, "seconds": s, "rounds": r, "bytes_sent": b} for (e, l, s, r, b) in stats
    ]
    result_model: Any = onnx_bytes
    if torch_module is not None:
        result_model = _load_trained_into(torch_module, onnx_bytes)
    return TrainResult(result_model, onnx_bytes, epochs_out)


Scalar = Union[int, float]


class SecretTensor:
    """A secret-shared tensor of a :class:`Session`: every party holds a share, nobody the value.

    Arithmetic (``+ - * / @``, with numbers or other secret tensors, numpy broadcasting),
    comparisons (giving secret 0.0/1.0), functions (``relu``, ``sigmoid``, ``tanh``, ``exp``,
    ``log``, ``sqrt``, ``reciprocal``, ``abs``, ``softmax``), ``sum``, ``mean``, ``reshape``,
    ``transpose``/``.T`` and indexing run securely; ``reveal()`` and ``reveal_to(party)`` open
    the value.
    """

    __array_priority__ = 1000  # numpy defers to our operators

    def __init__(self, session: "Session", handle: int, shape: Sequence[int]):
        self._session = session
        self._handle = handle
        self.shape: Tuple[int, ...] = tuple(shape)

    def __del__(self) -> None:
        s = getattr(self, "_session", None)
        if s is not None:
            s._release(self._handle)

    def __repr__(self) -> str:
        return f"SecretTensor(shape={self.shape}, protocol={self._session.protocol!r})"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _apply(self, name: str, others: Sequence["SecretTensor"] = (), **kw: Any) -> "SecretTensor":
        return self._session._apply(name, [self, *others], **kw)

    def _binary(self, other: Any, name: str) -> "SecretTensor":
        if isinstance(other, SecretTensor):
            return self._apply(name, [other])
        if np.isscalar(other):
            v = float(other)
            if name == "add":
                return self._apply("add_const", value=v)
            if name == "sub":
                return self._apply("add_const", value=-v)
            if name == "mul":
                return self._apply("mul_const", value=v)
            if name == "div":
                if v == 0:
                    raise BadInputError("division by zero")
                return self._apply("mul_const", value=1.0 / v)
        # A public array: shared as a constant by party 0 (public to everyone anyway).
        return self._apply(name, [self._session.share(_array(other, "operand"), owner=0)])

    def __add__(self, o: Any) -> "SecretTensor":
        return self._binary(o, "add")

    __radd__ = __add__

    def __sub__(self, o: Any) -> "SecretTensor":
        return self._binary(o, "sub")

    def __rsub__(self, o: Any) -> "SecretTensor":
        return (-self)._binary(o, "add")

    def __mul__(self, o: Any) -> "SecretTensor":
        return self._binary(o, "mul")

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> "SecretTensor":
        return self._binary(o, "div")

    def __rtruediv__(self, o: Any) -> "SecretTensor":
        r = self.reciprocal()
        return r * o

    def __neg__(self) -> "SecretTensor":
        return self._apply("neg")

    def __matmul__(self, o: Any) -> "SecretTensor":
        if not isinstance(o, SecretTensor):
            o = self._session.share(_array(o, "operand"), owner=0)
        return self._apply("matmul", [o])

    def __rmatmul__(self, o: Any) -> "SecretTensor":
        return self._session.share(_array(o, "operand"), owner=0)._apply("matmul", [self])

    def _compare(self, o: Any, name: str) -> "SecretTensor":
        if not isinstance(o, SecretTensor):
            o = self._session.share(np.broadcast_to(_array(o, "operand"), self.shape).copy(), owner=0)
        return self._apply(name, [o])

    def __lt__(self, o: Any) -> "SecretTensor":  # type: ignore[override]
        return self._compare(o, "lt")

    def __gt__(self, o: Any) -> "SecretTensor":  # type: ignore[override]
        return self._compare(o, "gt")

    def __le__(self, o: Any) -> "SecretTensor":  # type: ignore[override]
        return self._compare(o, "le")

    def __ge__(self, o: Any) -> "SecretTensor":  # type: ignore[override]
        return self._compare(o, "ge")

    def eq(self, o: Any) -> "SecretTensor":
        """Secret 1.0 where equal, else 0.0."""
        return self._compare(o, "eq")

    def relu(self) -> "SecretTensor":
        return self._apply("relu")

    def sigmoid(self) -> "SecretTensor":
        return self._apply("sigmoid")

    def tanh(self) -> "SecretTensor":
        return self._apply("tanh")

    def exp(self) -> "SecretTensor":
        return self._apply("exp")

    def log(self) -> "SecretTensor":
        return self._apply("log")

    def sqrt(self) -> "SecretTensor":
        return self._apply("sqrt")

    def reciprocal(self) -> "SecretTensor":
        return self._apply("reciprocal")

    def abs(self) -> "SecretTensor":
        return self._apply("abs")

    def softmax(self, axis: int = -1) -> "SecretTensor":
        return self._apply("softmax", axis=axis % self.ndim)

    def sum(self, axis: Optional[int] = None) -> "SecretTensor":
        return self._apply("sum", axis=None if axis is None else axis % self.ndim)

    def mean(self, axis: Optional[int] = None) -> "SecretTensor":
        n = int(np.prod(self.shape)) if axis is None else self.shape[axis]
        return self.sum(axis) * (1.0 / n)

    def reshape(self, *shape: Any) -> "SecretTensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        target = np.empty(self.shape, dtype=np.int8).reshape(shape).shape  # resolves -1, checks size
        return self._apply("reshape", shape=list(target))

    def _take(self, index: np.ndarray) -> "SecretTensor":
        return self._session._take(self, index)

    def transpose(self, *axes: int) -> "SecretTensor":
        idx = np.arange(int(np.prod(self.shape))).reshape(self.shape)
        return self._take(idx.transpose(*axes) if axes else idx.T)

    @property
    def T(self) -> "SecretTensor":
        return self.transpose()

    def __getitem__(self, key: Any) -> "SecretTensor":
        idx = np.arange(int(np.prod(self.shape))).reshape(self.shape)[key]
        return self._take(np.asarray(idx))

    def reveal(self) -> np.ndarray:
        """Opens the value to every party and returns it."""
        return self._session._reveal(self, None)

    def reveal_to(self, party: int) -> Optional[np.ndarray]:
        """Opens the value to ``party`` only: the value there (in a local session, which runs
        every party, always), ``None`` at the other parties of a cluster session."""
        return self._session._reveal(self, party)


class Session:
    """A local session: every party of ``protocol`` is a thread of this process.

    Use as a context manager (``with musket.Session("3pc") as s:``) or call :meth:`close`.
    Secret tensors come from :meth:`share`; operations run securely as they are called.
    """

    def __init__(
        self,
        protocol: str = "3pc",
        frac_bits: int = 16,
        _native_session: Any = None,
        security: str = "semi-honest",
    ):
        self._native = (
            _native_session if _native_session is not None else _native.Session(protocol, frac_bits, security)
        )
        self.protocol = self._native.protocol

    @classmethod
    def from_cluster(cls, config: str, party: int, key: Optional[str] = None, frac_bits: int = 16) -> "Session":
        """One party of a session whose parties are separate processes (or machines) over the
        mutual-TLS cluster of ``config`` (made by ``musket cluster init``), as CrypTen runs one
        process per party: every party runs the same script, and the owner of each shared
        value passes it while the others pass ``None`` with its shape. In 2PC, party 2 (the
        dealer) serves the others until they close and gets back a closed session."""
        native = _native.Session.from_cluster(os.fspath(config), int(party), None if key is None else os.fspath(key), frac_bits)
        return cls(_native_session=native)

    @property
    def party(self) -> Optional[int]:
        """This process's party in a cluster session (``None`` in a local one)."""
        return self._native.party

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stops the party threads."""
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()

    def share(self, x: Any, owner: int = 0, shape: Optional[Sequence[int]] = None) -> SecretTensor:
        """Secret-shares ``x`` (a number or array) from party ``owner``: only it sees ``x``.

        In a cluster session the other parties pass ``None`` and the value's ``shape``."""
        if x is None:
            if shape is None:
                raise BadInputError("a party that does not own the value gives its shape")
            handle, out = self._native.share(None, [int(d) for d in shape], int(owner))
            return SecretTensor(self, handle, out)
        a = _array(x, "the value")
        handle, shape = self._native.share(_bytes(a), list(a.shape), int(owner))
        return SecretTensor(self, handle, shape)

    def stats(self) -> Tuple[int, List[int]]:
        """``(rounds, bytes sent per compute party)`` so far."""
        return self._native.stats()

    def _apply(self, name: str, args: Sequence[SecretTensor], **kw: Any) -> SecretTensor:
        for a in args:
            if a._session is not self:
                raise BadInputError("tensors of different sessions cannot be combined")
        handle, shape = self._native.apply(name, [a._handle for a in args], **kw)
        return SecretTensor(self, handle, shape)

    def _take(self, t: SecretTensor, index: np.ndarray) -> SecretTensor:
        handle, shape = self._native.take(t._handle, index.ravel().tolist(), list(index.shape))
        return SecretTensor(self, handle, shape)

    def _reveal(self, t: SecretTensor, party: Optional[int]) -> Optional[np.ndarray]:
        _, shape, values = self._native.reveal(t._handle, party)
        return None if values is None else _from_bytes(values, shape)

    def _release(self, handle: int) -> None:
        try:
            self._native.free(handle)
        except MusketError:
            pass
