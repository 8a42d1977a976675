"""Reader for dlib's serialised face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`).

We parse the file ourselves so the service needs neither dlib nor a converted
copy of the weights: the CC0 file from PyPI is the single source of truth.
dlib stores the layer parameters but not the topology (tag and skip layers
keep no ids), so this module only returns the layer records in input-to-output
order and `models/dlib_resnet.py` supplies the wiring.

Anything unexpected (a truncated file, an unknown layer version, bytes left
over) raises ValueError naming the byte offset, because a half-read network
would embed faces silently wrong.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WEIGHTS_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"
WEIGHTS_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

# dlib's float_details marks non-finite values with these exponents.
_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


@dataclass(frozen=True)
class Conv:
    weight: np.ndarray
    """float32 (out, in, rows, cols); dlib's con_ is a cross-correlation, like torch's Conv2d."""
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    """dlib's stand-in for batch norm at inference: out = gamma·x + beta per channel."""

    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str
    """"max" or "avg"."""
    size: tuple[int, int]
    """(0, 0) means pooling over the whole feature map."""
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        return self.size == (0, 0)


@dataclass(frozen=True)
class AddPrev:
    """Residual add with the tagged layer; the tag itself is not in the file."""


@dataclass(frozen=True)
class Fc:
    weight: np.ndarray
    """float32 (out, in), i.e. already transposed from dlib's (in, out) for torch's Linear."""
    bias: np.ndarray | None


Layer = Conv | Affine | Relu | Pool | AddPrev | Fc


@dataclass(frozen=True)
class DlibNetwork:
    avg_rgb: tuple[float, float, float]
    """Per-channel means subtracted from the 0..255 pixels before dividing by 256."""
    chip_size: tuple[int, int]
    margin: float
    distance_threshold: float
    """Euclidean distance on raw descriptors below which dlib calls two faces the same person."""
    layers: tuple[Layer, ...]
    """Input to output; tag and skip layers are absent because they store nothing."""


class _Reader:
    """dlib's serialize() primitives over an in-memory file, failing with the offset where it broke."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0

    def fail(self, message: str) -> ValueError:
        return ValueError(f"malformed dlib model at byte {self.pos}: {message}")

    def take(self, count: int) -> memoryview:
        if count < 0 or self.pos + count > len(self._data):
            raise self.fail(f"needs {count} more bytes, file ends at {len(self._data)}")
        chunk = self._data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    @property
    def at_end(self) -> bool:
        return self.pos == len(self._data)

    def integer(self) -> int:
        """Sign-magnitude: a control byte (low nibble = byte count, 0x80 = negative), then little-endian bytes."""
        control = self.take(1)[0]
        count = control & 0x0F
        if not 1 <= count <= 8 or control & 0x70:
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        magnitude = int.from_bytes(self.take(count), "little")
        return -magnitude if control & 0x80 else magnitude

    def non_negative(self, what: str) -> int:
        value = self.integer()
        if value < 0:
            raise self.fail(f"negative {what} {value}")
        return value

    def boolean(self) -> bool:
        byte = bytes(self.take(1))
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool {byte!r}")
        return byte == b"1"

    def string(self, limit: int = 256) -> str:
        length = self.non_negative("string length")
        if length > limit:
            raise self.fail(f"implausible string length {length}")
        raw = bytes(self.take(length))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"non-ASCII string {raw!r}") from None

    def floating(self) -> float:
        """Mantissa first, then exponent (dlib's header comment has the order backwards)."""
        mantissa = self.integer()
        exponent = self.integer()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)

    def expect_version(self, expected: int, what: str) -> None:
        start = self.pos
        version = self.integer()
        if version != expected:
            self.pos = start
            raise self.fail(f"{what} version {version}, expected {expected}")

    def shape(self) -> tuple[int, int, int, int]:
        return tuple(self.non_negative("tensor dimension") for _ in range(4))  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        """A resizable_tensor: raw little-endian float32 in NCHW order, unlike every other float in the file."""
        self.expect_version(2, "tensor")
        shape = self.shape()
        size = math.prod(shape)
        return np.frombuffer(self.take(4 * size), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        """An alias_tensor header: the shape of a view into a layer's flat params."""
        self.expect_version(1, "alias tensor")
        return self.shape()


def _slice(reader: _Reader, params: np.ndarray, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    flat = params.reshape(-1)
    size = math.prod(shape)
    if offset + size > flat.size:
        raise reader.fail(f"alias of {shape} at {offset} overruns params of {flat.size}")
    return flat[offset : offset + size].reshape(shape).copy()


def _check_fully_used(reader: _Reader, params: np.ndarray, used: int, layer: str) -> None:
    if used != params.size:
        raise reader.fail(f"{layer} params hold {params.size} values, aliases use {used}")


def _multipliers(reader: _Reader) -> None:
    """Training-only learning-rate and weight-decay multipliers."""
    for _ in range(4):
        reader.floating()


def _conv(reader: _Reader) -> Conv:
    params = reader.tensor()
    filters, rows, cols = (reader.non_negative("conv size") for _ in range(3))
    stride = (reader.non_negative("stride"), reader.non_negative("stride"))
    padding = (reader.non_negative("padding"), reader.non_negative("padding"))
    weight_shape = reader.alias()
    bias_shape = reader.alias()
    _multipliers(reader)
    if weight_shape[0] != filters or weight_shape[2:] != (rows, cols) or math.prod(bias_shape) != filters:
        raise reader.fail(f"conv of {filters}×{rows}×{cols} has aliases {weight_shape} and {bias_shape}")
    if min(stride) < 1:
        raise reader.fail(f"conv stride {stride}")
    weight = _slice(reader, params, 0, weight_shape)
    bias = _slice(reader, params, weight.size, (filters,))
    _check_fully_used(reader, params, weight.size + bias.size, "conv")
    return Conv(weight, bias, stride, padding)


def _affine(reader: _Reader) -> Affine:
    params = reader.tensor()
    gamma_shape = reader.alias()
    beta_shape = reader.alias()
    mode = reader.integer()
    if mode != 0:
        raise reader.fail(f"affine mode {mode}: only per-channel (0) is supported")
    channels = math.prod(gamma_shape)
    if math.prod(beta_shape) != channels:
        raise reader.fail(f"affine aliases {gamma_shape} and {beta_shape} differ")
    gamma = _slice(reader, params, 0, (channels,))
    beta = _slice(reader, params, channels, (channels,))
    _check_fully_used(reader, params, 2 * channels, "affine")
    return Affine(gamma, beta)


def _pool(reader: _Reader, kind: str) -> Pool:
    rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.non_negative("pool field") for _ in range(6))
    if min(stride_y, stride_x) < 1:
        raise reader.fail(f"pool stride {(stride_y, stride_x)}")
    return Pool(kind, (rows, cols), (stride_y, stride_x), (pad_y, pad_x))


def _fc(reader: _Reader) -> Fc:
    outputs = reader.non_negative("fc outputs")
    inputs = reader.non_negative("fc inputs")
    params = reader.tensor()
    weight_shape = reader.alias()
    reader.alias()  # the bias alias; whether a bias exists is bias_mode's to say
    bias_mode = reader.integer()
    _multipliers(reader)
    if weight_shape[:2] != (inputs, outputs) or bias_mode not in (0, 1):
        raise reader.fail(f"fc {inputs}→{outputs} with weight alias {weight_shape}, bias mode {bias_mode}")
    weight = _slice(reader, params, 0, (inputs, outputs))
    bias = _slice(reader, params, weight.size, (outputs,)) if bias_mode == 0 else None
    _check_fully_used(reader, params, weight.size + (0 if bias is None else bias.size), "fc")
    return Fc(np.ascontiguousarray(weight.T), bias)


def _layer(reader: _Reader) -> Layer:
    start = reader.pos
    name = reader.string()
    match name:
        case "con_4":
            return _conv(reader)
        case "affine_":
            return _affine(reader)
        case "relu_":
            return Relu()
        case "add_prev_":
            return AddPrev()
        case "max_pool_2":
            return _pool(reader, "max")
        case "avg_pool_2":
            return _pool(reader, "avg")
        case "fc_2":
            return _fc(reader)
    reader.pos = start
    raise reader.fail(f"unsupported layer record {name!r}")


def _wrapper_state(reader: _Reader) -> None:
    """Training flags and gradient/cache tensors each layer wrapper saves; none of them affect inference."""
    for _ in range(3):
        reader.boolean()
    for _ in range(3):
        reader.tensor()


def parse(data: bytes) -> DlibNetwork:
    reader = _Reader(data)
    reader.expect_version(1, "loss layer")
    loss = reader.string()
    if loss != "loss_metric_2":
        raise reader.fail(f"loss {loss!r}: not a metric-learning (face recognition) network")
    margin = reader.floating()
    distance_threshold = reader.floating()

    # Layers nest outermost-first: every wrapper writes its version before its
    # subnetwork, so the versions come as one run ending at the input's (3).
    # Wrappers with parameters (2) are written back out innermost-first after it;
    # tag and skip wrappers (1) write nothing else.
    wrapped = 0
    while (version := reader.integer()) != 3:
        if version not in (1, 2):
            raise reader.fail(f"layer wrapper version {version}")
        wrapped += version == 2

    if (name := reader.string()) != "input_rgb_image_sized":
        raise reader.fail(f"input layer {name!r}, expected input_rgb_image_sized")
    avg_rgb = (reader.floating(), reader.floating(), reader.floating())
    chip_size = (reader.non_negative("input rows"), reader.non_negative("input cols"))

    layers = [_layer(reader)]
    _wrapper_state(reader)
    reader.integer()  # sample expansion factor, kept only by the input wrapper
    for _ in range(wrapped):
        layers.append(_layer(reader))
        _wrapper_state(reader)
    if not reader.at_end:
        raise reader.fail(f"{len(data) - reader.pos} bytes left after the last layer")
    return DlibNetwork(avg_rgb, chip_size, margin, distance_threshold, tuple(layers))


def parse_file(path: Path) -> DlibNetwork:
    return parse(Path(path).read_bytes())


def packaged_weights() -> Path:
    """dlib-resnet's .dat shipped in PyPI's face-recognition-models, checked against the release we tested."""
    return packaged_file(WEIGHTS_FILENAME, WEIGHTS_SHA256)


def packaged_file(filename: str, sha256: str) -> Path:
    """A model file of face-recognition-models==0.3.0, refused unless it has the bytes we tested.

    Found without importing the package, whose __init__ needs pkg_resources
    (gone from current setuptools).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("face-recognition-models is not installed: pip install face-recognition-models==0.3.0")
    path = Path(spec.origin).parent / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall face-recognition-models==0.3.0")
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != sha256:
        raise ValueError(f"{path} has sha256 {digest}, expected {sha256} (face-recognition-models==0.3.0)")
    return path
