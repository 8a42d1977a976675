"""The embedded store: Qdrant Edge (the Qdrant engine in-process) on a local folder.

One shard per collection. Only one process may open a shard at a time
(Edge locks its write-ahead log; a second opener gets `GalleryBusy`), which
is why the service that owns the gallery runs as a single worker and the
model services never touch it.

Durability: every write is followed by `flush()`, which fsyncs the
write-ahead log and msyncs the segments, so a write that returned survives
a crash, kill -9 or power loss. That costs one flush per call (3-10 ms on
the test machine's disk, against 0.02 ms for the update itself), which is
why enrolment takes faces in batches. A batch upsert is one WAL operation:
after a crash it is there whole or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import qdrant_edge as qe

from qdrant.store import Point, Scope


def _filter(scope: Scope) -> qe.Filter:
    def equal(key: str, value: str) -> qe.FieldCondition:
        return qe.FieldCondition(key=key, match=qe.MatchValue(value))

    return qe.Filter(
        must=[equal(k, v) for k, v in scope.conditions().items()],
        must_not=[equal(k, v) for k, v in scope.exclusions().items()] or None,
    )


INDEXES: dict[str, qe.KeywordIndexParams | qe.PayloadSchemaType] = {
    # the tenant key: Qdrant keeps each directory's points together and plans filtered searches per tenant
    "directory": qe.KeywordIndexParams(is_tenant=True),
    "person_id": qe.PayloadSchemaType.Keyword,
    "face_id": qe.PayloadSchemaType.Keyword,
    "kind": qe.PayloadSchemaType.Keyword,
}


class GalleryBusy(RuntimeError):
    """The shard is already open, in this process or another (Edge locks its write-ahead log)."""


def open_shard(path: Path, dim: int) -> qe.EdgeShard:
    """Load the shard at `path`, or create an empty one for `dim`-d cosine vectors."""
    if (path / "edge_config.json").exists() or any(path.glob("segments*")):
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise GalleryBusy(f"{path} is already open; one process at a time owns a gallery") from exc
            raise
    path.mkdir(parents=True, exist_ok=True)
    return qe.EdgeShard.create(
        str(path), qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
    )


class EdgeStore:
    """A collection as the Edge shard in the folder `path` (named after the collection)."""

    backend = "qdrant-edge"

    def __init__(self, path: Path, dim: int) -> None:
        self.path = Path(path)
        self.collection = self.path.name
        # Reads go straight to the engine, which synchronises them itself; writes
        # take this lock so that each is flushed before the next one starts.
        self._lock = threading.Lock()
        self._shard = open_shard(self.path, dim)
        # On every open, not only on create: a process stopped between the two leaves a shard without them.
        for key in INDEXES.keys() - self._shard.info().payload_schema.keys():
            self._write(qe.UpdateOperation.create_field_index(key, INDEXES[key]))

    def _write(self, operation: qe.UpdateOperation) -> None:
        with self._lock:
            self._shard.update(operation)
            self._shard.flush()

    def upsert(self, points: Sequence[Point]) -> None:
        self._write(qe.UpdateOperation.upsert_points([qe.Point(p.id, p.vector, p.payload) for p in points]))

    def search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict[str, Any], float]]:
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(vector),
            filter=_filter(scope),
            with_payload=True,
            score_threshold=min_similarity,
        )
        return [(p.payload or {}, float(p.score)) for p in self._shard.query(request)]

    def scroll(
        self, scope: Scope, limit: int, offset: str | None, with_vectors: bool = False
    ) -> tuple[list[Point], str | None]:
        records, next_offset = self._shard.scroll(
            qe.ScrollRequest(
                offset=offset, limit=limit, filter=_filter(scope), with_payload=True, with_vector=with_vectors
            )
        )
        # the collection has one unnamed dense vector, so a record's vector is a list of floats
        points = [
            Point(str(r.id), list(cast(list[float], r.vector or [])) if with_vectors else [], r.payload or {})
            for r in records
        ]
        return points, (None if next_offset is None else str(next_offset))

    def count(self, scope: Scope) -> int:
        return self._shard.count(qe.CountRequest(exact=True, filter=_filter(scope)))

    def person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        response = self._shard.facet(qe.FacetRequest(key="person_id", limit=limit, exact=True, filter=_filter(scope)))
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def set_payload(self, scope: Scope, payload: dict[str, Any]) -> None:
        self._write(qe.UpdateOperation.set_payload_by_filter(_filter(scope), payload))

    def delete(self, scope: Scope) -> None:
        self._write(qe.UpdateOperation.delete_points_by_filter(_filter(scope)))

    def close(self) -> None:
        with self._lock:
            self._shard.flush()
            self._shard.close()
