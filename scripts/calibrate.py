"""Measure a model's impostor tail on the labelled photos and store it with the model.

    python scripts/calibrate.py [--model dlib-resnet] [--faces DIR ...] [--out FILE]

Embeds the largest face of every single-person photo in ../shared/faces and ../shared/faces2, fits the
calibration (models/calibration.py explains the method) and writes it to models/calibrations/MODEL.json,
the file the service reads. Prints the table the service decides with: for each per-comparison
false-accept rate, the similarity threshold, and the rate actually observed on these photos at it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.calibration import CALIBRATIONS_DIR, Calibration, fit, impostor_scores  # noqa: E402
from scripts.faces_data import FACES2_DIR, FACES_DIR, LabelledPhoto, identity_photos  # noqa: E402
from scripts.pipeline_runner import embed_largest  # noqa: E402


def labelled_vectors(model_id: str, dirs: tuple[Path, ...]) -> tuple[list[LabelledPhoto], np.ndarray]:
    """The photos in which a face was found, and the unit vector of each one's largest face."""
    photos = identity_photos(dirs)
    vectors = embed_largest(model_id, [p.path for p in photos])
    kept = [(p, v) for p, v in zip(photos, vectors, strict=False) if v is not None]
    return [p for p, _ in kept], np.stack([v for _, v in kept])


def comparable_pairs(photos: list[LabelledPhoto]) -> np.ndarray:
    """Pairs whose labels can say "different people": not two by-eye clusters, which may be one person."""
    inferred = np.array([p.inferred for p in photos])
    return ~(inferred[:, None] & inferred[None, :])


def calibrate(model_id: str, dirs: tuple[Path, ...]) -> tuple[Calibration, np.ndarray]:
    photos, vectors = labelled_vectors(model_id, dirs)
    identities = np.array([p.identity for p in photos])
    comparable = comparable_pairs(photos)
    calibration = fit(
        model_id,
        vectors,
        identities,
        comparable,
        source=" + ".join(f"{d.name} ({sum(1 for p in photos if d in p.path.parents)} photos)" for d in dirs),
        created=date.today().isoformat(),
    )
    return calibration, impostor_scores(vectors, identities, comparable)


def print_table(calibration: Calibration, impostors: np.ndarray) -> None:
    print(
        f"{calibration.model_id}: {calibration.identities} identities, {calibration.impostor_pairs} impostor pairs, "
        f"{calibration.genuine_pairs} same-person pairs; ambiguity margin {calibration.ambiguity_margin:.4f}"
    )
    print("  per-comparison FAR  threshold  observed FAR at it (pairs over)")
    for rate, similarity in zip(reversed(calibration.rates), reversed(calibration.similarities), strict=False):
        over = int(np.count_nonzero(impostors >= similarity))
        print(f"  {rate:18.1e}  {similarity:9.4f}  {over / len(impostors):.1e} ({over})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dlib-resnet")
    parser.add_argument("--faces", type=Path, nargs="+", default=[FACES_DIR, FACES2_DIR])
    parser.add_argument("--out", type=Path, help="default: models/calibrations/MODEL.json")
    args = parser.parse_args()
    calibration, impostors = calibrate(args.model, tuple(args.faces))
    print_table(calibration, impostors)
    out = args.out or CALIBRATIONS_DIR / f"{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    calibration.save(out)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
