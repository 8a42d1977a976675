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

from models.faces import DetectedFace


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
        # NHWC kernels: 1.35x faster detection on CPU (VGA 30.8 -> 22.9 ms, 1080p 216 -> 157 ms), same
        # boxes and landmarks to 0.0002 px (scripts/bench_models.py prints both layouts).
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

    def detect(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in each image, largest first.

        MTCNN runs a batch only on images of one shape. On a GPU the batch is
        zero-padded at the bottom/right to its largest shape (padding there
        leaves coordinates unchanged and black borders hold no faces) and run
        at once. On CPU each image runs alone: scripts/bench_models.py measured
        8 mixed photos at 2549 ms padded vs 1683 ms one by one, and even 8
        same-size 1280×720 photos at 1764 vs 1558 ms, because the padding and
        facenet-pytorch's per-image loops cost more than batching saves.
        """
        if not images:
            return []
        scales = [self._scale_for(img) for img in images]
        small = [self._resized(img, s) for img, s in zip(images, scales)]
        if self._pad_batches:
            found = self._detect_padded(small)
        else:
            found = [self._detect_padded([img])[0] for img in small]
        return [self._faces(*result, scale, img.shape) for result, scale, img in zip(found, scales, images)]

    def _detect_padded(self, images: list[np.ndarray]) -> list[tuple]:
        height = max(img.shape[0] for img in images)
        width = max(img.shape[1] for img in images)
        batch = np.zeros((len(images), height, width, 3), dtype=np.uint8)
        for i, img in enumerate(images):
            batch[i, : img.shape[0], : img.shape[1]] = img
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
        return list(zip(boxes, probs, points))

    def _faces(self, boxes, probs, points, scale: float, shape: tuple[int, ...]) -> list[DetectedFace]:
        if boxes is None:
            return []
        h, w = shape[:2]
        faces = []
        for box, prob, pts in zip(boxes, probs, points):
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
