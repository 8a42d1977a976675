"""The gallery's reliability fixes over real HTTP: refused input is a 4xx with a stable code, the service stays
ready, and nothing stored changes."""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from server import auth

from scripts.faces_data import FACES_DIR

OBAMA = FACES_DIR / "face_recognition/tests/test_images/obama.jpg"
BIDEN = FACES_DIR / "face_recognition/tests/test_images/biden.jpg"


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def post(url: str, endpoint: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/{endpoint}", json=body, headers=auth(), timeout=120)


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def nested(depth: int) -> dict:
    value: object = 0
    for _ in range(depth - 1):
        value = [value]
    return {"a": value}


@pytest.fixture(scope="module")
def enrolled(service_url) -> dict:
    """A person stored before the bad requests; the same afterwards, and the gallery still writable."""
    response = post(service_url, "enroll", {"image": b64(OBAMA), "directory": "meta", "person_id": "obama"})
    assert response.status_code == 200, response.text
    return post(service_url, "persons/get", {"directory": "meta", "person_id": "obama"}).json()


def assert_gallery_healthy(url: str, enrolled: dict) -> None:
    assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
    assert post(url, "persons/get", {"directory": "meta", "person_id": "obama"}).json() == enrolled
    renamed = post(url, "persons/update", {"directory": "meta", "person_id": "obama", "name": enrolled["name"]})
    assert renamed.status_code == 200, renamed.text


POISON = {
    "depth_130": nested(130),
    "depth_9": nested(9),
    "too_many_values": {f"k{i}": 0 for i in range(300)},
}


@pytest.mark.parametrize("case", sorted(POISON))
@pytest.mark.parametrize("form", ["json", "multipart"])
def test_metadata_that_could_poison_the_gallery_is_refused(service_url, enrolled, case, form):
    metadata = POISON[case]
    assert len(json.dumps(metadata)) < 4096  # under the size limit: only the shape rules can refuse it
    for endpoint, fields in (
        ("enroll", {"directory": "meta", "person_id": "obama", "request_id": "poison"}),
        ("persons/update", {"directory": "meta", "person_id": "obama"}),
    ):
        if form == "json":
            body = {**fields, "metadata": metadata}
            if endpoint == "enroll":
                body["image"] = b64(OBAMA)
            response = post(service_url, endpoint, body)
        else:
            parts = {name: (None, value) for name, value in fields.items()}
            parts["metadata"] = (None, json.dumps(metadata))
            if endpoint == "enroll":
                parts["image"] = ("obama.jpg", OBAMA.read_bytes(), "image/jpeg")
            response = httpx.post(f"{service_url}/{endpoint}", files=parts, headers=auth(), timeout=120)
        assert error(response) == (400, "invalid_metadata"), (endpoint, response.text)
        assert_gallery_healthy(service_url, enrolled)


def test_metadata_eight_levels_deep_is_stored_and_read_back(service_url):
    body = {"image": b64(OBAMA), "directory": "meta-ok", "person_id": "p", "metadata": nested(8)}
    assert post(service_url, "enroll", body).status_code == 200
    stored = post(service_url, "persons/get", {"directory": "meta-ok", "person_id": "p"}).json()
    assert stored["metadata"] == nested(8)


def test_a_request_id_reused_for_another_photo_is_a_conflict(service_url):
    photos = [OBAMA, BIDEN] * 8

    def enrol(photo) -> httpx.Response:
        body = {"image": b64(photo), "directory": "rid", "person_id": "p", "request_id": "same-request"}
        return post(service_url, "enroll", body)

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(enrol, photos))
    winners = {photo for photo, r in zip(photos, responses, strict=False) if r.status_code == 200}
    assert len(winners) == 1, [r.text for r in responses]
    (winner,) = winners
    for photo, response in zip(photos, responses, strict=False):
        if photo == winner:
            assert response.status_code == 200
        else:
            assert error(response) == (409, "request_id_conflict"), response.text
    assert len({r.json()["face_id"] for r in responses if r.status_code == 200}) == 1
    stored = post(service_url, "persons/get", {"directory": "rid", "person_id": "p"}).json()["faces"]
    assert [f["source_sha256"] for f in stored] == [hashlib.sha256(winner.read_bytes()).hexdigest()]


def test_directory_names_are_one_unicode_form(service_url):
    nfc = "café-zoë"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert post(service_url, "enroll", {"image": b64(OBAMA), "directory": nfc, "person_id": "obama"}).status_code == 200
    listed = post(service_url, "persons/list", {"directory": nfd}).json()
    assert listed["directory"] == nfc and [p["person_id"] for p in listed["persons"]] == ["obama"]
    again = post(service_url, "enroll", {"image": b64(OBAMA), "directory": nfd, "person_id": "obama"})
    assert again.json()["directory"] == nfc
    assert post(service_url, "persons/get", {"directory": nfc, "person_id": "obama"}).json()["faces"][1]
    for bad in ("*", "a\u2028b", "a\u2029b", "..", "a\u200bb"):
        assert error(post(service_url, "persons/list", {"directory": bad})) == (400, "invalid_directory"), bad
        body = {"image": b64(OBAMA), "directory": bad, "person_id": "p"}
        assert error(post(service_url, "enroll", body)) == (400, "invalid_directory"), bad


@pytest.mark.parametrize("field", ["score", "x2", "y1"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_an_import_with_a_non_finite_number_is_refused(service_url, enrolled, field, value):
    page = post(service_url, "directories/export", {"directory": "meta"}).json()
    face = page["faces"][0]
    text = json.dumps({"directory": "imported-nan", "model": page["model"], "faces": [face]})
    old = f'"{field}": {json.dumps(face[field] if field == "score" else face["box"][field])}'
    assert text.count(old) == 1
    text = text.replace(old, f'"{field}": {value}')  # a bare NaN/Infinity literal, as Python's json writes them
    response = httpx.post(
        f"{service_url}/directories/import",
        content=text.encode(),
        headers={**auth(), "content-type": "application/json"},
        timeout=60,
    )
    assert error(response) == (400, "invalid_face"), response.text
    assert post(service_url, "persons/list", {"directory": "imported-nan"}).json()["persons"] == []
    assert_gallery_healthy(service_url, enrolled)
