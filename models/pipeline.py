"""Detect → align → embed, written once for the service and for the scripts.

The pipeline is given the detector and embedder as async callables: the
service passes its batched BentoML calls, so concurrent requests share model
batches; scripts pass the bare models (`FacePipeline.in_process`), so
evaluation and benchmarks measure exactly what the service computes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import numpy as np

from models.faces import DetectedFace, Detection
from models.imaging import DecodedImage
from models.quality import Quality, measure_all
from models.registry import ModelEntry

if TYPE_CHECKING:
    from models.detector import FaceDetector
    from models.embedders import Embedder

DetectFn = Callable[[list[np.ndarray]], Awaitable[list[Detection]]]
EmbedFn = Callable[[np.ndarray], Awaitable[np.ndarray]]


class AnalysisFailed(Exception):
    """A model failed on this image alone (the others in its batch were answered); `code` is public API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Analysis:
    """One image's faces in the pixels of the image as sent, largest first, and their vectors (zeros if not asked)."""

    faces: list[DetectedFace]
    vectors: np.ndarray
    qualities: list[Quality] | None = None
    """Each face's quality when asked for, measured in the decoded pixels the model saw (models/quality)."""


class FacePipeline:
    def __init__(self, detect: DetectFn, embed: EmbedFn, model: ModelEntry) -> None:
        self._detect = detect
        self._embed = embed
        self.model = model

    @classmethod
    def in_process(cls, detector: FaceDetector, embedder: Embedder) -> FacePipeline:
        """The pipeline over bare models in this process, for scripts."""

        async def detect(images: list[np.ndarray]) -> list[Detection]:
            return detector.detect(images)

        async def embed(chips: np.ndarray) -> np.ndarray:
            return embedder.embed(chips)

        return cls(detect, embed, embedder.entry)

    async def analyse(
        self,
        image: DecodedImage,
        *,
        max_faces: int | None = None,
        min_confidence: float | None = None,
        embed: bool = True,
        quality: bool = False,
    ) -> Analysis:
        """The faces of one image (at least `min_confidence`, the largest `max_faces`), if `embed` their vectors,
        and if `quality` their measured quality (which needs the chips, so it costs the cut even without `embed`).

        Raises AnalysisFailed when the detector or the embedder failed on this image.
        """
        found = (await self._detect([image.pixels]))[0]
        if found is None:
            raise AnalysisFailed("detection_failed", "face detection failed on this image.")
        if min_confidence is not None:
            found = [f for f in found if f.score >= min_confidence]
        found = found[:max_faces]
        faces = [f.scaled(image.scale, image.width, image.height) for f in found]
        no_vectors = np.zeros((len(faces), self.model.dim), dtype=np.float32)
        if not found or not (embed or quality):
            return Analysis(faces, no_vectors, [] if quality else None)
        # alignment works on the decoded (possibly reduced) pixels, in their coordinates
        chips = await anyio.to_thread.run_sync(self.model.cut, image.pixels, found, self.model.geometry)
        height, width = image.pixels.shape[:2]
        qualities = measure_all(found, chips, width, height) if quality else None
        if not embed:
            return Analysis(faces, no_vectors, qualities)
        vectors = await self._embed(chips)
        if not np.isfinite(vectors).all():
            raise AnalysisFailed("embedding_failed", "face embedding failed on this image.")
        return Analysis(faces, vectors, qualities)

    def run(self, image: DecodedImage, max_faces: int | None = None, quality: bool = False) -> Analysis:
        """`analyse` for synchronous callers (scripts)."""
        return asyncio.run(self.analyse(image, max_faces=max_faces, quality=quality))
