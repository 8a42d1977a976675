"""Does cutting dlib-resnet's chips dlib's way (its 5-point shape predictor inside MTCNN's box) beat
fitting MTCNN's own landmarks to a template? Measured on ../shared/faces and ../shared/faces2.

    python scripts/measure_dlib_chips.py [--cache /tmp/dlib_chips_cache.npz]

1. MTCNN (models.detector) on every single-identity labelled photo; the largest face is the person.
2. dlib's HOG detector on the same photos (dlib-bin, measurement only) to fit a fixed map from MTCNN
   boxes to the boxes dlib's shape predictor was trained on, and to see which box gives landmarks
   closer to dlib's own (HOG box → dlib.shape_predictor), as a fraction of the eye distance.
3. Chips three ways (template alignment; our dlib chip from the raw MTCNN box; from the HOG-like box),
   embedded by dlib-resnet (chip + mirror), then per-comparison impostor FAR and genuine FRR at
   cosine 0.92/0.93/0.94 over all photo pairs: skipping pairs of two `inferred:` labels, pairs
   PAIRS.csv marks SAME_PHOTO and byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.alignment import DLIB_150, align_many  # noqa: E402
from models.detector import FaceDetector  # noqa: E402
from models.dlib_chip import MTCNN_TO_HOG, BoxMap, box_to_rect, chips_in_rects, mtcnn_rect  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.shape_predictor import default_predictor  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
THRESHOLDS = (0.92, 0.93, 0.94)
HOG_MAX_SIDE = 1000


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str
    sha256: str


def labelled_photos(folder: Path) -> list[Photo]:
    with open(folder / "MANIFEST.csv", newline="") as f:
        return [
            Photo(folder / row["path"], row["identity"], row["sha256"])
            for row in csv.DictReader(f)
            if row["identity"] and ";" not in row["identity"]
        ]


def same_photo_pairs(folder: Path) -> set[frozenset[Path]]:
    with open(folder / "PAIRS.csv", newline="") as f:
        return {
            frozenset((folder / r["a"], folder / r["b"])) for r in csv.DictReader(f) if "SAME_PHOTO" in r["evidence"]
        }


def load(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError:
        return None


def hog_box(detector, image: np.ndarray) -> tuple[float, float, float, float] | None:
    """dlib's largest HOG face as (left, top, right, bottom) inclusive, in original pixels; big photos scaled down."""
    scale = min(1.0, HOG_MAX_SIDE / max(image.shape[:2]))
    small = (
        image
        if scale == 1.0
        else np.asarray(
            Image.fromarray(image).resize(
                (round(image.shape[1] * scale), round(image.shape[0] * scale)), Image.BILINEAR
            )
        )
    )
    rects = detector(small, 1 if max(small.shape[:2]) <= 700 else 0)
    if not rects:
        return None
    r = max(rects, key=lambda r: r.area())
    return tuple(v / scale for v in (r.left(), r.top(), r.right() + 1, r.bottom() + 1))  # exclusive, like MTCNN


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def fit_box_map(pairs: list[tuple[tuple, tuple]]) -> dict[str, float]:
    """Median offsets of the HOG box centre and side relative to the MTCNN box (robust to a few bad matches)."""
    m = np.array([p[0] for p in pairs], dtype=float)
    h = np.array([p[1] for p in pairs], dtype=float)
    mw, mh = m[:, 2] - m[:, 0], m[:, 3] - m[:, 1]
    mcx, mcy = (m[:, 0] + m[:, 2]) / 2, (m[:, 1] + m[:, 3]) / 2
    hw, hh = h[:, 2] - h[:, 0], h[:, 3] - h[:, 1]
    hcx, hcy = (h[:, 0] + h[:, 2]) / 2, (h[:, 1] + h[:, 3]) / 2
    stats = {"dx/w": (hcx - mcx) / mw, "dy/h": (hcy - mcy) / mh, "side/w": hw / mw, "side/h": hh / mh}
    for name, values in stats.items():
        med = np.median(values)
        print(f"  {name:7s} median {med:+.4f}  MAD {np.median(np.abs(values - med)):.4f}")
    return {name: float(np.median(values)) for name, values in stats.items()}


def eye_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """Mean landmark distance over the eye distance (points 0–1 are one eye's corners, 2–3 the other's)."""
    eye_distance = np.linalg.norm(reference[:2].mean(axis=0) - reference[2:4].mean(axis=0))
    return float(np.linalg.norm(ours - reference, axis=1).mean() / eye_distance)


def rates(vectors: np.ndarray, photos: list[Photo], skip: set[frozenset[Path]]) -> tuple[np.ndarray, np.ndarray]:
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(photos)), 2):
        a, b = photos[i], photos[j]
        if a.identity.startswith("inferred:") and b.identity.startswith("inferred:") and a.identity != b.identity:
            continue
        if frozenset((a.path, b.path)) in skip or a.sha256 == b.sha256:
            continue
        similarity = float(vectors[i] @ vectors[j])
        (genuine if a.identity == b.identity else impostor).append(similarity)
    return np.array(genuine), np.array(impostor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", nargs="+", type=Path, default=[SHARED / "faces", SHARED / "faces2"])
    args = parser.parse_args()

    import dlib

    from scripts.dlib_reference import DlibReference

    reference = DlibReference()
    detector = FaceDetector()
    predictor = default_predictor()
    embedder = load_embedder("dlib-resnet")

    photos: list[Photo] = []
    skip: set[frozenset[Path]] = set()
    for folder in args.faces:
        photos += labelled_photos(folder)
        skip |= same_photo_pairs(folder)

    kept: list[Photo] = []
    chips: dict[str, list[np.ndarray]] = {
        "template (MTCNN landmarks)": [],
        "dlib chip, raw MTCNN box": [],
        "dlib chip, HOG-like box": [],
    }
    matched, errors, missing = [], {"raw": [], "hog-like": []}, 0
    records = []
    for photo in photos:
        image = load(photo.path)
        faces = detector.detect([image])[0] if image is not None else []
        if not faces:
            missing += 1
            continue
        face = faces[0]
        hog = hog_box(reference.detector, image)
        records.append((photo, image, face, hog))
        if hog is not None and iou(face.box, hog) > 0.3:
            matched.append((face.box, hog))

    print(f"{len(records)} photos with an MTCNN face, {missing} without; {len(matched)} also found by HOG")
    print("HOG box relative to the MTCNN box (fit on the photos where both find the face):")
    fit = fit_box_map(matched)
    box_map = BoxMap(dx=round(fit["dx/w"], 3), dy=round(fit["dy/h"], 3), side=round(fit["side/h"], 3))
    print(f"  fitted {box_map}; models/dlib_chip.py has {MTCNN_TO_HOG}")

    for photo, image, face, hog in records:
        kept.append(photo)
        chips["template (MTCNN landmarks)"].append(align_many(image, [np.array(face.landmarks)], DLIB_150)[0])
        raw, adjusted = box_to_rect(face.box), mtcnn_rect(face.box, box_map)
        chips["dlib chip, raw MTCNN box"].append(chips_in_rects(image, [raw], predictor)[0])
        chips["dlib chip, HOG-like box"].append(chips_in_rects(image, [adjusted], predictor)[0])
        if hog is not None and iou(face.box, hog) > 0.3:
            hog_rect = box_to_rect(hog)
            truth = reference.shape_predictor(image, dlib.rectangle(*hog_rect))
            truth = np.array([(p.x, p.y) for p in truth.parts()], dtype=float)
            errors["raw"].append(eye_error(predictor.landmarks(image, raw), truth))
            errors["hog-like"].append(eye_error(predictor.landmarks(image, adjusted), truth))

    print("landmarks vs dlib's on its own HOG box, mean error / eye distance (median, 90th pct):")
    for name, values in errors.items():
        print(f"  {name:9s} {np.median(values):.4f}  {np.percentile(values, 90):.4f}  (n={len(values)})")

    print(f"\nper-comparison rates over {len(kept)} photos")
    for name, stack in chips.items():
        vectors = embedder.embed(np.stack(stack))
        genuine, impostor = rates(vectors, kept, skip)
        cells = "  ".join(
            f"@{t:.2f} FAR {np.mean(impostor >= t):.5f} FRR {np.mean(genuine < t):.4f}" for t in THRESHOLDS
        )
        print(f"  {name:28s} genuine {len(genuine)} impostor {len(impostor)}  {cells}")


if __name__ == "__main__":
    main()
