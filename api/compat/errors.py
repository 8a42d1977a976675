"""Errors on the compat paths in the shape their clients parse, whoever raised them.

The compat apps raise faceserve's own ApiError, and the shared middleware
(size limits, overload, deadline, cross-site) answers in faceserve's shape
before the apps ever run; `CompatErrors` sits outside all of them and
rewrites every {"error": {"code", "message"}} body on a compat path once:

- CompreFace: {"message", "code": <CompreFace's integer code>} where
  CompreFace has a code for the case (28 no face, 31 several faces, ...),
  else 0 (its UNDEFINED); HTTP status and headers (Retry-After) are kept;
- DeepStack: {"success": false, "error": <message>, "duration": 0}.

Both keep faceserve's stable string code as "faceserve_code".
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.compat import COMPREFACE_PREFIX, DEEPSTACK_PREFIX
from api.middleware import rewrite_errors

# CompreFace's CommonExceptionCode numbers for the cases faceserve has a code for.
COMPREFACE_CODES = {
    "no_face": 28,
    "several_faces": 31,
    "missing_image": 5,
    "missing_subject": 33,
    "unauthorized": 20,
    "face_not_found": 11,
    "image_not_stored": 11,
    "unsupported_format": 21,
    "invalid_image": 21,
    "empty_image": 26,
    "corrupt_image": 26,
    "invalid_base64": 26,
    "image_too_large": 26,
    "image_too_many_pixels": 26,
    "image_too_small": 26,
    "invalid_parameter": 26,
    "invalid_subject": 26,
    "invalid_face_id": 26,
    "invalid_json": 26,
    "invalid_multipart": 26,
}


def compreface_body(code: str, message: str) -> dict[str, object]:
    return {"message": message, "code": COMPREFACE_CODES.get(code, 0), "faceserve_code": code}


def deepstack_body(code: str, message: str) -> dict[str, object]:
    return {"success": False, "error": message, "faceserve_code": code, "duration": 0}


def _shaper(path: str):
    if path == COMPREFACE_PREFIX or path.startswith(COMPREFACE_PREFIX + "/"):
        return compreface_body
    if path == DEEPSTACK_PREFIX or path.startswith(DEEPSTACK_PREFIX + "/"):
        return deepstack_body
    return None


class CompatErrors:
    """Rewrite faceserve-shaped error bodies on compat paths; everything else passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shape = _shaper(scope["path"]) if scope["type"] == "http" else None
        if shape is None:
            return await self.app(scope, receive, send)
        await rewrite_errors(self.app, scope, receive, send, lambda start, body: (start, _reshaped(body, shape)))


def _reshaped(body: bytes, shape: Callable[[str, str], dict[str, object]]) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return json.dumps(shape(error["code"], str(error.get("message", "")))).encode()
    return body
