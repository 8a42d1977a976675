"""The gallery of enrolled faces on Qdrant (embedded Edge or a server), isolated per directory."""

from qdrant.base import (
    Gallery,
    Hit,
    ImportedPerson,
    InvalidInput,
    NewFace,
    Person,
    PersonMatch,
    PersonSummary,
    StoredFace,
)
from qdrant.edge import GalleryBusy
from qdrant.factory import open_gallery

__all__ = [
    "Gallery",
    "GalleryBusy",
    "Hit",
    "ImportedPerson",
    "InvalidInput",
    "NewFace",
    "Person",
    "PersonMatch",
    "PersonSummary",
    "StoredFace",
    "open_gallery",
]
