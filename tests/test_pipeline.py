"""The one detect → align → embed pipeline, over the bare models, on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from models.detector import FaceDetector
from models.embedders import load_embedder
from models.imaging import DecodedImage, ImageLimits, decode_image
from models.pipeline import AnalysisFailed, FacePipeline
from scripts.faces_data import FACES_DIR

FACES2 = FACES_DIR.with_name("faces2")
# The largest photos shared (3880×5184 to 4912×7360): the service decodes them at half size.
LARGE = [FACES2 / f"CompreFace/embedding-calculator/sample_images/00{i}_A.jpg" for i in (1, 2, 3, 5, 6)]


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline.in_process(FaceDetector(), load_embedder("dlib-resnet"))


@pytest.mark.skipif(not FACES2.is_dir(), reason=f"shared photos not found at {FACES2}")
def test_reduced_decoding_keeps_boxes_in_original_pixels_and_vectors(pipeline):
    """Decoding at twice the detection side (as the service does) against full size: same face, same place
    in the photo as sent, and a vector whose similarity to the full-size one is above 0.995 (measured: 0.9987)."""
    limits = ImageLimits(reduce_to=2 * 1280)
    for path in LARGE:
        data = path.read_bytes()
        full = pipeline.run(decode_image(data))
        reduced_image = decode_image(data, limits)
        reduced = pipeline.run(reduced_image)
        assert reduced_image.scale == 2, path
        assert len(full.faces) == len(reduced.faces) == 1, path
        a, b = full.faces[0], reduced.faces[0]
        width = a.box[2] - a.box[0]
        assert np.abs(np.subtract(a.box, b.box)).max() < 0.03 * width, path
        assert np.abs(a.landmark_array - b.landmark_array).max() < 0.03 * width, path
        assert float(full.vectors[0] @ reduced.vectors[0]) > 0.995, path


def test_a_detector_failure_is_this_images_error(pipeline):
    """A four-channel array makes MTCNN raise; the pipeline reports detection_failed for this image."""
    with pytest.raises(AnalysisFailed) as info:
        pipeline.run(DecodedImage(np.zeros((100, 100, 4), dtype=np.uint8), 100, 100))
    assert info.value.code == "detection_failed"


def test_max_faces_and_vectors(pipeline):
    image = decode_image((FACES_DIR / "facenet-pytorch/data/multiface.jpg").read_bytes())
    every = pipeline.run(image)
    two = pipeline.run(image, max_faces=2)
    assert len(every.faces) == 6 and every.vectors.shape == (6, 128)
    assert two.faces == every.faces[:2]
    assert np.allclose(np.linalg.norm(every.vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(two.vectors, every.vectors[:2], atol=1e-5)
