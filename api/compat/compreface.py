"""CompreFace's REST API (recognition, face collection, subjects, detection, verification) over faceserve.

Paths, parameters and response shapes follow CompreFace's "Rest API
description"; mounted at /api/v1. What differs, and why:
- the face collection is the one directory of the caller's key (api/compat/keys.py);
- a subject is a person_id: it exists while it has at least one face, because
  the gallery stores persons only through their faces. Adding a subject
  without a face checks the name and stores nothing; it is listed once an
  example is added. Renaming moves the faces (new image ids) to the new name;
- `similarity` is what api/compat/scores.py explains, not a cosine;
- faceserve keeps no photos, so the image download routes answer 404;
- `face_plugins` (age, gender, mask, calculator) are not computed and ignored;
  landmarks are always returned; `execution_time` has one key, `total`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request

from api.compat.adapter import Backend, Caller
from api.compat.base import Timer, corners, landmark_points, make_app, max_part_bytes
from api.compat.forms import Body, read_body
from api.compat.scores import reported_similarity
from api.errors import ApiError, no_face
from faceserve import schemas

TAG = "CompreFace compatible"
MAX_DELETE_IDS = 1000


def _image_body(*names: str) -> dict[str, Any]:
    """OpenAPI request body: the images as multipart file parts or as base64 strings in JSON."""

    def schema(kind: dict[str, str]) -> dict[str, Any]:
        return {"type": "object", "properties": {n: {"type": "string", **kind} for n in names}, "required": list(names)}

    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": schema({"format": "binary"})},
                "application/json": {"schema": schema({"description": "base64 image"})},
            },
        }
    }


def _json_body(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "properties": properties}}},
        }
    }


Limit = Query(0, ge=0, description="Most faces, largest first; 0: no limit (the service's max_faces still applies).")
DetProb = Query(None, ge=0, le=1, description="Drop faces whose detection score is lower.")
Plugins = Query(None, description="Accepted and ignored: faceserve computes no age, gender or mask.")
Status = Query(None, description="true adds plugins_versions.")

# Optional query parameters are typed without `| None`: FastAPI then documents them as plain types, not as
# anyOf-with-null, whose negative cases crash schemathesis' generator (tests/test_openapi_fuzz.py) on CPython 3.11.
router = APIRouter(tags=[TAG])


def _caller(request: Request, backend: Backend) -> Caller:
    return backend.caller(request.headers)


def _plugins(status: str | None, backend: Backend) -> dict[str, Any]:
    if (status or "").strip().lower() not in ("true", "1", "yes"):
        return {}
    return {"plugins_versions": {"detector": "faceserve.MTCNN", "calculator": f"faceserve.{backend.model}"}}


def _face(face: schemas.Face, image: schemas.ImageSize, timer: Timer) -> dict[str, Any]:
    return {
        "box": {"probability": round(face.score, 5), **corners(face, image)},
        "landmarks": landmark_points(face),
        "execution_time": {"total": timer.ms},
    }


def _limit(limit: int) -> int | None:
    return limit or None


# --- recognition --------------------------------------------------------------------------------------------


@router.post("/recognition/recognize", openapi_extra=_image_body("file"))
async def recognize(
    request: Request,
    limit: int = Limit,
    prediction_count: int = Query(1, ge=0, description="Subjects listed per face (0 counts as 1)."),
    det_prob_threshold: float = DetProb,
    face_plugins: str = Plugins,
    status: str = Status,
    backend: Backend = Depends(Backend.current),
) -> dict[str, Any]:
    """Every face of the photo with the subjects it may be; see api/compat/scores.py for `similarity`."""
    caller = _caller(request, backend)
    body = await read_body(request, max_part_bytes(), ("file",))
    timer = Timer()
    result = await backend.recognize(caller, body.image("file"), _limit(limit))
    faces = [f for f in result.faces if det_prob_threshold is None or f.score >= det_prob_threshold]
    if not faces:
        raise no_face("file")
    return {
        "result": [
            {**_face(f, result.image, timer), "subjects": _subjects(backend, result, f, prediction_count)}
            for f in faces
        ],
        **_plugins(status, backend),
    }


def _subjects(
    backend: Backend, result: schemas.RecognizeResponse, face: schemas.RecognizedFace, count: int
) -> list[dict[str, Any]]:
    """Named persons first (the match, or every tied person of an ambiguous face), then the others."""
    named = [face.match] if face.decision == "match" and face.match else list(face.ambiguous)
    ranked = [(c, True) for c in named] + [(c, False) for c in face.candidates]
    subjects = []
    for candidate, is_named in ranked[: max(1, count)]:
        fap = backend.false_accept_probability(result.security, result.enrolled_faces, candidate.similarity)
        subjects.append(
            {"subject": candidate.person_id, "similarity": reported_similarity(fap, candidate.similarity, is_named)}
        )
    return subjects


# --- face collection ----------------------------------------------------------------------------------------


@router.post("/recognition/faces", status_code=201, openapi_extra=_image_body("file"))
async def add_example(
    request: Request,
    subject: str = Query(None, description="The subject (person_id) the face is added to."),
    det_prob_threshold: float = Query(
        None, ge=0, le=1, description="Accepted and ignored: enrolment takes only faces the detector is sure of."
    ),
    backend: Backend = Depends(Backend.current),
) -> dict[str, str]:
    """Enrol the one face of the photo under `subject` (a photo with several faces is refused, code 31)."""
    caller = _caller(request, backend)
    subject = backend.checked_subject(subject)
    body = await read_body(request, max_part_bytes(), ("file",))
    enrolled = await backend.enroll(caller, body.image("file"), subject, single_face=True)
    return {"image_id": enrolled.face_id, "subject": enrolled.person_id}


@router.get("/recognition/faces")
async def list_examples(
    request: Request,
    page: int = Query(0, ge=0),
    size: int = Query(20, ge=1, le=1000),
    subject: str = Query(None),
    backend: Backend = Depends(Backend.current),
) -> dict[str, Any]:
    """Saved faces (image_id, subject) a page at a time, by subject then enrolment time."""
    caller = _caller(request, backend)
    backend.allow(caller, "read")
    if subject:
        person = await backend.person(caller, backend.checked_subject(subject))
        counts = [(person.person_id, len(person.faces))] if person else []
    else:
        counts = [(p.person_id, p.face_count) for p in await backend.persons(caller)]
    total = sum(n for _, n in counts)
    start, stop = page * size, (page + 1) * size
    faces: list[dict[str, str]] = []
    seen = 0
    for person_id, n in counts:
        if seen + n > start and seen < stop:
            person = await backend.person(caller, person_id)
            for i, face in enumerate(person.faces if person else []):
                if start <= seen + i < stop:
                    faces.append({"image_id": face.face_id, "subject": person_id})
        seen += n
    return {
        "faces": faces,
        "page_number": page,
        "page_size": size,
        "total_pages": -(-total // size),
        "total_elements": total,
    }


@router.delete("/recognition/faces")
async def delete_examples(
    request: Request,
    subject: str = Query(None, description="Absent: every face of the collection."),
    backend: Backend = Depends(Backend.current),
) -> dict[str, int]:
    caller = _caller(request, backend)
    if subject is None:
        return {"deleted": await backend.delete_all(caller)}
    return {"deleted": await backend.delete_subject(caller, backend.checked_subject(subject))}


async def _delete_one(backend: Backend, caller: Caller, image_id: str) -> dict[str, str] | None:
    backend.allow(caller, "write")
    found = await backend.find_face(caller, image_id)
    if found is None:
        return None
    face, _ = found
    await backend.delete_face(caller, face.face_id)
    return {"image_id": face.face_id, "subject": face.person_id}


@router.delete("/recognition/faces/{image_id}")
async def delete_example(
    request: Request, image_id: str, backend: Backend = Depends(Backend.current)
) -> dict[str, str]:
    deleted = await _delete_one(backend, _caller(request, backend), image_id)
    if deleted is None:
        raise ApiError(404, "face_not_found", f"No face with image_id '{image_id}' in this collection.")
    return deleted


@router.post(
    "/recognition/faces/delete",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
        }
    },
)
async def delete_examples_by_id(request: Request, backend: Backend = Depends(Backend.current)) -> list[dict[str, str]]:
    """Delete several faces by image_id; ids not found are skipped, as CompreFace does."""
    caller = _caller(request, backend)
    body = await read_body(request, max_part_bytes())
    ids = body.json
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_DELETE_IDS:
        raise ApiError(400, "invalid_parameter", f"Send a JSON array of at most {MAX_DELETE_IDS} image_id strings.")
    deleted = [await _delete_one(backend, caller, i) for i in dict.fromkeys(ids)]
    return [d for d in deleted if d is not None]


@router.post("/recognition/faces/{image_id}/verify", openapi_extra=_image_body("file"))
async def verify_example(
    request: Request,
    image_id: str,
    limit: int = Limit,
    det_prob_threshold: float = DetProb,
    face_plugins: str = Plugins,
    status: str = Status,
    backend: Backend = Depends(Backend.current),
) -> dict[str, Any]:
    """Each face of the photo compared with one saved face, on the rule of faceserve's /verify."""
    caller = _caller(request, backend)
    body = await read_body(request, max_part_bytes(), ("file",))
    found = await backend.find_face(caller, image_id)
    if found is None:
        raise ApiError(404, "face_not_found", f"No face with image_id '{image_id}' in this collection.")
    timer = Timer()
    probe = await backend.embed(caller, body.image("file"), _limit(limit))
    faces = [f for f in probe.faces if det_prob_threshold is None or f.score >= det_prob_threshold]
    if not faces:
        raise no_face("file")
    _, stored = found
    return {
        "result": [
            {**_face(f, probe.image, timer), "similarity": _pair_similarity(backend, f.embedding, stored)}
            for f in faces
        ],
        **_plugins(status, backend),
    }


def _pair_similarity(backend: Backend, a: list[float], b: Any) -> float:
    cosine = float(sum(x * y for x, y in zip(a, b, strict=True)))
    same, fap = backend.pair_decision(cosine)
    return reported_similarity(fap, cosine, same)


@router.get("/recognition/faces/{image_id}/img")
async def example_image(request: Request, image_id: str, backend: Backend = Depends(Backend.current)) -> None:
    backend.allow(_caller(request, backend), "read")
    raise _no_photos()


@router.get("/static/{api_key}/images/{image_id}")
async def example_image_direct(api_key: str, image_id: str) -> None:
    raise _no_photos()


def _no_photos() -> ApiError:
    return ApiError(404, "image_not_stored", "faceserve stores face vectors, never the photos they came from.")


# --- subjects -----------------------------------------------------------------------------------------------


def _subject_field(body: Body) -> str:
    data = body.json if isinstance(body.json, dict) else {}
    value = data.get("subject")
    if not isinstance(value, str):
        raise ApiError(400, "missing_subject", 'Send {"subject": "<name>"} as JSON.')
    return value


@router.post("/recognition/subjects", status_code=201, openapi_extra=_json_body({"subject": {"type": "string"}}))
async def add_subject(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, str]:
    """Checks the name and the key's write access; nothing is stored until the subject's first example."""
    caller = _caller(request, backend)
    backend.allow(caller, "write")
    subject = backend.checked_subject(_subject_field(await read_body(request, max_part_bytes())))
    return {"subject": subject}


@router.get("/recognition/subjects")
@router.get("/recognition/subjects/", include_in_schema=False)
async def list_subjects(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, list[str]]:
    caller = _caller(request, backend)
    return {"subjects": [p.person_id for p in await backend.persons(caller)]}


@router.put("/recognition/subjects/{subject}", openapi_extra=_json_body({"subject": {"type": "string"}}))
async def rename_subject(request: Request, subject: str, backend: Backend = Depends(Backend.current)) -> dict:
    """Move every face of `subject` to the new name, merging into it when it exists."""
    caller = _caller(request, backend)
    backend.allow(caller, "write")
    old = backend.checked_subject(subject)
    new = backend.checked_subject(_subject_field(await read_body(request, max_part_bytes())))
    return {"updated": await backend.rename(caller, old, new)}


@router.delete("/recognition/subjects/{subject}")
async def delete_subject(request: Request, subject: str, backend: Backend = Depends(Backend.current)) -> dict:
    caller = _caller(request, backend)
    backend.allow(caller, "write")
    subject = backend.checked_subject(subject)
    if await backend.person(caller, subject) is None:
        raise ApiError(404, "subject_not_found", f"Subject '{subject}' has no faces in this collection.")
    await backend.delete_subject(caller, subject)
    return {"subject": subject}


@router.delete("/recognition/subjects")
async def delete_all_subjects(request: Request, backend: Backend = Depends(Backend.current)) -> dict[str, int]:
    caller = _caller(request, backend)
    backend.allow(caller, "write")
    subjects = len(await backend.persons(caller))
    await backend.delete_all(caller)
    return {"deleted": subjects}


# --- detection and verification services --------------------------------------------------------------------


@router.post("/detection/detect", openapi_extra=_image_body("file"))
async def detect(
    request: Request,
    limit: int = Limit,
    det_prob_threshold: float = DetProb,
    face_plugins: str = Plugins,
    status: str = Status,
    backend: Backend = Depends(Backend.current),
) -> dict[str, Any]:
    caller = _caller(request, backend)
    body = await read_body(request, max_part_bytes(), ("file",))
    timer = Timer()
    found = await backend.detect(caller, body.image("file"), det_prob_threshold, _limit(limit))
    if not found.faces:
        raise no_face("file")
    return {"result": [_face(f, found.image, timer) for f in found.faces], **_plugins(status, backend)}


@router.post("/verification/verify", openapi_extra=_image_body("source_image", "target_image"))
async def verify(
    request: Request,
    limit: int = Limit,
    det_prob_threshold: float = DetProb,
    face_plugins: str = Plugins,
    status: str = Status,
    backend: Backend = Depends(Backend.current),
) -> dict[str, Any]:
    """The largest face of source_image against every face of target_image."""
    caller = _caller(request, backend)
    body = await read_body(request, max_part_bytes(), ("source_image", "target_image"))
    timer = Timer()
    source = await backend.embed(caller, body.image("source_image"), 1)
    target = await backend.embed(caller, body.image("target_image"), _limit(limit))
    targets = [f for f in target.faces if det_prob_threshold is None or f.score >= det_prob_threshold]
    if not source.faces:
        raise no_face("source_image")
    if not targets:
        raise no_face("target_image")
    probe = source.faces[0]
    return {
        "result": [
            {
                "source_image_face": _face(probe, source.image, timer),
                "face_matches": [
                    {
                        **_face(f, target.image, timer),
                        "similarity": _pair_similarity(backend, probe.embedding, f.embedding),
                    }
                    for f in targets
                ],
                **_plugins(status, backend),
            }
        ]
    }


def create_app():
    app = make_app("CompreFace compatible API", __doc__ or "")
    app.include_router(router)

    return app
