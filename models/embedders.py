"""Face embedders: aligned uint8 chips in, L2-normalised float32 vectors out.

Both models are compared the same way, by cosine similarity of normalised
vectors (equivalently Euclidean distance, d = sqrt(2 - 2·cos)), so the gallery
and the API need no per-model distance code; only the threshold differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models import store
from models.alignment import DLIB_150, FACENET_160, ChipGeometry


def distance(similarity: float) -> float:
    """Euclidean distance of two unit vectors from their cosine similarity: sqrt(2 - 2·cos)."""
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity)))


@dataclass(frozen=True)
class EmbedderSpec:
    """What a caller must know about a model to align for it and to read its scores."""

    model_id: str
    dim: int
    geometry: ChipGeometry
    threshold: float
    """Cosine similarity at or above which two faces are the same person."""

    stored: store.StoredModel
    mirror: bool = False
    """Embed each chip and its mirror image and use the mean: twice the
    compute, but half-lit and partly cut-off faces embed more stably."""

    @property
    def distance_threshold(self) -> float:
        return distance(self.threshold)


# dlib documents Euclidean 0.6 on its raw descriptors. Raw descriptors have a
# near-constant norm (median 1.45, range 1.36–1.53 on the 55 johns photos),
# so on normalised vectors that is a distance of 0.6/1.45 = 0.41, cosine 0.91.
DLIB_RESNET = EmbedderSpec("dlib-resnet", 128, DLIB_150, threshold=0.91, stored=store.DLIB_RESNET, mirror=True)
# facenet-pytorch's VGGFace2/CASIA models are usually thresholded at a
# Euclidean distance of about 1.1 on normalised vectors (Sandberg's LFW
# validation): cosine 0.40. Re-measure with scripts/evaluate.py once imported.
FACENET_VGGFACE2 = EmbedderSpec("facenet-vggface2", 512, FACENET_160, threshold=0.40, stored=store.FACENET_VGGFACE2)
FACENET_CASIA = EmbedderSpec("facenet-casia", 512, FACENET_160, threshold=0.40, stored=store.FACENET_CASIA)
SPECS = {spec.model_id: spec for spec in (DLIB_RESNET, FACENET_VGGFACE2, FACENET_CASIA)}


class Embedder:
    """A network plus the input scaling it was trained with, run in inference mode."""

    def __init__(
        self,
        spec: EmbedderSpec,
        net: nn.Module,
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        device: str = "cpu",
    ) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self._net = net.eval().to(self.device, memory_format=torch.channels_last)
        self._preprocess = preprocess

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """N×S×S×3 uint8 chips → N×dim float32 unit vectors."""
        size = self.spec.geometry.size
        if chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
            raise ValueError(f"{self.spec.model_id} expects N×{size}×{size}×3 chips, got {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        with torch.inference_mode():
            x = torch.from_numpy(np.array(chips, copy=True)).to(self.device)
            if self.spec.mirror:
                x = torch.cat([x, x.flip(2)])
            x = self._preprocess(x).contiguous(memory_format=torch.channels_last)
            out = self._net(x).float()
            if self.spec.mirror:
                out = out[: len(chips)] + out[len(chips) :]
            out = nn.functional.normalize(out, dim=1)
        return out.cpu().numpy()


def _facenet_input(chips: torch.Tensor) -> torch.Tensor:
    """facenet-pytorch's fixed_image_standardization: (x − 127.5) / 128."""
    return (chips.permute(0, 3, 1, 2).float() - 127.5) / 128.0


def load_dlib_resnet(device: str = "cpu") -> Embedder:
    from models.dlib_resnet import DlibResNet

    net = DlibResNet.from_file(store.weights_path(store.DLIB_RESNET))
    return Embedder(DLIB_RESNET, net, net.preprocess, device)


def load_facenet(spec: EmbedderSpec, device: str = "cpu") -> Embedder:
    """InceptionResnetV1 with imported weights; never random ones, which would embed noise silently."""
    from facenet_pytorch import InceptionResnetV1

    state = torch.load(store.weights_path(spec.stored), map_location="cpu", weights_only=True)
    net = InceptionResnetV1(pretrained=None, classify=False)
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    return Embedder(spec, net, _facenet_input, device)


def resolve_model_id(choice: str) -> str:
    """'auto' prefers FaceNet VGGFace2 when its weights are imported, else the always-available dlib port."""
    if choice != "auto":
        return choice
    return FACENET_VGGFACE2.model_id if store.find(store.FACENET_VGGFACE2) else DLIB_RESNET.model_id


def load_embedder(choice: str, device: str = "cpu") -> Embedder:
    model_id = resolve_model_id(choice)
    spec = SPECS[model_id]
    if spec is DLIB_RESNET:
        return load_dlib_resnet(device)
    return load_facenet(spec, device)
