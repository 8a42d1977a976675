"""The bare pipeline over photo files, for calibration and evaluation scripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models import store
from models.detector import DetectorConfig, FaceDetector
from models.embedders import load_embedder
from models.imaging import ImageError, decode_image
from models.pipeline import FacePipeline


def embed_largest(model_id: str, paths: list[Path]) -> list[np.ndarray | None]:
    """The unit vector of each photo's largest face; None where no face was found or the file is not an image."""
    detector = FaceDetector(DetectorConfig(), weights=store.weights_path(store.MTCNN))
    pipeline = FacePipeline(detector, load_embedder(model_id))
    out: list[np.ndarray | None] = []
    for path in paths:
        try:
            found = pipeline.run([decode_image(path.read_bytes())], max_faces=1)[0]
        except ImageError:
            found = []
        out.append(found[0].vector if found else None)
    return out
