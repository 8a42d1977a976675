"""API keys scoped to directories and access, on the real service: no key reads, lists, searches or deletes
another directory's people."""

from __future__ import annotations

import base64

import httpx
import pytest
from server import KEYS, auth

from api.auth import ApiKey, Authorizer, hash_key
from api.errors import ApiError
from scripts.faces_data import FACES_DIR

PHOTO = FACES_DIR / "face_recognition/examples/knn_examples/train/biden/biden.jpg"


def call(url: str, endpoint: str, key: str | None, **body) -> httpx.Response:
    return httpx.post(f"{url}/{endpoint}", json=body, headers=auth(key) if key else {}, timeout=120)


@pytest.fixture(scope="module")
def image() -> str:
    return base64.b64encode(PHOTO.read_bytes()).decode()


@pytest.fixture(scope="module")
def seeded(service_url, image):
    for directory in ("tenant-a", "tenant-b"):
        response = call(service_url, "enroll", "admin", image=image, directory=directory, person_id="biden")
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", ["detect", "recognize", "enroll", "persons/list", "persons/delete"])
def test_requests_without_a_valid_key_are_401(service_url, image, endpoint):
    body = {"image": image, "directory": "tenant-a", "person_id": "biden"}
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": "wrong"}):
        response = httpx.post(f"{service_url}/{endpoint}", json=body, headers=headers, timeout=60)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_x_api_key_header_works_too(service_url, image):
    response = httpx.post(
        f"{service_url}/detect", json={"image": image}, headers={"X-API-Key": KEYS["reader-a"]}, timeout=60
    )
    assert response.status_code == 200


def test_read_key_reads_its_directory_only(service_url, image, seeded):
    info = call(service_url, "info", None).json()
    exported = call(service_url, "directories/export", "admin", directory="tenant-a").json()["faces"][0]
    assert call(service_url, "recognize", "reader-a", image=image, directory="tenant-a").status_code == 200
    assert call(service_url, "persons/list", "reader-a", directory="tenant-a").status_code == 200
    assert call(service_url, "persons/get", "reader-a", directory="tenant-a", person_id="biden").status_code == 200
    for endpoint, body in [
        ("recognize", {"image": image, "directory": "tenant-b"}),
        ("persons/list", {"directory": "tenant-b"}),
        ("persons/get", {"directory": "tenant-b", "person_id": "biden"}),
        ("enroll", {"image": image, "directory": "tenant-a", "person_id": "x"}),
        ("persons/delete", {"directory": "tenant-a", "person_id": "biden"}),
        ("persons/update", {"directory": "tenant-a", "person_id": "biden", "name": "x"}),
        ("faces/delete", {"directory": "tenant-a", "face_id": "x"}),
        ("directories/delete", {"directory": "tenant-a"}),
        # an export is every vector of a directory, an import writes: neither is a read
        ("directories/export", {"directory": "tenant-a"}),
        ("directories/import", {"directory": "tenant-a", "model": info["model"], "faces": [exported]}),
    ]:
        response = call(service_url, endpoint, "reader-a", **body)
        assert response.status_code == 403, (endpoint, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert call(service_url, "persons/list", "admin", directory="tenant-a").json()["persons"][0]["person_id"] == "biden"


def test_write_key_cannot_touch_another_directory(service_url, image, seeded):
    # the seeded photo is tenant-b's "biden" already: a second id for the same face needs the override
    own = call(
        service_url, "enroll", "writer-b", image=image, directory="tenant-b", person_id="b2", allow_conflict=True
    )
    assert own.status_code == 200, own.text
    for endpoint, body in [
        ("recognize", {"image": image, "directory": "tenant-a"}),
        ("persons/delete", {"directory": "tenant-a", "person_id": "biden"}),
        ("directories/delete", {"directory": "tenant-a"}),
        (
            "enroll_batch",
            {
                "items": [
                    {"image": image, "directory": "tenant-b", "person_id": "sneak"},
                    {"image": image, "directory": "tenant-a", "person_id": "sneak"},
                ]
            },
        ),
    ]:
        assert call(service_url, endpoint, "writer-b", **body).status_code == 403, endpoint
    persons_a = call(service_url, "persons/list", "admin", directory="tenant-a").json()["persons"]
    persons_b = call(service_url, "persons/list", "admin", directory="tenant-b").json()["persons"]
    assert [p["person_id"] for p in persons_a] == ["biden"]
    assert "sneak" not in {p["person_id"] for p in persons_b}


def test_probes_and_docs_need_no_key(service_url):
    for path in ("/readyz", "/livez", "/metrics", "/docs.json"):
        assert httpx.get(f"{service_url}{path}", timeout=30).status_code == 200, path


def test_keys_are_held_hashed():
    key = "s3cret-token"
    authorizer = Authorizer([ApiKey(name="k", sha256=hash_key(key), directories=["d"], access="read")], enabled=True)
    assert key not in repr(authorizer.__dict__)
    resolved = authorizer.resolve({"authorization": f"Bearer {key}"})
    resolved.require("d", "read")
    with pytest.raises(ApiError) as info:
        resolved.require("d", "write")
    assert info.value.status == 403


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"authorization": "Basic abc"}]
)
def test_a_missing_or_unknown_key_is_refused_where_a_key_is_needed(headers):
    resolved = Authorizer([ApiKey(name="k", sha256=hash_key("k"), directories=["*"], access="write")], True).resolve(
        headers
    )
    for need in (resolved.require_any, lambda: resolved.require("d", "read")):
        with pytest.raises(ApiError) as info:
            need()
        assert (info.value.status, info.value.code, info.value.headers) == (
            401,
            "unauthorized",
            {"WWW-Authenticate": "Bearer"},
        )


def test_disabled_auth_allows_everything():
    resolved = Authorizer([], enabled=False).resolve({})
    resolved.require_any()
    resolved.require("any-directory", "write")


def test_enabled_auth_without_keys_refuses_to_start():
    with pytest.raises(ValueError, match="no API keys"):
        Authorizer([], enabled=True)
