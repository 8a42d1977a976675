"""Every kind of bad input over real HTTP: a 4xx JSON error with a stable code, the server stays up, and
nothing stored changes. Odd-but-valid images must work instead."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image
from server import auth

from scripts.faces_data import FACES_DIR

OBAMA = FACES_DIR / "face_recognition/tests/test_images/obama.jpg"
GUARD = "guard"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(OBAMA).convert("RGB")


@pytest.fixture(scope="module")
def guarded(service_url):
    """A person stored before the bad requests; checked unchanged after each."""
    response = httpx.post(
        f"{service_url}/enroll",
        json={"image": b64(OBAMA.read_bytes()), "directory": GUARD, "person_id": "obama", "name": "Obama"},
        headers=auth(),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return httpx.post(
        f"{service_url}/persons/get", json={"directory": GUARD, "person_id": "obama"}, headers=auth()
    ).json()


def assert_unharmed(service_url: str, guarded: dict) -> None:
    assert httpx.get(f"{service_url}/readyz", timeout=30).status_code == 200
    after = httpx.post(f"{service_url}/persons/get", json={"directory": GUARD, "person_id": "obama"}, headers=auth())
    assert after.json() == guarded
    listing = httpx.post(f"{service_url}/persons/list", json={"directory": GUARD}, headers=auth()).json()
    assert [p["person_id"] for p in listing["persons"]] == ["obama"]


def enroll_body(image: str, **overrides) -> dict:
    return {"image": image, "directory": GUARD, "person_id": "obama", **overrides}


def bad_requests(photo: Image.Image) -> dict[str, tuple[str, dict, int, str]]:
    """name → (endpoint, json body, status, error code)."""
    good = b64(encode(photo, "JPEG"))
    return {
        "truncated_jpeg": ("enroll", enroll_body(b64(encode(photo, "JPEG")[:4000])), 400, "corrupt_image"),
        "corrupt_png": ("enroll", enroll_body(b64(encode(photo, "PNG")[:300] + b"\0" * 300)), 400, "corrupt_image"),
        "png_bomb_30000": ("enroll", enroll_body(b64(png_bomb(30000, 30000))), 413, "image_too_many_pixels"),
        "too_many_pixels": (
            "detect",
            {"image": b64(encode(Image.new("RGB", (8000, 6000)), "JPEG"))},
            413,
            "image_too_many_pixels",
        ),
        "text_not_image": ("enroll", enroll_body(b64(b"just some text, not a picture" * 20)), 415, "invalid_image"),
        "gif": ("enroll", enroll_body(b64(encode(photo, "GIF"))), 415, "unsupported_format"),
        "animated_gif": (
            "detect",
            {"image": b64(encode(photo, "GIF", save_all=True, append_images=[photo]))},
            415,
            "unsupported_format",
        ),
        "empty_image": ("enroll", enroll_body(""), 400, "empty_image"),
        "malformed_base64": ("enroll", enroll_body("abc$%^"), 400, "invalid_base64"),
        "missing_image": ("enroll", {"directory": GUARD, "person_id": "obama"}, 400, "invalid_request"),
        "empty_directory": ("enroll", enroll_body(good, directory=""), 400, "invalid_directory"),
        "long_directory": ("enroll", enroll_body(good, directory="d" * 200), 400, "invalid_directory"),
        "control_directory": ("recognize", {"image": good, "directory": "a\x07b"}, 400, "invalid_directory"),
        "empty_person_id": ("enroll", enroll_body(good, person_id=""), 400, "invalid_person_id"),
        "control_person_id": ("enroll", enroll_body(good, person_id="ob\nama"), 400, "invalid_person_id"),
        "long_person_id": ("persons/delete", {"directory": GUARD, "person_id": "p" * 500}, 400, "invalid_person_id"),
        "long_name": ("enroll", enroll_body(good, name="n" * 300), 400, "invalid_name"),
        "control_name": ("enroll", enroll_body(good, name="a\x00b"), 400, "invalid_name"),
        "oversize_metadata": ("enroll", enroll_body(good, metadata={"blob": "x" * 5000}), 400, "metadata_too_large"),
        "metadata_not_object": ("enroll", enroll_body(good, metadata=[1, 2]), 400, "invalid_metadata"),
        "bad_threshold": ("recognize", {"image": good, "directory": GUARD, "threshold": 7}, 400, "invalid_parameter"),
        "bad_top_k": ("recognize", {"image": good, "directory": GUARD, "top_k": 0}, 400, "invalid_parameter"),
        "no_face_enrol": (
            "enroll",
            enroll_body(b64((FACES_DIR / "synthetic/black_224x224.png").read_bytes())),
            422,
            "no_face",
        ),
        "unknown_person": ("persons/get", {"directory": GUARD, "person_id": "nobody"}, 404, "not_found"),
        "empty_batch": ("enroll_batch", {"items": []}, 400, "invalid_batch"),
    }


CASES = sorted(bad_requests(Image.new("RGB", (64, 64))))


@pytest.mark.parametrize("case", CASES)
def test_bad_json_requests(service_url, guarded, photo, case):
    endpoint, body, status, code = bad_requests(photo)[case]
    response = httpx.post(f"{service_url}/{endpoint}", json=body, headers=auth(), timeout=120)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert_unharmed(service_url, guarded)


RAW = {
    "malformed_json": (b'{"image": ', "application/json", 400, "invalid_request"),
    "empty_body": (b"", "application/json", 400, "invalid_request"),
    "text_body": (b"hello", "text/plain", 415, "unsupported_media_type"),
    "form_encoded": (
        b"directory=guard&person_id=obama",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    "form_encoded_deep_metadata": (
        b"directory=guard&metadata=" + b"%5B" * 100_000,
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    "pickle": (b"\x80\x04K\x01.", "application/vnd.bentoml+pickle", 415, "unsupported_media_type"),
    "deeply_nested_json": (b"[" * 100_000, "application/json", 400, "invalid_request"),
    "broken_multipart": (
        b"--x\r\nContent-Disposition: form-data\r\n\r\n",
        "multipart/form-data; boundary=x",
        400,
        "invalid_multipart",
    ),
}


@pytest.mark.parametrize("case", sorted(RAW))
def test_bad_bodies(service_url, guarded, case):
    body, content_type, status, code = RAW[case]
    headers = {**auth(), "content-type": content_type}
    response = httpx.post(f"{service_url}/enroll", content=body, headers=headers, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert_unharmed(service_url, guarded)


def test_deeply_nested_multipart_metadata_is_400(service_url, guarded):
    files = {"image": ("obama.jpg", OBAMA.read_bytes(), "image/jpeg")}
    data = {"directory": GUARD, "person_id": "obama", "metadata": "[" * 100_000}
    response = httpx.post(f"{service_url}/enroll", files=files, data=data, headers=auth(), timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_metadata"), response.text
    assert_unharmed(service_url, guarded)


def test_multipart_text_fields_are_strings_unless_declared_json(service_url):
    """`person_id=[bob]` is an id; only metadata (and items, faces) are parsed as JSON."""
    files = {"image": ("obama.jpg", OBAMA.read_bytes(), "image/jpeg")}
    data = {"directory": "brackets", "person_id": "[bob]", "name": "{not json", "metadata": '{"team": ["a"]}'}
    response = httpx.post(f"{service_url}/enroll", files=files, data=data, headers=auth(), timeout=120)
    assert response.status_code == 200, response.text
    person = httpx.post(
        f"{service_url}/persons/get", json={"directory": "brackets", "person_id": "[bob]"}, headers=auth()
    ).json()
    assert (person["person_id"], person["name"], person["metadata"]) == ("[bob]", "{not json", {"team": ["a"]})


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_foreign_origins_are_refused(service_url, guarded, origin):
    """A web page elsewhere must not reach the API through a visitor's browser, even with a key in hand."""
    response = httpx.post(
        f"{service_url}/directories/delete", json={"directory": GUARD}, headers={**auth(), "Origin": origin}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden_origin"), response.text
    assert_unharmed(service_url, guarded)


def test_own_origin_and_bodiless_posts_are_served(service_url):
    assert httpx.post(f"{service_url}/info", json={}, headers={"Origin": service_url}).status_code == 200
    assert httpx.post(f"{service_url}/info").status_code == 200  # curl -X POST .../info: no body, no type


def test_body_over_the_request_limit_is_413(service_url, guarded):
    body = b'{"image": "' + b"A" * (26 * 1024 * 1024) + b'"}'
    response = httpx.post(
        f"{service_url}/detect", content=body, headers={**auth(), "content-type": "application/json"}, timeout=120
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert_unharmed(service_url, guarded)


def test_chunked_body_over_the_request_limit_is_413(service_url, guarded):
    """No Content-Length to refuse up front: the limit is enforced while the body streams in."""

    def chunks():
        yield b'{"image": "'
        for _ in range(27):
            yield b"A" * (1024 * 1024)
        yield b'"}'

    response = httpx.post(
        f"{service_url}/detect", content=chunks(), headers={**auth(), "content-type": "application/json"}, timeout=120
    )
    assert "content-length" not in response.request.headers
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert_unharmed(service_url, guarded)


def test_non_image_upload_with_image_content_type(service_url, guarded):
    files = {"image": ("photo.jpg", b"<html>not a jpeg</html>", "image/jpeg")}
    response = httpx.post(f"{service_url}/detect", files=files, headers=auth(), timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (415, "invalid_image")
    assert_unharmed(service_url, guarded)


def test_url_in_a_form_field_is_not_fetched(service_url, guarded):
    """BentoML would download a URL given for a file field; our multipart handling never does.

    Fetched, the URL would be a JSON document decoded as an image (415 invalid_image); kept as the text it is, it
    is not base64.
    """
    response = httpx.post(
        f"{service_url}/detect", files={"image": (None, f"{service_url}/docs.json")}, headers=auth(), timeout=60
    )
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_base64"), response.text
    assert_unharmed(service_url, guarded)


def odd_but_valid(photo: Image.Image) -> dict[str, bytes]:
    exif = Image.Exif()
    exif[0x0112] = 8
    sixteen = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    return {
        "cmyk_jpeg": encode(photo.convert("CMYK"), "JPEG"),
        "png_16bit": encode(sixteen, "PNG"),
        "rgba_png": encode(photo.convert("RGBA"), "PNG"),
        "palette_png": encode(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "greyscale": encode(photo.convert("L"), "JPEG"),
        "exif_rotated": encode(photo.transpose(Image.Transpose.ROTATE_270), "JPEG", exif=exif.tobytes()),
        "animated_webp_first_frame": encode(photo, "WEBP", save_all=True, append_images=[photo.rotate(90)]),
    }


@pytest.mark.parametrize("case", sorted(odd_but_valid(Image.new("RGB", (8, 8)))))
def test_odd_formats_recognise(service_url, guarded, photo, case):
    data = odd_but_valid(photo)[case]
    result = httpx.post(
        f"{service_url}/recognize", json={"image": b64(data), "directory": GUARD}, headers=auth(), timeout=120
    )
    assert result.status_code == 200, result.text
    faces = result.json()["faces"]
    assert faces and faces[0]["match"] and faces[0]["match"]["person_id"] == "obama"


def test_many_faces_are_capped(service_url):
    """A 12×10 grid of faces: max_faces caps what is returned (and processed)."""
    face = Image.open(FACES_DIR / "face_recognition/examples/knn_examples/train/biden/biden.jpg").convert("RGB")
    face = face.resize((100, int(100 * face.height / face.width)))
    grid = Image.new("RGB", (face.width * 12, face.height * 10))
    for i in range(120):
        grid.paste(face, ((i % 12) * face.width, (i // 12) * face.height))
    body = {"image": b64(encode(grid, "JPEG")), "max_faces": 5}
    detected = httpx.post(f"{service_url}/detect", json=body, headers=auth(), timeout=300)
    assert detected.status_code == 200 and len(detected.json()["faces"]) == 5
    body = {"image": b64(encode(grid, "JPEG"))}
    capped = httpx.post(f"{service_url}/detect", json=body, headers=auth(), timeout=300).json()["faces"]
    assert len(capped) == 100


def test_zero_faces_and_tiny_images(service_url):
    black = b64((FACES_DIR / "synthetic/black_224x224.png").read_bytes())
    assert httpx.post(f"{service_url}/detect", json={"image": black}, headers=auth()).json()["faces"] == []
    assert (
        httpx.post(f"{service_url}/recognize", json={"image": black, "directory": GUARD}, headers=auth()).json()[
            "faces"
        ]
        == []
    )
    tiny = b64(encode(Image.open(OBAMA).convert("RGB").resize((30, 37)), "PNG"))
    response = httpx.post(f"{service_url}/detect", json={"image": tiny}, headers=auth())
    assert response.status_code == 200 and response.json()["faces"] == []
    speck = b64(encode(Image.new("RGB", (8, 8)), "PNG"))
    response = httpx.post(f"{service_url}/detect", json={"image": speck}, headers=auth())
    assert (response.status_code, response.json()["error"]["code"]) == (400, "image_too_small")
