"""The Python client against the real service: typed results, stable error codes, export/import, retries."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from server import KEYS

from faceserve import Faceserve, FaceserveError, schemas
from models.registry import EMBEDDERS
from scripts.faces_data import FACES_DIR

JOHNS = FACES_DIR / "dlib/examples/johns"
GROUP = FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg"


def photos(person: str) -> list:
    return sorted((JOHNS / person).glob("*.jpg"))


@pytest.fixture(scope="module")
def client(service_url):
    with Faceserve(service_url, KEYS["admin"]) as fs:
        yield fs


@pytest.fixture(scope="module")
def enrolled(client) -> list[str]:
    people = ["John_Salley", "John_Savage", "John_Simm"]
    client.delete_directory("client-src")
    for person in people:
        for photo in photos(person)[:2]:
            result = client.enroll(photo, "client-src", person, name=person.replace("_", " "), metadata={"k": 1})
            assert isinstance(result, schemas.EnrollResponse) and result.person_id == person
    return people


def test_typed_round_trip_on_real_photos(client, enrolled):
    info = client.info()
    assert info.model in EMBEDDERS and info.limits.max_batch_items >= 1
    for person in enrolled:
        result = client.recognize(photos(person)[4], "client-src")
        assert isinstance(result, schemas.RecognizeResponse)
        (face,) = result.faces
        assert face.known and face.match.person_id == person and face.match.name == person.replace("_", " ")
    same = client.verify(photos("John_Salley")[0], photos("John_Salley")[3])
    other = client.verify(photos("John_Salley")[0], photos("John_Simm")[0])
    assert same.same_person and not other.same_person
    embedded = client.embed(photos("John_Savage")[0].read_bytes())
    assert embedded.dim == EMBEDDERS[info.model].dim == len(embedded.faces[0].embedding)
    with open(GROUP, "rb") as f:
        assert len(client.detect(f).faces) == 3  # two named adults and a child (MANIFEST.csv)
    assert [p.person_id for p in client.persons("client-src", page_size=1)] == enrolled
    person = client.update_person("client-src", "John_Simm", name="J. Simm")
    assert person.name == "J. Simm" and len(person.faces) == 2


def test_errors_carry_the_service_codes(client, service_url, enrolled):
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    with pytest.raises(FaceserveError) as info:
        client.enroll(blank.getvalue(), "client-src", "nobody")
    assert (info.value.status, info.value.code) == (422, "no_face")
    with pytest.raises(FaceserveError) as info:
        client.enroll(GROUP, "client-src", "group", single_face=True)
    assert (info.value.status, info.value.code) == (422, "several_faces")
    with pytest.raises(FaceserveError) as info:
        client.get_person("client-src", "nobody")
    assert (info.value.status, info.value.code) == (404, "not_found")
    with Faceserve(service_url, KEYS["reader-a"]) as reader, pytest.raises(FaceserveError) as info:
        reader.enroll(photos("John_Simm")[0], "client-src", "x")
    assert (info.value.status, info.value.code) == (403, "forbidden")
    with Faceserve(service_url, "not-a-key") as stranger, pytest.raises(FaceserveError) as info:
        stranger.list_persons("client-src")
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    with pytest.raises(FaceserveError) as info:
        client.enroll(GROUP, "client-src", "bad\nid")
    assert (info.value.status, info.value.code) == (400, "invalid_person_id")  # the service's rule, checked here
    assert sum(p.face_count for p in client.persons("client-src")) == 6  # nothing was stored by the failures


def test_export_and_import_move_a_directory(client, service_url, enrolled):
    pages = list(client.export_pages("client-src", page_size=4))
    assert [len(p.faces) for p in pages] == [4, 2] and pages[-1].next_cursor is None
    faces = [face for page in pages for face in page.faces]
    assert {f.person_id for f in faces} == set(enrolled) and all(len(f.embedding) == pages[0].dim for f in faces)

    client.delete_directory("client-dst")
    assert client.import_faces("client-dst", pages[0].model, faces).imported_faces == 6
    assert client.import_faces("client-dst", pages[0].model, faces).imported_faces == 6  # same ids: no duplicates
    assert {p.person_id: p.face_count for p in client.persons("client-dst")} == {p: 2 for p in enrolled}
    result = client.recognize(photos("John_Savage")[5], "client-dst")
    assert result.faces[0].match.person_id == "John_Savage"

    with pytest.raises(FaceserveError) as info:
        client.import_faces("client-dst", "facenet-vggface2", faces)
    assert (info.value.status, info.value.code) == (409, "model_mismatch")
    with Faceserve(service_url, KEYS["reader-a"]) as reader, pytest.raises(FaceserveError) as info:
        next(reader.export_pages("tenant-a"))
    # an export is every vector of a directory: write keys only
    assert (info.value.status, info.value.code) == (403, "forbidden")
    with pytest.raises(FaceserveError) as info:
        next(client.export_pages("client-src", page_size=0))
    assert (info.value.status, info.value.code) == (400, "invalid_parameter")


def test_load_shedding_is_retried_after_the_advertised_delay():
    """A scripted peer answering 429 then 503 (with Retry-After) then 200: the client waits and retries."""
    answers = [
        httpx.Response(429, headers={"retry-after": "0.01"}, json={"error": {"code": "overloaded", "message": "busy"}}),
        httpx.Response(503, headers={"retry-after": "0.01"}, json={"error": {"code": "unavailable", "message": "x"}}),
        httpx.Response(200, json={"deleted_faces": 3}),
    ]
    seen = []

    def peer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    with Faceserve("http://peer", transport=httpx.MockTransport(peer), backoff_s=10) as fs:
        assert fs.delete_directory("d").deleted_faces == 3
    assert len(seen) == 3 and all(r.url.path == "/directories/delete" for r in seen)

    with Faceserve("http://peer", transport=httpx.MockTransport(peer), retries=0) as fs:
        seen.clear()
        with pytest.raises(FaceserveError) as info:
            fs.delete_directory("d")
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, "overloaded", 0.01)


def test_an_unreachable_service_is_a_clear_error():
    with Faceserve("http://127.0.0.1:9", retries=1, backoff_s=0.01) as fs, pytest.raises(FaceserveError) as info:
        fs.info()
    assert info.value.code == "unreachable" and not Faceserve("http://127.0.0.1:9").ready()
