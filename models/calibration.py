"""How often a stranger scores a given similarity: the numbers every match decision rests on.

A fixed cosine threshold names strangers as enrolled people more often the
more people a directory holds: a probe is compared with every enrolled face,
and any one comparison over the threshold is a false match. So the service
decides with the per-comparison impostor tail F(s) = P(similarity of two
different people's faces >= s), measured per model on labelled photos, and
picks for each request the threshold whose open-set false-match rate stays
under the requested level: by the union bound, P(any of n impostor
comparisons >= t) <= n * F(t), whatever the correlation between them, so
t = F^-1(target / n) is safe for any directory size.

F is estimated with its uncertainty: a normal tail is fitted to the
impostor similarities (matched at their 90th and 99.9th percentiles, where
the decision thresholds live) on bootstrap resamples of the *identities*
(pairs of one person are not independent evidence), and the table keeps the
95th percentile of the resampled tails, so an unlucky calibration set errs
towards "unknown". Only numbers are stored, never photos or vectors.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

CALIBRATIONS_DIR = Path(__file__).with_name("calibrations")
FILENAME = "calibration.json"
# The tail is tabulated on this grid of per-comparison false-accept rates (log-spaced, 1e-1 .. 1e-9).
RATE_GRID = tuple(float(10 ** (-k / 4)) for k in range(4, 37))
BOOTSTRAP_UPPER = 95
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Calibration:
    """A model's impostor tail as (similarity, per-comparison false-accept rate) pairs, plus where it came from."""

    model_id: str
    similarities: tuple[float, ...]
    """Increasing similarities..."""
    rates: tuple[float, ...]
    """...and the (upper-bound) rate at which two different people score at least that much, decreasing."""
    ambiguity_margin: float
    """Two persons whose similarities to a probe differ by less are not told apart: the median absolute
    deviation of same-person similarities, i.e. how much one person's score moves from photo to photo."""
    source: str
    created: str
    identities: int
    impostor_pairs: int
    genuine_pairs: int

    def rate_at(self, similarity: float) -> float:
        """Per-comparison false-accept rate at `similarity`, log-linear between table points.

        Below the table the rate is capped at its first entry (10%), above it at the last (1e-9):
        beyond the table no decision is ever taken on such a rate anyway.
        """
        return float(np.exp(np.interp(similarity, self.similarities, np.log(self.rates))))

    def threshold_for(self, rate: float) -> float:
        """The lowest similarity whose per-comparison false-accept rate is at most `rate`."""
        log_rates = np.log(self.rates)[::-1]
        return float(np.interp(math.log(max(rate, 1e-300)), log_rates, np.asarray(self.similarities)[::-1]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        data = json.loads(path.read_text())
        data["similarities"] = tuple(data["similarities"])
        data["rates"] = tuple(data["rates"])
        return cls(**data)


def find(model_id: str, model_dir: Path | None = None) -> Calibration | None:
    """A model's calibration: measured at import into its model-store folder (FaceNet, whose weights the user
    brings), else the one committed with the code (dlib-resnet); None when neither exists."""
    for path in (model_dir / FILENAME if model_dir else None, CALIBRATIONS_DIR / f"{model_id}.json"):
        if path is not None and path.is_file():
            return Calibration.load(path)
    return None


def _normal_tail(scores: np.ndarray) -> tuple[float, float]:
    """Mean and sd of the normal whose 90th and 99.9th percentiles are those of `scores`."""
    q90, q999 = np.percentile(scores, [90, 99.9])
    z90, z999 = _NORMAL.inv_cdf(0.90), _NORMAL.inv_cdf(0.999)
    sd = float((q999 - q90) / (z999 - z90))
    return float(q90 - z90 * sd), sd


def impostor_scores(vectors: np.ndarray, identities: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Cosine similarities of every pair of different identities whose pair `keep` allows (upper triangle)."""
    sims = vectors @ vectors.T
    a, b = np.triu_indices(len(vectors), k=1)
    mask = (identities[a] != identities[b]) & keep[a, b]
    return sims[a[mask], b[mask]]


def fit(
    model_id: str,
    vectors: np.ndarray,
    identities: np.ndarray,
    comparable: np.ndarray,
    *,
    source: str,
    created: str,
    resamples: int = 200,
    seed: int = 0,
) -> Calibration:
    """Fit the impostor tail on unit vectors labelled with identities.

    `comparable[i, j]` is False for pairs whose labels cannot say they are different people (two by-eye
    clusters that may be one person). Each bootstrap draw resamples identities with replacement and keeps
    the impostor pairs among the drawn ones; the stored rate at each similarity is the 95th percentile of
    the drawn tails.
    """
    names = np.unique(identities)
    rng = np.random.default_rng(seed)
    grid = np.array(RATE_GRID)
    z = np.array([_NORMAL.inv_cdf(1.0 - r) for r in grid])
    thresholds = []
    for _ in range(resamples):
        drawn = rng.choice(names, size=len(names), replace=True)
        index = np.concatenate([np.flatnonzero(identities == name) for name in drawn])
        # a drawn identity repeated is relabelled so that its copies count as different draws, not as one person
        labels = np.concatenate([np.full(np.count_nonzero(identities == name), k) for k, name in enumerate(drawn)])
        same_person = identities[index][:, None] == identities[index][None, :]
        scores = impostor_scores(vectors[index], labels, comparable[np.ix_(index, index)] & ~same_person)
        mean, sd = _normal_tail(scores)
        thresholds.append(mean + z * sd)
    # the similarity that the upper-bound tail reaches at each rate: the 95th percentile of the draws
    upper = np.percentile(np.array(thresholds), BOOTSTRAP_UPPER, axis=0)
    order = np.argsort(upper)
    genuine = _genuine_scores(vectors, identities)
    mad = float(np.median(np.abs(genuine - np.median(genuine)))) if len(genuine) else 0.0
    all_impostors = impostor_scores(vectors, identities, comparable)
    return Calibration(
        model_id=model_id,
        similarities=tuple(round(float(s), 6) for s in upper[order]),
        rates=tuple(float(r) for r in grid[order]),
        ambiguity_margin=round(mad, 6),
        source=source,
        created=created,
        identities=len(names),
        impostor_pairs=int(len(all_impostors)),
        genuine_pairs=int(len(genuine)),
    )


def _genuine_scores(vectors: np.ndarray, identities: np.ndarray) -> np.ndarray:
    sims = vectors @ vectors.T
    a, b = np.triu_indices(len(vectors), k=1)
    return sims[a, b][identities[a] == identities[b]]
