"""Reading and writing faceserve's weights in the BentoML model store; what each model is lives in models/registry.

Weights never travel in the repository. `scripts/import_models.py` copies
them from installed packages (or a file the operator downloaded) into the
store, which is what `bentoml build` packs into a bento; the service only
ever loads from the store, so a bento runs with no network.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from models.registry import DLIB_RESNET, FACENET_VGGFACE2, Weights


class ModelNotImported(RuntimeError):
    """A model the service was asked to use is absent from the store."""

    def __init__(self, weights: Weights) -> None:
        super().__init__(
            f"Model '{weights.name}' is not in the BentoML model store. Import it with: {weights.import_hint}"
        )
        self.weights = weights


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find(weights: Weights) -> bentoml.Model | None:
    try:
        return bentoml.models.get(weights.tag)
    except NotFound:
        return None


def stored_file(weights: Weights) -> Path:
    """The weights file of an imported model, or ModelNotImported with the command that fixes it."""
    entry = find(weights)
    if entry is None:
        raise ModelNotImported(weights)
    return Path(entry.path_of(weights.filename))


def save(weights: Weights, path: Path, metadata: dict[str, Any] | None = None) -> tuple[bentoml.Model, bool]:
    """Copy a weights file into the store; a file already stored with the same sha256 is kept.

    Returns the entry and whether a new one was written, so re-running the
    import is a no-op that says so.
    """
    digest = sha256_of(path)
    existing = find(weights)
    if existing is not None and existing.info.metadata.get("sha256") == digest:
        return existing, False
    recorded = {"source": weights.source, "sha256": digest, **(metadata or {})}
    with bentoml.models.create(weights.name, labels={"project": "faceserve"}, metadata=recorded) as entry:
        shutil.copyfile(path, entry.path_of(weights.filename))
    return entry, True


def resolve_model_id(choice: str) -> str:
    """'auto' prefers FaceNet VGGFace2 when its weights are imported, else the always-available dlib port."""
    if choice != "auto":
        return choice
    return FACENET_VGGFACE2.model_id if find(FACENET_VGGFACE2.weights) else DLIB_RESNET.model_id
