"""The gallery: enrolled faces in Qdrant, one directory (tenant) at a time.

Directory isolation is the product's security boundary, so it is enforced
here and only here. The public methods of `Gallery` are written once; the
two backends (Qdrant Edge in-process, a Qdrant server through
qdrant-client) implement a handful of primitives that all take a
`Scope`, and a `Scope` cannot be built without a directory. No primitive
exists that reads, counts, changes or deletes points outside one directory.
The one write by id, the upsert, addresses points whose ids are derived
from (directory, face_id), so it cannot reach another directory's points
whatever face_id a caller supplies.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 256
MAX_SEARCH_LIMIT = 1000
MAX_TRANSFER_PAGE = 1000
# No "_": the collection name maps "-" to "_", and two model ids must never share a name.
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
# Point ids are derived from (directory, face_id): a face_id chosen by a caller
# can then only ever address a point of the caller's own directory.
POINT_ID_NAMESPACE = uuid.UUID("5b0f3c2e-6d1e-4f5a-9a51-1f0f6a3c9e77")


class InvalidInput(ValueError):
    """A caller error the API answers with 400; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _check_identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"invalid_{kind}", f"{kind} must be a non-empty string.")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(f"invalid_{kind}", f"{kind} is longer than {MAX_ID_LENGTH} characters.")
    if value != value.strip() or any(unicodedata.category(c).startswith("C") for c in value):
        raise InvalidInput(f"invalid_{kind}", f"{kind} must not contain control characters or leading/trailing spaces.")
    return value


def check_directory(value: str) -> str:
    return _check_identifier("directory", value)


def check_person_id(value: str) -> str:
    return _check_identifier("person_id", value)


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


def check_metadata(value: dict[str, Any] | None, max_bytes: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("invalid_metadata", "metadata must be a JSON object.")
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput("invalid_metadata", f"metadata is not plain JSON: {exc}") from exc
    if size > max_bytes:
        raise InvalidInput("metadata_too_large", f"metadata is {size} bytes of JSON; the limit is {max_bytes}.")
    return value


def point_id(directory: str, face_id: str) -> str:
    return str(uuid.uuid5(POINT_ID_NAMESPACE, f"{directory}\x00{face_id}"))


@dataclass(frozen=True)
class Scope:
    """Which points a primitive may touch: always one directory, optionally one person or face."""

    directory: str
    person_id: str | None = None
    face_id: str | None = None

    def __post_init__(self) -> None:
        check_directory(self.directory)

    def conditions(self) -> dict[str, str]:
        """Payload fields that must equal these values (directory always first)."""
        out = {"directory": self.directory}
        if self.person_id is not None:
            out["person_id"] = self.person_id
        if self.face_id is not None:
            out["face_id"] = self.face_id
        return out


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

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StoredFace:
        return cls(
            face_id=payload["face_id"],
            directory=payload["directory"],
            person_id=payload["person_id"],
            name=payload.get("name"),
            metadata=payload.get("metadata") or {},
            created_at=payload["created_at"],
            source_sha256=payload.get("source_sha256", ""),
            box=tuple(payload.get("box", (0.0, 0.0, 0.0, 0.0))),
            score=float(payload.get("det_score", 0.0)),
        )


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


@dataclass(frozen=True)
class PersonSummary:
    person_id: str
    name: str | None
    metadata: dict[str, Any]
    face_count: int


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str | None
    metadata: dict[str, Any]
    faces: list[StoredFace] = field(default_factory=list)


@dataclass(frozen=True)
class ImportedPerson:
    """One person's faces from an export, with the vectors as exported."""

    person_id: str
    name: str | None
    metadata: dict[str, Any]
    faces: list[NewFace]


@dataclass(frozen=True)
class Point:
    id: str
    vector: list[float]
    payload: dict[str, Any]


def collection_name(model_id: str, dim: int) -> str:
    """One collection per embedding model and size: vectors of two models never meet.

    The name is also an Edge folder name, so the model id is held to a plain
    character set rather than trusted.
    """
    if not MODEL_ID_PATTERN.fullmatch(model_id) or dim < 1:
        raise ValueError(f"model id {model_id!r} (dim {dim}) cannot name a collection")
    return f"faces_{model_id.replace('-', '_')}_{dim}"


class Gallery(ABC):
    """Enrolled faces of every directory for one embedding model."""

    backend: str = ""

    def __init__(self, model_id: str, dim: int, max_metadata_bytes: int = 4096) -> None:
        self.model_id = model_id
        self.dim = dim
        self.collection = collection_name(model_id, dim)
        self.max_metadata_bytes = max_metadata_bytes
        # Writes that read-then-write (rename keeps faces' other fields) must not interleave.
        self._write_lock = threading.RLock()

    # -- primitives each backend implements; every one is confined to a Scope ----------------
    @abstractmethod
    def _upsert(self, points: Sequence[Point]) -> None:
        """Store all points or none."""

    @abstractmethod
    def _search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict, float]]:
        """Payloads and cosine similarities of the nearest faces in scope, best first."""

    @abstractmethod
    def _scroll(
        self, scope: Scope, limit: int, offset: str | None, with_vectors: bool = False
    ) -> tuple[list[Point], str | None]:
        """A page of points in scope, in id order, and the offset of the next page (vectors empty unless asked)."""

    @abstractmethod
    def _count(self, scope: Scope) -> int: ...

    @abstractmethod
    def _person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        """Faces per person_id in scope, for the `limit` persons with most faces."""

    @abstractmethod
    def _set_payload(self, scope: Scope, payload: dict[str, Any]) -> None: ...

    @abstractmethod
    def _delete(self, scope: Scope) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the operations ---------------------------------------------------------------------
    def add_faces(
        self,
        directory: str,
        person_id: str,
        faces: Sequence[NewFace],
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[str]:
        """Enrol faces of one person in one write: all are stored or none.

        A face_id given again in the same directory overwrites the earlier
        point, so a retried request with the same ids never duplicates a face;
        the same face_id in another directory is another point.
        """
        scope = Scope(check_directory(directory), check_person_id(person_id))
        name = check_name(name)
        metadata = None if metadata is None else check_metadata(metadata, self.max_metadata_bytes)
        if not faces:
            raise InvalidInput("no_faces", "add_faces needs at least one face.")
        vectors = [self._vector(face.vector) for face in faces]
        face_ids = [str(uuid.uuid4()) if f.face_id is None else _check_identifier("face_id", f.face_id) for f in faces]
        if len(set(face_ids)) != len(face_ids):
            raise InvalidInput("invalid_face_id", "face_ids within one call must differ.")
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._write_lock:
            # A photo enrolled without a name or metadata keeps the person's current ones.
            existing = [p.payload for p in self._scroll(scope, 1, None)[0]]
            if existing:
                name = existing[0].get("name") if name is None else name
                metadata = (existing[0].get("metadata") or {}) if metadata is None else metadata
            points = [
                Point(
                    point_id(directory, face_id),
                    vector,
                    {
                        **scope.conditions(),
                        "face_id": face_id,
                        "name": name,
                        "metadata": metadata or {},
                        "created_at": face.created_at or now,
                        "source_sha256": face.source_sha256,
                        "box": [float(v) for v in face.box],
                        "det_score": float(face.score),
                        "model": self.model_id,
                    },
                )
                for face, vector, face_id in zip(faces, vectors, face_ids)
            ]
            self._upsert(points)
            if existing and (
                existing[0].get("name") != name or (existing[0].get("metadata") or {}) != (metadata or {})
            ):
                self._set_payload(scope, {"name": name, "metadata": metadata or {}})
        return face_ids

    def search(
        self, directory: str, vector: np.ndarray, limit: int = 10, min_similarity: float | None = None
    ) -> list[Hit]:
        scope = Scope(check_directory(directory))
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise InvalidInput("invalid_limit", f"limit must be between 1 and {MAX_SEARCH_LIMIT}.")
        found = self._search(scope, self._vector(vector), limit, min_similarity)
        return [Hit(StoredFace.from_payload(payload), similarity) for payload, similarity in found]

    def _vector(self, vector: np.ndarray) -> list[float]:
        """A query or stored vector the backend can normalise for cosine: right size, finite, not zero."""
        v = np.asarray(vector, dtype=np.float32).ravel()
        if v.shape != (self.dim,) or not np.all(np.isfinite(v)) or not np.any(v):
            raise InvalidInput(
                "invalid_vector", f"expected {self.dim} finite floats, not all zero, for {self.model_id}."
            )
        return v.tolist()

    def match_persons(self, directory: str, vector: np.ndarray, top_k: int = 10) -> list[PersonMatch]:
        """Persons among the top_k nearest faces, best first, each with their best face and face count."""
        best: dict[str, PersonMatch] = {}
        for hit in self.search(directory, vector, top_k):
            face = hit.face
            seen = best.get(face.person_id)
            if seen is None:
                best[face.person_id] = PersonMatch(
                    face.person_id, face.name, face.metadata, hit.similarity, face.face_id, 1
                )
            else:
                best[face.person_id] = PersonMatch(
                    seen.person_id, seen.name, seen.metadata, seen.similarity, seen.face_id, seen.matched_faces + 1
                )
        return sorted(best.values(), key=lambda m: m.similarity, reverse=True)

    def list_persons(self, directory: str, limit: int = 50, offset: int = 0) -> tuple[list[PersonSummary], int | None]:
        """One page of persons sorted by person_id, and the offset of the next page (None at the end).

        Qdrant's facet ranks values by count and cuts at its limit, so the
        limit is the directory's face count (an upper bound on its persons)
        and the page is cut here, after sorting by id.
        """
        scope = Scope(check_directory(directory))
        if limit < 1 or offset < 0:
            raise InvalidInput("invalid_limit", "limit must be at least 1 and offset at least 0.")
        faces = self._count(scope)
        counts = self._person_counts(scope, faces) if faces else {}
        ids = sorted(counts)[offset : offset + limit + 1]
        page = []
        for person_id in ids[:limit]:
            first, _ = self._scroll(Scope(directory, person_id), 1, None)
            payload = first[0].payload if first else {}
            page.append(PersonSummary(person_id, payload.get("name"), payload.get("metadata") or {}, counts[person_id]))
        return page, (offset + limit if len(ids) > limit else None)

    def get_person(self, directory: str, person_id: str) -> Person | None:
        scope = Scope(check_directory(directory), check_person_id(person_id))
        faces: list[StoredFace] = []
        offset = None
        while True:
            points, offset = self._scroll(scope, 256, offset)
            faces.extend(StoredFace.from_payload(p.payload) for p in points)
            if offset is None:
                break
        if not faces:
            return None
        faces.sort(key=lambda f: (f.created_at, f.face_id))
        return Person(person_id, faces[-1].name, faces[-1].metadata, faces)

    def update_person(
        self, directory: str, person_id: str, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Person | None:
        """Rename and/or replace metadata on every face of a person; None when the person is absent."""
        scope = Scope(check_directory(directory), check_person_id(person_id))
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check_name(name)
        if metadata is not None:
            changes["metadata"] = check_metadata(metadata, self.max_metadata_bytes)
        with self._write_lock:
            if self._count(scope) == 0:
                return None
            if changes:
                self._set_payload(scope, changes)
        return self.get_person(directory, person_id)

    def export_faces(
        self, directory: str, limit: int = 256, cursor: str | None = None
    ) -> tuple[list[tuple[StoredFace, list[float]]], str | None]:
        """A page of a directory's faces with their vectors, and the cursor of the next page (None at the end).

        Vectors only make sense to a gallery of the same model, which is why
        an export is for moving or backing up a directory, not for sharing.
        """
        scope = Scope(check_directory(directory))
        if not 1 <= limit <= MAX_TRANSFER_PAGE:
            raise InvalidInput("invalid_limit", f"limit must be between 1 and {MAX_TRANSFER_PAGE}.")
        if cursor is not None:
            try:
                cursor = str(uuid.UUID(cursor))
            except (ValueError, AttributeError, TypeError):
                raise InvalidInput("invalid_cursor", "cursor must be the next_cursor of an earlier page.") from None
        points, next_cursor = self._scroll(scope, limit, cursor, with_vectors=True)
        return [(StoredFace.from_payload(p.payload), p.vector) for p in points], next_cursor

    def import_faces(self, directory: str, persons: Sequence[ImportedPerson]) -> int:
        """Write exported faces into `directory` under their own face ids; returns how many were written.

        Everything is validated before anything is written, so a bad record
        changes nothing. Each person is one write; a re-run after an
        interruption overwrites what the first run wrote, never duplicates it.
        """
        check_directory(directory)
        total = sum(len(p.faces) for p in persons)
        if not 1 <= total <= MAX_TRANSFER_PAGE:
            raise InvalidInput("invalid_batch", f"import between 1 and {MAX_TRANSFER_PAGE} faces per call.")
        seen: set[str] = set()
        for person in persons:
            check_person_id(person.person_id)
            check_name(person.name)
            check_metadata(person.metadata, self.max_metadata_bytes)
            for face in person.faces:
                self._vector(face.vector)
                if face.face_id is None or face.face_id in seen:
                    raise InvalidInput("invalid_face_id", "every imported face needs its own face_id.")
                seen.add(_check_identifier("face_id", face.face_id))
        for person in persons:
            self.add_faces(directory, person.person_id, person.faces, person.name, person.metadata)
        return total

    def delete_person(self, directory: str, person_id: str) -> int:
        return self._delete_scope(Scope(check_directory(directory), check_person_id(person_id)))

    def delete_face(self, directory: str, face_id: str) -> int:
        return self._delete_scope(Scope(check_directory(directory), face_id=_check_identifier("face_id", face_id)))

    def delete_directory(self, directory: str) -> int:
        return self._delete_scope(Scope(check_directory(directory)))

    def count(self, directory: str, person_id: str | None = None) -> int:
        return self._count(Scope(check_directory(directory), None if person_id is None else check_person_id(person_id)))

    def _delete_scope(self, scope: Scope) -> int:
        """Delete and prove it: the scope's count must be zero afterwards."""
        with self._write_lock:
            before = self._count(scope)
            if before:
                self._delete(scope)
                remaining = self._count(scope)
                if remaining:
                    raise RuntimeError(f"{remaining} of {before} points survived a delete in {scope}")
        return before

    def ready(self) -> bool:
        """A cheap real read, for the service's readiness probe."""
        self._count(Scope("__readiness__"))
        return True
