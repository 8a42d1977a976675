"""DeepStack's face API (also served by CodeProject.AI) over faceserve; mounted at /v1/vision.

Every call is a POST with form fields (multipart, or url-encoded for list and
delete, as CodeProject.AI clients send them). The key may come as DeepStack's
`api_key` field or as faceserve's own headers; either way it must be bound
to one directory (api/compat/keys.py). A face is named only when faceserve
decides `match`: DeepStack has no way to say "one of these two", so an
ambiguous face is "unknown" here (the native API and CompreFace's
`prediction_count` show the tie). `confidence` is api/compat/scores.py's number.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request

from api.compat.adapter import Backend, Caller
from api.compat.base import Timer, corners, make_app, max_part_bytes
from api.compat.forms import Body, read_body
from api.compat.scores import reported_similarity
from api.errors import ApiError

TAG = "DeepStack compatible"
# DeepStack's own defaults for these fields.
RECOGNIZE_MIN_CONFIDENCE = 0.67
DETECT_MIN_CONFIDENCE = 0.4
UNKNOWN = "unknown"


def _form(*fields: str, images: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {f: {"type": "string"} for f in fields}
    if images:
        properties["image"] = {"type": "string", "format": "binary"}
    schema = {"type": "object", "properties": properties, **({"required": ["image"]} if images else {})}
    content = {"multipart/form-data": {"schema": schema}}
    if not images:
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    return {"requestBody": {"required": images, "content": content}}


router = APIRouter(tags=[TAG])


async def _request(request: Request, backend: Backend) -> tuple[Caller, Body]:
    body = await read_body(request, max_part_bytes())
    return backend.caller(request.headers, body.fields.get("api_key")), body


def _confidence(body: Body, default: float) -> float:
    raw = body.fields.get("min_confidence")
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, "invalid_parameter", "min_confidence must be a number between 0 and 1.")
    return value


def _userid(body: Body) -> str:
    return Backend.checked_subject(body.fields.get("userid"))


@router.post("/face", openapi_extra=_form("min_confidence", "api_key"))
async def detect(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, Any]:
    caller, body = await _request(request, backend)
    timer = Timer()
    found = await backend.detect(caller, body.image("image"), _confidence(body, DETECT_MIN_CONFIDENCE), None)
    return {
        "success": True,
        "predictions": [{"confidence": round(f.score, 5), **corners(f, found.image)} for f in found.faces],
        "duration": timer.ms,
    }


@router.post("/face/register", openapi_extra=_form("userid", "api_key"))
async def register(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, Any]:
    """Enrol the largest face of every `image*` part under `userid`: all of them, or (one failing) none."""
    caller, body = await _request(request, backend)
    userid = _userid(body)
    images = [value for name, value in body.files.items() if name.startswith("image")]
    if not images:
        raise ApiError(400, "missing_image", "Send one or more image files (image, image1, ...).")
    timer = Timer()
    stored: list[str] = []
    try:
        for image in images:
            stored.append((await backend.enroll(caller, image, userid, single_face=False)).face_id)
    except ApiError:
        for face_id in stored:
            await backend.delete_face(caller, face_id)
        raise
    return {"success": True, "message": "face added", "duration": timer.ms}


@router.post("/face/recognize", openapi_extra=_form("min_confidence", "api_key"))
async def recognize(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, Any]:
    caller, body = await _request(request, backend)
    min_confidence = _confidence(body, RECOGNIZE_MIN_CONFIDENCE)
    timer = Timer()
    result = await backend.recognize(caller, body.image("image"), None)
    predictions = []
    for face in result.faces:
        userid, confidence = UNKNOWN, 0.0
        if face.decision == "match" and face.match is not None:
            fap = backend.false_accept_probability(result.security, result.enrolled_faces, face.match.similarity)
            score = reported_similarity(fap, face.match.similarity, True)
            if score >= min_confidence:
                userid, confidence = face.match.person_id, score
        predictions.append({"userid": userid, "confidence": confidence, **corners(face, result.image)})
    return {"success": True, "predictions": predictions, "duration": timer.ms}


@router.post("/face/list", openapi_extra=_form("api_key", images=False))
async def list_faces(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, Any]:
    caller, _ = await _request(request, backend)
    timer = Timer()
    faces = [p.person_id for p in await backend.persons(caller)]
    return {"success": True, "faces": faces, "duration": timer.ms}


@router.post("/face/delete", openapi_extra=_form("userid", "api_key", images=False))
async def delete(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, Any]:
    """Delete every face of `userid`; an absent userid deletes nothing and succeeds, as in DeepStack."""
    caller, body = await _request(request, backend)
    timer = Timer()
    await backend.delete_subject(caller, _userid(body))
    return {"success": True, "duration": timer.ms}


def create_app():
    app = make_app("DeepStack compatible face API", __doc__ or "")
    app.include_router(router)
    return app
