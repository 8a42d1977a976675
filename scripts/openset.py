"""The 1:N open-set protocol NIST FRVT reports (FNIR at FPIR), run through the service's own decision code.

For each of `splits` random draws: half of the identities with several photos are enrolled, with one photo
each (and again with up to three); their other photos are mated probes, and every photo of the other
identities (including those with a single photo) is a non-mated probe. A mated probe counts as a miss
(FNIR) unless the decision is `match` with the right person; a non-mated probe counts as a false positive
(FPIR) when the decision is `match`. `ambiguous` is reported on its own. By-eye clusters (`inferred:`
labels) are left out: the source does not say they are different people.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from api.decisions import SECURITY_LEVELS, decide, policy
from models.calibration import Calibration
from qdrant import PersonMatch


@dataclass
class Tally:
    mated: int = 0
    misses: int = 0
    nonmated: int = 0
    false_matches: int = 0
    ambiguous_nonmated: int = 0
    mated_photos: set[int] = field(default_factory=set)
    nonmated_photos: set[int] = field(default_factory=set)

    @property
    def fnir(self) -> float:
        return self.misses / max(1, self.mated)

    @property
    def fpir(self) -> float:
        return self.false_matches / max(1, self.nonmated)


Template = str  # "max" | "mean" | "mean-vector"


def _candidates(probe: np.ndarray, gallery: dict[str, np.ndarray], template: Template) -> list[PersonMatch]:
    out = []
    for person, vectors in gallery.items():
        sims = vectors @ probe
        if template == "max":
            score = float(sims.max())
        elif template == "mean":
            score = float(sims.mean())
        else:
            mean = vectors.mean(axis=0)
            score = float(mean @ probe / np.linalg.norm(mean))
        out.append(PersonMatch(person, None, {}, score, person, len(vectors)))
    return sorted(out, key=lambda m: m.similarity, reverse=True)


def run(
    vectors: np.ndarray,
    identities: list[str],
    calibration: Calibration | None,
    fallback_threshold: float,
    levels: list[str | float],
    *,
    enrol: int = 1,
    splits: int = 50,
    template: Template = "max",
    seed: int = 0,
) -> dict[str | float, Tally]:
    """Tallies per level; a float level is a fixed cosine threshold (the rule before calibration)."""
    by_identity: dict[str, list[int]] = defaultdict(list)
    for index, identity in enumerate(identities):
        if not identity.startswith("inferred:"):
            by_identity[identity].append(index)
    several = sorted(i for i, photos in by_identity.items() if len(photos) >= 2)
    single = sorted(i for i, photos in by_identity.items() if len(photos) == 1)
    rng = np.random.default_rng(seed)
    tallies = {level: Tally() for level in levels}
    for _ in range(splits):
        order = rng.permutation(several)
        enrolled, strangers = order[: len(order) // 2], [*order[len(order) // 2 :], *single]
        gallery: dict[str, np.ndarray] = {}
        probes: list[tuple[int, str | None]] = []
        for identity in enrolled:
            photos = rng.permutation(by_identity[identity])
            count = min(enrol, len(photos) - 1)
            gallery[identity] = vectors[photos[:count]]
            probes += [(int(p), identity) for p in photos[count:]]
        probes += [(p, None) for identity in strangers for p in by_identity[identity]]
        faces = sum(len(v) for v in gallery.values())
        comparisons = faces if template == "max" else len(gallery)
        for photo, truth in probes:
            found = _candidates(vectors[photo], gallery, template)
            for level in levels:
                if isinstance(level, float):
                    rule = policy(None, level, "medium", comparisons)
                else:
                    rule = policy(calibration, fallback_threshold, level, comparisons)
                decision = decide([found], rule)[0]
                tally = tallies[level]
                if truth is None:
                    tally.nonmated += 1
                    tally.nonmated_photos.add(photo)
                    tally.false_matches += decision.decision == "match"
                    tally.ambiguous_nonmated += decision.decision == "ambiguous"
                else:
                    tally.mated += 1
                    tally.mated_photos.add(photo)
                    named = decision.match.person_id if decision.match and decision.decision == "match" else None
                    tally.misses += named != truth
    return tallies


def report(title: str, tallies: dict[str | float, Tally], splits: int) -> None:
    print(f"  {title}")
    print("    level          FNIR     FPIR   (ambiguous non-mated)   searches mated/non-mated (distinct photos)")
    for level, t in tallies.items():
        name = f"cos>={level:.3f}" if isinstance(level, float) else f"{level} ({SECURITY_LEVELS[level]:.0e})"
        print(
            f"    {name:13} {t.fnir:6.4f}   {t.fpir:6.4f}   ({t.ambiguous_nonmated / max(1, t.nonmated):.4f})"
            f"              {t.mated}/{t.nonmated} ({len(t.mated_photos)}/{len(t.nonmated_photos)})"
        )
    distinct = len(next(iter(tallies.values())).nonmated_photos)
    print(
        f"    {splits} splits re-use the same photos: with {distinct} distinct non-mated photos, an FPIR under "
        f"{1 / max(1, distinct):.3f} is one photo's worth, and a true FPIR up to {3 / max(1, distinct):.3f} can "
        "show no false match at all (rule of three, 95%)."
    )
