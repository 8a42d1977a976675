"""Face detection with facenet-pytorch's MTCNN (weights ship inside the package).

Large photos are downscaled for detection only and the boxes and landmarks
mapped back, so a 12-megapixel upload costs what a 1-megapixel one does while
callers still get original-image coordinates to crop and align from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from models.faces import DetectedFace, Detection
from models.isolation import batch_or_one_by_one, one_by_one


@dataclass(frozen=True)
class DetectorConfig:
    min_face_size: int = 20
    min_confidence: float = 0.9
    max_side: int = 1280
    device: str = "cpu"
    pad_batches: bool | None = None
    """Run a batch as one padded tensor; None decides by device (yes on CUDA, no on CPU)."""


class FaceDetector:
    """Finds faces in batches of decoded RGB images."""

    def __init__(self, config: DetectorConfig = DetectorConfig(), weights: Path | None = None) -> None:
        """`weights` is the model store's mtcnn.pt; without it the package's own files load,
        which are the same bytes `scripts/import_models.py` stores."""
        self.config = config
        # keep_all/post_process only matter for MTCNN.forward's crops, which we
        # do not use: detection alone returns boxes, scores and landmarks.
        self._mtcnn = MTCNN(
            min_face_size=config.min_face_size,
            keep_all=True,
            device=torch.device(config.device),
        ).eval()
        self._pad_batches = (
            config.pad_batches if config.pad_batches is not None else torch.device(config.device).type == "cuda"
        )
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            for net in ("pnet", "rnet", "onet"):
                getattr(self._mtcnn, net).load_state_dict(state[net])
        # Channels-last weights make every conv and max-pool of the three nets take torch's vectorised
        # NHWC kernels: faster detection on CPU, same boxes (BENCHMARKS.md, "Bare models").
        for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
            net.to(memory_format=torch.channels_last)

    def _scale_for(self, image: np.ndarray) -> float:
        longest = max(image.shape[:2])
        return min(1.0, self.config.max_side / longest)

    def _resized(self, image: np.ndarray, scale: float) -> np.ndarray:
        if scale == 1.0:
            return image
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))

    def detect(self, images: list[np.ndarray]) -> list[Detection]:
        """Detect faces in each image, largest first; None for an image the detector failed on.

        The images may come from several requests batched together, so one
        image that makes MTCNN raise fails only itself (models/isolation).

        MTCNN runs a batch only on images of one shape. On a GPU the batch is
        zero-padded at the bottom/right to its largest shape (padding there
        leaves coordinates unchanged and black borders hold no faces) and run
        at once. On CPU each image runs alone, because there the padding and
        facenet-pytorch's per-image loops cost more than batching saves
        (BENCHMARKS.md, "Bare models": padded vs per image).
        """
        scales = [self._scale_for(img) for img in images]
        small = [self._resized(img, s) for img, s in zip(images, scales, strict=False)]
        # MTCNN's pyramid starts at min_face_size: an image whose short side is below it has no scale to
        # run and facenet-pytorch raises on the empty pyramid. No face that small is looked for, so none is found.
        searchable = [i for i, img in enumerate(small) if min(img.shape[:2]) >= self.config.min_face_size]
        batch = [small[i] for i in searchable]
        isolate = batch_or_one_by_one if self._pad_batches and len(batch) > 1 else one_by_one
        found = isolate(self._detect_padded, batch, "face detection")
        results: list[Detection] = [[] for _ in images]
        for i, result in zip(searchable, found, strict=False):
            results[i] = None if result is None else self._faces(*result, scales[i], images[i].shape)
        return results

    def _detect_padded(self, images: list[np.ndarray]) -> list[tuple]:
        height = max(img.shape[0] for img in images)
        width = max(img.shape[1] for img in images)
        batch = np.zeros((len(images), height, width, 3), dtype=np.uint8)
        for i, img in enumerate(images):
            batch[i, : img.shape[0], : img.shape[1]] = img
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
        return list(zip(boxes, probs, points, strict=False))

    def _faces(self, boxes, probs, points, scale: float, shape: tuple[int, ...]) -> list[DetectedFace]:
        if boxes is None:
            return []
        h, w = shape[:2]
        faces = []
        for box, prob, pts in zip(boxes, probs, points, strict=False):
            if prob is None or prob < self.config.min_confidence:
                continue
            x1, y1, x2, y2 = (float(v) / scale for v in box)
            faces.append(
                DetectedFace(
                    box=(max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)),
                    score=float(prob),
                    landmarks=tuple((float(x) / scale, float(y) / scale) for x, y in pts),
                )
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
