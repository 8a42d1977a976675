"""The labelled photos in ../shared/faces, read the same way by tests, evaluation and benchmarks."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

FACES_DIR = Path(__file__).resolve().parents[2] / "shared" / "faces"


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str
    faces_expected: int | None
    width: int
    height: int


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    evidence: str


def manifest(faces_dir: Path = FACES_DIR) -> list[Photo]:
    with open(faces_dir / "MANIFEST.csv", newline="") as f:
        return [
            Photo(
                path=faces_dir / row["path"],
                identity=row["identity"],
                faces_expected=int(row["faces_expected"]) if row["faces_expected"] else None,
                width=int(row["width"] or 0),
                height=int(row["height"] or 0),
            )
            for row in csv.DictReader(f)
        ]


def pairs(faces_dir: Path = FACES_DIR) -> list[Pair]:
    with open(faces_dir / "PAIRS.csv", newline="") as f:
        return [
            Pair(faces_dir / row["a"], faces_dir / row["b"], row["same"] == "1", row["evidence"])
            for row in csv.DictReader(f)
        ]


def single_face_photos(faces_dir: Path = FACES_DIR) -> list[Path]:
    """Photos of exactly one named person, originals only: pre-cropped and
    pre-aligned copies are too tight for MTCNN's landmarks to be trusted."""
    return [
        p.path
        for p in manifest(faces_dir)
        if p.faces_expected == 1
        and p.identity
        and ";" not in p.identity
        and "cropped" not in str(p.path)
        and "aligned" not in str(p.path)
        and p.path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
    ]


FACES2_DIR = FACES_DIR.with_name("faces2")


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    identity: str
    """Lower-cased, `_` as space, so `angelina_jolie` in one set is `Angelina Jolie` in another."""
    inferred: bool
    """A by-eye cluster (`inferred:` label): the source does not say two such clusters are different people."""


def identity_photos(dirs: tuple[Path, ...] = (FACES_DIR, FACES2_DIR)) -> list[LabelledPhoto]:
    """One photo per photograph of exactly one named person, for calibration and open-set evaluation.

    Copies of one photograph (PAIRS.csv's SAME_PHOTO rows: crops, aligned versions, other formats) would
    count as easy same-person pairs, so only the first of each group is kept, originals before crops.
    """
    out: list[LabelledPhoto] = []
    for faces_dir in dirs:
        copies: dict[Path, set[Path]] = {}
        for pair in pairs(faces_dir):
            if "SAME_PHOTO" in pair.evidence:
                copies.setdefault(pair.a, set()).add(pair.b)
                copies.setdefault(pair.b, set()).add(pair.a)
        photos = [
            p for p in manifest(faces_dir) if p.identity and ";" not in p.identity and p.faces_expected in (1, None)
        ]
        dropped: set[Path] = set()
        for photo in sorted(photos, key=lambda p: ("aligned" in str(p.path) or "cropped" in str(p.path), p.path)):
            if photo.path in dropped:
                continue
            dropped |= copies.get(photo.path, set())
            label = photo.identity.lower().replace("_", " ")
            out.append(LabelledPhoto(photo.path, label, label.startswith("inferred:")))
    return out
