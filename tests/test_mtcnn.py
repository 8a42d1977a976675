"""Our batched MTCNN (models/mtcnn) against facenet-pytorch's `MTCNN.detect`, the reference, on every photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN

from models.detector import DetectorConfig, FaceDetector
from models.imaging import ImageError, decode_image
from models.mtcnn import Found
from scripts.faces_data import FACES2_DIR, FACES_DIR

pytestmark = pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"shared photos not found at {FACES_DIR}")

# Measured worst difference over all 387 photos of ../shared/faces*: 0.00018 px (float rounding: the reference
# sums each area bin in float32, we sum exactly in integers). 0.01 px leaves room for other CPUs' kernels.
PIXELS = 0.01
SCORE = 1e-4


def photos() -> list[np.ndarray]:
    """Every decodable photo of ../shared/faces*, downscaled as the detector downscales before MTCNN."""
    detector = FaceDetector()
    images = []
    for folder in (FACES_DIR, FACES2_DIR):
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}:
                continue
            try:
                pixels = decode_image(path.read_bytes()).pixels
            except ImageError:  # the folders hold deliberately undecodable files too
                continue
            small = detector._resized(pixels, detector._scale_for(pixels))
            if min(small.shape[:2]) >= 20:
                images.append(small)
    return images


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return photos()


@pytest.fixture(scope="module")
def ours() -> FaceDetector:
    """As the service runs it: two workers with single-threaded kernels."""
    return FaceDetector(DetectorConfig(workers=2))


def reference(images: list[np.ndarray]) -> list[Found]:
    mtcnn = MTCNN(min_face_size=20, keep_all=True).eval()
    found = []
    with torch.inference_mode():
        for image in images:
            boxes, scores, points = mtcnn.detect(image, landmarks=True)
            if boxes is None:
                found.append(Found(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))))
            else:
                found.append(Found(boxes, scores, points))
    return found


def by_area(found: Found) -> Found:
    order = np.argsort(-(found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1]))
    return Found(found.boxes[order], found.scores[order], found.landmarks[order])


def assert_same(expected: list[Found], got: list[Found]) -> None:
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        want, have = by_area(want), by_area(have)
        assert len(want.boxes) == len(have.boxes), f"photo {index}: {len(want.boxes)} vs {len(have.boxes)} faces"
        if len(want.boxes):
            assert np.abs(want.boxes - have.boxes).max() <= PIXELS, f"photo {index}"
            assert np.abs(want.landmarks - have.landmarks).max() <= PIXELS, f"photo {index}"
            assert np.abs(want.scores - have.scores).max() <= SCORE, f"photo {index}"


def test_same_faces_as_facenet_pytorch_on_every_photo(images, ours):
    assert len(images) >= 380
    found = [ours.mtcnn.detect([image])[0] for image in images]
    assert sum(len(f.boxes) for f in found) > 600
    assert_same(reference(images), found)


def test_a_batch_of_mixed_sizes_finds_what_each_photo_alone_finds(images, ours):
    """Batches of 8 photos of different sizes (as adaptive batching forms them) against one call per photo, by a
    detector without workers: levels and chunks split over threads change nothing either."""
    sample = images[::5]
    alone = [FaceDetector().mtcnn.detect([image])[0] for image in sample]
    batched = [found for start in range(0, len(sample), 8) for found in ours.mtcnn.detect(sample[start : start + 8])]
    assert_same(alone, batched)


def test_same_shape_photos_share_pyramid_batches(ours):
    """Photos of one shape run P-Net as one batch: the same answers as alone, and each keeps its own faces."""
    obama = decode_image((FACES_DIR / "face_recognition/tests/test_images/obama.jpg").read_bytes()).pixels
    black = np.zeros_like(obama)
    trio = [obama, black, np.ascontiguousarray(obama[:, ::-1])]
    found = ours.mtcnn.detect(trio)
    assert len(found[0].boxes) >= 1 and len(found[1].boxes) == 0
    assert_same([ours.mtcnn.detect([image])[0] for image in trio], found)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_batch_matches_cpu(images):
    sample = images[::10]
    cpu = [FaceDetector().mtcnn.detect([image])[0] for image in sample]
    gpu = FaceDetector(DetectorConfig(device="cuda")).mtcnn.detect(sample)
    # different convolution kernels: boxes agree to a pixel, not to float rounding
    for want, have in zip(cpu, gpu, strict=True):
        want, have = by_area(want), by_area(have)
        assert len(want.boxes) == len(have.boxes)
        if len(want.boxes):
            assert np.abs(want.boxes - have.boxes).max() <= 1.0
