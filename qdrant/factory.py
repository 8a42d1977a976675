"""Choose the gallery backend from settings: a Qdrant URL means a server, otherwise embedded Edge."""

from __future__ import annotations

from pathlib import Path

from qdrant.base import Gallery
from qdrant.edge import EdgeGallery
from qdrant.server import ServerGallery


def open_gallery(
    *, url: str | None, api_key: str | None, path: Path, model_id: str, dim: int, max_metadata_bytes: int = 4096
) -> Gallery:
    if url:
        return ServerGallery(model_id, dim, url=url, api_key=api_key, max_metadata_bytes=max_metadata_bytes)
    return EdgeGallery(path, model_id, dim, max_metadata_bytes=max_metadata_bytes)
