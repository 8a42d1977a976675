"""Choose the gallery's store from settings: a Qdrant URL means a server, otherwise embedded Edge."""

from __future__ import annotations

from pathlib import Path

from qdrant.domain import collection_name
from qdrant.edge import EdgeStore
from qdrant.gallery import Gallery
from qdrant.server import ServerStore
from qdrant.store import Store


def open_gallery(
    *, url: str | None, api_key: str | None, path: Path, model_id: str, dim: int, max_metadata_bytes: int = 4096
) -> Gallery:
    collection = collection_name(model_id, dim)
    store: Store = (
        ServerStore(collection, dim, url=url, api_key=api_key) if url else EdgeStore(Path(path) / collection, dim)
    )
    return Gallery(store, model_id, dim, max_metadata_bytes=max_metadata_bytes)
