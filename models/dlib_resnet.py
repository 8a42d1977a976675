"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) in PyTorch.

dlib-bin runs this network single-threaded without BLAS; the port gives the
same 128-d descriptors batched on PyTorch's CPU kernels. The topology is
hard-coded because the .dat file does not record it (see models/dlib_format.py);
loading walks the file's layer records against it and refuses any mismatch.

Every affine layer follows a conv in this network, so it is folded into that
conv's weights at load time: the descriptors move by ~1e-7, far inside the
parity tolerance, and 29 elementwise passes disappear.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.dlib_format import AddPrev, Affine, Conv, DlibNetwork, Fc, Layer, Pool, Relu, parse_file

CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
# (channels, residual blocks); every stage after the first opens with a
# downsampling block, and the last stage is that block alone.
STAGES = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: operands of different shapes are zero-padded at the end to their elementwise max.

    This is what happens in every downsampling block (channels double; at the
    last two steps the strided conv also yields one row and column fewer than
    the avg-pooled skip). Cropping instead of padding ruins the descriptors.
    """
    if a.shape == b.shape:
        return a + b
    channels, rows, cols = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=False))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1]))

    return pad(a) + pad(b)


class _ResidualBlock(nn.Module):
    """conv-relu-conv plus the input (avg-pooled 2×2 when downsampling), then relu; affines folded into the convs."""

    def __init__(self, in_channels: int, channels: int, downsample: bool) -> None:
        super().__init__()
        stride, padding = (2, 0) if downsample else (1, 1)
        self.downsample = downsample
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=padding)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x), inplace=True))
        skip = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(_add_zero_padded(y, skip), inplace=True)


class DlibResNet(nn.Module):
    """Normalised 150×150 RGB chips in, dlib's raw (not L2-normalised, norm ≈ 1.4) 128-d descriptors out.

    The bare constructor only lays out the architecture; weights come from
    `from_file` / `from_parsed`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("avg_rgb", torch.zeros(3))
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        blocks, in_channels = [], 32
        for stage, (channels, count) in enumerate(STAGES):
            for i in range(count):
                blocks.append(_ResidualBlock(in_channels, channels, downsample=stage > 0 and i == 0))
                in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_channels, DESCRIPTOR_DIM, bias=False)

    @classmethod
    def from_file(cls, path: Path) -> DlibResNet:
        return cls.from_parsed(parse_file(path))

    @classmethod
    def from_parsed(cls, network: DlibNetwork) -> DlibResNet:
        """Raises ValueError when the file's layers do not follow this architecture."""
        if network.chip_size != (CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"network expects {network.chip_size} chips, this port is wired for {CHIP_SIZE}")
        model = cls()
        records = _Records(network.layers)
        with torch.no_grad():
            model.avg_rgb.copy_(torch.tensor(network.avg_rgb, dtype=torch.float32))
            records.conv_affine_into(model.stem)
            records.expect(Relu)
            records.pool("max", (3, 3), (2, 2))
            for block in model.blocks:
                records.conv_affine_into(block.conv1)
                records.expect(Relu)
                records.conv_affine_into(block.conv2)
                if block.downsample:
                    records.pool("avg", (2, 2), (2, 2))
                records.expect(AddPrev)
                records.expect(Relu)
            records.pool("avg", (0, 0), (1, 1))
            records.fc_into(model.fc)
            records.finish()
        return model.eval()

    def preprocess(self, chips: torch.Tensor) -> torch.Tensor:
        """N×150×150×3 uint8 RGB → N×3×150×150 float: (pixel − avg) / 256, the scaling dlib trained with.

        Not /255 and no std: either costs 0.2-0.5 in Euclidean distance. The
        result keeps the NHWC strides of the input, i.e. it is channels_last.
        """
        if chips.dtype != torch.uint8 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            shape = f"N×{CHIP_SIZE}×{CHIP_SIZE}×3"
            raise ValueError(f"expected {shape} uint8 chips, got {tuple(chips.shape)} {chips.dtype}")
        return (chips.permute(0, 3, 1, 2).float() - self.avg_rgb.view(1, 3, 1, 1)) / 256.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x), inplace=True), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


class _Records:
    """The parsed layer records consumed in order, each checked against the layer the architecture expects."""

    def __init__(self, layers: tuple[Layer, ...]) -> None:
        self._layers: Iterator[tuple[int, Layer]] = enumerate(layers)
        self._count = len(layers)

    def expect(self, kind: type) -> Layer:
        index, layer = next(self._layers, (self._count, None))
        if not isinstance(layer, kind):
            found = "end of file" if layer is None else type(layer).__name__
            raise ValueError(f"dlib layer {index}: expected {kind.__name__}, found {found}")
        return layer

    def conv_affine_into(self, conv: nn.Conv2d) -> None:
        """Folds affine(conv(x)) = γ·(W∗x + b) + β into one conv, in float64 so each weight is rounded once."""
        record: Conv = self.expect(Conv)
        affine: Affine = self.expect(Affine)
        if (
            record.weight.shape != tuple(conv.weight.shape)
            or record.stride != conv.stride
            or record.padding != conv.padding
            or affine.gamma.shape != (conv.out_channels,)
        ):
            raise ValueError(
                f"dlib conv {record.weight.shape} stride {record.stride} pad {record.padding} does not fit "
                f"{tuple(conv.weight.shape)} stride {conv.stride} pad {conv.padding}"
            )
        gamma = affine.gamma.astype(np.float64)
        weight = record.weight.astype(np.float64) * gamma[:, None, None, None]
        bias = record.bias.astype(np.float64) * gamma + affine.beta
        conv.weight.copy_(torch.from_numpy(weight))
        conv.bias.copy_(torch.from_numpy(bias))

    def pool(self, kind: str, size: tuple[int, int], stride: tuple[int, int]) -> None:
        record: Pool = self.expect(Pool)
        if (record.kind, record.size, record.stride, record.padding) != (kind, size, stride, (0, 0)):
            raise ValueError(f"dlib pool {record} where a {kind} pool {size} stride {stride} belongs")

    def fc_into(self, fc: nn.Linear) -> None:
        record: Fc = self.expect(Fc)
        if record.bias is not None or record.weight.shape != tuple(fc.weight.shape):
            has_bias = record.bias is not None
            raise ValueError(f"dlib fc {record.weight.shape} (bias: {has_bias}) does not fit {fc}")
        fc.weight.copy_(torch.from_numpy(record.weight))

    def finish(self) -> None:
        index, layer = next(self._layers, (self._count, None))
        if layer is not None:
            raise ValueError(f"dlib layer {index}: unexpected {type(layer).__name__} after the fc layer")
