"""Face alignment: a similarity transform from MTCNN's 5 landmarks to a model's chip.

Each embedder was trained on chips of one geometry: dlib's ResNet on
`get_face_chip(img, shape, 150, 0.25)` chips, FaceNet on MTCNN box crops
resized to 160. A chip that lands the eyes a few pixels off costs accuracy, so
each geometry is a template of where MTCNN's landmarks fall on that model's
own chips, measured by `scripts/calibrate_alignment.py` on real photos rather
than guessed. Re-run that script to regenerate the numbers below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.faces import DetectedFace

# Eyes and mouth corners, not the nose tip: the tip swings sideways as the
# head turns and drags a least-squares fit with it (dlib fits its own chips
# to the nose base for the same reason). On ../shared/faces fitting these
# four raised dlib-resnet's TAR at FAR 1% from 0.943 to 0.949 unmirrored.
STABLE_POINTS = (0, 1, 3, 4)


@dataclass(frozen=True)
class ChipGeometry:
    """Where MTCNN's five landmarks should land on a `size`×`size` chip."""

    size: int
    template: tuple[tuple[float, float], ...]
    fit: tuple[int, ...] = STABLE_POINTS

    @property
    def points(self) -> np.ndarray:
        return np.asarray(self.template, dtype=np.float64)


# Median MTCNN landmarks on dlib.get_face_chip(..., 150, 0.25) chips, in
# pixel-index coordinates (scripts/calibrate_alignment.py, 89 faces).
DLIB_150 = ChipGeometry(
    size=150,
    template=(
        (46.07, 40.05),
        (101.78, 39.37),
        (74.10, 74.14),
        (45.89, 99.71),
        (100.86, 99.34),
    ),
)

# Median MTCNN landmarks inside MTCNN's own boxes resized to 160×160, the
# crops facenet-pytorch feeds InceptionResnetV1 (same script and photos).
FACENET_160 = ChipGeometry(
    size=160,
    template=(
        (44.12, 44.90),
        (118.97, 45.51),
        (82.82, 85.09),
        (46.84, 112.60),
        (117.11, 112.10),
    ),
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation+uniform scale+translation taking src to dst (Umeyama).

    Returns the 2×3 matrix A with dst ≈ A @ [x, y, 1]. A similarity, not a
    full affine, so a bad landmark cannot shear the face.
    """
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum() / (src_c**2).sum() * len(src))
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align(image: np.ndarray, landmarks: np.ndarray, geometry: ChipGeometry) -> np.ndarray:
    """Cut one aligned size×size uint8 chip from an H×W×3 image.

    When the face is much larger than the chip the image is first reduced by
    an integer box filter, as dlib does with its pyramid, so the bilinear
    warp does not alias; otherwise large faces embed measurably differently.
    """
    # PIL's continuous coordinates put pixel i's centre at i + 0.5.
    fit = list(geometry.fit)
    matrix = similarity_transform(np.asarray(landmarks, dtype=np.float64)[fit] + 0.5, geometry.points[fit] + 0.5)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    pil = Image.fromarray(image)
    factor = int(1.0 / scale) // 2 if scale < 0.5 else 1
    if factor > 1:
        pil = pil.reduce(factor)
        matrix = matrix @ np.diag([factor, factor, 1.0])
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    chip = pil.transform(
        (geometry.size, geometry.size),
        Image.AFFINE,
        data=tuple(inverse.ravel()),
        resample=Image.BILINEAR,
    )
    return np.asarray(chip)


def template_chips(image: np.ndarray, faces: Sequence[DetectedFace], geometry: ChipGeometry) -> np.ndarray:
    """Chips cut by fitting the detector's landmarks to the geometry's template (FaceNet's crops)."""
    return align_many(image, [f.landmark_array for f in faces], geometry)


def align_many(image: np.ndarray, landmarks: list[np.ndarray], geometry: ChipGeometry) -> np.ndarray:
    """Chips for several faces of one image, stacked N×S×S×3 (N may be 0)."""
    if not landmarks:
        return np.zeros((0, geometry.size, geometry.size, 3), dtype=np.uint8)
    return np.stack([align(image, points, geometry) for points in landmarks])
