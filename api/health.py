"""A directory's health: the enrolments that will cause wrong answers later, found before they do.

Three things go wrong in a gallery without anyone noticing at enrolment time:
- a face enrolled under the wrong person (or a bad photo of the right one) sits far from the person's
  other faces: it misses the person and, matching nobody in particular, lends their name to strangers;
- two persons whose faces are as close as the security level's threshold will be mixed up (the same
  person enrolled twice, or twins): recognition answers `ambiguous` or names the wrong one;
- a person with a single face has nothing to vouch for it, and is the likeliest to miss.

The report is a pure function of the vectors and two thresholds, so the HTTP layer decides where the
thresholds come from (the model's calibration and the directory's size) and this can be tested on real
embeddings without a gallery. Work is blockwise, so memory stays at BLOCK × faces similarities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qdrant.domain import PersonVectors

BLOCK = 1024


@dataclass(frozen=True)
class DisagreeingFace:
    """A face none of whose person's other faces is as similar as the agreement threshold."""

    person_id: str
    face_id: str
    best_similarity: float
    """To the most similar other face of the same person."""
    closest_person_id: str | None
    """The other person holding the face most similar to this one, when that is more similar than any of its own
    person's faces: the likely true identity of a mislabelled face."""


@dataclass(frozen=True)
class ConfusablePair:
    """Two persons with a face each at least as similar as the confusion threshold; person_a < person_b."""

    person_a: str
    person_b: str
    similarity: float
    face_a: str
    face_b: str


@dataclass(frozen=True)
class HealthReport:
    persons: int
    faces: int
    disagreeing: tuple[DisagreeingFace, ...]
    """Worst first."""
    confusable: tuple[ConfusablePair, ...]
    """Most similar first."""
    single_face: tuple[str, ...]
    truncated: tuple[str, ...]
    """Persons with more faces than a health read returns: only those read were checked."""


def health_report(
    persons: Sequence[PersonVectors], *, agreement_threshold: float, confusion_threshold: float
) -> HealthReport:
    """Check every enrolled face against every other one.

    `agreement_threshold`: a face whose best similarity to its own person's other faces is below it disagrees
    (measured choice: the model's calibrated 1:1 threshold, see BENCHMARKS.md "Directory health").
    `confusion_threshold`: two persons are confusable when any pair of their faces reaches it (the security
    level's threshold for the directory's size: the one recognition decides with).
    """
    owners = [p for p in persons if len(p.face_ids)]
    if not owners:
        return HealthReport(len(persons), 0, (), (), tuple(p.person_id for p in persons if not p.face_ids), ())
    vectors = np.concatenate([np.asarray(p.vectors, dtype=np.float32) for p in owners])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    label = np.concatenate([np.full(len(p.face_ids), k) for k, p in enumerate(owners)])
    face_ids = [face_id for p in owners for face_id in p.face_ids]
    counts = np.bincount(label)
    best_own = np.full(len(vectors), -np.inf, dtype=np.float32)
    best_other = np.full(len(vectors), -np.inf, dtype=np.float32)
    best_other_person = np.full(len(vectors), -1)
    pairs: dict[tuple[int, int], tuple[float, int, int]] = {}
    for start in range(0, len(vectors), BLOCK):
        rows = slice(start, start + BLOCK)
        sims = vectors[rows] @ vectors.T
        own = label[rows, None] == label[None, :]
        index = np.arange(start, start + sims.shape[0])
        sims[index - start, index] = -np.inf  # a face is not its own evidence
        best_own[rows] = np.where(own, sims, -np.inf).max(axis=1)
        other = np.where(own, -np.inf, sims)
        best_other_person[rows] = label[other.argmax(axis=1)]
        best_other[rows] = other.max(axis=1)
        for i, j in zip(*np.nonzero(other >= confusion_threshold), strict=True):
            a, b = label[start + i], label[j]
            if a < b:
                key, value = (a, b), (float(other[i, j]), start + i, int(j))
                if key not in pairs or value[0] > pairs[key][0]:
                    pairs[key] = value
    disagreeing = [
        DisagreeingFace(
            owners[label[i]].person_id,
            face_ids[i],
            round(float(best_own[i]), 5),
            owners[best_other_person[i]].person_id if best_other[i] > best_own[i] else None,
        )
        for i in np.flatnonzero((counts[label] > 1) & (best_own < agreement_threshold))
    ]
    confusable = [
        _pair(owners[a].person_id, owners[b].person_id, s, face_ids[i], face_ids[j])
        for (a, b), (s, i, j) in pairs.items()
    ]
    return HealthReport(
        persons=len(persons),
        faces=len(vectors),
        disagreeing=tuple(sorted(disagreeing, key=lambda d: d.best_similarity)),
        confusable=tuple(sorted(confusable, key=lambda c: -c.similarity)),
        single_face=tuple(p.person_id for p in persons if len(p.face_ids) == 1),
        truncated=tuple(p.person_id for p in persons if p.truncated),
    )


def _pair(a: str, b: str, similarity: float, face_a: str, face_b: str) -> ConfusablePair:
    """The pair with its persons in id order, so a report lists each pair one way."""
    if b < a:
        a, b, face_a, face_b = b, a, face_b, face_a
    return ConfusablePair(a, b, round(similarity, 5), face_a, face_b)
