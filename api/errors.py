"""One error type for every client mistake, so each becomes the same JSON shape and a 4xx.

Body: {"error": {"code": "...", "message": "..."}}, plus the fields a code documents (schemas.ErrorBody:
`reasons` of low_quality, `person_id` and `similarity` of the enrolment checks). Codes are stable API:
clients branch on them, messages are for people.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Message

from models.imaging import ImageError

# The HTTP status of each ImageError code (models/imaging knows nothing of HTTP); a code missing here is a 400.
IMAGE_ERROR_STATUS = {
    "image_too_large": 413,
    "image_too_many_pixels": 413,
    "unsupported_format": 415,
    "invalid_image": 415,
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or {}

    def body(self) -> dict[str, dict[str, Any]]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}

    def asgi_messages(self) -> tuple[Message, Message]:
        """The response as raw ASGI messages, for middleware that answers before any endpoint runs."""
        body = json.dumps(self.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        return (
            {"type": "http.response.start", "status": self.status, "headers": headers},
            {"type": "http.response.body", "body": body},
        )

    @classmethod
    def from_image_error(cls, exc: ImageError, field: str = "image") -> ApiError:
        return cls(IMAGE_ERROR_STATUS.get(exc.code, 400), exc.code, f"{field}: {exc.message}")


def no_face(field: str = "image") -> ApiError:
    return ApiError(422, "no_face", f"{field}: no face was found in the image.")


def several_faces(count: int) -> ApiError:
    return ApiError(422, "several_faces", f"image: {count} faces were found; single_face asks for exactly one.")


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} was not found.")


def json_errors(handler):
    """Turn an ApiError raised by a handler into its JSON body and status.

    BentoML answers any other exception with a 500 and its own body, so
    every client mistake must surface as ApiError; functools.wraps keeps the
    signature BentoML reads the request schema from. When the endpoint takes
    BentoML's `ctx`, BentoML copies ctx's status and headers onto whatever
    the endpoint returns, so they are set there too.
    """

    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except ApiError as exc:
            ctx = kwargs.get("ctx")
            if ctx is not None:
                ctx.response.status_code = exc.status
                ctx.response.metadata.update(exc.headers)
            return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    return wrapper
