"""A numpy port of dlib's `shape_predictor` (Kazemi & Sullivan's ensemble of regression trees).

dlib-resnet embeds faces best when they are cut the way dlib cuts them, from
its own 5-point landmarks; dlib itself must not be a runtime dependency, so we
read `shape_predictor_5_face_landmarks.dat` (CC0, from PyPI's
face-recognition-models) and run the cascade here. Every numeric step follows
dlib's `shape_predictor.h` in the same precision (float32 shapes, double image
mapping, round-half-up pixel lookups), because a feature pixel that lands one
pixel off can send a tree down another branch and move a landmark.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.dlib_format import _Reader, packaged_file

PREDICTOR_FILENAME = "shape_predictor_5_face_landmarks.dat"
PREDICTOR_SHA256 = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"

Rect = tuple[float, float, float, float]
"""dlib's rectangle: left, top, right, bottom, right and bottom inclusive."""


@dataclass(frozen=True)
class ShapeModel:
    """The cascade as arrays: C cascades of T complete trees with S splits and S + 1 leaves, P parts."""

    initial_shape: np.ndarray
    """float32 (P, 2), the mean shape in the face rectangle's unit square."""
    split_a: np.ndarray
    """int64 (C, T, S): feature index whose value is minuend of the split test."""
    split_b: np.ndarray
    thresholds: np.ndarray
    """float32 (C, T, S): go left when value[a] − value[b] > threshold."""
    leaf_values: np.ndarray
    """float32 (C, T, S + 1, 2P): shape update at each leaf."""
    anchors: np.ndarray
    """int64 (C, F): the initial-shape part each feature pixel is placed relative to."""
    deltas: np.ndarray
    """float32 (C, F, 2): the feature pixel's offset from its anchor in the initial shape."""

    @property
    def num_parts(self) -> int:
        return len(self.initial_shape)


def _column(reader: _Reader) -> np.ndarray:
    """A matrix<float,0,1>; dlib writes its dimensions negated (newer files) or plain (older)."""
    rows, cols = abs(reader.integer()), abs(reader.integer())
    if cols != 1:
        raise reader.fail(f"expected a column vector, got {rows}×{cols}")
    return np.array([reader.floating() for _ in range(rows)], dtype=np.float32)


def _count(reader: _Reader, what: str, limit: int = 1 << 20) -> int:
    value = reader.non_negative(what)
    if value > limit:
        raise reader.fail(f"implausible {what} {value}")
    return value


def _forest(reader: _Reader, parts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    trees = _count(reader, "tree count")
    a, b, thresh, leaves = [], [], [], []
    for _ in range(trees):
        splits = _count(reader, "split count")
        for _ in range(splits):
            a.append(reader.non_negative("feature index"))
            b.append(reader.non_negative("feature index"))
            thresh.append(reader.floating())
        if _count(reader, "leaf count") != splits + 1 or (splits + 1) & splits:
            raise reader.fail(f"tree with {splits} splits is not a complete binary tree")
        for _ in range(splits + 1):
            leaf = _column(reader)
            if leaf.size != 2 * parts:
                raise reader.fail(f"leaf of {leaf.size} values for {parts} parts")
            leaves.append(leaf)
    if trees == 0 or len(a) % trees:
        raise reader.fail("trees of one cascade differ in depth")
    shape = (trees, len(a) // trees)
    return (
        np.array(a, dtype=np.int64).reshape(shape),
        np.array(b, dtype=np.int64).reshape(shape),
        np.array(thresh, dtype=np.float32).reshape(shape),
        np.stack(leaves).reshape(trees, shape[1] + 1, 2 * parts),
    )


def parse(data: bytes) -> ShapeModel:
    """dlib's `serialize(shape_predictor)`: version 1, initial shape, forests, anchor indices, deltas."""
    reader = _Reader(data)
    reader.expect_version(1, "shape_predictor")
    initial = _column(reader)
    if initial.size == 0 or initial.size % 2:
        raise reader.fail(f"initial shape of {initial.size} values")
    parts = initial.size // 2
    forests = [_forest(reader, parts) for _ in range(_count(reader, "cascade count", 1000))]
    if not forests or len({f[0].shape for f in forests}) != 1:
        raise reader.fail("cascades differ in tree count or depth")
    anchors = [
        [reader.non_negative("anchor") for _ in range(_count(reader, "feature count"))]
        for _ in range(_count(reader, "cascade count", 1000))
    ]
    deltas = [
        [(reader.floating(), reader.floating()) for _ in range(_count(reader, "feature count"))]
        for _ in range(_count(reader, "cascade count", 1000))
    ]
    if not reader.at_end:
        raise reader.fail(f"{len(data) - reader.pos} bytes left after the deltas")
    if not (len(anchors) == len(deltas) == len(forests)) or len({len(x) for x in anchors + deltas}) != 1:
        raise reader.fail("anchor and delta lists do not match the cascades")
    anchor_array = np.array(anchors, dtype=np.int64)
    features = anchor_array.shape[1]
    split_a, split_b, thresholds, leaves = (np.stack(arrays) for arrays in zip(*forests, strict=True))
    if anchor_array.max() >= parts or max(split_a.max(), split_b.max()) >= features:
        raise reader.fail("an anchor or split index is out of range")
    return ShapeModel(
        initial_shape=initial.reshape(parts, 2),
        split_a=split_a,
        split_b=split_b,
        thresholds=thresholds,
        leaf_values=leaves,
        anchors=anchor_array,
        deltas=np.array(deltas, dtype=np.float32),
    )


def predictor_path() -> Path:
    """The 5-point model beside dlib-resnet's weights in face-recognition-models, checked by hash."""
    return packaged_file(PREDICTOR_FILENAME, PREDICTOR_SHA256)


def similarity_2x2(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The rotation+scale part of dlib's `find_similarity_transform` from src to dst points, in double.

    dlib solves Umeyama's eqs. 34–43 with an SVD and a reflection check; in 2-D
    the best proper rotation times scale has the closed form [[A, −B], [B, A]] / σ²
    with A = cov₀₀ + cov₁₁, B = cov₁₀ − cov₀₁ (σ² the source variance), the same
    matrix to rounding without an SVD per cascade.
    """
    src_c = src.astype(np.float64) - src.mean(axis=0, dtype=np.float64)
    dst_c = dst.astype(np.float64) - dst.mean(axis=0, dtype=np.float64)
    sigma_from = float((src_c * src_c).sum())
    if sigma_from == 0:
        return np.eye(2)
    cov = dst_c.T @ src_c
    a = cov[0, 0] + cov[1, 1]
    b = cov[1, 0] - cov[0, 1]
    return np.array([[a, -b], [b, a]]) / sigma_from


def _round_half_up(values: np.ndarray) -> np.ndarray:
    """dlib's conversion of a double point to an integer one: floor(v + 0.5)."""
    return np.floor(values + 0.5).astype(np.int64)


class ShapePredictor:
    """Landmarks of a face inside a rectangle, as dlib's `shape_predictor(img, rect)` finds them."""

    def __init__(self, model: ShapeModel) -> None:
        self.model = model
        cascades, trees, splits = model.thresholds.shape
        self._splits = splits
        self._depth = int(np.log2(splits + 1))
        # Flat per-cascade tables so each tree level is one np.take over all trees at once.
        self._split_offsets = np.arange(trees) * splits
        self._leaf_offsets = np.arange(trees) * (splits + 1)
        self._leaves = model.leaf_values.reshape(cascades, trees * (splits + 1), -1)

    @classmethod
    def from_file(cls, path: Path | None = None) -> ShapePredictor:
        return cls(parse((path or predictor_path()).read_bytes()))

    @staticmethod
    def _intensities(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dlib's get_pixel_intensity at integer points: (r + g + b) / 3 truncated for RGB; 0 outside."""
        height, width = image.shape[:2]
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        flat = np.where(inside, y * width + x, 0)
        if image.ndim == 3:
            pixels = image.reshape(-1, 3).take(flat, axis=0).sum(axis=1, dtype=np.uint32) // 3
        else:
            pixels = image.reshape(-1).take(flat)
        return np.where(inside, pixels, 0).astype(np.float32)

    def shape(self, image: np.ndarray, rect: Rect) -> np.ndarray:
        """The fitted shape in the rectangle's unit square, float32 (P, 2), before mapping to pixels."""
        if image.ndim not in (2, 3) or image.dtype != np.uint8 or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"expected an H×W×3 or H×W uint8 image, got {image.shape} {image.dtype}")
        image = np.ascontiguousarray(image)
        m = self.model
        left, top, right, bottom = (float(v) for v in rect)
        current = m.initial_shape.copy()
        for cascade in range(len(m.anchors)):
            tform = similarity_2x2(m.initial_shape, current).astype(np.float32)
            dx, dy = m.deltas[cascade, :, 0], m.deltas[cascade, :, 1]
            anchor = current[m.anchors[cascade]]
            # float32 like dlib's matrix<float,2,2> * vector<float,2>, then the double rect mapping.
            px = (tform[0, 0] * dx + tform[0, 1] * dy) + anchor[:, 0]
            py = (tform[1, 0] * dx + tform[1, 1] * dy) + anchor[:, 1]
            x = _round_half_up((right - left) * px.astype(np.float64) + left)
            y = _round_half_up((bottom - top) * py.astype(np.float64) + top)
            values = self._intensities(image, x, y)

            # Every split test of the cascade at once, then walk the heap-ordered complete trees.
            go_left = (values[m.split_a[cascade]] - values[m.split_b[cascade]] > m.thresholds[cascade]).ravel()
            node = np.zeros_like(self._split_offsets)
            for _ in range(self._depth):
                node = 2 * node + 2 - go_left.take(self._split_offsets + node)
            leaves = self._leaves[cascade].take(self._leaf_offsets + node - self._splits, axis=0)
            # dlib adds the trees' updates one by one in float32; cumsum keeps that order.
            steps = np.concatenate([current.reshape(1, -1), leaves])
            current = np.cumsum(steps, axis=0, dtype=np.float32)[-1].reshape(-1, 2)
        return current

    def landmarks(self, image: np.ndarray, rect: Rect) -> np.ndarray:
        """The P landmarks in image pixels, float64 (P, 2), unrounded."""
        left, top, right, bottom = (float(v) for v in rect)
        unit = self.shape(image, rect).astype(np.float64)
        return unit * [right - left, bottom - top] + [left, top]

    def __call__(self, image: np.ndarray, rect: Rect) -> np.ndarray:
        """The landmarks as dlib returns them: integer pixel points, int64 (P, 2)."""
        return _round_half_up(self.landmarks(image, rect))


@functools.cache
def default_predictor() -> ShapePredictor:
    """The 5-point predictor, parsed once per process (the file is 9 MB of serialised trees)."""
    return ShapePredictor.from_file()
