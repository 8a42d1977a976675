"""The bare pipeline over photo files, for calibration and evaluation scripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.detector import FaceDetector
from models.embedders import load_embedder
from models.imaging import ImageError, ImageLimits, decode_image
from models.pipeline import AnalysisFailed, FacePipeline


def embed_largest(model_id: str, paths: list[Path]) -> list[np.ndarray | None]:
    """The unit vector of each photo's largest face, decoded as the service decodes; None where no face was
    found or the file is not an image the service accepts."""
    detector = FaceDetector()
    pipeline = FacePipeline.in_process(detector, load_embedder(model_id))
    limits = ImageLimits(reduce_to=2 * detector.config.max_side)
    out: list[np.ndarray | None] = []
    for path in paths:
        try:
            found = pipeline.run(decode_image(path.read_bytes(), limits), max_faces=1)
        except (ImageError, AnalysisFailed):
            out.append(None)
            continue
        out.append(found.vectors[0] if found.faces else None)
    return out
