"""One tenant's pathological image must not fail the other requests batched with it, over real HTTP.

A 16×65500 JPEG (17 KB) made MTCNN raise inside the Detector service, and
every request sharing its adaptive batch answered 500.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image
from server import auth

from scripts.faces_data import FACES_DIR

PHOTOS = {
    FACES_DIR / "facenet-pytorch/data/multiface.jpg": 6,
    FACES_DIR / "face_recognition/tests/test_images/obama.jpg": 1,
    FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg": 3,  # MTCNN also finds a third
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def strip_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (65500, 16), (128, 128, 128)).save(buf, "JPEG")
    return buf.getvalue()


def strip_png(width: int = 2_400_000, height: int = 16) -> bytes:
    """A real greyscale PNG of width×height pixels (38.4 MP, under the 40 MP limit), all grey."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" + b"\x80" * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def test_a_thin_strip_batched_with_real_photos_fails_nobody(service_url):
    bad = b64(strip_jpeg())
    real = [(b64(path.read_bytes()), faces) for path, faces in PHOTOS.items()]
    # several rounds of one strip sent at the same moment as the photos, so they share detector batches
    bodies = [(bad, 0)] + real
    with (
        httpx.Client(base_url=service_url, headers=auth("reader-a"), timeout=120) as http,
        ThreadPoolExecutor(len(bodies)) as pool,
    ):
        for _ in range(3):
            responses = list(pool.map(lambda body: http.post("/detect", json={"image": body[0]}), bodies))
            for response, (_, faces) in zip(responses, bodies, strict=True):
                assert response.status_code == 200, response.text
                assert len(response.json()["faces"]) == faces
            assert responses[0].json()["image"] == {"width": 65500, "height": 16}


def test_a_16_by_2400000_png_is_an_image_without_faces(service_url):
    image = b64(strip_png())
    with httpx.Client(base_url=service_url, headers=auth(), timeout=120) as http:
        detected = http.post("/detect", json={"image": image})
        assert detected.status_code == 200, detected.text
        assert detected.json()["faces"] == [] and detected.json()["image"] == {"width": 2_400_000, "height": 16}
        enrolled = http.post("/enroll", json={"image": image, "directory": "strips", "person_id": "p"})
        assert enrolled.status_code == 422 and enrolled.json()["error"]["code"] == "no_face"
        assert http.post("/persons/get", json={"directory": "strips", "person_id": "p"}).status_code == 404
        obama = FACES_DIR / "face_recognition/tests/test_images/obama.jpg"
        assert len(http.post("/detect", json={"image": b64(obama.read_bytes())}).json()["faces"]) == 1
