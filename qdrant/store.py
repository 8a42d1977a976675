"""The storage interface the gallery is written against, and the one way a storage call is scoped.

Directory isolation is the product's security boundary, so every primitive
takes a `Scope`, and a `Scope` cannot be built without a directory: no
primitive reads, counts, changes or deletes points outside one directory.
The one write by id, the upsert, addresses points whose ids are derived
from (directory, face_id), so it cannot reach another directory's points
whatever face_id a caller supplies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from faceserve.rules import check_directory
from qdrant.domain import FACE, NEGATIVE, Kind

# The readiness probe writes and deletes a point here. check_directory refuses control characters, so no
# caller can name, read, list or delete this directory, and the probe can never touch a caller's data.
PROBE_DIRECTORY = "\x00readiness-probe"


@dataclass(frozen=True)
class Scope:
    """Which points a primitive may touch: always one directory, optionally one person or face, and one kind.

    `kind=None` is every point (deletes and exports take a person's negatives with them); FACE is the
    enrolled faces, the only points a search may return; NEGATIVE is the "this was not them" examples.
    """

    directory: str
    person_id: str | None = None
    face_id: str | None = None
    kind: Kind | None = None

    def __post_init__(self) -> None:
        # Only normalised ids reach storage: an id must already be what check_directory returns.
        if self.directory != PROBE_DIRECTORY and check_directory(self.directory) != self.directory:
            raise ValueError(f"directory {self.directory!r} is not normalised")

    def conditions(self) -> dict[str, str]:
        """Payload fields that must equal these values (directory always first)."""
        out = {"directory": self.directory}
        if self.person_id is not None:
            out["person_id"] = self.person_id
        if self.face_id is not None:
            out["face_id"] = self.face_id
        if self.kind == NEGATIVE:
            out["kind"] = NEGATIVE
        return out

    def exclusions(self) -> dict[str, str]:
        """Payload fields that must not equal these values.

        Faces are "not a negative" rather than "kind is face": faces stored before negatives existed
        carry no kind, and they must stay faces.
        """
        return {"kind": NEGATIVE} if self.kind == FACE else {}


@dataclass(frozen=True)
class Point:
    id: str
    vector: list[float]
    payload: dict[str, Any]


class Store(Protocol):
    """The primitives a Qdrant backend provides; each is confined to a Scope except the upsert (see above)."""

    backend: str
    collection: str

    def upsert(self, points: Sequence[Point]) -> None:
        """Store all points or none."""

    def search(
        self, scope: Scope, vector: list[float], limit: int, min_similarity: float | None
    ) -> list[tuple[dict[str, Any], float]]:
        """Payloads and cosine similarities of the nearest faces in scope, best first."""

    def scroll(
        self, scope: Scope, limit: int, offset: str | None, with_vectors: bool = False
    ) -> tuple[list[Point], str | None]:
        """A page of points in scope, in id order, and the offset of the next page (vectors empty unless asked)."""

    def count(self, scope: Scope) -> int: ...

    def person_counts(self, scope: Scope, limit: int) -> dict[str, int]:
        """Faces per person_id in scope, for the `limit` persons with most faces."""

    def set_payload(self, scope: Scope, payload: dict[str, Any]) -> None: ...

    def delete(self, scope: Scope) -> None: ...

    def close(self) -> None: ...
