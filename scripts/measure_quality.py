"""Measure what each face-quality gate buys and costs on the labelled photos, to choose models/quality.GATES.

    python scripts/measure_quality.py [--model dlib-resnet] [--faces DIR ...] [--cache FILE] [--synthetic N]

Embeds the largest face of every single-person photo in ../shared/faces and ../shared/faces2 exactly as the
service does (FacePipeline.in_process, decoding with ImageLimits(reduce_to=2 * max_side), chips cut by the
model entry's `cut`) and measures every face's quality. A same-person comparison *fails* when the cosine
similarity of the two photos is below the model's calibrated 1:1 threshold (per-comparison false-accept
rate 1e-3). A *good* face is one whose same-person comparisons all pass. For each gate and candidate value
the table gives: the faces it refuses, the failing comparisons it removes (those with a refused face), and
the good faces it refuses. Then sharp enrolable faces are degraded (Gaussian blur, downscaling to a given
face width) and run through the pipeline again, to show which gates catch them at each level.

`--cache` keeps the embeddings and chips (in a temporary folder, never in the repository) so that the
tables can be recomputed after changing models/quality.py without embedding again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.calibration import find  # noqa: E402
from models.detector import FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.faces import DetectedFace  # noqa: E402
from models.imaging import DecodedImage, ImageError, ImageLimits, decode_image  # noqa: E402
from models.pipeline import AnalysisFailed, FacePipeline  # noqa: E402
from models.quality import GATES, QUALITY_LEVELS, REASONS, Quality, measure  # noqa: E402
from scripts.faces_data import FACES2_DIR, FACES_DIR, identity_photos  # noqa: E402

CALIBRATED_RATE = 1e-3


@dataclass
class Measured:
    path: Path
    identity: str
    vector: np.ndarray
    face: DetectedFace
    """In decoded pixels, where the chip was cut and the quality measured."""
    chip: np.ndarray
    width: int
    height: int

    @property
    def quality(self) -> Quality:
        return measure(self.face, self.chip, self.width, self.height)


def analyse(pipeline: FacePipeline, image: DecodedImage) -> tuple[DetectedFace, np.ndarray, np.ndarray] | None:
    """The largest face in decoded pixels, its chip and its vector; None when no face is found."""
    found = pipeline.run(image, max_faces=1)
    if not found.faces:
        return None
    face = found.faces[0]
    k = image.scale
    decoded = DetectedFace(tuple(v / k for v in face.box), face.score, tuple((x / k, y / k) for x, y in face.landmarks))
    chip = pipeline.model.cut(image.pixels, [decoded], pipeline.model.geometry)[0]
    return decoded, chip, found.vectors[0]


def embed_photos(pipeline: FacePipeline, limits: ImageLimits, dirs: tuple[Path, ...]) -> list[Measured]:
    out = []
    for photo in identity_photos(dirs):
        try:
            image = decode_image(photo.path.read_bytes(), limits)
            result = analyse(pipeline, image)
        except (ImageError, AnalysisFailed):
            continue
        if result is not None:
            face, chip, vector = result
            height, width = image.pixels.shape[:2]
            out.append(Measured(photo.path, photo.identity, vector, face, chip, width, height))
    return out


def save(measured: list[Measured], path: Path) -> None:
    np.savez_compressed(
        path,
        paths=np.array([str(m.path) for m in measured]),
        identities=np.array([m.identity for m in measured]),
        vectors=np.stack([m.vector for m in measured]),
        boxes=np.array([m.face.box for m in measured]),
        scores=np.array([m.face.score for m in measured]),
        landmarks=np.array([m.face.landmarks for m in measured]),
        chips=np.stack([m.chip for m in measured]),
        sizes=np.array([(m.width, m.height) for m in measured]),
    )


def load(path: Path) -> list[Measured]:
    d = np.load(path)
    return [
        Measured(
            Path(str(d["paths"][i])),
            str(d["identities"][i]),
            d["vectors"][i],
            DetectedFace(tuple(map(float, d["boxes"][i])), float(d["scores"][i]), tuple(map(tuple, d["landmarks"][i]))),
            d["chips"][i],
            int(d["sizes"][i][0]),
            int(d["sizes"][i][1]),
        )
        for i in range(len(d["paths"]))
    ]


def same_person_pairs(measured: list[Measured], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (a, b) of one identity and whether each fails the threshold."""
    vectors = np.stack([m.vector for m in measured])
    identities = np.array([m.identity for m in measured])
    a, b = np.triu_indices(len(measured), k=1)
    same = identities[a] == identities[b]
    a, b = a[same], b[same]
    sims = np.einsum("ij,ij->i", vectors[a], vectors[b])
    return a, b, sims < threshold


# Each gate as (name, the number it reads, candidate values, whether a face is refused below (True) or above).
GATE_TABLES: list[tuple[str, Callable[[Quality], float], tuple[float, ...], bool]] = [
    ("interocular_px <", lambda q: q.interocular_px, (10, 12, 15, 20, 25, 30, 40, 50), True),
    ("sharpness <", lambda q: q.sharpness, (0.06, 0.08, 0.1, 0.11, 0.12, 0.13, 0.15, 0.2), True),
    ("|yaw_deg| >", lambda q: abs(q.yaw_deg), (60, 45, 40, 35, 30, 25, 20), False),
    ("|roll_deg| >", lambda q: abs(q.roll_deg), (60, 45, 30, 20, 15), False),
    ("detection_score <", lambda q: q.detection_score, (0.9, 0.95, 0.98, 0.99, 0.995, 0.999), True),
    ("box_at_border", lambda q: float(q.box_at_border), (0.5,), False),
    ("border_margin <", lambda q: q.border_margin, (0.0, 0.1, 0.25, 0.5, 0.75, 1.0), True),
]


def print_gate_tables(qualities: list[Quality], a: np.ndarray, b: np.ndarray, fails: np.ndarray) -> None:
    n = len(qualities)
    failing = set(zip(a[fails].tolist(), b[fails].tolist(), strict=True))
    compared = set(a.tolist()) | set(b.tolist())
    bad_faces = set(a[fails].tolist()) | set(b[fails].tolist())
    good = compared - bad_faces
    print(
        f"{n} faces, {len(a)} same-person comparisons, {len(failing)} fail; "
        f"{len(good)} good faces (every comparison passes), {len(bad_faces)} faces in a failing comparison"
    )
    for name, value, candidates, below in GATE_TABLES:
        numbers = np.array([value(q) for q in qualities])
        print(
            f"\n{name:18}  refused  failing removed  good refused   (percentiles 1/5/50/95/99 of the measure:"
            f" {' '.join(f'{v:.3g}' for v in np.percentile(numbers, [1, 5, 50, 95, 99]))})"
        )
        for candidate in candidates:
            refused = set(np.flatnonzero(numbers < candidate if below else numbers > candidate).tolist())
            removed = sum(1 for i, j in failing if i in refused or j in refused)
            print(
                f"{candidate:18}  {len(refused):7d}  {removed:7d} ({removed / max(1, len(failing)):4.0%})"
                f"  {len(refused & good):5d} ({len(refused & good) / max(1, len(good)):4.1%})"
            )
    for level in QUALITY_LEVELS[1:]:
        print(f"{level}: {GATES[level]}")
    print("\nper level:  refused  failing removed  good refused  reasons")
    for level in QUALITY_LEVELS:
        reasons = [q.reasons(level) for q in qualities]
        refused = {i for i, r in enumerate(reasons) if r}
        removed = sum(1 for i, j in failing if i in refused or j in refused)
        counts = {reason: sum(reason in r for r in reasons) for reason in REASONS}
        print(
            f"{level:10}  {len(refused):7d}  {removed:7d} ({removed / max(1, len(failing)):4.0%})"
            f"  {len(refused & good):5d} ({len(refused & good) / max(1, len(good)):4.1%})  "
            + " ".join(f"{k}={v}" for k, v in counts.items() if v)
        )


def pitch_proxy_spread(measured: list[Measured]) -> None:
    """Why pitch is not reported: the nose's height between eyes and mouth varies as much within near-frontal
    faces of different people as it does across one person's photos."""
    ratios, identities = [], []
    for m in measured:
        q = m.quality
        if abs(q.yaw_deg) > 15 or abs(q.roll_deg) > 15:
            continue
        p = m.face.landmark_array
        eyes, mouth = (p[0, 1] + p[1, 1]) / 2, (p[3, 1] + p[4, 1]) / 2
        ratios.append((p[2, 1] - eyes) / (mouth - eyes))
        identities.append(m.identity)
    ratios_a, ids = np.array(ratios), np.array(identities)
    within = [ratios_a[ids == i].std() for i in np.unique(ids) if np.count_nonzero(ids == i) >= 3]
    print(
        f"\npitch proxy (nose height between eye and mouth lines) on {len(ratios_a)} near-frontal faces: "
        f"spread across people sd {ratios_a.std():.3f}, within one person median sd {np.median(within):.3f}"
    )


def blurred(image: DecodedImage, sigma: float) -> DecodedImage:
    pixels = np.asarray(Image.fromarray(image.pixels).filter(ImageFilter.GaussianBlur(sigma)))
    return DecodedImage(pixels, image.width, image.height, image.scale)


def downscaled(image: DecodedImage, factor: float) -> DecodedImage:
    h, w = image.pixels.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    pixels = np.asarray(Image.fromarray(image.pixels).resize(size, Image.LANCZOS))
    return DecodedImage(pixels, size[0], size[1])


def cropped(image: DecodedImage, right: float) -> DecodedImage:
    """The image cut off at column `right` (a face running off the photo's right edge)."""
    pixels = np.ascontiguousarray(image.pixels[:, : max(1, round(right))])
    return DecodedImage(pixels, pixels.shape[1], pixels.shape[0], image.scale)


def synthetic(pipeline: FacePipeline, limits: ImageLimits, measured: list[Measured], count: int, t: float) -> None:
    """Degrade sharp enrolable faces and show what it does to their matches and which levels refuse them.

    Sources are good faces (every same-person comparison passes) that `medium` accepts, spread over the set.
    For each degradation: how many are still found, their median eye distance and sharpness, how many of
    their same-person comparisons now fail (against how many failed for the originals: none, by choice),
    and how many each level refuses, with the reasons `medium` gives.
    """
    identities = np.array([m.identity for m in measured])
    vectors = np.stack([m.vector for m in measured])
    a, b, fails = same_person_pairs(measured, t)
    bad = set(a[fails].tolist()) | set(b[fails].tolist())
    eligible = [
        i
        for i, m in enumerate(measured)
        if i not in bad and np.count_nonzero(identities == m.identity) >= 3 and not m.quality.reasons("medium")
    ]
    chosen = eligible[:: max(1, len(eligible) // count)][:count]
    comparisons = sum(np.count_nonzero(identities == measured[i].identity) - 1 for i in chosen)
    print(
        f"\nsynthetic degradations of {len(chosen)} good faces that `medium` accepts "
        f"({comparisons} same-person comparisons, all passing before)"
    )
    print(
        "degradation            found  eye px (median, max)  sharpness  failing comparisons  refused low/medium/high  at medium"
    )
    degradations: list[tuple[str, Callable[[DecodedImage, DetectedFace], DecodedImage]]] = [
        ("none", lambda img, f: img),
        *[
            (f"blur sigma {k:.0%} of box", lambda img, f, k=k: blurred(img, k * (f.box[2] - f.box[0])))
            for k in (0.01, 0.02, 0.03, 0.04, 0.06)
        ],
        *[
            (f"downscale to {w} px box", lambda img, f, w=w: downscaled(img, w / (f.box[2] - f.box[0])))
            for w in (25, 30, 40, 50, 60, 80)
        ],
        ("cropped at the mouth corner", lambda img, f: cropped(img, f.landmarks[4][0])),
        ("cropped at the nose", lambda img, f: cropped(img, f.landmarks[2][0])),
    ]
    for name, degrade in degradations:
        eyes, sharp, failing, found = [], [], 0, 0
        refused, reasons_medium = dict.fromkeys(QUALITY_LEVELS[1:], 0), dict.fromkeys(REASONS, 0)
        for i in chosen:
            m = measured[i]
            image = degrade(decode_image(m.path.read_bytes(), limits), m.face)
            result = analyse(pipeline, image)
            if result is None:
                continue
            found += 1
            face, chip, vector = result
            height, width = image.pixels.shape[:2]
            q = measure(face, chip, width, height)
            eyes.append(q.interocular_px)
            sharp.append(q.sharpness)
            others = (identities == m.identity) & (np.arange(len(measured)) != i)
            failing += int(np.count_nonzero(vectors[others] @ vector < t))
            for level in refused:
                refused[level] += bool(q.reasons(level))
            for r in q.reasons("medium"):
                reasons_medium[r] += 1
        print(
            f"{name:22} {found:3d}/{len(chosen)}  {np.median(eyes) if eyes else 0:6.1f} {max(eyes, default=0):6.1f}       "
            f"{np.median(sharp) if sharp else 0:9.3f}  {failing:19d}  "
            + f"{'/'.join(str(v) for v in refused.values()):>23}  "
            + " ".join(f"{k}={v}" for k, v in reasons_medium.items() if v)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dlib-resnet")
    parser.add_argument("--faces", type=Path, nargs="+", default=[FACES_DIR, FACES2_DIR])
    parser.add_argument("--cache", type=Path, help="an .npz to reuse (or write) the embeddings; keep it out of git")
    parser.add_argument("--synthetic", type=int, default=20, help="faces to degrade (0: none)")
    args = parser.parse_args()
    calibration = find(args.model)
    if calibration is None:
        raise SystemExit(f"no calibration for {args.model}: run scripts/calibrate.py first")
    threshold = calibration.threshold_for(CALIBRATED_RATE)
    detector = FaceDetector()
    pipeline = FacePipeline.in_process(detector, load_embedder(args.model))
    limits = ImageLimits(reduce_to=2 * detector.config.max_side)
    if args.cache and args.cache.is_file():
        measured = load(args.cache)
    else:
        measured = embed_photos(pipeline, limits, tuple(args.faces))
        if args.cache:
            save(measured, args.cache)
    print(f"{args.model}: 1:1 threshold {threshold:.4f} (per-comparison false-accept rate {CALIBRATED_RATE:g})")
    a, b, fails = same_person_pairs(measured, threshold)
    print_gate_tables([m.quality for m in measured], a, b, fails)
    pitch_proxy_spread(measured)
    if args.synthetic:
        synthetic(pipeline, limits, measured, args.synthetic, threshold)


if __name__ == "__main__":
    main()
