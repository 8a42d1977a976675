"""The gallery of enrolled faces on Qdrant (embedded Edge or a server), isolated per directory."""

from qdrant.base import (
    Gallery,
    Hit,
    InvalidInput,
    NewFace,
    Person,
    PersonMatch,
    PersonSummary,
    StoredFace,
)
from qdrant.factory import open_gallery

__all__ = [
    "Gallery",
    "Hit",
    "InvalidInput",
    "NewFace",
    "Person",
    "PersonMatch",
    "PersonSummary",
    "StoredFace",
    "open_gallery",
]
