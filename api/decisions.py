"""Who each face in a photo is: match, unknown or ambiguous, decided from the model's calibration.

The rule, per request:
- the threshold is the similarity whose per-comparison impostor rate, times the number of enrolled faces a
  probe is compared with, stays under the security level's open-set false-match rate (union bound: see
  models/calibration.py); an expert `threshold` replaces it for callers who tuned their own;
- a person is scored by their best-matching enrolled face (max over the person's faces, measured best on our
  photos: see README, "How decisions are made");
- faces and persons are paired jointly, most similar pair first, so one person is given to at most one face
  of a photo: the resulting pairing is stable (no face and person both prefer each other to what they got);
- a person whose negative example ("not this person", /persons/reject) is as similar to the face as their own
  faces, to within the calibrated margin, is no candidate for it: the face looks like one they are not;
- a face below the request's quality level takes no part: it is `unknown`, with its candidates listed;
- a face whose best two available persons are both over the threshold and closer than the calibrated margin
  (how much one person's similarity moves between photos) is `ambiguous`, naming both, never a silent pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from faceserve.schemas import Security
from models.calibration import Calibration
from qdrant import PersonMatch

# The open-set false-match rate each level allows per probe face: the chance that a stranger is named.
SECURITY_LEVELS: dict[Security, float] = {"low": 5e-2, "medium": 1e-2, "high": 1e-3, "strict": 1e-4}
Decision = Literal["match", "unknown", "ambiguous"]


@dataclass(frozen=True)
class Policy:
    """How a request decides: its threshold and what a similarity means at this directory size."""

    threshold: float
    comparisons: int
    calibration: Calibration | None
    ambiguity_margin: float

    def false_accept_probability(self, similarity: float) -> float | None:
        """Estimated chance that a stranger scores this high against someone among `comparisons` faces."""
        if self.calibration is None:
            return None
        return min(1.0, self.comparisons * self.calibration.rate_at(similarity))


def policy(
    calibration: Calibration | None,
    fallback_threshold: float,
    security: Security,
    comparisons: int,
    threshold: float | None = None,
) -> Policy:
    """The threshold for a probe compared with `comparisons` enrolled faces at a security level.

    Without a calibration the model's fixed threshold is all there is (the response says so).
    """
    comparisons = max(1, comparisons)
    margin = calibration.ambiguity_margin if calibration is not None else 0.0
    if threshold is None:
        if calibration is None:
            threshold = fallback_threshold
        else:
            threshold = calibration.threshold_for(SECURITY_LEVELS[security] / comparisons)
    return Policy(threshold, comparisons, calibration, margin)


@dataclass(frozen=True)
class FaceDecision:
    decision: Decision
    match: PersonMatch | None
    """The person named (match), or the best of the tied ones (ambiguous)."""
    tied: tuple[PersonMatch, ...]
    """For `ambiguous`: every person within the margin of the best, best first."""
    others: tuple[PersonMatch, ...]
    """The remaining candidates, best first."""
    margin: float | None
    """Similarity of the best available person minus the next one; None with fewer than two candidates."""
    false_accept_probability: float | None


def without_rejected(found: list[PersonMatch], rule: Policy) -> list[PersonMatch]:
    """The candidates not ruled out by their negative examples: a person stays only when the face is closer to
    their faces than to their nearest negative by more than the margin one person's similarity moves by."""
    return [
        c
        for c in found
        if c.negative_similarity is None or c.similarity > c.negative_similarity + rule.ambiguity_margin
    ]


def decide(candidates: list[list[PersonMatch]], rule: Policy, gated: list[bool] | None = None) -> list[FaceDecision]:
    """One decision per face of a photo, from each face's candidate persons (best first); a `gated` face (below
    the quality level) is `unknown` and claims no person another face of the photo could have."""
    gated = gated or [False] * len(candidates)
    pairs = sorted(
        ((c.similarity, face, c.person_id) for face, found in enumerate(candidates) if not gated[face] for c in found),
        key=lambda p: p[0],
        reverse=True,
    )
    given: dict[int, str] = {}
    taken: set[str] = set()
    for similarity, face, person_id in pairs:
        if similarity < rule.threshold:
            break
        if face not in given and person_id not in taken:
            given[face] = person_id
            taken.add(person_id)
    return [_one(found, given.get(face), taken, rule) for face, found in enumerate(candidates)]


def _one(found: list[PersonMatch], assigned: str | None, taken: set[str], rule: Policy) -> FaceDecision:
    # persons another face of the photo was given are not this face's to claim or to be confused with
    free = [c for c in found if c.person_id == assigned or c.person_id not in taken]
    best = free[0] if free else None
    margin = round(free[0].similarity - free[1].similarity, 5) if len(free) > 1 else None
    fap = rule.false_accept_probability(best.similarity) if best else None
    if best is None or assigned is None:
        return FaceDecision("unknown", None, (), tuple(free), margin, fap)
    tied = tuple(
        c for c in free if c.similarity >= rule.threshold and best.similarity - c.similarity < rule.ambiguity_margin
    )
    if len(tied) > 1:
        return FaceDecision("ambiguous", best, tied, tuple(c for c in free if c not in tied), margin, fap)
    return FaceDecision("match", best, (), tuple(free[1:]), margin, fap)
