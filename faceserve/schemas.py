"""Pydantic models for every request and response body.

The service builds its OpenAPI document from them and the Python client
parses its responses with them, so both sides share one definition. Only
pydantic is imported here: the client installs without torch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

DIRECTORY = Field(
    ..., min_length=1, max_length=128, description="Gallery (tenant) the person belongs to.", examples=["office-berlin"]
)
Security = Literal["low", "medium", "high", "strict"]
SECURITY = Field(
    None,
    description="How sure a match must be: the chance a stranger is named as someone, per face, at most "
    "5% (low), 1% (medium), 0.1% (high), 0.01% (strict), for any directory size. Default: the service's setting.",
)
Decision = Literal["match", "unknown", "ambiguous"]
PERSON_ID = Field(..., min_length=1, max_length=128, description="Your id for the person.", examples=["emp-0042"])


class Point(BaseModel):
    x: float
    y: float


class Landmarks(BaseModel):
    """Five points as seen in the image: left_eye is the eye on the image's left."""

    left_eye: Point
    right_eye: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point


class Box(BaseModel):
    """Pixel coordinates in the uploaded image (after EXIF rotation)."""

    x1: float
    y1: float
    x2: float
    y2: float


class Face(BaseModel):
    box: Box
    score: float = Field(description="Detection confidence, 0–1.")
    landmarks: Landmarks


class ImageSize(BaseModel):
    width: int
    height: int


class DetectResponse(BaseModel):
    image: ImageSize
    faces: list[Face]


class EmbeddedFace(Face):
    embedding: list[float] = Field(description="L2-normalised vector; compare with cosine similarity.")


class EmbedResponse(BaseModel):
    model: str
    dim: int
    image: ImageSize
    faces: list[EmbeddedFace]


class EnrollResponse(BaseModel):
    directory: str
    person_id: str
    face_id: str
    face: Face
    faces_detected: int = Field(description="Faces found in the image; when more than one, the largest was enrolled.")
    largest_selected: bool = Field(description="True when several faces were found and the largest was enrolled.")
    model: str


class EnrollItem(BaseModel):
    image: str = Field(description="Base64 image or data URI.")
    directory: str = DIRECTORY
    person_id: str = PERSON_ID
    name: str | None = Field(None, max_length=256)
    metadata: dict[str, Any] | None = None
    request_id: str | None = Field(
        None, max_length=128, description="Idempotency key: a retry with the same id stores nothing twice."
    )
    single_face: bool = Field(
        False, description="Refuse a photo with several faces (422 several_faces) instead of enrolling the largest."
    )


class ErrorBody(BaseModel):
    code: str = Field(examples=["no_face"])
    message: str


class EnrollItemResult(BaseModel):
    index: int
    ok: bool
    result: EnrollResponse | None = None
    error: ErrorBody | None = None


class EnrollBatchResponse(BaseModel):
    enrolled: int
    failed: int
    results: list[EnrollItemResult]


class Candidate(BaseModel):
    person_id: str
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    similarity: float = Field(description="Best cosine similarity among the person's faces.")
    distance: float = Field(description="Euclidean distance of unit vectors, sqrt(2 − 2·similarity).")
    face_id: str = Field(description="The enrolled face that matched best.")
    matched_faces: int = Field(description="How many of the person's faces were among the top-k hits.")


class RecognizedFace(Face):
    decision: Decision = Field(
        description="match: `match` is this person; unknown: nobody enrolled is close enough; ambiguous: the "
        "persons in `ambiguous` are all close and too alike to tell apart."
    )
    known: bool = Field(description="decision == 'match'.")
    match: Candidate | None = Field(None, description="The person named; null unless decision is match.")
    ambiguous: list[Candidate] = Field(
        default_factory=list, description="For decision 'ambiguous': the persons it could be, best first."
    )
    candidates: list[Candidate] = Field(description="Other persons, best first (may be under the threshold).")
    false_accept_probability: float | None = Field(
        None,
        description="Estimated chance that a stranger would score as high as the best person against this "
        "directory (calibrated; null when the model is uncalibrated). Low means a trustworthy match.",
    )
    margin: float | None = Field(
        None, description="Similarity of the best person minus the next one (null with fewer than two)."
    )


class RecognizeResponse(BaseModel):
    directory: str
    model: str
    security: Security
    threshold: float = Field(description="Cosine similarity a match needed in this request.")
    calibrated: bool = Field(description="False when the model has no calibration: `threshold` is then a fixed guess.")
    enrolled_faces: int = Field(description="Faces in the directory, each a chance for a stranger to match.")
    warnings: list[str] = Field(default_factory=list)
    image: ImageSize
    faces: list[RecognizedFace]


class VerifyResponse(BaseModel):
    same_person: bool
    decision: Literal["match", "unknown"]
    similarity: float
    distance: float
    threshold: float
    security: Security
    calibrated: bool
    false_accept_probability: float | None = Field(
        None, description="Estimated chance that two different people score this high (null when uncalibrated)."
    )
    warnings: list[str] = Field(default_factory=list)
    model: str
    face_a: Face
    face_b: Face


class PersonSummary(BaseModel):
    person_id: str
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    face_count: int


class PersonPage(BaseModel):
    directory: str
    persons: list[PersonSummary]
    next_offset: int | None = Field(None, description="Pass as offset for the next page; null on the last page.")


class StoredFaceOut(BaseModel):
    face_id: str
    created_at: str
    box: Box
    score: float
    source_sha256: str


class Person(BaseModel):
    directory: str
    person_id: str
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    faces: list[StoredFaceOut]


class Deleted(BaseModel):
    deleted_faces: int


class Limits(BaseModel):
    """What one request may carry, so clients can size their batches."""

    max_request_bytes: int
    max_image_bytes: int
    max_image_pixels: int
    max_faces: int
    max_batch_items: int = Field(description="Items per /enroll_batch call.")
    max_transfer_faces: int = Field(description="Faces per /directories/export page and /directories/import call.")


class SecurityLevel(BaseModel):
    name: Security
    false_match_rate: float = Field(description="Most a stranger face may be named as someone, per face.")
    thresholds: dict[str, float] = Field(
        description="Cosine similarity a match needs against a directory of this many enrolled faces."
    )


class CalibrationInfo(BaseModel):
    calibrated: bool
    source: str | None = None
    created: str | None = None
    identities: int | None = None
    impostor_pairs: int | None = None
    ambiguity_margin: float | None = None


class ModelInfo(BaseModel):
    model: str
    dim: int
    input_size: int
    threshold: float = Field(description="The fixed fallback threshold, used only when the model is uncalibrated.")
    distance_threshold: float
    calibration: CalibrationInfo
    security: Security = Field(description="The default security level.")
    security_levels: list[SecurityLevel]
    gallery_backend: str
    collection: str
    limits: Limits


class GalleryFace(BaseModel):
    """One enrolled face as exported, and as imported: all it takes to restore it in a gallery of the same model."""

    face_id: str = Field(min_length=1, max_length=128)
    person_id: str = PERSON_ID
    name: str | None = Field(None, max_length=256)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(description="ISO 8601, kept from the original enrolment.")
    source_sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    box: Box
    score: float
    embedding: list[float] = Field(description="The stored unit vector; only meaningful to the same model.")

    @field_validator("created_at")
    @classmethod
    def _iso_datetime(cls, value: str) -> str:
        datetime.fromisoformat(value)
        return value


class ExportPage(BaseModel):
    directory: str
    model: str
    dim: int
    faces: list[GalleryFace]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; null on the last page.")


class ImportResponse(BaseModel):
    directory: str
    imported_faces: int
    persons: int
