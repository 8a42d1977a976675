"""The embedded gallery: Qdrant Edge (the Qdrant engine in-process) on a local folder.

One shard per embedding model under `path`. Only one process may open a
shard at a time, which is why the service that owns the gallery runs as a
single worker and the model services never touch it.

Durability: the shard keeps Qdrant's write-ahead log, and every write is
followed by `flush()`, so a write that returned is on disk and survives a
crash or kill -9 of the process (at the cost of a flush per enrolment,
about a millisecond here). A batch upsert is one WAL operation: after a
crash it is there whole or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from qdrant.base import Gallery, Point, Scope


def _filter(scope: Scope) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key=k, match=qe.MatchValue(v)) for k, v in scope.conditions().items()])


class EdgeGallery(Gallery):
    backend = "qdrant-edge"

    def __init__(self, path: Path, model_id: str, dim: int, max_metadata_bytes: int = 4096) -> None:
        super().__init__(model_id, dim, max_metadata_bytes)
        self.path = Path(path) / self.collection
        # The engine is thread-safe for reads, but one lock keeps flush-after-write ordered.
        self._lock = threading.Lock()
        if (self.path / "edge_config.json").exists() or any(self.path.glob("segments*")):
            self._shard = qe.EdgeShard.load(str(self.path))
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
            self._shard = qe.EdgeShard.create(str(self.path), config)
            self._write(qe.UpdateOperation.create_field_index("directory", qe.KeywordIndexParams(is_tenant=True)))
            self._write(qe.UpdateOperation.create_field_index("person_id", qe.PayloadSchemaType.Keyword))
            self._write(qe.UpdateOperation.create_field_index("face_id", qe.PayloadSchemaType.Keyword))

    def _write(self, operation: qe.UpdateOperation) -> None:
        with self._lock:
            self._shard.update(operation)
            self._shard.flush()

    def _upsert(self, points: Sequence[Point]) -> None:
        self._write(qe.UpdateOperation.upsert_points([qe.Point(p.id, p.vector, p.payload) for p in points]))

    def _search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict, float]]:
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(vector),
            filter=_filter(scope),
            with_payload=True,
            score_threshold=min_similarity,
        )
        return [(p.payload or {}, float(p.score)) for p in self._shard.query(request)]

    def _scroll(self, scope: Scope, limit: int, offset: str | None) -> tuple[list[dict], str | None]:
        records, next_offset = self._shard.scroll(
            qe.ScrollRequest(offset=offset, limit=limit, filter=_filter(scope), with_payload=True)
        )
        return [r.payload or {} for r in records], (None if next_offset is None else str(next_offset))

    def _count(self, scope: Scope) -> int:
        return self._shard.count(qe.CountRequest(exact=True, filter=_filter(scope)))

    def _person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        response = self._shard.facet(qe.FacetRequest(key="person_id", limit=limit, exact=True, filter=_filter(scope)))
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def _set_payload(self, scope: Scope, payload: dict[str, Any]) -> None:
        self._write(qe.UpdateOperation.set_payload_by_filter(_filter(scope), payload))

    def _delete(self, scope: Scope) -> None:
        self._write(qe.UpdateOperation.delete_points_by_filter(_filter(scope)))

    def close(self) -> None:
        with self._lock:
            self._shard.flush()
            self._shard.close()
