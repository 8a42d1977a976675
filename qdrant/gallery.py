"""The gallery: enrolled faces of every directory for one embedding model, over any `Store`.

Written once for every backend; the store only provides scoped primitives
(see qdrant/store.py), so isolation, validation and the read-then-write
rules live here and nowhere else.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from faceserve.limits import MAX_SEARCH_LIMIT, MAX_TRANSFER_PAGE
from faceserve.rules import (
    InvalidInput,
    check_directory,
    check_face_id,
    check_metadata,
    check_name,
    check_person_id,
)
from qdrant.domain import (
    Conflict,
    Hit,
    ImportedPerson,
    NewFace,
    Person,
    PersonMatch,
    PersonSummary,
    StoredFace,
    check_detection,
    point_id,
)
from qdrant.payload import face_payload, metadata_of, person_fields, stored_face
from qdrant.store import PROBE_DIRECTORY, Point, Scope, Store

logger = logging.getLogger("faceserve.gallery")
# A passed readiness probe is trusted this long, so a busy /readyz costs at most one probe write per interval.
READY_PROBE_INTERVAL_S = 5.0


class Gallery:
    """Enrolled faces of every directory for one embedding model."""

    def __init__(self, store: Store, model_id: str, dim: int, max_metadata_bytes: int = 4096) -> None:
        self.store = store
        self.model_id = model_id
        self.dim = dim
        self.max_metadata_bytes = max_metadata_bytes
        # Writes that read-then-write (rename keeps faces' other fields, face-id conflicts) must not interleave.
        self._write_lock = threading.RLock()
        self._ready_until = 0.0

    @property
    def backend(self) -> str:
        return self.store.backend

    @property
    def collection(self) -> str:
        return self.store.collection

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_faces(
        self,
        directory: str,
        person_id: str,
        faces: Sequence[NewFace],
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[str]:
        """Enrol faces of one person in one write: all are stored or none.

        A face_id given again in the same directory for the same person and
        photo (source_sha256) stores the face once, so a retried request never
        duplicates it; given for another person or photo it is a Conflict, not
        an overwrite. The same face_id in another directory is another point.
        """
        scope = Scope(check_directory(directory), check_person_id(person_id))
        name = check_name(name)
        metadata = None if metadata is None else check_metadata(metadata, self.max_metadata_bytes)
        if not faces:
            raise InvalidInput("no_faces", "add_faces needs at least one face.")
        vectors = [self._vector(face.vector) for face in faces]
        for face in faces:
            check_detection(face.box, face.score)
        face_ids = [str(uuid.uuid4()) if f.face_id is None else check_face_id(f.face_id) for f in faces]
        if len(set(face_ids)) != len(face_ids):
            raise InvalidInput("invalid_face_id", "face_ids within one call must differ.")
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._write_lock:
            self._check_no_conflict(
                scope, [(fid, f) for fid, f in zip(face_ids, faces, strict=False) if f.face_id is not None]
            )
            # A photo enrolled without a name or metadata keeps the person's current ones.
            existing = [p.payload for p in self.store.scroll(scope, 1, None)[0]]
            if existing:
                name = existing[0].get("name") if name is None else name
                metadata = metadata_of(existing[0]) if metadata is None else metadata
            metadata = metadata or {}
            points = [
                Point(
                    point_id(scope.directory, face_id),
                    vector,
                    face_payload(scope, face_id, face, name, metadata, now, self.model_id),
                )
                for face, vector, face_id in zip(faces, vectors, face_ids, strict=False)
            ]
            self.store.upsert(points)
            if existing and (existing[0].get("name"), metadata_of(existing[0])) != (name, metadata):
                self.store.set_payload(scope, person_fields(name, metadata))
        return face_ids

    def _check_no_conflict(self, person: Scope, faces: Sequence[tuple[str, NewFace]]) -> None:
        """A caller-chosen face_id already stored for another person or photo must not be overwritten.

        Runs under the write lock, so concurrent writers of one face_id cannot both pass it.
        """
        for face_id, face in faces:
            found, _ = self.store.scroll(Scope(person.directory, face_id=face_id), 1, None)
            if not found:
                continue
            stored = found[0].payload
            if stored.get("person_id") != person.person_id or stored.get("source_sha256") != face.source_sha256:
                raise Conflict(
                    "face_id_conflict",
                    f"face {face_id!r} is already stored for another person or photo in this directory.",
                )

    def search(
        self, directory: str, vector: np.ndarray, limit: int = 10, min_similarity: float | None = None
    ) -> list[Hit]:
        scope = Scope(check_directory(directory))
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise InvalidInput("invalid_limit", f"limit must be between 1 and {MAX_SEARCH_LIMIT}.")
        found = self.store.search(scope, self._vector(vector), limit, min_similarity)
        return [Hit(stored_face(payload), similarity) for payload, similarity in found]

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
        faces = self.store.count(scope)
        counts = self.store.person_counts(scope, faces) if faces else {}
        ids = sorted(counts)[offset : offset + limit + 1]
        page = []
        for person_id in ids[:limit]:
            first, _ = self.store.scroll(Scope(scope.directory, person_id), 1, None)
            payload = first[0].payload if first else {}
            page.append(PersonSummary(person_id, payload.get("name"), metadata_of(payload), counts[person_id]))
        return page, (offset + limit if len(ids) > limit else None)

    def get_person(self, directory: str, person_id: str) -> Person | None:
        scope = Scope(check_directory(directory), check_person_id(person_id))
        faces: list[StoredFace] = []
        offset = None
        while True:
            points, offset = self.store.scroll(scope, 256, offset)
            faces.extend(stored_face(p.payload) for p in points)
            if offset is None:
                break
        if not faces:
            return None
        faces.sort(key=lambda f: (f.created_at, f.face_id))
        return Person(scope.person_id or "", faces[-1].name, faces[-1].metadata, faces)

    def update_person(
        self, directory: str, person_id: str, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Person | None:
        """Rename and/or replace metadata on every face of a person; None when the person is absent."""
        scope = Scope(check_directory(directory), check_person_id(person_id))
        name = check_name(name)
        metadata = None if metadata is None else check_metadata(metadata, self.max_metadata_bytes)
        with self._write_lock:
            first, _ = self.store.scroll(scope, 1, None)
            if not first:
                return None
            if name is not None or metadata is not None:
                current = first[0].payload
                self.store.set_payload(
                    scope,
                    person_fields(
                        current.get("name") if name is None else name,
                        metadata_of(current) if metadata is None else metadata,
                    ),
                )
        return self.get_person(scope.directory, scope.person_id or "")

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
        points, next_cursor = self.store.scroll(scope, limit, cursor, with_vectors=True)
        return [(stored_face(p.payload), p.vector) for p in points], next_cursor

    def import_faces(self, directory: str, persons: Sequence[ImportedPerson]) -> int:
        """Write exported faces into `directory` under their own face ids; returns how many were written.

        Everything is validated, conflicts included, before anything is
        written, so a bad record changes nothing. Each person is one write; a
        re-run after an interruption overwrites what the first run wrote,
        never duplicates it.
        """
        directory = check_directory(directory)
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
                check_detection(face.box, face.score)
                face_id = None if face.face_id is None else check_face_id(face.face_id)
                if face_id is None or face_id in seen:
                    raise InvalidInput("invalid_face_id", "every imported face needs its own face_id.")
                seen.add(face_id)
        with self._write_lock:
            for person in persons:
                scope = Scope(directory, check_person_id(person.person_id))
                self._check_no_conflict(scope, [(check_face_id(f.face_id or ""), f) for f in person.faces])
            for person in persons:
                self.add_faces(directory, person.person_id, person.faces, person.name, person.metadata)
        return total

    def delete_person(self, directory: str, person_id: str) -> int:
        return self._delete_scope(Scope(check_directory(directory), check_person_id(person_id)))

    def delete_face(self, directory: str, face_id: str) -> int:
        return self._delete_scope(Scope(check_directory(directory), face_id=check_face_id(face_id)))

    def delete_directory(self, directory: str) -> int:
        return self._delete_scope(Scope(check_directory(directory)))

    def count(self, directory: str, person_id: str | None = None) -> int:
        person = None if person_id is None else check_person_id(person_id)
        return self.store.count(Scope(check_directory(directory), person))

    def _delete_scope(self, scope: Scope) -> int:
        """Delete and prove it: the scope's count must be zero afterwards."""
        with self._write_lock:
            before = self.store.count(scope)
            if before:
                self.store.delete(scope)
                remaining = self.store.count(scope)
                if remaining:
                    raise RuntimeError(f"{remaining} of {before} points survived a delete in {scope}")
        return before

    def ready(self) -> bool:
        """Whether the gallery can write, read back and delete right now; never raises.

        A read alone does not do: an Edge shard that failed one write refuses
        every later write while its reads still work. So the probe upserts a
        point in a directory no caller can name, reads it back and deletes it.
        That costs two flushed writes, so a pass is trusted for
        READY_PROBE_INTERVAL_S; a failure is probed again on the next call.
        """
        if time.monotonic() < self._ready_until:
            return True
        scope = Scope(PROBE_DIRECTORY)
        probe = Point(point_id(PROBE_DIRECTORY, "probe"), [1.0] * self.dim, {**scope.conditions(), "face_id": "probe"})
        try:
            with self._write_lock:
                self.store.upsert([probe])
                read, _ = self.store.scroll(scope, 2, None)
                self.store.delete(scope)
                ok = [p.payload for p in read] == [probe.payload] and self.store.count(scope) == 0
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # a Rust panic inside qdrant-edge arrives as pyo3's PanicException, a BaseException
            logger.exception("gallery readiness probe failed")
            return False
        if ok:
            self._ready_until = time.monotonic() + READY_PROBE_INTERVAL_S
        else:
            logger.error("gallery readiness probe read back something other than it wrote")
        return ok
