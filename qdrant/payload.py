"""The stored form of a face: the Qdrant payload written for it, and reading it back.

Metadata is stored as one JSON string (`metadata_json`), never as a payload
tree: a caller's structure then cannot reach the engine's payload decoder
or its indexes, whatever its shape. Points written before that stored a
`metadata` object, which is still read.
"""

from __future__ import annotations

import json
from typing import Any

from faceserve.rules import encode_metadata
from qdrant.domain import FACE, NEGATIVE, Kind, NewFace, StoredFace
from qdrant.store import Scope

METADATA_KEY = "metadata_json"
LEGACY_METADATA_KEY = "metadata"


def person_fields(name: str | None, metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields every face of a person shares, as set on all of them by a rename."""
    return {"name": name, METADATA_KEY: encode_metadata(metadata)}


def face_payload(
    scope: Scope,
    face_id: str,
    face: NewFace,
    name: str | None,
    metadata: dict[str, Any],
    now: str,
    model_id: str,
    kind: Kind = FACE,
) -> dict[str, Any]:
    """A negative carries no name or metadata: those are the person's, and live on their faces."""
    person = person_fields(name, metadata) if kind == FACE else {}
    return {
        **scope.conditions(),
        "face_id": face_id,
        "kind": kind,
        **person,
        "created_at": face.created_at or now,
        "source_sha256": face.source_sha256,
        "box": [float(v) for v in face.box],
        "det_score": float(face.score),
        "model": model_id,
        **({} if face.quality is None else {"quality": dict(face.quality)}),
    }


def metadata_of(payload: dict[str, Any]) -> dict[str, Any]:
    encoded = payload.get(METADATA_KEY)
    if isinstance(encoded, str):
        return json.loads(encoded)
    return payload.get(LEGACY_METADATA_KEY) or {}


def stored_face(payload: dict[str, Any]) -> StoredFace:
    return StoredFace(
        face_id=payload["face_id"],
        directory=payload["directory"],
        person_id=payload["person_id"],
        name=payload.get("name"),
        metadata=metadata_of(payload),
        created_at=payload["created_at"],
        source_sha256=payload.get("source_sha256", ""),
        box=tuple(payload.get("box", (0.0, 0.0, 0.0, 0.0))),
        score=float(payload.get("det_score", 0.0)),
        kind=kind_of(payload),
        quality=payload.get("quality") if isinstance(payload.get("quality"), dict) else None,
    )


def kind_of(payload: dict[str, Any]) -> Kind:
    """Points written before negatives existed have no kind: they are faces."""
    return NEGATIVE if payload.get("kind") == NEGATIVE else FACE
