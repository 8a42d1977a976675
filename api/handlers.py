"""What each endpoint does, independent of how BentoML wires it.

`FaceApi` gets the detector and embedder as async callables (in the service
they are batched BentoML dependencies; in a script they can be the bare
models), so the request logic is written once and reads top to bottom:
decode → detect → align → embed → gallery. CPU work that is not batched
(decoding, alignment, gallery calls) runs in threads so the event loop keeps
accepting requests and feeding the batchers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import numpy as np

from api import schemas
from api.errors import ApiError, no_face
from api.inputs import image_bytes
from models.alignment import align_many
from models.detector import DetectedFace
from models.embedders import EmbedderSpec
from models.imaging import ImageError, ImageLimits, decode_image

DetectFn = Callable[[list[np.ndarray]], Awaitable[list[list[DetectedFace]]]]
EmbedFn = Callable[[np.ndarray], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray
    sha256: str

    @property
    def size(self) -> schemas.ImageSize:
        return schemas.ImageSize(width=self.pixels.shape[1], height=self.pixels.shape[0])


@dataclass(frozen=True)
class Analysed:
    """One image's faces (largest first, capped) and, when asked for, their vectors."""

    image: Decoded
    faces: list[DetectedFace]
    vectors: np.ndarray


class FaceApi:
    def __init__(
        self,
        detect: DetectFn,
        embed: EmbedFn,
        spec: EmbedderSpec,
        limits: ImageLimits,
        max_faces: int,
    ) -> None:
        self._detect = detect
        self._embed = embed
        self.spec = spec
        self.limits = limits
        self.max_faces = max_faces

    async def decode(self, value: str, field: str = "image") -> Decoded:
        data = image_bytes(value, field)
        try:
            pixels = await anyio.to_thread.run_sync(decode_image, data, self.limits)
        except ImageError as exc:
            raise ApiError.from_image_error(exc, field) from exc
        return Decoded(pixels, hashlib.sha256(data).hexdigest())

    def _cap(self, max_faces: int | None) -> int:
        if max_faces is not None and max_faces < 1:
            raise ApiError(400, "invalid_parameter", "max_faces must be at least 1.")
        return min(max_faces or self.max_faces, self.max_faces)

    async def analyse(
        self,
        value: str,
        *,
        field: str = "image",
        max_faces: int | None = None,
        min_confidence: float | None = None,
        embed: bool = True,
    ) -> Analysed:
        image = await self.decode(value, field)
        faces = (await self._detect([image.pixels]))[0]
        if min_confidence is not None:
            faces = [f for f in faces if f.score >= min_confidence]
        faces = faces[: self._cap(max_faces)]
        if not embed or not faces:
            return Analysed(image, faces, np.zeros((len(faces), self.spec.dim), dtype=np.float32))
        chips = await anyio.to_thread.run_sync(
            align_many, image.pixels, [f.landmark_array for f in faces], self.spec.geometry
        )
        return Analysed(image, faces, await self._embed(chips))

    async def detect(self, image: str, min_confidence: float | None, max_faces: int | None) -> schemas.DetectResponse:
        found = await self.analyse(image, max_faces=max_faces, min_confidence=min_confidence, embed=False)
        return schemas.DetectResponse(image=found.image.size, faces=[schemas.Face.of(f) for f in found.faces])

    async def embed(self, image: str, max_faces: int | None) -> schemas.EmbedResponse:
        found = await self.analyse(image, max_faces=max_faces)
        return schemas.EmbedResponse(
            model=self.spec.model_id,
            dim=self.spec.dim,
            image=found.image.size,
            faces=[
                schemas.EmbeddedFace(**schemas.Face.of(f).model_dump(), embedding=v.tolist())
                for f, v in zip(found.faces, found.vectors)
            ],
        )

    async def verify(self, image_a: str, image_b: str, threshold: float | None) -> schemas.VerifyResponse:
        """Largest face of each image; a missing face is a 422 naming the image."""
        threshold = self.threshold(threshold)
        a, b = await self.analyse(image_a, field="image_a", max_faces=1), await self.analyse(
            image_b, field="image_b", max_faces=1
        )
        for found, field in ((a, "image_a"), (b, "image_b")):
            if not found.faces:
                raise no_face(field)
        similarity = float(np.dot(a.vectors[0], b.vectors[0]))
        return schemas.VerifyResponse(
            same_person=similarity >= threshold,
            similarity=round(similarity, 5),
            distance=round(float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity))), 5),
            threshold=threshold,
            model=self.spec.model_id,
            face_a=schemas.Face.of(a.faces[0]),
            face_b=schemas.Face.of(b.faces[0]),
        )

    def threshold(self, requested: float | None) -> float:
        if requested is None:
            return self.spec.threshold
        if not -1.0 <= requested <= 1.0:
            raise ApiError(400, "invalid_parameter", "threshold is a cosine similarity between -1 and 1.")
        return requested
