"""A detected face as plain data: what the detector returns and the API serialises.

Kept apart from the detector so that code which only reads faces (the HTTP
schemas, the Python client) does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class DetectedFace:
    """One face in original-image pixels; landmarks follow LANDMARK_NAMES (image left/right)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    @property
    def landmark_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float64)

    def scaled(self, factor: float, width: int, height: int) -> DetectedFace:
        """The face in an image `factor` times larger (a decode that was reduced), box kept inside width×height."""
        x1, y1, x2, y2 = (v * factor for v in self.box)
        return DetectedFace(
            box=(max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)),
            score=self.score,
            landmarks=tuple((x * factor, y * factor) for x, y in self.landmarks),
        )


Detection = list[DetectedFace] | None
"""One image's faces, largest first, or None when the detector failed on that image (and only that image)."""
