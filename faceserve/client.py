"""A typed Python client for a running faceserve.

Every call returns the response model the service itself declares
(`faceserve.schemas`), and every failure is a `FaceserveError` carrying the
service's stable error code. Requests the service sheds for load (429, 503)
or that lose their connection are retried with backoff. That is safe for
every call: reads and deletes are idempotent, imports carry their face ids,
and enrolments carry an idempotency key, generated here when the caller
gives none, so a retried enrolment overwrites instead of duplicating.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from faceserve import schemas
from faceserve.limits import DEFAULT_TRANSFER_PAGE, MAX_LIST_LIMIT

ImageInput = bytes | str | os.PathLike | BinaryIO
"""Image bytes, a file path (str or Path), or an open binary file."""

Model = TypeVar("Model", bound=BaseModel)
RETRIED_STATUS = frozenset({429, 503})
RETRIED_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class FaceserveError(Exception):
    """A request the service refused or could not answer; `code` is the service's stable error code."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response) -> FaceserveError:
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:500] or response.reason_phrase
        return cls(response.status_code, code, message, _retry_after(response))


def _request(request: type[Model], /, **fields: Any) -> Model:
    """The request model, built here by the service's own rules: a value the service would refuse is refused
    before anything is sent, with the status and code the service would answer."""
    try:
        return request.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        error = schemas.request_error(exc.errors())
        raise FaceserveError(400, error.code, error.message) from None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def encode_image(image: ImageInput) -> str:
    """Base64 of the image's bytes, as every endpoint takes images in JSON."""
    if isinstance(image, bytes):
        data = image
    elif isinstance(image, (str, os.PathLike)):
        data = Path(image).read_bytes()
    else:
        data = image.read()
    return base64.b64encode(data).decode("ascii")


class Faceserve:
    """One service, one API key; thread-safe, so one instance can serve a pool of threads.

    >>> with Faceserve("http://127.0.0.1:3000", api_key="…") as fs:
    ...     fs.enroll("alice.jpg", directory="office", person_id="alice", name="Alice")
    ...     for face in fs.recognize("door.jpg", directory="office").faces:
    ...         print(face.match.name if face.known else "unknown")
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:3000",
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout_s, transport=transport)
        self.retries = retries
        self.backoff_s = backoff_s

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Faceserve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, route: str, request: BaseModel | None, model: type[Model]) -> Model:
        """Send a request model (the service's defaults apply to what it leaves out) and parse the response."""
        body = {} if request is None else request.model_dump(mode="json", exclude_none=True)
        for attempt in range(self.retries + 1):
            wait = self.backoff_s * 2**attempt
            try:
                response = self._http.post(route, json=body)
            except RETRIED_ERRORS as exc:
                if attempt == self.retries:
                    raise FaceserveError(0, "unreachable", f"{self._http.base_url}{route}: {exc!r}") from exc
            except httpx.TimeoutException as exc:  # not retried: the service may be busy with it still
                raise FaceserveError(0, "timeout", f"{self._http.base_url}{route}: {exc!r}") from exc
            else:
                if response.status_code < 400:
                    return model.model_validate_json(response.content)
                error = FaceserveError.from_response(response)
                if response.status_code not in RETRIED_STATUS or attempt == self.retries:
                    raise error
                wait = error.retry_after if error.retry_after is not None else wait
            time.sleep(wait)
        raise AssertionError("unreachable")

    # -- the service ----------------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the service answers its readiness probe (models loaded, gallery reachable)."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def info(self) -> schemas.ModelInfo:
        return self._post("/info", None, schemas.ModelInfo)

    # -- photos -----------------------------------------------------------------------------------
    def detect(
        self,
        image: ImageInput,
        *,
        min_confidence: float | None = None,
        max_faces: int | None = None,
        quality: schemas.QualityLevel | None = None,
    ) -> schemas.DetectResponse:
        request = _request(
            schemas.DetectRequest,
            image=encode_image(image),
            min_confidence=min_confidence,
            max_faces=max_faces,
            quality=quality,
        )
        return self._post("/detect", request, schemas.DetectResponse)

    def embed(
        self, image: ImageInput, *, max_faces: int | None = None, quality: schemas.QualityLevel | None = None
    ) -> schemas.EmbedResponse:
        request = _request(schemas.EmbedRequest, image=encode_image(image), max_faces=max_faces, quality=quality)
        return self._post("/embed", request, schemas.EmbedResponse)

    def verify(
        self,
        image_a: ImageInput,
        image_b: ImageInput,
        *,
        security: schemas.Security | None = None,
        threshold: float | None = None,
    ) -> schemas.VerifyResponse:
        request = _request(
            schemas.VerifyRequest,
            image_a=encode_image(image_a),
            image_b=encode_image(image_b),
            security=security,
            threshold=threshold,
        )
        return self._post("/verify", request, schemas.VerifyResponse)

    def recognize(
        self,
        image: ImageInput,
        directory: str,
        *,
        security: schemas.Security | None = None,
        threshold: float | None = None,
        top_k: int | None = None,
        max_faces: int | None = None,
        quality: schemas.QualityLevel | None = None,
    ) -> schemas.RecognizeResponse:
        request = _request(
            schemas.RecognizeRequest,
            image=encode_image(image),
            directory=directory,
            security=security,
            threshold=threshold,
            top_k=top_k,
            max_faces=max_faces,
            quality=quality,
        )
        return self._post("/recognize", request, schemas.RecognizeResponse)

    # -- enrolment --------------------------------------------------------------------------------
    def enroll(
        self,
        image: ImageInput,
        directory: str,
        person_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        request_id: str | None = None,
        single_face: bool = False,
        quality: schemas.QualityLevel | None = None,
        security: schemas.Security | None = None,
        allow_conflict: bool = False,
        allow_mismatch: bool = False,
    ) -> schemas.EnrollResponse:
        request = _request(
            schemas.EnrollRequest,
            image=encode_image(image),
            directory=directory,
            person_id=person_id,
            name=name,
            metadata=metadata,
            request_id=request_id or uuid.uuid4().hex,
            single_face=single_face,
            quality=quality,
            security=security,
            allow_conflict=allow_conflict,
            allow_mismatch=allow_mismatch,
        )
        return self._post("/enroll", request, schemas.EnrollResponse)

    def enroll_batch(self, items: Sequence[schemas.EnrollRequest]) -> schemas.EnrollBatchResponse:
        """Up to `info().limits.max_batch_items` enrolments in one call; each succeeds or fails on its own."""
        keyed = [
            item if item.request_id else item.model_copy(update={"request_id": uuid.uuid4().hex}) for item in items
        ]
        return self._post(
            "/enroll_batch", _request(schemas.EnrollBatchRequest, items=keyed), schemas.EnrollBatchResponse
        )

    # -- persons and directories ------------------------------------------------------------------
    def list_persons(self, directory: str, *, limit: int = 50, offset: int = 0) -> schemas.PersonPage:
        request = _request(schemas.ListPersonsRequest, directory=directory, limit=limit, offset=offset)
        return self._post("/persons/list", request, schemas.PersonPage)

    def persons(self, directory: str, *, page_size: int = MAX_LIST_LIMIT) -> Iterator[schemas.PersonSummary]:
        """Every person of a directory, by person_id, fetching a page at a time."""
        offset: int | None = 0
        while offset is not None:
            page = self.list_persons(directory, limit=page_size, offset=offset)
            yield from page.persons
            offset = page.next_offset

    def get_person(self, directory: str, person_id: str) -> schemas.Person:
        request = _request(schemas.PersonRequest, directory=directory, person_id=person_id)
        return self._post("/persons/get", request, schemas.Person)

    def reject(
        self, image: ImageInput, directory: str, person_id: str, *, box: schemas.Box | None = None
    ) -> schemas.RejectResponse:
        """ "Not this person": the face (the one `box` overlaps most, else the largest) stops matching `person_id`."""
        request = _request(
            schemas.RejectRequest, image=encode_image(image), directory=directory, person_id=person_id, box=box
        )
        return self._post("/persons/reject", request, schemas.RejectResponse)

    def health(self, directory: str, *, security: schemas.Security | None = None) -> schemas.HealthResponse:
        """The directory's mislabelled, confusable, single-face and low-quality enrolments."""
        request = _request(schemas.HealthRequest, directory=directory, security=security)
        return self._post("/directories/health", request, schemas.HealthResponse)

    def update_person(
        self, directory: str, person_id: str, *, name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> schemas.Person:
        request = _request(
            schemas.UpdatePersonRequest, directory=directory, person_id=person_id, name=name, metadata=metadata
        )
        return self._post("/persons/update", request, schemas.Person)

    def delete_person(self, directory: str, person_id: str) -> schemas.Deleted:
        request = _request(schemas.PersonRequest, directory=directory, person_id=person_id)
        return self._post("/persons/delete", request, schemas.Deleted)

    def delete_face(self, directory: str, face_id: str) -> schemas.Deleted:
        request = _request(schemas.FaceRequest, directory=directory, face_id=face_id)
        return self._post("/faces/delete", request, schemas.Deleted)

    def delete_directory(self, directory: str) -> schemas.Deleted:
        return self._post(
            "/directories/delete", _request(schemas.DirectoryRequest, directory=directory), schemas.Deleted
        )

    def export_pages(self, directory: str, *, page_size: int = DEFAULT_TRANSFER_PAGE) -> Iterator[schemas.ExportPage]:
        """The directory's faces with their vectors, a page at a time (needs a key with write access)."""
        cursor: str | None = None
        while True:
            request = _request(schemas.ExportRequest, directory=directory, limit=page_size, cursor=cursor)
            page = self._post("/directories/export", request, schemas.ExportPage)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def import_faces(self, directory: str, model: str, faces: Sequence[schemas.GalleryFace]) -> schemas.ImportResponse:
        """Exported faces into `directory`; the service refuses (409) faces of another model."""
        request = _request(schemas.ImportRequest, directory=directory, model=model, faces=list(faces))
        return self._post("/directories/import", request, schemas.ImportResponse)
