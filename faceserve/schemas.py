"""Pydantic models for every request and response body, and the one place a request is validated.

The service declares its endpoints with the request models (BentoML reads
its OpenAPI document and validates bodies with them), the request logic
takes them already validated, and the Python client builds and parses the
same models, so an endpoint's contract is written once. Each field carries
its rule (faceserve/rules.py) and its stable error code, so a wrong value
gets the same code at every endpoint and inside /enroll_batch items. Only
pydantic is imported here: the client installs without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, WrapValidator, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ErrorType, ValidatorFunctionWrapHandler

from faceserve import limits
from faceserve.rules import (
    InvalidInput,
    check_directory,
    check_face_id,
    check_metadata_shape,
    check_name,
    check_person_id,
)

# pydantic's own error types; any other type in a validation error is one of our stable codes.
PYDANTIC_ERRORS = frozenset(get_args(ErrorType))


def _path(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def request_error(errors: Sequence[Mapping[str, Any]]) -> ErrorBody:
    """The first problem of a request that failed validation, as the body the API answers with.

    A field's own code when its rule was broken; `invalid_request` for what
    no field owns (a missing field, a body that is not an object).
    """
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    if first["type"] in PYDANTIC_ERRORS:
        return ErrorBody(code="invalid_request", message=f"{_path(loc)}: {first['msg']}" if loc else first["msg"])
    # a rule's message names its field already; nested fields (a batch's items, imported faces) say where
    return ErrorBody(code=first["type"], message=f"{_path(loc[:-1])}: {first['msg']}" if len(loc) > 1 else first["msg"])


def _rule(check: Callable[[Any], Any] | None = None, code: str | None = None) -> WrapValidator:
    """A field's rule and stable code: `check` raises InvalidInput with its own code; a wrong type or a value out of
    the declared bounds is `code` (None: left to pydantic, which makes it `invalid_request`)."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        try:
            value = handler(value)
        except ValidationError as exc:
            inner = exc.errors()[0]
            if inner["type"] not in PYDANTIC_ERRORS:  # a nested field's own rule: keep its code
                where = _path((info.field_name or "", *inner["loc"][:-1]))
                raise PydanticCustomError(inner["type"], f"{where}: {inner['msg']}") from None
            if code is None or inner["loc"]:  # no code of ours, or an element's own shape: pydantic's error
                raise
            raise PydanticCustomError(code, f"{info.field_name}: {inner['msg']}") from None
        try:
            return value if check is None else check(value)
        except InvalidInput as exc:
            raise PydanticCustomError(exc.code, exc.message) from None

    return WrapValidator(validate)


# A tuning parameter: any value its type or bounds refuse is `invalid_parameter`.
PARAMETER = _rule(code="invalid_parameter")


def _id_schema(description: str, example: str) -> Any:
    # the length is checked after NFC normalisation (faceserve/rules.py), so the schema documents it only
    return Field(
        description=description,
        examples=[example],
        json_schema_extra={"minLength": 1, "maxLength": limits.MAX_ID_LENGTH},
    )


Directory = Annotated[
    str, _id_schema("Gallery (tenant) to work in.", "office-berlin"), _rule(check_directory, "invalid_directory")
]
PersonId = Annotated[
    str,
    _id_schema("Your id for the person, unique within the directory.", "emp-0042"),
    _rule(check_person_id, "invalid_person_id"),
]
FaceId = Annotated[
    str,
    _id_schema("An enrolled face's id.", "3f0c6d9e-1b2a-4c5d-8e7f-0a1b2c3d4e5f"),
    _rule(check_face_id, "invalid_face_id"),
]
Name = Annotated[
    str | None,
    Field(max_length=limits.MAX_NAME_LENGTH, description="Display name, without control characters."),
    _rule(check_name, "invalid_name"),
]
METADATA_DESCRIPTION = "Any JSON object, stored with the person (size-limited)."
Metadata = Annotated[
    dict[str, Any] | None, Field(description=METADATA_DESCRIPTION), _rule(check_metadata_shape, "invalid_metadata")
]
Image = Annotated[
    str,
    # an empty image is refused where every image is decoded (api/inputs.py), as `empty_image`
    Field(
        description="JPEG, PNG or WebP: base64 or a data URI in JSON, or a file part of a multipart/form-data upload.",
        json_schema_extra={"minLength": 1},
    ),
]
Security = Literal["low", "medium", "high", "strict"]
SecurityParameter = Annotated[
    Security | None,
    Field(
        description="How sure a match must be: the chance a stranger is named as someone, per face, at most "
        "5% (low), 1% (medium), 0.1% (high), 0.01% (strict), for any directory size. Default: the service's setting."
    ),
    PARAMETER,
]
MaxFaces = Annotated[int | None, Field(ge=1, description="Most faces returned (the service caps it too)."), PARAMETER]
Decision = Literal["match", "unknown", "ambiguous"]
QualityLevel = Literal["none", "low", "medium", "high"]
QualityParameter = Annotated[
    QualityLevel | None,
    Field(
        description="Face-quality gate (size, sharpness, pose, detection score, cut off): `reasons` in each face's "
        "`quality` say what this level refuses. Default: the service's setting for the endpoint."
    ),
    PARAMETER,
]


# -- requests ------------------------------------------------------------------------------------------


class DetectRequest(BaseModel):
    image: Image
    min_confidence: Annotated[
        float | None, Field(ge=0, le=1, description="Lowest detection score kept."), PARAMETER
    ] = None
    max_faces: MaxFaces = None
    quality: QualityParameter = None


class EmbedRequest(BaseModel):
    image: Image
    max_faces: MaxFaces = None
    quality: QualityParameter = None


class VerifyRequest(BaseModel):
    image_a: Image
    image_b: Image
    threshold: Annotated[float | None, Field(ge=-1, le=1, description="Expert override of `security`."), PARAMETER] = (
        None
    )
    security: SecurityParameter = None


class EnrollRequest(BaseModel):
    """One enrolment: a call to /enroll, or one item of /enroll_batch."""

    image: Image
    directory: Directory
    person_id: PersonId
    name: Name = None
    metadata: Metadata = None
    request_id: Annotated[
        str | None,
        Field(
            max_length=limits.MAX_REQUEST_ID_LENGTH,
            description="Idempotency key: a retry with the same id stores nothing twice.",
        ),
        PARAMETER,
    ] = None
    single_face: Annotated[
        bool,
        Field(description="Refuse a photo with several faces (422 several_faces) instead of enrolling the largest."),
        PARAMETER,
    ] = False
    quality: QualityParameter = None
    security: Annotated[
        Security | None,
        Field(
            description="Level at which the enrolment checks compare: a face matching another person at it is "
            "409 identity_conflict, a face not matching this person's enrolled faces 409 not_same_person."
        ),
        PARAMETER,
    ] = None
    allow_conflict: Annotated[
        bool, Field(description="Enrol even when the face matches another person (identity_conflict)."), PARAMETER
    ] = False
    allow_mismatch: Annotated[
        bool,
        Field(description="Enrol even when the face does not match this person's faces (not_same_person)."),
        PARAMETER,
    ] = False


class RejectedItem(BaseModel):
    """An /enroll_batch item that broke a rule: reported in its place while the other items run."""

    error: ErrorBody


def _item_or_rejection(value: Any, handler: ValidatorFunctionWrapHandler) -> EnrollRequest | RejectedItem:
    if isinstance(value, (EnrollRequest, RejectedItem)):
        return value
    try:
        return EnrollRequest.model_validate(value)
    except ValidationError as exc:
        return RejectedItem(error=request_error(exc.errors()))


class EnrollBatchRequest(BaseModel):
    items: Annotated[
        list[Annotated[EnrollRequest | SkipJsonSchema[RejectedItem], WrapValidator(_item_or_rejection)]],
        Field(
            min_length=1,
            max_length=limits.MAX_BATCH_ITEMS,
            description="Enrolments, each validated and reported on its own.",
        ),
        _rule(code="invalid_batch"),
    ]


class RecognizeRequest(BaseModel):
    image: Image
    directory: Directory
    threshold: Annotated[
        float | None,
        Field(ge=-1, le=1, description="Expert override of `security`: cosine similarity to accept."),
        PARAMETER,
    ] = None
    top_k: Annotated[
        int | None, Field(ge=1, le=limits.MAX_TOP_K, description="Nearest faces considered."), PARAMETER
    ] = None
    max_faces: MaxFaces = None
    security: SecurityParameter = None
    quality: QualityParameter = None


class DirectoryRequest(BaseModel):
    directory: Directory


class ListPersonsRequest(BaseModel):
    directory: Directory
    limit: Annotated[int, Field(ge=1, le=limits.MAX_LIST_LIMIT), PARAMETER] = limits.DEFAULT_LIST_LIMIT
    offset: Annotated[int, Field(ge=0), PARAMETER] = 0


class PersonRequest(BaseModel):
    """One person: /persons/get and /persons/delete."""

    directory: Directory
    person_id: PersonId


class UpdatePersonRequest(BaseModel):
    directory: Directory
    person_id: PersonId
    name: Name = None
    metadata: Metadata = None


class FaceRequest(BaseModel):
    directory: Directory
    face_id: FaceId


class ExportRequest(BaseModel):
    directory: Directory
    limit: Annotated[int, Field(ge=1, le=limits.MAX_TRANSFER_PAGE), PARAMETER] = limits.DEFAULT_TRANSFER_PAGE
    cursor: Annotated[
        str | None,
        Field(max_length=limits.MAX_CURSOR_LENGTH, description="next_cursor of the previous page."),
        PARAMETER,
    ] = None


# -- responses -----------------------------------------------------------------------------------------


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


class FaceQuality(BaseModel):
    """How fit the face is to enrol or be recognised (models/quality.py; gates in BENCHMARKS.md, "Face quality")."""

    interocular_px: float = Field(description="Distance between the eye centres, in the decoded image's pixels.")
    sharpness: float = Field(description="Detail in the face region; low when blurred or upscaled.")
    yaw_deg: float
    roll_deg: float
    detection_score: float
    cut_off: bool = Field(description="The box or a landmark reaches the image border.")
    level: QualityLevel = Field(description="The level `reasons` were judged at.")
    reasons: list[str] = Field(
        description="Why that level refuses the face: small_face, blurry, extreme_pose, low_detection_score, "
        "cut_off; empty when it passes."
    )


class Face(BaseModel):
    box: Box
    score: float = Field(description="Detection confidence, 0–1.")
    landmarks: Landmarks
    quality: FaceQuality | None = None


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


class ErrorBody(BaseModel):
    code: str = Field(examples=["no_face"])
    message: str
    reasons: list[str] | None = Field(None, description="low_quality: why the face was refused.")
    person_id: str | None = Field(None, description="identity_conflict: the person the face matches.")
    similarity: float | None = Field(
        None, description="identity_conflict: the similarity to that person; not_same_person: to this person."
    )


class EnrollItemSucceeded(BaseModel):
    index: int
    ok: Literal[True] = True
    result: EnrollResponse


class EnrollItemFailed(BaseModel):
    index: int
    ok: Literal[False] = False
    error: ErrorBody


EnrollItemResult = Annotated[EnrollItemSucceeded | EnrollItemFailed, Field(discriminator="ok")]


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
        description="match: `match` is this person; unknown: nobody enrolled is close enough, or the face is "
        "below the request's quality level (`quality.reasons` says why: such a face is never a match); "
        "ambiguous: the persons in `ambiguous` are all close and too alike to tell apart."
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
    negative_count: int = Field(0, description="Faces stored as 'not this person' (/persons/reject).")


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


class NegativeOut(BaseModel):
    face_id: str
    created_at: str


class Person(BaseModel):
    directory: str
    person_id: str
    name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    faces: list[StoredFaceOut]
    negatives: list[NegativeOut] = Field(
        default_factory=list, description="Faces rejected as not this person (/persons/reject); never matched."
    )


class RejectResponse(BaseModel):
    directory: str
    person_id: str
    face_id: str = Field(description="The negative example's id (/faces/delete removes it).")
    face: Face


class DisagreeingFaceOut(BaseModel):
    person_id: str
    face_id: str
    best_similarity: float = Field(description="To the most similar other face of the same person.")
    closest_person_id: str | None = Field(
        None, description="Another person closer to this face than its own: its likely true identity."
    )


class ConfusablePairOut(BaseModel):
    person_a: str
    person_b: str
    similarity: float
    face_a: str
    face_b: str


class LowQualityFaceOut(BaseModel):
    person_id: str
    face_id: str
    reasons: list[str]


class HealthResponse(BaseModel):
    directory: str
    security: Security
    agreement_threshold: float = Field(description="A face under it to all its person's other faces disagrees.")
    confusion_threshold: float = Field(description="Two persons with faces this similar are confusable.")
    quality: QualityLevel = Field(description="The enrolment quality level faces were judged at.")
    persons: int
    faces: int
    disagreeing: list[DisagreeingFaceOut] = Field(description="Faces unlike their own person's: worst first.")
    confusable: list[ConfusablePairOut] = Field(description="Person pairs recognition may mix up: closest first.")
    single_face: list[str] = Field(description="Persons with one face: nothing vouches for it.")
    low_quality: list[LowQualityFaceOut] = Field(
        description="Faces below the enrolment quality level (faces enrolled before quality was stored: unknown)."
    )
    truncated: bool = Field(
        description="The directory has more faces than one report checks (limits.MAX_HEALTH_FACES): only the "
        "persons first by id were checked."
    )


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

    face_id: FaceId
    person_id: PersonId
    name: Name = None
    metadata: Annotated[
        dict[str, Any], Field(description=METADATA_DESCRIPTION), _rule(check_metadata_shape, "invalid_metadata")
    ] = Field(default_factory=dict)
    created_at: str = Field(description="ISO 8601, kept from the original enrolment.")
    source_sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    box: Box
    score: float
    embedding: list[float] = Field(description="The stored unit vector; only meaningful to the same model.")
    kind: Literal["face", "negative"] = Field(
        "face", description="negative: a face rejected as not this person (/persons/reject)."
    )

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


class ImportRequest(BaseModel):
    directory: Directory
    model: Annotated[str, Field(description="The model the faces were exported from; must be this one's."), PARAMETER]
    faces: Annotated[
        list[GalleryFace],
        Field(min_length=1, max_length=limits.MAX_TRANSFER_PAGE),
        _rule(code="invalid_batch"),
    ]


# -- requests that use response shapes (a face's box) ------------------------------------------------


class RejectRequest(BaseModel):
    """A face that is not this person: stored as their negative example, so it stops matching them."""

    directory: Directory
    person_id: PersonId
    image: Image
    box: Annotated[
        Box | None,
        Field(description="Which face of the photo (the one whose box overlaps it most); default the largest."),
        PARAMETER,
    ] = None


class HealthRequest(BaseModel):
    directory: Directory
    security: SecurityParameter = None
