"""The gallery on a Qdrant server or cluster, through qdrant-client.

Any number of API workers or replicas may share it: the server owns the
data. `location=":memory:"` gives qdrant-client's local mode, which speaks
the same API and is what the test suite runs the shared behaviour tests on
when no server is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from qdrant.base import Gallery, Point, Scope


def _filter(scope: Scope) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in scope.conditions().items()]
    )


INDEXES: dict[str, models.KeywordIndexParams | models.PayloadSchemaType] = {
    # the tenant key: Qdrant co-locates each directory's points and plans filtered searches per tenant
    "directory": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    "person_id": models.PayloadSchemaType.KEYWORD,
    "face_id": models.PayloadSchemaType.KEYWORD,
}


class ServerGallery(Gallery):
    backend = "qdrant-server"

    def __init__(
        self,
        model_id: str,
        dim: int,
        *,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        max_metadata_bytes: int = 4096,
        timeout_s: int = 30,
    ) -> None:
        super().__init__(model_id, dim, max_metadata_bytes)
        if location is not None:
            self.backend = "qdrant-local"
            self._client = QdrantClient(location=location)
        else:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s)
        if not self._client.collection_exists(self.collection):
            self._client.create_collection(
                self.collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
        if location is None:  # local mode has no payload indexes and warns about them
            self._ensure_indexes()

    def _ensure_indexes(self) -> None:
        """Checked on every start, so a collection left by an interrupted start still gets them."""
        present = self._client.get_collection(self.collection).payload_schema
        for key in INDEXES.keys() - present.keys():
            self._client.create_payload_index(self.collection, key, INDEXES[key], wait=True)

    def _upsert(self, points: Sequence[Point]) -> None:
        self._client.upsert(
            self.collection,
            [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points],
            wait=True,
        )

    def _search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict, float]]:
        response = self._client.query_points(
            self.collection,
            query=vector,
            query_filter=_filter(scope),
            limit=limit,
            with_payload=True,
            score_threshold=min_similarity,
        )
        return [(p.payload or {}, float(p.score)) for p in response.points]

    def _scroll(
        self, scope: Scope, limit: int, offset: str | None, with_vectors: bool = False
    ) -> tuple[list[Point], str | None]:
        records, next_offset = self._client.scroll(
            self.collection,
            scroll_filter=_filter(scope),
            limit=limit,
            offset=offset,
            with_payload=True,
            with_vectors=with_vectors,
        )
        points = [Point(str(r.id), list(r.vector or []) if with_vectors else [], r.payload or {}) for r in records]
        return points, (None if next_offset is None else str(next_offset))

    def _count(self, scope: Scope) -> int:
        return self._client.count(self.collection, count_filter=_filter(scope), exact=True).count

    def _person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        response = self._client.facet(
            self.collection, "person_id", facet_filter=_filter(scope), limit=limit, exact=True
        )
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def _set_payload(self, scope: Scope, payload: dict[str, Any]) -> None:
        self._client.set_payload(self.collection, payload, points=_filter(scope), wait=True)

    def _delete(self, scope: Scope) -> None:
        self._client.delete(self.collection, models.FilterSelector(filter=_filter(scope)), wait=True)

    def close(self) -> None:
        self._client.close()
