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
from dataclasses import replace
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
    FACE,
    MAX_HEALTH_FACES_PER_PERSON,
    NEGATIVE,
    Conflict,
    Hit,
    ImportedPerson,
    Kind,
    NewFace,
    Person,
    PersonMatch,
    PersonSummary,
    PersonVectors,
    StoredFace,
    check_detection,
    point_id,
)
from qdrant.payload import face_payload, kind_of, metadata_of, person_fields, stored_face
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
        scope = Scope(check_directory(directory), check_person_id(person_id), kind=FACE)
        name = check_name(name)
        metadata = None if metadata is None else check_metadata(metadata, self.max_metadata_bytes)
        vectors, face_ids = self._checked_faces(faces)
        with self._write_lock:
            self._check_no_conflict(
                scope, [(fid, f) for fid, f in zip(face_ids, faces, strict=True) if f.face_id is not None]
            )
            # A photo enrolled without a name or metadata keeps the person's current ones.
            existing = [p.payload for p in self.store.scroll(scope, 1, None)[0]]
            if existing:
                name = existing[0].get("name") if name is None else name
                metadata = metadata_of(existing[0]) if metadata is None else metadata
            metadata = metadata or {}
            self._upsert(scope, faces, vectors, face_ids, name, metadata)
            if existing and (existing[0].get("name"), metadata_of(existing[0])) != (name, metadata):
                self.store.set_payload(scope, person_fields(name, metadata))
        return face_ids

    def add_negatives(self, directory: str, person_id: str, faces: Sequence[NewFace]) -> list[str] | None:
        """Store faces as negative examples of an enrolled person ("this was not them"); None when the person
        has no enrolled face, since a negative of nobody would say nothing.

        Negatives are never returned by `search` or `match_persons`; `best_negatives` reads them, so a
        decision can require a probe to be closer to the person's faces than to the faces they are not.
        They share the face-id space of the directory: a caller-chosen face_id already stored as a face (or
        for another person or photo) is a Conflict, and `delete_face` deletes a negative by its id.
        """
        scope = Scope(check_directory(directory), check_person_id(person_id), kind=NEGATIVE)
        vectors, face_ids = self._checked_faces(faces)
        with self._write_lock:
            if not self.store.count(Scope(scope.directory, scope.person_id, kind=FACE)):
                return None
            self._check_no_conflict(
                scope, [(fid, f) for fid, f in zip(face_ids, faces, strict=True) if f.face_id is not None]
            )
            self._upsert(scope, faces, vectors, face_ids, None, {})
        return face_ids

    def _checked_faces(self, faces: Sequence[NewFace]) -> tuple[list[list[float]], list[str]]:
        """Every face's vector and detection checked, and the face ids to store them under."""
        if not faces:
            raise InvalidInput("no_faces", "at least one face is needed.")
        vectors = [self._vector(face.vector) for face in faces]
        for face in faces:
            check_detection(face.box, face.score)
        face_ids = [str(uuid.uuid4()) if f.face_id is None else check_face_id(f.face_id) for f in faces]
        if len(set(face_ids)) != len(face_ids):
            raise InvalidInput("invalid_face_id", "face_ids within one call must differ.")
        return vectors, face_ids

    def _upsert(
        self,
        scope: Scope,
        faces: Sequence[NewFace],
        vectors: list[list[float]],
        face_ids: list[str],
        name: str | None,
        metadata: dict[str, Any],
    ) -> None:
        """One write of a person's faces or negatives (scope.kind says which): all stored or none."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        kind: Kind = scope.kind or FACE
        self.store.upsert(
            [
                Point(
                    point_id(scope.directory, face_id),
                    vector,
                    face_payload(scope, face_id, face, name, metadata, now, self.model_id, kind),
                )
                for face, vector, face_id in zip(faces, vectors, face_ids, strict=True)
            ]
        )

    def _check_no_conflict(self, person: Scope, faces: Sequence[tuple[str, NewFace]]) -> None:
        """A caller-chosen face_id already stored for another person or photo, or as the other kind
        (a face resent as a negative), must not be overwritten.

        Runs under the write lock, so concurrent writers of one face_id cannot both pass it.
        """
        for face_id, face in faces:
            found, _ = self.store.scroll(Scope(person.directory, face_id=face_id), 1, None)
            if not found:
                continue
            stored = found[0].payload
            if (
                stored.get("person_id") != person.person_id
                or stored.get("source_sha256") != face.source_sha256
                or kind_of(stored) != (person.kind or FACE)
            ):
                raise Conflict(
                    "face_id_conflict",
                    f"face {face_id!r} is already stored for another person, photo or kind in this directory.",
                )

    def search(
        self, directory: str, vector: np.ndarray, limit: int = 10, min_similarity: float | None = None
    ) -> list[Hit]:
        """The enrolled faces nearest `vector`, best first; never a negative example."""
        scope = Scope(check_directory(directory), kind=FACE)
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

    def match_persons(
        self, directory: str, vector: np.ndarray, top_k: int = 10, with_negatives: bool = False
    ) -> list[PersonMatch]:
        """Persons among the top_k nearest faces, best first, each with their best face and face count, and with
        `with_negatives` their best negative example's similarity (`best_negatives`)."""
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
        matches = sorted(best.values(), key=lambda m: m.similarity, reverse=True)
        if not with_negatives or not matches:
            return matches
        negatives = self.best_negatives(directory, vector, [m.person_id for m in matches])
        return [replace(m, negative_similarity=negatives.get(m.person_id)) for m in matches]

    def best_negatives(self, directory: str, vector: np.ndarray, person_ids: Sequence[str]) -> dict[str, float]:
        """For each person with negative examples, the similarity of the one nearest `vector`.

        One search per person, each confined to that person's negatives: the directory's nearest
        negatives overall could all belong to one person and say nothing of the others.
        """
        directory = check_directory(directory)
        if len(person_ids) > MAX_SEARCH_LIMIT:
            raise InvalidInput("invalid_limit", f"at most {MAX_SEARCH_LIMIT} persons at once.")
        query = self._vector(vector)
        out: dict[str, float] = {}
        for person_id in dict.fromkeys(check_person_id(p) for p in person_ids):
            found = self.store.search(Scope(directory, person_id, kind=NEGATIVE), query, 1, None)
            if found:
                out[person_id] = found[0][1]
        return out

    def has_face(self, directory: str, face_id: str) -> bool:
        """Whether the directory holds a face or negative under `face_id` (an idempotent retry's id)."""
        return bool(self.store.count(Scope(check_directory(directory), face_id=check_face_id(face_id))))

    def person_similarity(self, directory: str, person_id: str, vector: np.ndarray) -> float | None:
        """The similarity of `vector` to the person's most similar enrolled face; None when they have none."""
        scope = Scope(check_directory(directory), check_person_id(person_id), kind=FACE)
        found = self.store.search(scope, self._vector(vector), 1, None)
        return found[0][1] if found else None

    def list_persons(self, directory: str, limit: int = 50, offset: int = 0) -> tuple[list[PersonSummary], int | None]:
        """One page of persons sorted by person_id, and the offset of the next page (None at the end).

        Qdrant's facet ranks values by count and cuts at its limit, so the
        limit is the directory's face count (an upper bound on its persons)
        and the page is cut here, after sorting by id.
        """
        ids, counts, next_offset = self._person_page(directory, limit, offset)
        directory = check_directory(directory)
        negatives_scope = Scope(directory, kind=NEGATIVE)
        negatives = self.store.count(negatives_scope)
        negative_counts = self.store.person_counts(negatives_scope, negatives) if negatives else {}
        page = []
        for person_id in ids:
            first, _ = self.store.scroll(Scope(directory, person_id, kind=FACE), 1, None)
            payload = first[0].payload if first else {}
            page.append(
                PersonSummary(
                    person_id,
                    payload.get("name"),
                    metadata_of(payload),
                    counts[person_id],
                    negative_counts.get(person_id, 0),
                )
            )
        return page, next_offset

    def _person_page(self, directory: str, limit: int, offset: int) -> tuple[list[str], dict[str, int], int | None]:
        """One page of the ids of persons with enrolled faces, sorted, their face counts, and the next offset."""
        scope = Scope(check_directory(directory), kind=FACE)
        if limit < 1 or offset < 0:
            raise InvalidInput("invalid_limit", "limit must be at least 1 and offset at least 0.")
        faces = self.store.count(scope)
        counts = self.store.person_counts(scope, faces) if faces else {}
        ids = sorted(counts)[offset : offset + limit + 1]
        return ids[:limit], counts, (offset + limit if len(ids) > limit else None)

    def person_vectors(
        self, directory: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[PersonVectors], int | None]:
        """One page of persons (sorted by id, paged as `list_persons`) with their enrolled face vectors, for a
        directory-health report; at most MAX_HEALTH_FACES_PER_PERSON faces each, and never a negative."""
        if limit > MAX_TRANSFER_PAGE:
            raise InvalidInput("invalid_limit", f"limit must be at most {MAX_TRANSFER_PAGE}.")
        ids, _, next_offset = self._person_page(directory, limit, offset)
        directory = check_directory(directory)
        page = []
        for person_id in ids:
            points, more = self.store.scroll(
                Scope(directory, person_id, kind=FACE), MAX_HEALTH_FACES_PER_PERSON, None, with_vectors=True
            )
            page.append(
                PersonVectors(
                    person_id,
                    points[0].payload.get("name") if points else None,
                    tuple(p.payload["face_id"] for p in points),
                    np.array([p.vector for p in points], dtype=np.float32).reshape(len(points), self.dim),
                    more is not None,
                    tuple(stored_face(p.payload).quality for p in points),
                )
            )
        return page, next_offset

    def get_person(self, directory: str, person_id: str) -> Person | None:
        """A person's faces and, separately, their negative examples; None when neither exists."""
        scope = Scope(check_directory(directory), check_person_id(person_id))
        stored: list[StoredFace] = []
        offset = None
        while True:
            points, offset = self.store.scroll(scope, 256, offset)
            stored.extend(stored_face(p.payload) for p in points)
            if offset is None:
                break
        if not stored:
            return None
        stored.sort(key=lambda f: (f.created_at, f.face_id))
        faces = [f for f in stored if f.kind == FACE]
        negatives = [f for f in stored if f.kind == NEGATIVE]
        name, metadata = (faces[-1].name, faces[-1].metadata) if faces else (None, {})
        return Person(scope.person_id or "", name, metadata, faces, negatives)

    def update_person(
        self, directory: str, person_id: str, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Person | None:
        """Rename and/or replace metadata on every face of a person; None when the person is absent."""
        scope = Scope(check_directory(directory), check_person_id(person_id), kind=FACE)
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
        """A page of a directory's faces and negative examples (StoredFace.kind says which) with their vectors,
        and the cursor of the next page (None at the end).

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
        total = sum(len(p.faces) + len(p.negatives) for p in persons)
        if not 1 <= total <= MAX_TRANSFER_PAGE:
            raise InvalidInput("invalid_batch", f"import between 1 and {MAX_TRANSFER_PAGE} faces per call.")
        seen: set[str] = set()
        for person in persons:
            check_person_id(person.person_id)
            check_name(person.name)
            check_metadata(person.metadata, self.max_metadata_bytes)
            for face in [*person.faces, *person.negatives]:
                self._vector(face.vector)
                check_detection(face.box, face.score)
                face_id = None if face.face_id is None else check_face_id(face.face_id)
                if face_id is None or face_id in seen:
                    raise InvalidInput("invalid_face_id", "every imported face needs its own face_id.")
                seen.add(face_id)
        with self._write_lock:
            for person in persons:
                for kind, faces in ((FACE, person.faces), (NEGATIVE, person.negatives)):
                    scope = Scope(directory, check_person_id(person.person_id), kind=kind)
                    self._check_no_conflict(scope, [(check_face_id(f.face_id or ""), f) for f in faces])
            for person in persons:
                if person.faces:
                    self.add_faces(directory, person.person_id, person.faces, person.name, person.metadata)
                if person.negatives:
                    # not add_negatives: a page of an export may hold a person's negatives before their faces
                    scope = Scope(directory, check_person_id(person.person_id), kind=NEGATIVE)
                    vectors, face_ids = self._checked_faces(person.negatives)
                    self._upsert(scope, person.negatives, vectors, face_ids, None, {})
        return total

    def delete_person(self, directory: str, person_id: str) -> int:
        """Deletes the person's faces and negative examples; returns how many points that was."""
        return self._delete_scope(Scope(check_directory(directory), check_person_id(person_id)))

    def delete_face(self, directory: str, face_id: str) -> int:
        """Deletes one face or negative example by id (1, or 0 when absent).

        When that was the person's last face, their negative examples go too (not counted): a negative
        says "this was not them", which means nothing once nobody is enrolled under the id, and would
        wrongly apply to whoever is enrolled under it next.
        """
        scope = Scope(check_directory(directory), face_id=check_face_id(face_id))
        with self._write_lock:
            found, _ = self.store.scroll(scope, 1, None)
            deleted = self._delete_scope(scope)
            person_id = found[0].payload.get("person_id") if found else None
            if isinstance(person_id, str) and not self.store.count(Scope(scope.directory, person_id, kind=FACE)):
                self._delete_scope(Scope(scope.directory, person_id, kind=NEGATIVE))
        return deleted

    def delete_directory(self, directory: str) -> int:
        """Deletes every face and negative example of the directory; returns how many points that was."""
        return self._delete_scope(Scope(check_directory(directory)))

    def count(self, directory: str, person_id: str | None = None, kind: Kind = FACE) -> int:
        """Enrolled faces (what a probe is compared with), or with kind=NEGATIVE the negative examples."""
        person = None if person_id is None else check_person_id(person_id)
        return self.store.count(Scope(check_directory(directory), person, kind=kind))

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
