"""MTCNN detection on the real photos in ../shared/faces."""

from __future__ import annotations

import numpy as np
import pytest

from models.detector import DetectorConfig, FaceDetector
from models.imaging import decode_image
from scripts.faces_data import FACES_DIR, manifest, single_face_photos

pytestmark = pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"shared photos not found at {FACES_DIR}")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def load(path) -> np.ndarray:
    return decode_image(path.read_bytes()).pixels


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_one_face_on_every_single_portrait(detector):
    photos = single_face_photos()
    assert len(photos) >= 50
    counts = {p.name: len(detector.detect([load(p)])[0]) for p in photos}
    wrong = {name: n for name, n in counts.items() if n != 1}
    assert not wrong, f"expected exactly one face: {wrong}"


def test_bald_guys_at_least_20_of_24(detector):
    faces = detector.detect([load(FACES_DIR / "dlib/examples/faces/bald_guys.jpg")])[0]
    assert 20 <= len(faces) <= 24


@pytest.mark.parametrize(
    "photo", [p for p in manifest() if p.faces_expected == 0 and p.path.suffix != ".gif"], ids=lambda p: p.path.name
)
def test_no_face_on_negatives(detector, photo):
    assert detector.detect([load(photo.path)])[0] == []


def test_result_shape_and_order(detector):
    faces = detector.detect([load(FACES_DIR / "facenet-pytorch/data/multiface.jpg")])[0]
    assert len(faces) == 6
    assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= 1200 and 0 <= y1 < y2 <= 630
        assert 0.9 <= face.score <= 1.0
        assert len(face.landmarks) == 5
        left_eye, right_eye = face.landmarks[0], face.landmarks[1]
        assert left_eye[0] < right_eye[0]
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)


def test_downscaled_detection_maps_back_to_original_pixels():
    """A 1665×2048 photo detected at 640 px must give boxes in full-resolution pixels."""
    image = load(FACES_DIR / "facenet-pytorch/data/test_images/angelina_jolie/1.jpg")
    full = FaceDetector(DetectorConfig(max_side=4096)).detect([image])[0]
    small = FaceDetector(DetectorConfig(max_side=640)).detect([image])[0]
    assert len(full) == len(small) == 1
    assert iou(full[0].box, small[0].box) > 0.85
    face_width = full[0].box[2] - full[0].box[0]
    offsets = np.abs(full[0].landmark_array - small[0].landmark_array).max()
    assert offsets < 0.05 * face_width
    assert small[0].box[2] > 640  # genuinely in original pixels, not detection pixels


def test_batch_of_different_sizes_matches_single_calls(detector):
    paths = [
        FACES_DIR / "facenet-pytorch/data/multiface.jpg",
        FACES_DIR / "face_recognition/tests/test_images/obama.jpg",
        FACES_DIR / "synthetic/black_224x224.png",
    ]
    images = [load(p) for p in paths]
    batched = detector.detect(images)
    single = [detector.detect([img])[0] for img in images]
    assert [len(f) for f in batched] == [len(f) for f in single] == [6, 1, 0]
    for faces_b, faces_s in zip(batched, single, strict=False):
        for s in faces_s:
            assert max(iou(b.box, s.box) for b in faces_b) > 0.8


def test_empty_batch(detector):
    assert detector.detect([]) == []


def test_thin_images_have_no_faces_and_do_not_fail_their_batch(detector):
    """A 16×65500 strip leaves MTCNN an empty pyramid (it raised torch.cat on an empty list): no faces, and the
    real photo batched with it keeps its own."""
    strip = np.full((16, 65500, 3), 128, dtype=np.uint8)
    photo = load(FACES_DIR / "facenet-pytorch/data/multiface.jpg")
    found = detector.detect([strip, photo, strip.transpose(1, 0, 2).copy()])
    assert found[0] == [] and found[2] == []
    assert len(found[1]) == 6


def test_an_image_the_model_fails_on_fails_alone(detector):
    """A four-channel array makes MTCNN raise; only its slot is marked failed."""
    photo = load(FACES_DIR / "face_recognition/tests/test_images/obama.jpg")
    bad = np.zeros((200, 200, 4), dtype=np.uint8)
    found = detector.detect([photo, bad, photo])
    assert found[1] is None
    assert len(found[0]) == len(found[2]) == 1
