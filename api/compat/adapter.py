"""The only door from the compat APIs into faceserve's request logic (FaceApi) and gallery.

The CompreFace and DeepStack modules only ever call `Backend`, which resolves
the caller's key at the edge as the native service does and builds the same
request models the native endpoints take, so everything stays on FaceApi's
own path: the same decoding, limits, key checks, decisions and gallery rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import numpy as np
from pydantic import BaseModel, ValidationError

from api.auth import Authorizer, Key
from api.compat.keys import directory_of
from api.deadline import commit_before_write
from api.errors import ApiError, not_found
from api.handlers import FaceApi
from faceserve import schemas
from faceserve.limits import MAX_TRANSFER_PAGE
from faceserve.rules import InvalidInput, check_directory, check_person_id
from qdrant import StoredFace

Request = TypeVar("Request", bound=BaseModel)

# Faces moved by a rename get ids derived from their old ones, so a rename retried after a failure stores them once.
RENAME_NAMESPACE = uuid.UUID("7f3d8a40-5c2b-4e61-8d0a-2b9f4c6e1a57")
PERSONS_PAGE = 500


@dataclass(frozen=True)
class Caller:
    """Who is asking, and the one directory (CompreFace "face collection") they work in."""

    key: Key
    directory: str


def build(model: type[Request], **fields: Any) -> Request:
    """A native request model, refused with the native endpoint's status and code when a field breaks its rule."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = schemas.request_error(exc.errors())
        raise ApiError(400, error.code, error.message) from exc


class Backend:
    def __init__(self, api: FaceApi, auth: Authorizer) -> None:
        self.api = api
        self.auth = auth

    @staticmethod
    def current() -> Backend:
        """The running FaceService's FaceApi and keys: BentoML sets the service instance before it serves."""
        from bentoml import get_current_service

        service = get_current_service()
        return Backend(service.api, service.auth)

    # --- who is calling -------------------------------------------------------------------------------------

    def caller(self, headers: Mapping[str, str], body_key: str | None = None) -> Caller:
        """Keys as the native API reads them (X-API-Key, Authorization: Bearer), or a DeepStack `api_key` field."""
        credentials = {k: v for k in ("x-api-key", "authorization") if (v := headers.get(k))}
        if body_key and not credentials:
            credentials["x-api-key"] = body_key
        token = credentials.get("x-api-key")
        scheme, _, value = credentials.get("authorization", "").partition(" ")
        if not token and scheme.lower() == "bearer":
            token = value.strip()
        key = self.auth.resolve(credentials)
        scope = list(key.require_any().directories) if self.auth.enabled else None
        return Caller(key, self.checked_directory(directory_of(scope, token)))

    @staticmethod
    def checked_directory(value: str) -> str:
        try:
            return check_directory(value)
        except InvalidInput as exc:
            raise ApiError(400, exc.code, f"The key names no usable directory: {exc.message}") from exc

    @staticmethod
    def checked_subject(value: str | None) -> str:
        if value is None or value == "":
            raise ApiError(400, "missing_subject", "subject is required.")
        try:
            return check_person_id(value)
        except InvalidInput as exc:
            raise ApiError(400, "invalid_subject", exc.message.replace("person_id", "subject")) from exc

    @staticmethod
    def allow(caller: Caller, access: Literal["read", "write"]) -> None:
        caller.key.require(caller.directory, access)

    # --- images ---------------------------------------------------------------------------------------------

    async def detect(
        self, caller: Caller, image: str, min_confidence: float | None, max_faces: int | None
    ) -> schemas.DetectResponse:
        request = build(schemas.DetectRequest, image=image, min_confidence=min_confidence, max_faces=max_faces)
        return await self.api.detect(caller.key, request)

    async def embed(self, caller: Caller, image: str, max_faces: int | None) -> schemas.EmbedResponse:
        return await self.api.embed(caller.key, build(schemas.EmbedRequest, image=image, max_faces=max_faces))

    async def recognize(self, caller: Caller, image: str, max_faces: int | None) -> schemas.RecognizeResponse:
        request = build(schemas.RecognizeRequest, image=image, directory=caller.directory, max_faces=max_faces)
        return await self.api.recognize(caller.key, request)

    def false_accept_probability(self, security: schemas.Security, comparisons: int, similarity: float) -> float | None:
        """What FaceApi's decision rule says a similarity means among `comparisons` enrolled faces."""
        return self.api.policy(security, comparisons, None).false_accept_probability(similarity)

    def pair_decision(self, similarity: float) -> tuple[bool, float | None]:
        """One comparison (N = 1) at the service's security level: the rule FaceApi.verify applies."""
        rule = self.api.policy(self.api.security, 1, None)
        return similarity >= rule.threshold, rule.false_accept_probability(similarity)

    @property
    def model(self) -> str:
        return self.api.spec.model_id

    async def enroll(self, caller: Caller, image: str, subject: str, single_face: bool) -> schemas.EnrollResponse:
        request = build(
            schemas.EnrollRequest, image=image, directory=caller.directory, person_id=subject, single_face=single_face
        )
        return await self.api.enroll(caller.key, request)

    # --- the collection -------------------------------------------------------------------------------------

    async def persons(self, caller: Caller) -> list[schemas.PersonSummary]:
        persons: list[schemas.PersonSummary] = []
        offset: int | None = 0
        while offset is not None:
            request = build(schemas.ListPersonsRequest, directory=caller.directory, limit=PERSONS_PAGE, offset=offset)
            page = await self.api.list_persons(caller.key, request)
            persons += page.persons
            offset = page.next_offset
        return persons

    async def person(self, caller: Caller, subject: str) -> schemas.Person | None:
        try:
            return await self.api.get_person(
                caller.key, build(schemas.PersonRequest, directory=caller.directory, person_id=subject)
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def find_face(self, caller: Caller, face_id: str) -> tuple[StoredFace, np.ndarray] | None:
        """The stored face and its vector. The gallery has no lookup by face id with the vector, so this pages
        through the directory: linear in its size, fine for the thousands of faces a CompreFace collection holds."""
        self.allow(caller, "read")
        cursor: str | None = None
        while True:
            page, cursor = await self._gallery(
                self.api.gallery.export_faces, caller.directory, MAX_TRANSFER_PAGE, cursor
            )
            for face, vector in page:
                if face.face_id == face_id:
                    return face, np.asarray(vector, dtype=np.float32)
            if cursor is None:
                return None

    async def delete_face(self, caller: Caller, face_id: str) -> int:
        request = build(schemas.FaceRequest, directory=caller.directory, face_id=face_id)
        return (await self.api.delete_face(caller.key, request)).deleted_faces

    async def delete_subject(self, caller: Caller, subject: str) -> int:
        request = build(schemas.PersonRequest, directory=caller.directory, person_id=subject)
        return (await self.api.delete_person(caller.key, request)).deleted_faces

    async def delete_all(self, caller: Caller) -> int:
        request = build(schemas.DirectoryRequest, directory=caller.directory)
        return (await self.api.delete_directory(caller.key, request)).deleted_faces

    async def rename(self, caller: Caller, old: str, new: str) -> bool:
        """Move every face of `old` to `new` (merging into `new` when it exists), as CompreFace's rename does.

        A person's id is part of every face in the gallery, so the faces are
        copied under `new` with ids derived from their old ones, and `old` is
        deleted only after the copy is stored: an interruption leaves both
        (a retry finishes it), never neither.
        """
        self.allow(caller, "write")
        if old == new:
            return False
        moved: list[schemas.GalleryFace] = []
        cursor: str | None = None
        while True:
            request = build(schemas.ExportRequest, directory=caller.directory, limit=MAX_TRANSFER_PAGE, cursor=cursor)
            page = await self.api.export_faces(caller.key, request)
            moved += [f for f in page.faces if f.person_id == old]
            cursor = page.next_cursor
            if cursor is None:
                break
        if not moved:
            raise not_found(f"subject '{old}'")
        target = await self.person(caller, new)
        name, metadata = (target.name, target.metadata) if target else (moved[0].name, moved[0].metadata)
        renamed = [
            f.model_copy(
                update={
                    "person_id": new,
                    "name": name,
                    "metadata": metadata,
                    "face_id": str(uuid.uuid5(RENAME_NAMESPACE, f"{f.face_id}\x00{new}")),
                }
            )
            for f in moved
        ]
        commit_before_write()
        for start in range(0, len(renamed), MAX_TRANSFER_PAGE):
            chunk = renamed[start : start + MAX_TRANSFER_PAGE]
            batch = schemas.ImportRequest(directory=caller.directory, model=self.model, faces=chunk)
            await self.api.import_faces(caller.key, batch)
        await self.delete_subject(caller, old)
        return True

    async def _gallery(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: call(*args))
        except InvalidInput as exc:
            raise ApiError(400, exc.code, exc.message) from exc
