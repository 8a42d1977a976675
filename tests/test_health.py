"""The directory-health report on real embeddings: a mislabelled face and a person enrolled twice are found."""

from __future__ import annotations

import numpy as np
import pytest

from api.decisions import policy
from api.health import health_report
from models.calibration import find
from qdrant.domain import PersonVectors
from scripts.faces_data import FACES_DIR

JOHNS = FACES_DIR / "dlib/examples/johns"


def photos(person: str, count: int, skip: int = 0) -> list:
    return sorted((JOHNS / person).glob("*.jpg"))[skip : skip + count]


def person(person_id: str, vectors: np.ndarray, truncated: bool = False) -> PersonVectors:
    return PersonVectors(person_id, None, tuple(f"{person_id}/{k}" for k in range(len(vectors))), vectors, truncated)


@pytest.fixture(scope="module")
def directory() -> list[PersonVectors]:
    """Three Johns with three photos each, one of John Simm's photos enrolled as John Savage, John Salley
    enrolled a second time from other photos, and a person with one photo."""
    if not JOHNS.is_dir():
        pytest.skip(f"shared photos not found at {JOHNS}")
    from scripts.pipeline_runner import embed_largest

    groups = [photos(name, 3) for name in ("John_Salley", "John_Savage", "John_Simm")]
    groups += [photos("John_Simm", 1, skip=5), photos("John_Salley", 2, skip=5), photos("John_Shimkus", 1)]
    found = embed_largest("dlib-resnet", [path for group in groups for path in group])
    assert all(v is not None for v in found)
    ends = np.cumsum([len(g) for g in groups])
    salley, savage, simm, mislabelled, again, single = np.split(np.stack(found), ends[:-1])
    return [
        person("salley", salley),
        person("savage", np.concatenate([savage, mislabelled])),
        person("simm", simm),
        person("salley-again", again),
        person("shimkus", single, truncated=True),
    ]


def thresholds(faces: int) -> tuple[float, float]:
    calibration = find("dlib-resnet")
    return calibration.threshold_for(1e-3), policy(calibration, 0.91, "medium", faces).threshold


def test_a_mislabelled_face_a_duplicate_person_and_a_single_face_are_flagged(directory):
    agreement, confusion = thresholds(sum(len(p.face_ids) for p in directory))
    report = health_report(directory, agreement_threshold=agreement, confusion_threshold=confusion)
    assert (report.persons, report.faces) == (5, 13)
    assert [(d.person_id, d.face_id, d.closest_person_id) for d in report.disagreeing] == [
        ("savage", "savage/3", "simm")
    ]
    assert report.disagreeing[0].best_similarity < agreement
    # the duplicate, and the mislabelled face's true owner: nobody else
    assert {(c.person_a, c.person_b) for c in report.confusable} == {("salley", "salley-again"), ("savage", "simm")}
    by_pair = {(c.person_a, c.person_b): c for c in report.confusable}
    assert by_pair[("savage", "simm")].face_a == "savage/3"
    assert all(c.similarity >= confusion for c in report.confusable)
    assert report.single_face == ("shimkus",) and report.truncated == ("shimkus",)


def test_a_clean_directory_reports_nothing_but_its_single_faces(directory):
    clean = [directory[0], person("savage", directory[1].vectors[:3]), directory[2]]
    agreement, confusion = thresholds(9)
    report = health_report(clean, agreement_threshold=agreement, confusion_threshold=confusion)
    assert report.disagreeing == () and report.confusable == () and report.single_face == ()


def test_the_report_is_the_same_whatever_the_block_size(directory, monkeypatch):
    agreement, confusion = thresholds(13)
    whole = health_report(directory, agreement_threshold=agreement, confusion_threshold=confusion)
    monkeypatch.setattr("api.health.BLOCK", 4)
    assert health_report(directory, agreement_threshold=agreement, confusion_threshold=confusion) == whole


def test_no_faces_no_findings():
    report = health_report([person("empty", np.zeros((0, 128)))], agreement_threshold=0.9, confusion_threshold=0.9)
    assert (report.persons, report.faces, report.disagreeing, report.confusable) == (1, 0, (), ())
