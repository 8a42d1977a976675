"""What the gallery stores and the rules its input must follow, independent of any storage.

Every id, name and metadata object a caller sends is checked by one rule
here, and the rule returns the value to use from then on: ids are
normalised (NFC), so the checked value, not the one received, is what the
gallery stores and what callers must pass on.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 256
MAX_SEARCH_LIMIT = 1000
MAX_TRANSFER_PAGE = 1000
# Metadata is a caller's JSON object. Qdrant Edge's payload decoder stops at 128 levels (and a shard holding a
# deeper payload fails every later write), so depth and size are held far below anything an engine could choke on.
MAX_METADATA_DEPTH = 8
MAX_METADATA_VALUES = 256
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
# "*" means "every directory" in an API key's scope, so no id may contain it; "." and ".." read as paths.
RESERVED_IDS = frozenset({".", ".."})


class InvalidInput(ValueError):
    """A caller error the API answers with 400; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Conflict(RuntimeError):
    """A write that contradicts what is stored (the API answers 409); `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_identifier(kind: str, value: str) -> str:
    """The one rule for directory, person_id and face_id; returns the NFC form, which is the id from then on.

    Allowed: 1-128 characters after NFC normalisation, no leading or trailing
    space, no `*` anywhere, not `.` or `..`, and no character of the Unicode
    categories C* (control, format, surrogate, private use, unassigned) or Z*
    (separators: line and paragraph separators, non-breaking and other
    spaces) except the plain space U+0020 between other characters. Two
    spellings of one name (NFC and NFD "é") are then one id, and no id can
    hide a line break or an invisible character in a log or a key file.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"invalid_{kind}", f"{kind} must be a non-empty string.")
    value = unicodedata.normalize("NFC", value)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(f"invalid_{kind}", f"{kind} is longer than {MAX_ID_LENGTH} characters.")
    if value != value.strip(" ") or value in RESERVED_IDS or "*" in value:
        raise InvalidInput(
            f"invalid_{kind}", f"{kind} must not be '.' or '..', contain '*', or start or end with a space."
        )
    if any(unicodedata.category(c)[0] in "CZ" and c != " " for c in value):
        raise InvalidInput(
            f"invalid_{kind}", f"{kind} must not contain control, format or separator characters other than a space."
        )
    return value


def check_directory(value: str) -> str:
    return check_identifier("directory", value)


def check_person_id(value: str) -> str:
    return check_identifier("person_id", value)


def check_face_id(value: str) -> str:
    return check_identifier("face_id", value)


def check_name(value: str | None) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_NAME_LENGTH
        or any(unicodedata.category(c) == "Cc" for c in value)
    ):
        raise InvalidInput(
            "invalid_name", f"name must be at most {MAX_NAME_LENGTH} characters without control characters."
        )
    return value


def _metadata_shape_error(value: dict[str, Any]) -> str | None:
    """Why `value` is not small, plain JSON, or None; walked without recursion so no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    values = 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_METADATA_DEPTH:
                return f"metadata nests deeper than {MAX_METADATA_DEPTH} levels"
            if isinstance(item, dict) and not all(isinstance(k, str) for k in item):
                return "metadata keys must be strings"
            children = list(item.values()) if isinstance(item, dict) else item
            values += len(children)
            if values > MAX_METADATA_VALUES:
                return f"metadata holds more than {MAX_METADATA_VALUES} values"
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            return "metadata numbers must be finite"
        elif item is not None and not isinstance(item, (str, int, float)):
            return f"metadata values must be JSON, not {type(item).__name__}"
    return None


def check_metadata(value: dict[str, Any] | None, max_bytes: int) -> dict[str, Any]:
    """A JSON object of at most `max_bytes`, MAX_METADATA_DEPTH levels and MAX_METADATA_VALUES values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("invalid_metadata", "metadata must be a JSON object.")
    problem = _metadata_shape_error(value)
    if problem:
        raise InvalidInput("invalid_metadata", f"{problem}.")
    size = len(encode_metadata(value).encode())
    if size > max_bytes:
        raise InvalidInput("metadata_too_large", f"metadata is {size} bytes of JSON; the limit is {max_bytes}.")
    return value


def encode_metadata(value: dict[str, Any]) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


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
