"""Accuracy of the whole pipeline (detect → align → embed) on ../shared/faces.

    python scripts/evaluate.py [--models dlib-resnet facenet-vggface2] [--faces DIR]
    python scripts/evaluate.py --open-set [--splits 50]

--open-set runs the 1:N open-set protocol (scripts/openset.py) on ../shared/faces and ../shared/faces2,
separately and together, at every security level and at the fixed threshold used before calibration,
then compares person templates (max, mean similarity, mean vector) with up to three photos enrolled.

Verification on PAIRS.csv per model: same/different distance distributions,
TAR at FAR = 1% and 0.1%, the best-accuracy threshold, and pairs where a
photo had no face. Then MTCNN's recall and precision against the imglab
boxes in dlib/examples/faces/*.xml (IoU ≥ 0.5, faces ≥ 40 px).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import store  # noqa: E402
from models.detector import FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.imaging import ImageError, ImageLimits, decode_image  # noqa: E402
from models.pipeline import AnalysisFailed, FacePipeline  # noqa: E402
from models.registry import EMBEDDERS  # noqa: E402
from scripts.faces_data import FACES_DIR, pairs  # noqa: E402


def tar_at_far(same: np.ndarray, different: np.ndarray, far: float) -> tuple[float, float]:
    """True-accept rate at the distance threshold that accepts at most `far` of different pairs."""
    k = int(np.floor(far * len(different)))
    ordered = np.sort(different)
    threshold = ordered[k] if k < len(ordered) else np.inf
    # accept strictly below the (k+1)-th smallest impostor distance
    return float(np.mean(same < threshold)), float(threshold)


def best_threshold(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    candidates = np.unique(np.concatenate([same, different]))
    best = (0.0, 0.0)
    for t in candidates:
        accuracy = (np.sum(same <= t) + np.sum(different > t)) / (len(same) + len(different))
        best = max(best, (float(accuracy), float(t)))
    return best[1], best[0]


def describe(name: str, values: np.ndarray) -> str:
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return (
        f"  {name:9} n={len(values):4}  mean={values.mean():.3f} sd={values.std():.3f}  "
        f"min={q[0]:.3f} p5={q[1]:.3f} median={q[2]:.3f} p95={q[3]:.3f} max={q[4]:.3f}"
    )


def evaluate_model(model_id: str, detector: FaceDetector, faces_dir: Path) -> None:
    embedder = load_embedder(model_id)
    pipeline = FacePipeline.in_process(detector, embedder)
    limits = ImageLimits(reduce_to=2 * detector.config.max_side)  # decoded as the service decodes
    rows = pairs(faces_dir)
    vectors: dict[Path, np.ndarray | None] = {}
    unreadable: dict[Path, str] = {}
    for path in sorted({p for row in rows for p in (row.a, row.b)}):
        try:
            found = pipeline.run(decode_image(path.read_bytes(), limits))
        except (ImageError, AnalysisFailed) as exc:
            unreadable[path] = exc.code
            vectors[path] = None
            continue
        vectors[path] = found.vectors[0] if found.faces else None  # largest face
    no_face = [r for r in rows if vectors[r.a] is None or vectors[r.b] is None]
    entry = embedder.entry
    print(
        f"\n== {model_id} ({entry.dim}-d, cosine threshold {entry.threshold}, distance {entry.distance_threshold:.3f})"
    )
    print(
        f"pairs: {len(rows)}  evaluated: {len(rows) - len(no_face)}  with a photo where no face was found: {len(no_face)}"
    )
    for path in sorted(p for p, v in vectors.items() if v is None):
        reason = f"unreadable ({unreadable[path]})" if path in unreadable else "no face"
        print(f"  {reason}: {path.relative_to(faces_dir)}")
    for label, keep in (
        ("all pairs", lambda r: True),
        ("excluding SAME_PHOTO", lambda r: "SAME_PHOTO" not in r.evidence),
    ):
        scored = [r for r in rows if r not in no_face and keep(r)]
        dist = np.array([np.linalg.norm(vectors[r.a] - vectors[r.b]) for r in scored])
        same_mask = np.array([r.same for r in scored])
        same, different = dist[same_mask], dist[~same_mask]
        print(f"[{label}] same={len(same)} different={len(different)}  (Euclidean distance on unit vectors)")
        print(describe("same", same))
        print(describe("different", different))
        for far in (0.01, 0.001):
            tar, thr = tar_at_far(same, different, far)
            print(f"  TAR@FAR={far:.1%}: {tar:.4f}  (distance < {thr:.3f})")
        thr, acc = best_threshold(same, different)
        print(f"  best accuracy {acc:.4f} at distance <= {thr:.3f} (cosine >= {1 - thr * thr / 2:.3f})")
        at_spec = (np.sum(same <= entry.distance_threshold) + np.sum(different > entry.distance_threshold)) / len(dist)
        print(f"  accuracy at the model's documented threshold: {at_spec:.4f}")


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def evaluate_detection(detector: FaceDetector, faces_dir: Path, min_size: int = 40) -> None:
    """Greedy IoU matching; ground-truth faces under min_size (or marked ignore) are don't-care."""
    folder = faces_dir / "dlib/examples/faces"
    tp = fn = fp = 0
    for xml in ("training.xml", "testing.xml"):
        for image_el in ET.parse(folder / xml).getroot().iter("image"):
            boxes, dont_care = [], []
            for b in image_el.iter("box"):
                left, top, w, h = (int(b.get(k)) for k in ("left", "top", "width", "height"))
                box = (left, top, left + w, top + h)
                (dont_care if b.get("ignore") == "1" or w < min_size else boxes).append(box)
            found = detector.detect([decode_image((folder / image_el.get("file")).read_bytes()).pixels])[0] or []
            unmatched = list(boxes)
            for face in found:
                best = max(unmatched, key=lambda g: iou(face.box, g), default=None)
                if best is not None and iou(face.box, best) >= 0.5:
                    unmatched.remove(best)
                    tp += 1
                elif not any(iou(face.box, g) >= 0.5 for g in dont_care):
                    fp += 1
            fn += len(unmatched)
    print(f"\n== MTCNN detection on dlib/examples/faces (IoU >= 0.5, faces >= {min_size} px)")
    print(f"ground truth: {tp + fn}  found: {tp}  missed: {fn}  false positives: {fp}")
    print(f"recall: {tp / max(1, tp + fn):.4f}  precision: {tp / max(1, tp + fp):.4f}")


def evaluate_open_set(model_id: str, splits: int) -> None:
    from api.decisions import SECURITY_LEVELS
    from models.calibration import find
    from scripts.calibrate import labelled_vectors, print_table
    from scripts.faces_data import FACES2_DIR
    from scripts.openset import report, run

    spec = EMBEDDERS[model_id]
    calibration = find(model_id, store.stored_file(spec.weights).parent)
    photos, vectors = labelled_vectors(model_id, (FACES_DIR, FACES2_DIR))
    identities = [p.identity for p in photos]
    print(f"\n== open-set 1:N, {model_id}: {len(photos)} photos with a face, {len(set(identities))} identities")
    if calibration is None:
        print("  uncalibrated: only the fixed threshold is evaluated")
    else:
        from models.calibration import impostor_scores
        from scripts.calibrate import comparable_pairs

        ids = np.array(identities)
        print_table(calibration, impostor_scores(vectors, ids, comparable_pairs(photos)))
    levels: list[str | float] = [spec.threshold, *(SECURITY_LEVELS if calibration else [])]
    for name, folders in (("faces", (FACES_DIR,)), ("faces2", (FACES2_DIR,)), ("faces + faces2", None)):
        keep = [i for i, p in enumerate(photos) if folders is None or any(f in p.path.parents for f in folders)]
        for enrol in (1, 3):
            tallies = run(
                vectors[keep],
                [identities[i] for i in keep],
                calibration,
                spec.threshold,
                levels,
                enrol=enrol,
                splits=splits,
            )
            report(f"{name}, {enrol} photo(s) enrolled per person, person = best of their faces", tallies, splits)
    if calibration is not None:
        for template in ("max", "mean", "mean-vector"):
            tallies = run(
                vectors, identities, calibration, spec.threshold, ["medium"], enrol=3, splits=splits, template=template
            )
            report(f"faces + faces2, up to 3 photos enrolled, person template = {template}", tallies, splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", choices=sorted(EMBEDDERS), help="default: every imported model")
    parser.add_argument("--faces", type=Path, default=FACES_DIR)
    parser.add_argument("--open-set", action="store_true", help="the 1:N open-set protocol instead")
    parser.add_argument("--splits", type=int, default=50, help="random enrolment splits for --open-set")
    args = parser.parse_args()
    models = args.models or [m for m, entry in EMBEDDERS.items() if store.find(entry.weights) is not None]
    if args.open_set:
        for model_id in models:
            evaluate_open_set(model_id, args.splits)
        return
    detector = FaceDetector()
    for model_id in models:
        evaluate_model(model_id, detector, args.faces)
    skipped = sorted(set(EMBEDDERS) - set(models))
    if skipped:
        print(f"\nnot evaluated (not imported into the model store): {', '.join(skipped)}")
    evaluate_detection(detector, args.faces)


if __name__ == "__main__":
    main()
