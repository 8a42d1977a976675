"""An in-memory `Store` (qdrant/store.py), so the request logic runs over the real Gallery without Qdrant.

It implements the protocol's meaning, not Qdrant's internals: scopes match
payload fields, searches rank by cosine similarity, scrolls page in id
order. The real stores keep their own suite (tests/test_gallery.py).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from qdrant.store import Point, Scope


class MemoryStore:
    backend = "memory"

    def __init__(self, collection: str = "faces_test") -> None:
        self.collection = collection
        self.points: dict[str, Point] = {}

    def _in(self, scope: Scope) -> list[Point]:
        wanted, unwanted = scope.conditions(), scope.exclusions()
        return [
            p
            for _, p in sorted(self.points.items())
            if all(p.payload.get(k) == v for k, v in wanted.items())
            and not any(p.payload.get(k) == v for k, v in unwanted.items())
        ]

    def upsert(self, points: Sequence[Point]) -> None:
        for p in points:
            self.points[p.id] = Point(p.id, list(p.vector), copy.deepcopy(p.payload))

    def search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict[str, Any], float]]:
        query = np.asarray(vector) / np.linalg.norm(vector)
        scored = [
            (p.payload, float(np.dot(query, np.asarray(p.vector) / np.linalg.norm(p.vector)))) for p in self._in(scope)
        ]
        scored = [s for s in scored if min_similarity is None or s[1] >= min_similarity]
        return sorted(scored, key=lambda s: s[1], reverse=True)[:limit]

    def scroll(
        self, scope: Scope, limit: int, offset: str | None, with_vectors: bool = False
    ) -> tuple[list[Point], str | None]:
        points = [p for p in self._in(scope) if offset is None or p.id >= offset]
        page = [Point(p.id, p.vector if with_vectors else [], p.payload) for p in points[:limit]]
        return page, (points[limit].id if len(points) > limit else None)

    def count(self, scope: Scope) -> int:
        return len(self._in(scope))

    def person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        return dict(Counter(p.payload["person_id"] for p in self._in(scope)).most_common(limit))

    def set_payload(self, scope: Scope, payload: dict[str, Any]) -> None:
        for p in self._in(scope):
            p.payload.update(copy.deepcopy(payload))

    def delete(self, scope: Scope) -> None:
        for p in self._in(scope):
            del self.points[p.id]

    def close(self) -> None:
        self.points.clear()
