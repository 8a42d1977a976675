"""What the gallery stores, independent of any storage.

The rules its input must follow are faceserve/rules.py's, shared with the
request models, so a value is judged the same over HTTP and here; they are
the one way its storage ids and records are made.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from faceserve.rules import InvalidInput

# No "_": the collection name maps "-" to "_", and two model ids must never share a name.
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
# Point ids are derived from (directory, face_id): a face_id chosen by a caller
# can then only ever address a point of the caller's own directory.
POINT_ID_NAMESPACE = uuid.UUID("5b0f3c2e-6d1e-4f5a-9a51-1f0f6a3c9e77")
# What a stored point is: an enrolled face of its person, or a negative example ("this was not them"):
# a face that was wrongly matched to the person, kept so that such faces stop matching them.
Kind = Literal["face", "negative"]
FACE: Kind = "face"
NEGATIVE: Kind = "negative"
# A directory-health read returns at most this many faces of one person: enough to find the ones that
# disagree, and a bound on what one person can cost the report.
MAX_HEALTH_FACES_PER_PERSON = 256


class Conflict(RuntimeError):
    """A write that contradicts what is stored (the API answers 409); `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_detection(box: tuple[float, float, float, float], score: float) -> None:
    """A face's box and detection score are stored and served as JSON numbers, so they must be finite."""
    try:
        numbers = [float(v) for v in box] + [float(score)]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != 5 or not all(math.isfinite(v) for v in numbers):
        raise InvalidInput("invalid_face", "a face needs a box of 4 finite numbers and a finite score.")


def point_id(directory: str, face_id: str) -> str:
    return str(uuid.uuid5(POINT_ID_NAMESPACE, f"{directory}\x00{face_id}"))


def collection_name(model_id: str, dim: int) -> str:
    """One collection per embedding model and size: vectors of two models never meet.

    The name is also an Edge folder name, so the model id is held to a plain
    character set rather than trusted.
    """
    if not MODEL_ID_PATTERN.fullmatch(model_id) or dim < 1:
        raise ValueError(f"model id {model_id!r} (dim {dim}) cannot name a collection")
    return f"faces_{model_id.replace('-', '_')}_{dim}"


@dataclass(frozen=True)
class NewFace:
    """A face to enrol; `face_id` may be given for idempotent retries."""

    vector: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    source_sha256: str
    face_id: str | None = None
    created_at: str | None = None
    """Kept from an export on import; new enrolments are stamped now."""
    quality: dict[str, float | bool] | None = None
    """The face's measured quality (models/quality.Quality's fields, a few numbers), kept so a health report can
    judge it at today's gates; None when not measured (imports, faces enrolled before it was stored)."""


@dataclass(frozen=True)
class StoredFace:
    face_id: str
    directory: str
    person_id: str
    name: str | None
    metadata: dict[str, Any]
    created_at: str
    source_sha256: str
    box: tuple[float, float, float, float]
    score: float
    kind: Kind = FACE
    quality: dict[str, float | bool] | None = None


@dataclass(frozen=True)
class Hit:
    face: StoredFace
    similarity: float


@dataclass(frozen=True)
class PersonMatch:
    """A person among the top-k nearest faces: the best of their faces, and how many were there."""

    person_id: str
    name: str | None
    metadata: dict[str, Any]
    similarity: float
    face_id: str
    matched_faces: int
    negative_similarity: float | None = None
    """The person's most similar negative example to the probe, when asked for and the person has any."""


@dataclass(frozen=True)
class PersonSummary:
    person_id: str
    name: str | None
    metadata: dict[str, Any]
    face_count: int
    negative_count: int = 0


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str | None
    metadata: dict[str, Any]
    faces: list[StoredFace] = field(default_factory=list)
    negatives: list[StoredFace] = field(default_factory=list)
    """Faces stored as "this was not them": never matched, listed here and deleted with the person."""


@dataclass(frozen=True)
class ImportedPerson:
    """One person's faces from an export, with the vectors as exported."""

    person_id: str
    name: str | None
    metadata: dict[str, Any]
    faces: list[NewFace]
    negatives: list[NewFace] = field(default_factory=list)


@dataclass(frozen=True)
class PersonVectors:
    """One person's enrolled face vectors, for a directory-health report (api/health.py)."""

    person_id: str
    name: str | None
    face_ids: tuple[str, ...]
    vectors: np.ndarray
    """len(face_ids) × dim unit vectors, in face_ids' order."""
    truncated: bool
    """The person has more than MAX_HEALTH_FACES_PER_PERSON faces; only that many are here."""
    qualities: tuple[dict[str, float | bool] | None, ...] = ()
    """Each face's stored quality, in face_ids' order (None where none was stored)."""
