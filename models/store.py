"""Our entries in the BentoML model store: what they are and where their files lie.

Weights never travel in the repository. `scripts/import_models.py` copies
them from installed packages (or a file the operator downloaded) into the
store, which is what `bentoml build` packs into a bento; the service only
ever loads from the store, so a bento runs with no network.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound


@dataclass(frozen=True)
class StoredModel:
    """One model-store entry: its name and the single weights file inside it."""

    name: str
    filename: str
    source: str
    dimension: int
    input_size: int
    distance: str

    @property
    def tag(self) -> str:
        return f"{self.name}:latest"


MTCNN = StoredModel(
    name="mtcnn",
    filename="mtcnn.pt",
    source="facenet-pytorch package data (pnet.pt, rnet.pt, onet.pt)",
    dimension=0,
    input_size=0,
    distance="",
)
DLIB_RESNET = StoredModel(
    name="dlib-resnet",
    filename="dlib_face_recognition_resnet_model_v1.dat",
    source="PyPI face-recognition-models==0.3.0 (CC0)",
    dimension=128,
    input_size=150,
    distance="cosine",
)
FACENET_VGGFACE2 = StoredModel(
    name="facenet-vggface2",
    filename="state_dict.pt",
    source="facenet-pytorch release 20180402-114759-vggface2.pt",
    dimension=512,
    input_size=160,
    distance="cosine",
)
FACENET_CASIA = StoredModel(
    name="facenet-casia",
    filename="state_dict.pt",
    source="facenet-pytorch release 20180408-102900-casia-webface.pt",
    dimension=512,
    input_size=160,
    distance="cosine",
)


class ModelNotImported(RuntimeError):
    """A model the service was asked to use is absent from the store."""

    def __init__(self, model: StoredModel) -> None:
        hint = "python scripts/import_models.py"
        if model.name.startswith("facenet"):
            hint += " --facenet-weights PATH_TO_WEIGHTS.pt"
        super().__init__(f"Model '{model.name}' is not in the BentoML model store. Import it with: {hint}")
        self.model = model


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find(model: StoredModel) -> bentoml.Model | None:
    try:
        return bentoml.models.get(model.tag)
    except NotFound:
        return None


def weights_path(model: StoredModel) -> Path:
    """The weights file of an imported model, or ModelNotImported with the command that fixes it."""
    entry = find(model)
    if entry is None:
        raise ModelNotImported(model)
    return Path(entry.path_of(model.filename))


def save(model: StoredModel, weights: Path, extra: dict[str, str] | None = None) -> tuple[bentoml.Model, bool]:
    """Copy a weights file into the store; a file already stored with the same sha256 is kept.

    Returns the entry and whether a new one was written, so re-running the
    import is a no-op that says so.
    """
    digest = sha256_of(weights)
    existing = find(model)
    if existing is not None and existing.info.metadata.get("sha256") == digest:
        return existing, False
    metadata = {
        "source": model.source,
        "sha256": digest,
        "dimension": model.dimension,
        "input_size": model.input_size,
        "distance": model.distance,
        **(extra or {}),
    }
    with bentoml.models.create(model.name, labels={"project": "faceserve"}, metadata=metadata) as entry:
        shutil.copyfile(weights, entry.path_of(model.filename))
    return entry, True
