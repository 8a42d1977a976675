"""The store on a Qdrant server or cluster, through qdrant-client.

Any number of API workers or replicas may share it: the server owns the
data. `location=":memory:"` (or a folder) gives qdrant-client's local mode,
which speaks the same API and is what the test suite runs the shared
behaviour tests on when no server is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from qdrant_client import QdrantClient, models

from qdrant.store import Point, Scope


def _filter(scope: Scope) -> models.Filter:
    def equal(key: str, value: str) -> models.FieldCondition:
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))

    return models.Filter(
        must=[equal(k, v) for k, v in scope.conditions().items()],
        must_not=[equal(k, v) for k, v in scope.exclusions().items()] or None,
    )


INDEXES: dict[str, models.KeywordIndexParams | models.PayloadSchemaType] = {
    # the tenant key: Qdrant co-locates each directory's points and plans filtered searches per tenant
    "directory": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    "person_id": models.PayloadSchemaType.KEYWORD,
    "face_id": models.PayloadSchemaType.KEYWORD,
    "kind": models.PayloadSchemaType.KEYWORD,
}


class ServerStore:
    """A collection on a Qdrant server (`url`), or in qdrant-client's local mode (`location`)."""

    def __init__(
        self,
        collection: str,
        dim: int,
        *,
        url: str | None = None,
        api_key: str | None = None,
        location: str | None = None,
        timeout_s: int = 30,
    ) -> None:
        self.collection = collection
        if location is not None:
            self.backend = "qdrant-local"
            self.client = QdrantClient(location=location)
        else:
            self.backend = "qdrant-server"
            self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s)
        if not self.client.collection_exists(collection):
            self.client.create_collection(
                collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
        if location is None:  # local mode has no payload indexes and warns about them
            self._ensure_indexes()

    def _ensure_indexes(self) -> None:
        """Checked on every start, so a collection left by an interrupted start still gets them."""
        present = self.client.get_collection(self.collection).payload_schema
        for key in INDEXES.keys() - present.keys():
            self.client.create_payload_index(self.collection, key, INDEXES[key], wait=True)

    def upsert(self, points: Sequence[Point]) -> None:
        self.client.upsert(
            self.collection,
            [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points],
            wait=True,
        )

    def search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict[str, Any], float]]:
        response = self.client.query_points(
            self.collection,
            query=vector,
            query_filter=_filter(scope),
            limit=limit,
            with_payload=True,
            score_threshold=min_similarity,
        )
        return [(p.payload or {}, float(p.score)) for p in response.points]

    def scroll(
        self, scope: Scope, limit: int, offset: str | None, with_vectors: bool = False
    ) -> tuple[list[Point], str | None]:
        records, next_offset = self.client.scroll(
            self.collection,
            scroll_filter=_filter(scope),
            limit=limit,
            offset=offset,
            with_payload=True,
            with_vectors=with_vectors,
        )
        # the collection has one unnamed dense vector, so a record's vector is a list of floats
        points = [
            Point(str(r.id), list(cast(list[float], r.vector or [])) if with_vectors else [], r.payload or {})
            for r in records
        ]
        return points, (None if next_offset is None else str(next_offset))

    def count(self, scope: Scope) -> int:
        return self.client.count(self.collection, count_filter=_filter(scope), exact=True).count

    def person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        response = self.client.facet(self.collection, "person_id", facet_filter=_filter(scope), limit=limit, exact=True)
        return {str(hit.value): int(hit.count) for hit in response.hits}

    def set_payload(self, scope: Scope, payload: dict[str, Any]) -> None:
        self.client.set_payload(self.collection, payload, points=_filter(scope), wait=True)

    def delete(self, scope: Scope) -> None:
        self.client.delete(self.collection, models.FilterSelector(filter=_filter(scope)), wait=True)

    def close(self) -> None:
        self.client.close()
