"""The gallery of enrolled faces on Qdrant (embedded Edge or a server), isolated per directory."""

from faceserve.rules import InvalidInput
from qdrant.domain import (
    Conflict,
    Hit,
    ImportedPerson,
    NewFace,
    Person,
    PersonMatch,
    PersonSummary,
    StoredFace,
)
from qdrant.edge import GalleryBusy
from qdrant.factory import open_gallery
from qdrant.gallery import Gallery

__all__ = [
    "Conflict",
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
