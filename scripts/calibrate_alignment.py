"""Measure where MTCNN's landmarks fall on each embedder's native chips.

Prints the templates that `models/alignment.py` holds. dlib's chips come from
dlib itself (test extra `dlib-bin`): the exact chip→image transform dlib
used is recovered by letting dlib cut the same chip from an image whose
pixels encode their own coordinates, and MTCNN's landmarks from the full
photo are mapped through its inverse. FaceNet's
chips are MTCNN box crops resized to 160, as facenet-pytorch makes them.

    python scripts/calibrate_alignment.py [--faces ../shared/faces]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.alignment import DLIB_150, align  # noqa: E402
from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.imaging import decode_image  # noqa: E402
from scripts.faces_data import FACES_DIR, single_face_photos  # noqa: E402


def _chip_transform(dlib, image_shape: tuple[int, ...], shape) -> np.ndarray:
    """The 2×3 affine dlib's get_face_chip applied, chip pixel → image pixel.

    Quantised coordinates (8 bits per axis) are noisy per pixel, but a least
    squares fit over the chip's 22,500 pixels pins the transform well below
    a tenth of a pixel.
    """
    h, w = image_shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    coded = np.stack(
        [np.round(xs * 255.0 / (w - 1)), np.round(ys * 255.0 / (h - 1)), np.full((h, w), 255.0)], axis=-1
    ).astype(np.uint8)
    chip = np.asarray(dlib.get_face_chip(coded, shape, size=150, padding=0.25), dtype=np.float64)
    inside = chip[..., 2] >= 254.5
    v, u = np.nonzero(inside)
    design = np.stack([u, v, np.ones_like(u)], axis=1).astype(np.float64)
    targets = np.stack([chip[v, u, 0] * (w - 1) / 255.0, chip[v, u, 1] * (h - 1) / 255.0], axis=1)
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return solution.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=FACES_DIR)
    args = parser.parse_args()

    import dlib

    from scripts.dlib_reference import DlibReference

    reference = DlibReference()
    detector = FaceDetector(DetectorConfig(min_confidence=0.95))
    embedder = load_embedder("dlib-resnet")
    dlib_points, facenet_points, chip_distances = [], [], []
    for path in single_face_photos(args.faces):
        image = decode_image(path.read_bytes()).pixels
        faces = detector.detect([image])[0]
        if len(faces) != 1:
            continue
        face = faces[0]
        x1, y1, x2, y2 = face.box
        rel = (face.landmark_array - [x1, y1]) / [x2 - x1, y2 - y1] * 160.0
        facenet_points.append(rel)
        shape = reference.shape(image)
        if shape is None:
            continue
        chip_to_image = _chip_transform(dlib, image.shape, shape)
        image_to_chip = np.linalg.inv(np.vstack([chip_to_image, [0, 0, 1]]))[:2]
        dlib_points.append(face.landmark_array @ image_to_chip[:, :2].T + image_to_chip[:, 2])
        ours = align(image, face.landmark_array, DLIB_150)
        theirs = np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        a, b = embedder.embed(np.stack([ours, theirs]))
        chip_distances.append(float(np.linalg.norm(a - b)))
    for name, points in (("DLIB_150", dlib_points), ("FACENET_160", facenet_points)):
        centre = np.median(points, axis=0)
        spread = np.median(np.abs(np.asarray(points) - centre), axis=0).mean()
        print(f"{name}: {len(points)} faces, median absolute deviation {spread:.2f} px")
        print("    template=(")
        for x, y in centre:
            print(f"        ({x:.2f}, {y:.2f}),")
        print("    ),")
    d = np.asarray(chip_distances)
    print(
        f"dlib-resnet descriptors, our MTCNN-aligned chips vs dlib.get_face_chip, {len(d)} faces "
        f"(unit vectors, Euclidean): median {np.median(d):.3f}  p95 {np.percentile(d, 95):.3f}  max {d.max():.3f}"
    )


if __name__ == "__main__":
    main()
