"""What both compat apps share: a FastAPI app whose every error is a faceserve ApiError body, and face shapes.

FastAPI (not bare Starlette) because BentoML documents a mounted app's
routes in the service's OpenAPI document only when the app is FastAPI.
Errors leave in faceserve's shape and `api.compat.errors.CompatErrors`
turns them into each API's own, together with the shared middleware's.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.errors import ApiError
from faceserve import schemas
from settings import get_settings

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def max_part_bytes() -> int:
    return get_settings().max_request_bytes


def make_app(title: str, description: str) -> FastAPI:
    # docs, redoc and openapi.json stay off: the routes are documented in the service's /docs.json.
    app = FastAPI(title=title, description=description, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return JSONResponse(ApiError(400, "invalid_parameter", problems or "Invalid request.").body(), 400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        error = ApiError(exc.status_code, HTTP_CODES.get(exc.status_code, "invalid_request"), str(exc.detail))
        return JSONResponse(error.body(), exc.status_code, headers=exc.headers)

    return app


class Timer:
    """Milliseconds since the request began its work, for the `execution_time`/`duration` fields clients log."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)


def corners(face: schemas.Face, image: schemas.ImageSize) -> dict[str, int]:
    """Integer pixel box inside the image, as both APIs report it."""
    b = face.box

    def clip(v: float, hi: int) -> int:
        return int(min(max(round(v), 0), hi))

    return {
        "x_min": clip(b.x1, image.width),
        "y_min": clip(b.y1, image.height),
        "x_max": clip(b.x2, image.width),
        "y_max": clip(b.y2, image.height),
    }


def landmark_points(face: schemas.Face) -> list[list[int]]:
    """Five points in CompreFace's order: left eye, right eye, nose, left and right mouth corner (as seen)."""
    lm = face.landmarks
    return [[round(p.x), round(p.y)] for p in (lm.left_eye, lm.right_eye, lm.nose, lm.mouth_left, lm.mouth_right)]
