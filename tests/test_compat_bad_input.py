"""Bad input, keys and isolation on the compat routes: always a 4xx in the API's own error shape, the service stays
up and nothing stored changes; a key reaches only its own directory; the routes are in the OpenAPI document."""

from __future__ import annotations

import base64
import io
import json
import socket
from pathlib import Path

import httpx
import pytest
from PIL import Image
from server import KEYS

from api.compat.keys import directory_of
from api.compat.scores import reported_similarity
from api.errors import ApiError

ENROLLED = Path("face_recognition/examples/knn_examples/train/obama/obama.jpg")
CORRUPT = Path("CompreFace/embedding-calculator/src/services/imgtools/test/files/corrupted.png")  # in ../shared/faces2
TRUNCATED = Path("CompreFace/embedding-calculator/src/services/imgtools/test/files/truncated.jpg")


def _bomb() -> bytes:
    """A small PNG whose pixels are far over any limit."""
    out = io.BytesIO()
    Image.new("1", (30000, 30000)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(service_url: str, faces_dir: Path) -> dict[str, str]:
    """One face in compat-c and one in compat-d, to see that nothing changes and nothing crosses."""
    ids = {}
    for key in ("compat-c", "compat-d"):
        headers = {"x-api-key": KEYS[key]}
        httpx.delete(f"{service_url}/api/v1/recognition/subjects", headers=headers)
        added = httpx.post(
            f"{service_url}/api/v1/recognition/faces",
            params={"subject": f"seed-{key}"},
            headers=headers,
            files={"file": (faces_dir / ENROLLED).read_bytes()},
        )
        assert added.status_code == 201, added.text
        ids[key] = added.json()["image_id"]
    return ids


def _faces(url: str, key: str) -> list[dict]:
    return httpx.get(f"{url}/api/v1/recognition/faces", headers={"x-api-key": KEYS[key]}).json()["faces"]


def _files(faces_dir: Path) -> dict[str, bytes]:
    photos2 = faces_dir.with_name("faces2")
    if not photos2.is_dir():
        pytest.skip("../shared/faces2 not found")
    return {
        "corrupt": (photos2 / CORRUPT).read_bytes(),
        "truncated": (photos2 / TRUNCATED).read_bytes(),
        "text": b"hello, not an image",
        "empty": b"",
        "bomb": _bomb(),
    }


COMPREFACE_UPLOADS = [
    ("POST", "/api/v1/recognition/recognize", {}),
    ("POST", "/api/v1/recognition/faces", {"subject": "should-not-exist"}),
    ("POST", "/api/v1/detection/detect", {}),
]


@pytest.mark.parametrize("method,path,params", COMPREFACE_UPLOADS)
@pytest.mark.parametrize("kind", ["corrupt", "truncated", "text", "empty", "bomb", "missing", "bad_base64"])
def test_compreface_bad_images(service_url, faces_dir, seeded, method, path, params, kind):
    headers = {"x-api-key": KEYS["compat-c"]}
    if kind == "missing":
        answer = httpx.request(method, service_url + path, params=params, headers=headers, files={"other": b"x"})
    elif kind == "bad_base64":
        answer = httpx.request(method, service_url + path, params=params, headers=headers, json={"file": "!!*%"})
    else:
        files = {"file": ("x.jpg", _files(faces_dir)[kind])}
        answer = httpx.request(method, service_url + path, params=params, headers=headers, files=files)
    assert 400 <= answer.status_code < 500, answer.text
    body = answer.json()
    assert isinstance(body["code"], int) and body["message"] and body["faceserve_code"]
    assert {f["subject"] for f in _faces(service_url, "compat-c")} == {"seed-compat-c"}


@pytest.mark.parametrize("kind", ["corrupt", "text", "bomb", "missing"])
def test_deepstack_bad_images(service_url, faces_dir, seeded, kind):
    data = {"userid": "should-not-exist", "api_key": KEYS["compat-d"]}
    files = {"other": b"x"} if kind == "missing" else {"image": _files(faces_dir)[kind]}
    for route in ("register", "recognize", ""):
        answer = httpx.post(f"{service_url}/v1/vision/face{'/' + route if route else ''}", data=data, files=files)
        assert 400 <= answer.status_code < 500, answer.text
        body = answer.json()
        assert body["success"] is False and body["error"] and body["faceserve_code"]
    listed = httpx.post(f"{service_url}/v1/vision/face/list", data={"api_key": KEYS["compat-d"]}).json()
    assert listed["faces"] == ["seed-compat-d"]


def test_unknown_subject_and_image_id_are_404(service_url, seeded):
    headers = {"x-api-key": KEYS["compat-c"]}
    base = f"{service_url}/api/v1/recognition"
    for method, url, body in (
        ("DELETE", f"{base}/subjects/nobody", None),
        ("PUT", f"{base}/subjects/nobody", {"subject": "somebody"}),
        ("DELETE", f"{base}/faces/00000000-0000-0000-0000-000000000000", None),
        ("GET", f"{base}/faces/{seeded['compat-c']}/img", None),
    ):
        answer = httpx.request(method, url, headers=headers, json=body)
        assert answer.status_code == 404, answer.text
        assert isinstance(answer.json()["code"], int)
    bad = httpx.post(f"{base}/faces", params={"subject": "a*b"}, headers=headers, files={"file": b"x"})
    assert bad.status_code == 400 and bad.json()["faceserve_code"] == "invalid_subject"
    bad = httpx.post(f"{base}/recognize", params={"limit": -1}, headers=headers, files={"file": b"x"})
    assert bad.status_code == 400 and bad.json()["code"] == 26
    assert {f["subject"] for f in _faces(service_url, "compat-c")} == {"seed-compat-c"}


@pytest.mark.parametrize(
    "headers,status",
    [
        ({}, 401),
        ({"x-api-key": "not-a-key"}, 401),
        ({"x-api-key": KEYS["admin"]}, 403),  # a key for every directory names no collection
        ({"x-api-key": KEYS["compat-c-reader"]}, 403),  # read-only key writing
    ],
)
def test_keys_on_compreface_writes(service_url, seeded, faces_dir, headers, status):
    answer = httpx.post(
        f"{service_url}/api/v1/recognition/faces",
        params={"subject": "intruder"},
        headers=headers,
        files={"file": (faces_dir / ENROLLED).read_bytes()},
    )
    assert answer.status_code == status and isinstance(answer.json()["code"], int)
    assert {f["subject"] for f in _faces(service_url, "compat-c")} == {"seed-compat-c"}


def test_reader_key_reads(service_url, seeded):
    answer = httpx.get(f"{service_url}/api/v1/recognition/subjects", headers={"x-api-key": KEYS["compat-c-reader"]})
    assert answer.json() == {"subjects": ["seed-compat-c"]}


def test_a_key_cannot_reach_another_directory(service_url, seeded, faces_dir):
    c = {"x-api-key": KEYS["compat-c"]}
    base = f"{service_url}/api/v1/recognition"
    foreign = seeded["compat-d"]
    assert httpx.delete(f"{base}/faces/{foreign}", headers=c).status_code == 404
    verify = httpx.post(
        f"{base}/faces/{foreign}/verify", headers=c, files={"file": (faces_dir / ENROLLED).read_bytes()}
    )
    assert verify.status_code == 404
    assert httpx.get(f"{base}/subjects", headers=c).json() == {"subjects": ["seed-compat-c"]}
    assert httpx.delete(f"{base}/faces", params={"subject": "seed-compat-d"}, headers=c).json() == {"deleted": 0}
    ds = httpx.post(
        f"{service_url}/v1/vision/face/delete", data={"userid": "seed-compat-d", "api_key": KEYS["compat-c"]}
    )
    assert ds.json()["success"] is True
    assert [f["image_id"] for f in _faces(service_url, "compat-d")] == [foreign]


def test_shared_middleware_answers_in_the_compat_shapes(service_url):
    c = {"x-api-key": KEYS["compat-c"]}
    form = httpx.post(f"{service_url}/api/v1/recognition/recognize", headers=c, data={"file": "x"})
    assert form.status_code == 415 and form.json()["faceserve_code"] == "unsupported_media_type"
    origin = httpx.post(
        f"{service_url}/v1/vision/face/list", headers={**c, "Origin": "https://evil.example"}, data={"a": "b"}
    )
    assert origin.status_code == 403 and origin.json()["success"] is False
    # a declared body over the limit is refused before it is read (a raw request: httpx will not lie about length)
    host, port = service_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /api/v1/detection/detect HTTP/1.1\r\nHost: {host}\r\nx-api-key: {KEYS['compat-c']}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {10**10}\r\n\r\n".encode()
        )
        answer = b""
        while not answer.endswith(b"}") and (chunk := sock.recv(65536)):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and json.loads(body)["faceserve_code"] == "request_too_large"


def test_base64_json_recognition(service_url, seeded, faces_dir):
    image = base64.b64encode((faces_dir / ENROLLED).read_bytes()).decode()
    answer = httpx.post(
        f"{service_url}/api/v1/recognition/recognize", headers={"x-api-key": KEYS["compat-c"]}, json={"file": image}
    )
    assert answer.json()["result"][0]["subjects"][0] == {"subject": "seed-compat-c", "similarity": 1.0}


def test_compat_routes_are_documented(service_url):
    paths = httpx.get(f"{service_url}/docs.json").json()["paths"]
    assert paths["/api/v1/recognition/recognize"]["post"]["tags"] == ["CompreFace compatible"]
    assert paths["/v1/vision/face/recognize"]["post"]["tags"] == ["DeepStack compatible"]
    assert httpx.get(f"{service_url}/readyz").status_code == 200


def test_directory_of_a_key():
    assert directory_of(["office"], "k") == "office"
    assert directory_of(None, "my-collection") == "my-collection"
    assert directory_of(None, None) == "default"
    for scope in (["a", "b"], ["*"]):
        with pytest.raises(ApiError) as refused:
            directory_of(scope, "k")
        assert refused.value.status == 403 and refused.value.code == "key_not_single_directory"


def test_reported_similarity_separates_named_from_unnamed():
    assert reported_similarity(0.004, 0.7, True) == 0.996
    assert reported_similarity(0.004, 0.7, False) == 0.498
    assert reported_similarity(0.3, 0.5, False) == 0.35
    assert reported_similarity(None, 0.6, True) == 0.8 and reported_similarity(None, 0.6, False) == 0.3
    assert reported_similarity(None, -0.2, False) == 0.0
