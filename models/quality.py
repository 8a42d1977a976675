"""How fit a detected face is to enrol: measured numbers, and the reasons a gate refuses it.

A gallery is only as good as its worst enrolled face: a blurred, tiny, turned or half-cut face embeds
far from the person's other photos, so it both misses the person later and, being "nobody in
particular", lands near strangers. The numbers here are cheap (numpy on five landmarks and one chip),
so they can be computed for every face; which values refuse a face is a per-level table measured on
the labelled photos by `scripts/measure_quality.py` (BENCHMARKS.md, "Face quality"), never guessed.

Pose comes from MTCNN's five landmarks alone:
- roll is the angle of the eye line;
- yaw is read from how far the nose tip sits off the face's midline (the line through the midpoint of
  the eyes and the midpoint of the mouth corners, after undoing roll), in units of half the eye distance.
  Under a rigid head whose nose tip stands about half an eye distance in front of the eyes, that ratio
  is tan(yaw), which is the conversion used; the gates are set on the measured distribution, so the
  head model only fixes the unit, not which faces pass;
- pitch is not estimated: the nose's height between the eye line and the mouth line moves with pitch,
  but it moves as much between people's proportions, and the labelled photos carry no pose to
  calibrate it against, so a number would look like a measurement and not be one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from models.faces import DetectedFace

QualityLevel = Literal["none", "low", "medium", "high"]
QUALITY_LEVELS: tuple[str, ...] = ("none", "low", "medium", "high")
Reason = Literal["small_face", "blurry", "extreme_pose", "low_detection_score", "cut_off"]
REASONS: tuple[str, ...] = ("small_face", "blurry", "extreme_pose", "low_detection_score", "cut_off")

# Sharpness is measured on the chip's central face region resampled to this grid, so a 150 px dlib chip
# and a 160 px FaceNet chip of the same face read the same (the face fills about this many pixels of both).
SHARPNESS_GRID = 96
# The central part of a chip (fraction of its side on each edge left out): the face, not the padding
# and background, whose blur (depth of field) says nothing about the face.
SHARPNESS_MARGIN = 0.2
# A box edge this close to the image edge (pixels) counts as touching it: the detector clips boxes to
# the image, so a face running off the photo ends exactly on the border.
BORDER_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class Gates:
    """The values below (or above) which a level refuses a face; see GATES."""

    min_interocular_px: float
    min_sharpness: float
    max_yaw_deg: float
    max_roll_deg: float
    min_detection_score: float
    min_border_margin: float
    """In eye distances: how far every landmark must lie inside the photo (see Quality.border_margin)."""


# Chosen from the tables `scripts/measure_quality.py` prints (BENCHMARKS.md, "Face quality", says
# why each value); re-run it after changing the detector, the chips or this module's measures.
GATES: dict[str, Gates | None] = {
    "none": None,
    "low": Gates(
        min_interocular_px=14.0,
        min_sharpness=0.06,
        max_yaw_deg=45.0,
        max_roll_deg=60.0,
        min_detection_score=0.95,
        min_border_margin=0.0,
    ),
    "medium": Gates(
        min_interocular_px=18.0,
        min_sharpness=0.08,
        max_yaw_deg=35.0,
        max_roll_deg=45.0,
        min_detection_score=0.99,
        min_border_margin=0.0,
    ),
    "high": Gates(
        min_interocular_px=24.0,
        min_sharpness=0.10,
        max_yaw_deg=30.0,
        max_roll_deg=45.0,
        min_detection_score=0.99,
        min_border_margin=0.0,
    ),
}


@dataclass(frozen=True)
class Quality:
    """One face's measured quality, in the pixels of the image the face was detected and cut in."""

    interocular_px: float
    """Distance between the eye centres."""
    sharpness: float
    """Laplacian-to-intensity standard-deviation ratio of the grey chip's face region on a fixed grid:
    independent of chip size and of exposure; low when the face is blurred or was upscaled."""
    yaw_deg: float
    """Signed; 0 is frontal (see the module docstring for how it is read from the landmarks)."""
    roll_deg: float
    """Signed angle of the eye line; 0 is level."""
    detection_score: float
    box_at_border: bool
    """The detector's box reaches the image edge (it is clipped there)."""
    border_margin: float
    """The nearest landmark's distance to the image edge in eye distances; negative when one is outside.
    The gate reads this rather than the box: a box touching the edge is mostly a tight crop cutting
    hair or chin, which costs nothing measurable, while a landmark near the edge means part of the
    face itself is missing."""

    @property
    def landmarks_outside(self) -> bool:
        return self.border_margin < 0

    @property
    def cut_off(self) -> bool:
        """The box or a landmark is at or beyond the image border (whether a level refuses it: `reasons`)."""
        return self.box_at_border or self.landmarks_outside

    def reasons(self, level: str) -> tuple[str, ...]:
        """Why `level` refuses this face, in REASONS order; empty when it passes (always, for `none`)."""
        if level not in GATES:
            raise ValueError(f"quality level must be one of {QUALITY_LEVELS}, not {level!r}")
        gates = GATES[level]
        if gates is None:
            return ()
        found = {
            "small_face": self.interocular_px < gates.min_interocular_px,
            "blurry": self.sharpness < gates.min_sharpness,
            "extreme_pose": abs(self.yaw_deg) > gates.max_yaw_deg or abs(self.roll_deg) > gates.max_roll_deg,
            "low_detection_score": self.detection_score < gates.min_detection_score,
            "cut_off": self.border_margin < gates.min_border_margin,
        }
        return tuple(reason for reason in REASONS if found[reason])


def pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in degrees from MTCNN's five landmarks (left eye, right eye, nose, mouth left, mouth right)."""
    points = np.asarray(landmarks, dtype=np.float64)
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    eye_line = right_eye - left_eye
    roll = math.atan2(eye_line[1], eye_line[0])
    half_iod = float(np.hypot(*eye_line)) / 2
    if half_iod == 0:
        return 90.0, math.degrees(roll)
    # undo roll so that the eye line is horizontal, then read the nose's offset from the midline
    cos, sin = math.cos(-roll), math.sin(-roll)
    upright = points @ np.array([[cos, sin], [-sin, cos]])
    eyes_mid = (upright[0] + upright[1]) / 2
    mouth_mid = (upright[3] + upright[4]) / 2
    nose = upright[2]
    drop = mouth_mid[1] - eyes_mid[1]
    # the midline's x at the nose's height (a tilted midline follows the face, not the image axes)
    t = (nose[1] - eyes_mid[1]) / drop if drop > 0 else 0.0
    midline_x = eyes_mid[0] + t * (mouth_mid[0] - eyes_mid[0])
    yaw = math.degrees(math.atan((nose[0] - midline_x) / half_iod))
    return yaw, math.degrees(roll)


def sharpness(chip: np.ndarray) -> float:
    """The grey face region's Laplacian standard deviation over its intensity standard deviation.

    Dividing by the intensity spread makes a dim photo and a bright one of one face score alike;
    resampling to SHARPNESS_GRID makes the score independent of the chip's size. Blur and upscaling
    (a small face blown up to the chip) both remove the fine detail the Laplacian responds to.
    """
    rgb = np.asarray(chip, dtype=np.float64)
    grey = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114 if rgb.ndim == 3 else rgb
    size = grey.shape[0]
    cut = int(round(size * SHARPNESS_MARGIN))
    face = grey[cut : size - cut, cut : size - cut]
    grid = np.asarray(
        Image.fromarray(face.astype(np.float32), mode="F").resize((SHARPNESS_GRID, SHARPNESS_GRID), Image.BILINEAR),
        dtype=np.float64,
    )
    laplacian = grid[1:-1, :-2] + grid[1:-1, 2:] + grid[:-2, 1:-1] + grid[2:, 1:-1] - 4 * grid[1:-1, 1:-1]
    spread = float(grid.std())
    if spread < 1e-6:
        return 0.0
    return float(laplacian.std()) / spread


def measure(face: DetectedFace, chip: np.ndarray, width: int, height: int) -> Quality:
    """The quality of `face`, detected in a width×height image, and of the chip cut from it there."""
    points = face.landmark_array
    yaw, roll = pose(points)
    x1, y1, x2, y2 = face.box
    tol = BORDER_TOLERANCE_PX
    at_border = x1 <= tol or y1 <= tol or x2 >= width - tol or y2 >= height - tol
    interocular = float(np.hypot(*(points[1] - points[0])))
    # distance inside the image of each landmark to the nearest edge (pixel centres span 0 .. size - 1)
    inside = np.minimum(
        np.minimum(points[:, 0], width - 1 - points[:, 0]), np.minimum(points[:, 1], height - 1 - points[:, 1])
    )
    margin = float(inside.min()) / max(interocular, 1e-6)
    return Quality(
        interocular_px=round(interocular, 3),
        sharpness=round(sharpness(chip), 4),
        yaw_deg=round(yaw, 2),
        roll_deg=round(roll, 2),
        detection_score=round(float(face.score), 5),
        box_at_border=bool(at_border),
        border_margin=round(margin, 4),
    )


def measure_all(faces: Sequence[DetectedFace], chips: np.ndarray, width: int, height: int) -> list[Quality]:
    return [measure(face, chip, width, height) for face, chip in zip(faces, chips, strict=True)]
