"""Every field of every endpoint, and of /enroll_batch items, with its bad values over real HTTP: one status and
one code per mistake, wherever it is made. The cases are built from the request models, so a new field without
bad values here fails the test instead of going unchecked."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import BaseModel
from server import auth

from api import compat
from faceserve import limits, schemas
from scripts.faces_data import FACES_DIR

OBAMA = FACES_DIR / "face_recognition/tests/test_images/obama.jpg"
DIRECTORY = "field-errors"
ENDPOINTS: dict[str, type[BaseModel]] = {
    "detect": schemas.DetectRequest,
    "embed": schemas.EmbedRequest,
    "verify": schemas.VerifyRequest,
    "enroll": schemas.EnrollRequest,
    "enroll_batch": schemas.EnrollBatchRequest,
    "recognize": schemas.RecognizeRequest,
    "persons/list": schemas.ListPersonsRequest,
    "persons/get": schemas.PersonRequest,
    "persons/update": schemas.UpdatePersonRequest,
    "persons/delete": schemas.PersonRequest,
    "faces/delete": schemas.FaceRequest,
    "directories/delete": schemas.DirectoryRequest,
    "directories/export": schemas.ExportRequest,
    "directories/import": schemas.ImportRequest,
    "persons/reject": schemas.RejectRequest,
    "directories/health": schemas.HealthRequest,
}
IMAGE = [("", "empty_image"), ("abc$%^", "invalid_base64"), (5, "invalid_request")]
ID = ["", "x" * (limits.MAX_ID_LENGTH + 1), "a\x07b", "*", ".", " lead", 5]
PARAMETER = "invalid_parameter"
# field → [(bad value, code)]; (endpoint, field) where a field's bounds differ between endpoints
BAD: dict[Any, list[tuple[Any, str]]] = {
    "image": IMAGE,
    "image_a": IMAGE,
    "image_b": IMAGE,
    "directory": [(v, "invalid_directory") for v in ID],
    "person_id": [(v, "invalid_person_id") for v in ID],
    "face_id": [(v, "invalid_face_id") for v in ID],
    "name": [("n" * (limits.MAX_NAME_LENGTH + 1), "invalid_name"), ("a\x00b", "invalid_name"), (5, "invalid_name")],
    "metadata": [
        ([1, 2], "invalid_metadata"),
        ("text", "invalid_metadata"),
        ({"deep": [[[[[[[[[1]]]]]]]]]}, "invalid_metadata"),
        ({"many": list(range(limits.MAX_METADATA_VALUES + 1))}, "invalid_metadata"),
        ({"blob": "x" * 5000}, "metadata_too_large"),
    ],
    "request_id": [("r" * (limits.MAX_REQUEST_ID_LENGTH + 1), PARAMETER), (5, PARAMETER)],
    "single_face": [("maybe", PARAMETER)],
    "allow_conflict": [("maybe", PARAMETER), (2, PARAMETER)],
    "allow_mismatch": [("maybe", PARAMETER), (2, PARAMETER)],
    "quality": [("excellent", PARAMETER), (1, PARAMETER)],
    "box": [("x", PARAMETER), ({"x1": 0}, "invalid_request")],
    "threshold": [(7, PARAMETER), (-1.5, PARAMETER), ("high", PARAMETER)],
    "security": [("max", PARAMETER), (1, PARAMETER)],
    "top_k": [(0, PARAMETER), (limits.MAX_TOP_K + 1, PARAMETER), ("x", PARAMETER)],
    "max_faces": [(0, PARAMETER), ("x", PARAMETER)],
    "min_confidence": [(-0.1, PARAMETER), (1.5, PARAMETER)],
    ("persons/list", "limit"): [(0, PARAMETER), (limits.MAX_LIST_LIMIT + 1, PARAMETER), ("x", PARAMETER)],
    ("directories/export", "limit"): [(0, PARAMETER), (limits.MAX_TRANSFER_PAGE + 1, PARAMETER)],
    "offset": [(-1, PARAMETER), ("x", PARAMETER)],
    "cursor": [("c" * (limits.MAX_CURSOR_LENGTH + 1), PARAMETER), ("not-a-cursor", "invalid_cursor")],
    "model": [(5, PARAMETER)],
    "faces": [([], "invalid_batch"), ("x", "invalid_batch")],
    "items": [([], "invalid_batch"), ("x", "invalid_batch")],
}
# an imported face's own fields: the rules of ids, names and metadata, the face's shape otherwise
FACE_BAD: dict[str, list[tuple[Any, str]]] = {
    "face_id": BAD["face_id"],
    "person_id": BAD["person_id"],
    "name": BAD["name"][:2],
    "metadata": BAD["metadata"][:4],
    "created_at": [("yesterday", "invalid_request")],
    "source_sha256": [("abc", "invalid_request")],
    "box": [({"x1": 0}, "invalid_request")],
    "score": [("x", "invalid_request")],
    "embedding": [("x", "invalid_request")],
    "kind": [("positive", "invalid_request")],
}


def small_face() -> str:
    image = Image.open(OBAMA).convert("RGB")
    image.thumbnail((240, 240))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


FACE = small_face() if OBAMA.exists() else ""
GALLERY_FACE = {
    "face_id": "f1",
    "person_id": "p",
    "created_at": "2024-01-01T00:00:00+00:00",
    "box": {"x1": 0, "y1": 0, "x2": 1, "y2": 1},
    "score": 0.9,
    "embedding": [1.0] * 128,
}
VALID = {
    "image": FACE,
    "image_a": FACE,
    "image_b": FACE,
    "directory": DIRECTORY,
    "person_id": "p",
    "face_id": "f1",
    "model": "dlib-resnet",
    "faces": [GALLERY_FACE],
    "items": [{"image": FACE, "directory": DIRECTORY, "person_id": "p"}],
}


def body(request: type[BaseModel], /, **changes: Any) -> dict[str, Any]:
    fields = {name: VALID[name] for name, f in request.model_fields.items() if f.is_required()}
    return {**fields, **changes}


def cases() -> list[tuple[str, dict[str, Any], int, str]]:
    """(endpoint, body, status, code): each field's bad values, and each required field left out."""
    out = []
    for endpoint, model in ENDPOINTS.items():
        for name, field in model.model_fields.items():
            bad = BAD.get((endpoint, name), BAD.get(name))
            assert bad, f"no bad values for {endpoint}.{name}"
            out += [(endpoint, body(model, **{name: value}), 400, code) for value, code in bad]
            if field.is_required():
                out.append((endpoint, {k: v for k, v in body(model).items() if k != name}, 400, "invalid_request"))
    for name, bad in FACE_BAD.items():
        for value, code in bad:
            faces = [{**GALLERY_FACE, name: value}]
            out.append(("directories/import", body(schemas.ImportRequest, faces=faces), 400, code))
    return out


def item_cases() -> list[tuple[dict[str, Any], str]]:
    """(batch item, code): every EnrollRequest field's bad values, reported for that item alone."""
    item = VALID["items"][0]
    return [
        ({**item, name: value}, code)
        for name in schemas.EnrollRequest.model_fields
        for value, code in BAD[name]
        if code != "invalid_request"  # what the item's own validation cannot own: an image that is not a string
    ] + [({k: v for k, v in item.items() if k != "person_id"}, "invalid_request")]


CASES = cases()
ITEM_CASES = item_cases()


def test_every_endpoint_is_enumerated(service_url):
    paths = httpx.get(f"{service_url}/docs.json", timeout=30).json()["paths"]
    served = {
        p.lstrip("/")
        for p, ops in paths.items()
        if "post" in ops and ops["post"].get("requestBody") and not p.startswith(compat.PREFIXES)
    }
    assert served == {*ENDPOINTS, "info"}  # /info takes no fields; the compat routes have their own matrix


@pytest.mark.parametrize(("endpoint", "body", "status", "code"), CASES, ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_a_bad_field_gets_its_code(service_url, endpoint, body, status, code):
    response = httpx.post(f"{service_url}/{endpoint}", json=body, headers=auth(), timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


@pytest.mark.parametrize(("item", "code"), ITEM_CASES, ids=[c[1] for c in ITEM_CASES])
def test_a_bad_batch_item_gets_the_same_code_alone(service_url, item, code):
    response = httpx.post(f"{service_url}/enroll_batch", json={"items": [item]}, headers=auth(), timeout=60)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["ok"], result["error"]["code"]) == (False, code), result
