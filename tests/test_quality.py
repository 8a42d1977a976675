"""Face quality: the measures behave as their definitions say, and the gates refuse what they are for."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from models.detector import FaceDetector
from models.embedders import load_embedder
from models.faces import DetectedFace
from models.imaging import DecodedImage, ImageLimits, decode_image
from models.pipeline import FacePipeline
from models.quality import GATES, QUALITY_LEVELS, Quality, measure, pose, sharpness
from scripts.faces_data import FACES_DIR

# Where a frontal face's landmarks sit (dlib's chip template, roughly): eyes, nose tip, mouth corners.
FRONTAL = np.array([(46.0, 40.0), (102.0, 40.0), (74.0, 74.0), (46.0, 100.0), (102.0, 100.0)])
PHOTO = FACES_DIR / "dlib/examples/johns/John_Simm/000288_00470387.jpg"


def rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    centre = points.mean(axis=0)
    return (points - centre) @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) + centre


def test_pose_reads_roll_from_the_eyes_and_yaw_from_the_nose_whatever_the_roll():
    assert pose(FRONTAL) == pytest.approx((0.0, 0.0), abs=1e-9)
    for roll in (-30.0, 15.0, 50.0):
        yaw, measured_roll = pose(rotated(FRONTAL, roll))
        assert measured_roll == pytest.approx(roll) and yaw == pytest.approx(0.0, abs=1e-9)
    turned = FRONTAL.copy()
    turned[2, 0] += 28.0  # half the eye distance: tan(yaw) = 1
    for roll in (0.0, 25.0):
        yaw, _ = pose(rotated(turned, roll))
        assert yaw == pytest.approx(45.0)
    turned[2, 0] -= 56.0
    assert pose(turned)[0] == pytest.approx(-45.0)


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    if not PHOTO.is_file():
        pytest.skip(f"shared photos not found at {PHOTO}")
    return FacePipeline.in_process(FaceDetector(), load_embedder("dlib-resnet"))


@pytest.fixture(scope="module")
def chip(pipeline) -> np.ndarray:
    image = decode_image(PHOTO.read_bytes())
    face = pipeline.run(image, max_faces=1).faces[0]
    return pipeline.model.cut(image.pixels, [face], pipeline.model.geometry)[0]


def test_sharpness_ignores_chip_size_and_exposure_but_not_blur(chip):
    sharp = sharpness(chip)
    image = Image.fromarray(chip)
    assert sharpness(np.asarray(image.resize((160, 160), Image.BICUBIC))) == pytest.approx(sharp, rel=0.15)
    assert sharpness(np.asarray(image.resize((300, 300), Image.BICUBIC))) == pytest.approx(sharp, rel=0.15)
    dim = (chip.astype(np.float64) * 0.5).astype(np.uint8)
    assert sharpness(dim) == pytest.approx(sharp, rel=0.05)
    assert sharpness(np.asarray(image.filter(ImageFilter.GaussianBlur(3)))) < sharp / 3
    assert sharpness(np.zeros_like(chip)) == 0.0


def test_the_border_and_the_levels():
    face = DetectedFace((0.0, 10.0, 90.0, 110.0), 0.999, tuple(map(tuple, FRONTAL)))
    chip = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)
    q = measure(face, chip, 200, 200)
    assert q.box_at_border and q.cut_off and not q.landmarks_outside
    assert q.border_margin == pytest.approx(40.0 / 56.0, rel=1e-3)
    assert all(q.reasons(level) == () for level in QUALITY_LEVELS)
    outside = measure(face, chip, 101, 200)  # the right mouth corner and eye now lie beyond the image
    assert outside.landmarks_outside and outside.reasons("low") == ("cut_off",)
    assert GATES["none"] is None and outside.reasons("none") == ()
    with pytest.raises(ValueError):
        q.reasons("strict")


def test_a_quality_refuses_below_each_gate():
    ok = Quality(60.0, 0.25, 5.0, 2.0, 0.9999, False, 1.5)
    assert ok.reasons("high") == ()
    gates = GATES["medium"]
    worse = Quality(
        gates.min_interocular_px - 1,
        gates.min_sharpness / 2,
        -(gates.max_yaw_deg + 1),
        0.0,
        gates.min_detection_score - 0.01,
        True,
        -0.1,
    )
    assert worse.reasons("medium") == ("small_face", "blurry", "extreme_pose", "low_detection_score", "cut_off")


def degraded(image: DecodedImage, change) -> DecodedImage:
    pixels = np.asarray(change(Image.fromarray(image.pixels)))
    return DecodedImage(pixels, pixels.shape[1], pixels.shape[0])


def test_medium_refuses_a_blurred_and_a_tiny_copy_of_an_enrolable_face_for_the_right_reason(pipeline):
    """The acceptance the HTTP layer will be tested on, here on the pipeline it will call."""
    image = decode_image(PHOTO.read_bytes(), ImageLimits(reduce_to=2 * 1280))
    original = pipeline.run(image, max_faces=1, quality=True)
    (q,) = original.qualities
    assert q.reasons("medium") == ()
    width = original.faces[0].box[2] - original.faces[0].box[0]
    blurred = degraded(image, lambda im: im.filter(ImageFilter.GaussianBlur(0.04 * width)))
    (qb,) = pipeline.run(blurred, max_faces=1, quality=True).qualities
    assert "blurry" in qb.reasons("medium")
    factor = 30 / width
    small = degraded(image, lambda im: im.resize((round(im.width * factor), round(im.height * factor)), Image.LANCZOS))
    (qs,) = pipeline.run(small, max_faces=1, quality=True).qualities
    assert "small_face" in qs.reasons("medium")


def test_quality_without_vectors_costs_only_the_chips(pipeline):
    image = decode_image(PHOTO.read_bytes())
    both = pipeline.run(image, quality=True)
    only = asyncio.run(pipeline.analyse(image, embed=False, quality=True))
    assert only.qualities == both.qualities and not only.vectors.any()
    assert pipeline.run(image).qualities is None
