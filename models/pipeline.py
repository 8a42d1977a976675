"""Detect → align → embed in one process: the bare pipeline.

The service splits these steps across batched BentoML APIs; this in-process
form is what evaluation, benchmarks and bulk tools use, and the yardstick the
served numbers are compared against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.alignment import align_many
from models.detector import FaceDetector
from models.embedders import Embedder
from models.faces import DetectedFace


@dataclass(frozen=True)
class EmbeddedFace:
    face: DetectedFace
    vector: np.ndarray


class FacePipeline:
    def __init__(self, detector: FaceDetector, embedder: Embedder) -> None:
        self.detector = detector
        self.embedder = embedder

    def run(self, images: list[np.ndarray], max_faces: int | None = None) -> list[list[EmbeddedFace]]:
        """Every face of every image with its vector; one detector and one embedder call for the batch."""
        if not images:
            return []
        detections = [faces[:max_faces] for faces in self.detector.detect(images)]
        geometry = self.embedder.spec.geometry
        chips = [
            align_many(image, [f.landmark_array for f in faces], geometry) for image, faces in zip(images, detections)
        ]
        vectors = self.embedder.embed(np.concatenate(chips))
        out, start = [], 0
        for faces in detections:
            out.append([EmbeddedFace(face, vectors[start + i]) for i, face in enumerate(faces)])
            start += len(faces)
        return out
