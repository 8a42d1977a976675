"""dlib's face chips, `get_face_chip(img, shape, 150, 0.25)`, without dlib.

dlib-resnet was trained on chips cut from dlib's 5-point landmarks with this
exact geometry and resampling, and it separates people measurably better on
such chips than on chips fitted from MTCNN's landmarks. This module ports
`get_face_chip_details` and `extract_image_chips` (dlib/image_transforms/
interpolation.h): the mean-face template, the chip rectangle and angle, the
2× Gaussian pyramid dlib samples from when the face is much larger than the
chip, and its bilinear interpolation with truncation to uint8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.alignment import ChipGeometry
from models.faces import DetectedFace
from models.shape_predictor import Rect, ShapePredictor, default_predictor, similarity_2x2

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# dlib's mean positions of its 5 landmarks (eye corners, then the base of the nose) in an unpadded unit face.
FACE_TEMPLATE_5 = np.array(
    [
        (0.8595674595992, 0.2134981538014),
        (0.6460604764104, 0.2289674387677),
        (0.1205750620789, 0.2137274526848),
        (0.3340850613712, 0.2290642403242),
        (0.4901123135679, 0.6277975316475),
    ]
)


@dataclass(frozen=True)
class ChipDetails:
    """dlib's chip_details: a rectangle in the image, rotated by `angle` about its centre, resampled to size²."""

    rect: tuple[float, float, float, float]
    """drectangle left, top, right, bottom (inclusive corners, floating)."""
    angle: float
    size: int


def face_chip_details(parts: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> ChipDetails:
    """Where dlib cuts the chip for a 5-point shape: the similarity taking the padded template onto the parts."""
    parts = np.asarray(parts, dtype=np.float64)
    if parts.shape != (5, 2):
        raise ValueError(f"expected 5 landmarks, got an array of shape {parts.shape}")
    chip_points = (padding + FACE_TEMPLATE_5) / (2 * padding + 1) * size
    matrix = similarity_2x2(chip_points, parts)
    offset = parts.mean(axis=0) - matrix @ chip_points.mean(axis=0)
    angle = math.atan2(matrix[1, 0], matrix[0, 0])
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    cx, cy = matrix @ np.array([size / 2.0, size / 2.0]) + offset
    half = (size * scale - 1) / 2  # centered_drect: inclusive corners, so one pixel less across
    return ChipDetails((cx - half, cy - half, cx + half, cy + half), angle, size)


def _area(rect: tuple[float, float, float, float]) -> float:
    left, top, right, bottom = rect
    if left > right or top > bottom:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _rect_down(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """pyramid_down<2>::rect_down: where a rectangle lands one pyramid level down."""
    left, top, right, bottom = rect
    return (left / 2.0 - 1.25, top / 2.0 - 0.75, right / 2.0 - 1.25, bottom / 2.0 - 0.75)


def _rotated_corners(rect: tuple[float, float, float, float], angle: float) -> np.ndarray:
    """tl, tr, bl, br rotated about the rectangle's centre, as dlib's rotate_point does."""
    left, top, right, bottom = rect
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    sin, cos = math.sin(angle), math.cos(angle)
    corners = []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        px, py = x - cx, y - cy
        corners.append((cos * px - sin * py + cx, sin * px + cos * py + cy))
    return np.array(corners)


def _filter_halve_columns(values: np.ndarray) -> np.ndarray:
    """[1 4 6 4 1] over columns 2c .. 2c+4 for c < (cols - 3) / 2, unnormalised."""
    span = 2 * ((values.shape[1] - 3) // 2) - 1
    taps = [values[:, k : span + k : 2] for k in range(5)]
    return taps[0] + 4 * taps[1] + 6 * taps[2] + 4 * taps[3] + taps[4]


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's pyramid_down<2> on RGB: a separable [1 4 6 4 1]² filter, every other pixel, integer /256.

    Output pixel (r, c) is centred on input (2r + 2, 2c + 2), floor-divided like
    dlib's uint16 arithmetic (which cannot overflow: 16·16·255 < 65536).
    Returns an empty image for inputs of 8 pixels or fewer on a side, as dlib does.
    """
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    horizontal = _filter_halve_columns(image.astype(np.uint32))
    vertical = _filter_halve_columns(horizontal.swapaxes(0, 1)).swapaxes(0, 1)
    return (vertical // 256).astype(np.uint8)


def _bilinear(image: np.ndarray, matrix: np.ndarray, offset: np.ndarray, size: int) -> np.ndarray:
    """dlib's transform_image with interpolate_bilinear: chip (c, r) samples image at matrix·(c, r) + offset.

    Samples whose 2×2 neighbourhood leaves the image are black; values are
    truncated to uint8 like dlib's static_cast, with dlib's order of operations.
    """
    chip = np.zeros((size, size, 3), dtype=np.uint8)
    rows, cols = image.shape[:2]
    if rows < 2 or cols < 2:
        return chip
    r, c = np.mgrid[0:size, 0:size].astype(np.float64)
    x = (matrix[0, 0] * c + matrix[0, 1] * r) + offset[0]
    y = (matrix[1, 0] * c + matrix[1, 1] * r) + offset[1]
    left = np.floor(x)
    top = np.floor(y)
    valid = (left >= 0) & (top >= 0) & (left + 1 < cols) & (top + 1 < rows)
    li, ti = left[valid].astype(np.int64), top[valid].astype(np.int64)
    lr = (x[valid] - left[valid])[:, None]
    tb = (y[valid] - top[valid])[:, None]
    # only the sampled neighbours become float (the whole crop did, costing most of a chip's time), gathered
    # from the flattened pixels by one index each (numpy's two-axis fancy indexing is several times slower)
    flat = np.ascontiguousarray(image).reshape(-1, 3)
    at = ti * cols + li
    tl, tr, bl, br = (flat.take(at + step, axis=0).astype(np.float64) for step in (0, 1, cols, cols + 1))
    value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    chip[valid] = value.astype(np.uint8)
    return chip


def extract_chip(image: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib's extract_image_chip for a rotated, scaled chip of an RGB uint8 image: size×size×3 uint8."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 image, got {image.shape} {image.dtype}")
    size, pixels = details.size, details.size * details.size
    # dlib crops the image to the rotated chip rectangle plus a border that grows with the pyramid depth.
    grow, down = 2.0, _rect_down(details.rect)
    while _area(down) > pixels:
        down = _rect_down(down)
        grow = grow * 2 + 2
    corners = _rotated_corners(details.rect, details.angle)
    height, width = image.shape[:2]
    # grow, intersect with the image, then lround (all values are >= 0 here, so floor(v + 0.5)).
    left = math.floor(max(corners[:, 0].min() - grow, 0) + 0.5)
    top = math.floor(max(corners[:, 1].min() - grow, 0) + 0.5)
    right = math.floor(min(corners[:, 0].max() + grow, width - 1) + 0.5)
    bottom = math.floor(min(corners[:, 1].max() + grow, height - 1) + 0.5)
    if left > right or top > bottom:
        return np.zeros((size, size, 3), dtype=np.uint8)
    level_image = image[top : bottom + 1, left : right + 1]

    rect = (details.rect[0] - left, details.rect[1] - top, details.rect[2] - left, details.rect[3] - top)
    while _area(_rect_down(rect)) > pixels:
        level_image = pyramid_down(level_image)
        rect = _rect_down(rect)

    # The affine map taking chip corners (0,0), (size-1,0), (0,size-1) onto the rotated rectangle.
    tl, tr, bl, _ = _rotated_corners(rect, details.angle)
    matrix = np.column_stack([(tr - tl) / (size - 1), (bl - tl) / (size - 1)])
    return _bilinear(level_image, matrix, tl, size)


def box_to_rect(box: Sequence[float]) -> Rect:
    """A detector box (x1, y1, x2, y2, exclusive far edges) as dlib's inclusive integer rectangle."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (round(x1), round(y1), round(x2) - 1, round(y2) - 1)


@dataclass(frozen=True)
class BoxMap:
    """A dlib-HOG-like square from a detector box of width w and height h: centre shifted by (dx·w, dy·h),
    side = side·h (the MTCNN height varies less against HOG's side than its width: MAD 6% vs 8%)."""

    dx: float
    dy: float
    side: float


# dlib's 5-point predictor was trained on HOG detector boxes: square and lower on the face than
# MTCNN's, which are taller and reach up to the forehead. Medians over the faces both detectors
# find in ../shared/faces and ../shared/faces2 (313 faces; scripts/measure_dlib_chips.py prints the fit).
# Landmarks from these boxes are twice as close to dlib's own (HOG box) landmarks as from raw MTCNN
# boxes (median 0.0095 vs 0.0184 eye distances), and verification is slightly better.
MTCNN_TO_HOG = BoxMap(dx=-0.009, dy=0.045, side=0.831)


def mtcnn_rect(box: Sequence[float], box_map: BoxMap = MTCNN_TO_HOG) -> Rect:
    """The dlib rectangle a HOG detector would most likely give for the face in an MTCNN box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2 + box_map.dx * width, (y1 + y2) / 2 + box_map.dy * height
    half = box_map.side * height / 2
    return box_to_rect((cx - half, cy - half, cx + half, cy + half))


def chips_in_rects(image: np.ndarray, rects: Sequence[Rect], predictor: ShapePredictor | None = None) -> np.ndarray:
    """dlib's 150×150 chips, N×150×150×3 uint8, for faces in dlib rectangles (left, top, right, bottom, inclusive):
    5-point landmarks inside each rectangle, then get_face_chip(img, shape, 150, 0.25)."""
    predictor = predictor or default_predictor()
    chips = [extract_chip(image, face_chip_details(predictor(image, rect))) for rect in rects]
    if not chips:
        return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
    return np.stack(chips)


def dlib_chips(
    image: np.ndarray, boxes: Sequence[Sequence[float]], predictor: ShapePredictor | None = None
) -> np.ndarray:
    """dlib-resnet's chips for MTCNN boxes (x1, y1, x2, y2): N×150×150×3 uint8, each box first mapped to
    the square a dlib HOG detector would give, the box dlib's shape predictor was trained on."""
    return chips_in_rects(image, [mtcnn_rect(box) for box in boxes], predictor)


def dlib_face_chips(image: np.ndarray, faces: Sequence[DetectedFace], geometry: ChipGeometry) -> np.ndarray:
    """dlib-resnet's chips for detected faces: dlib's own landmarks inside each face's box, not the detector's.

    dlib-resnet was trained on these chips; on ../shared/faces* they separate people better than chips fitted
    to MTCNN's landmarks (at cosine 0.93: impostor rate 0.00191 -> 0.00091, same-person misses 0.075 -> 0.048;
    scripts/measure_dlib_chips.py). With no faces it still loads the predictor, which warms a process up.
    """
    if geometry.size != CHIP_SIZE:
        raise ValueError(f"dlib chips are {CHIP_SIZE} px, not {geometry.size}")
    return dlib_chips(image, [f.box for f in faces])
