"""Type stubs of the native extension (see musket/__init__.py for the documented API). Arrays
cross as little-endian float64 bytes with a shape."""

from typing import Dict, List, Optional, Sequence, Tuple, Union

class MusketError(Exception): ...
class BadModelError(MusketError): ...
class BadInputError(MusketError): ...
class PeerError(MusketError): ...
class CheatingDetected(MusketError): ...

def infer(
    model: Union[str, bytes],
    data: bytes,
    shape: Sequence[int],
    protocol: str = "3pc",
    frac_bits: int = 16,
    security: str = "semi-honest",
    preprocess: bool = False,
) -> Tuple[bytearray, List[int], Dict[str, object]]: ...
def millionaires(alice: int, bob: int, protocol: str = "3pc", security: str = "semi-honest") -> str: ...
def train(
    model: Union[str, bytes],
    data: bytes,
    data_shape: Sequence[int],
    labels: bytes,
    label_shape: Sequence[int],
    loss: str,
    epochs: int,
    lr: float,
    batch_size: int,
    momentum: float = 0.0,
    optimizer: str = "sgd",
    protocol: str = "3pc",
    shuffle: Optional[int] = None,
    report_loss: bool = False,
    frac_bits: int = 16,
    security: str = "semi-honest",
) -> Tuple[bytes, List[Tuple[int, Optional[float], float, int, int]]]: ...

class Session:
    protocol: str
    party: Optional[int]
    def __init__(self, protocol: str = "3pc", frac_bits: int = 16, security: str = "semi-honest") -> None: ...
    @staticmethod
    def from_cluster(config: str, party: int, key: Optional[str] = None, frac_bits: int = 16) -> "Session": ...
    def share(self, data: Optional[bytes], shape: Sequence[int], owner: int) -> Tuple[int, List[int]]: ...
    def apply(
        self,
        name: str,
        args: Sequence[int],
        value: Optional[float] = None,
        axis: Optional[int] = None,
        shape: Optional[Sequence[int]] = None,
    ) -> Tuple[int, List[int]]: ...
    def take(self, arg: int, indices: Sequence[int], shape: Sequence[int]) -> Tuple[int, List[int]]: ...
    def reveal(self, arg: int, to: Optional[int] = None) -> Tuple[int, List[int], Optional[bytearray]]: ...
    def free(self, arg: int) -> None: ...
    def stats(self) -> Tuple[int, List[int]]: ...
    def close(self) -> None: ...
