"""The gallery of enrolled faces on Qdrant (embedded Edge or a server), isolated per directory."""

from qdrant.domain import (
    MAX_TRANSFER_PAGE,
    Conflict,
    Hit,
    ImportedPerson,
    InvalidInput,
    NewFace,
    Person,
    PersonMatch,
    PersonSummary,
    StoredFace,
    check_directory,
    check_person_id,
)
from qdrant.edge import GalleryBusy
from qdrant.factory import open_gallery
from qdrant.gallery import Gallery

__all__ = [
    "MAX_TRANSFER_PAGE",
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
    "check_directory",
    "check_person_id",
    "open_gallery",
]
