"""The decision rule (api/decisions.py) and the calibration it rests on (models/calibration.py), without a server."""

from __future__ import annotations

import numpy as np
import pytest

from api.decisions import SECURITY_LEVELS, decide, policy
from models.calibration import Calibration, find, fit
from qdrant import PersonMatch


def person(person_id: str, similarity: float) -> PersonMatch:
    return PersonMatch(person_id, None, {}, similarity, f"{person_id}-face", 1)


@pytest.fixture(scope="module")
def dlib() -> Calibration:
    calibration = find("dlib-resnet")
    assert calibration is not None, "models/calibrations/dlib-resnet.json is committed with the code"
    return calibration


def test_threshold_rises_with_directory_size_and_security(dlib):
    """The open-set false-match rate grows with the faces a stranger is compared with; the threshold follows."""
    for level in SECURITY_LEVELS:
        thresholds = [policy(dlib, 0.91, level, n).threshold for n in (1, 10, 100, 1000)]
        assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    at_100 = [policy(dlib, 0.91, level, 100).threshold for level in ("low", "medium", "high", "strict")]
    assert at_100 == sorted(at_100)


def test_threshold_keeps_the_bound(dlib):
    """n comparisons at the chosen threshold stay at (or a rounding under) the level's false-match rate."""
    for n in (1, 7, 50, 400):
        rule = policy(dlib, 0.91, "medium", n)
        assert rule.false_accept_probability(rule.threshold) == pytest.approx(SECURITY_LEVELS["medium"], rel=1e-3)


def test_expert_threshold_overrides_and_uncalibrated_falls_back(dlib):
    assert policy(dlib, 0.91, "medium", 50, threshold=0.5).threshold == 0.5
    rule = policy(None, 0.91, "strict", 50)
    assert rule.threshold == 0.91 and rule.false_accept_probability(0.99) is None


def test_match_unknown_and_ambiguous():
    rule = policy(None, 0.9, "medium", 10)
    margin_rule = type(rule)(rule.threshold, rule.comparisons, None, 0.01)
    (match, unknown, ambiguous) = decide(
        [[person("a", 0.95), person("b", 0.91)], [person("c", 0.85)], [person("d", 0.93), person("e", 0.925)]],
        margin_rule,
    )
    assert match.decision == "match" and match.match.person_id == "a" and match.margin == pytest.approx(0.04)
    assert unknown.decision == "unknown" and unknown.match is None
    assert ambiguous.decision == "ambiguous" and [p.person_id for p in ambiguous.tied] == ["d", "e"]


def test_one_person_per_photo_goes_to_the_closer_face():
    """Two faces claim one person: the closer one gets them, the other falls to its next candidate or unknown."""
    rule = policy(None, 0.9, "medium", 10)
    first, second, third = decide(
        [[person("a", 0.93), person("b", 0.92)], [person("a", 0.97)], [person("a", 0.95)]], rule
    )
    assert second.match.person_id == "a" and second.decision == "match"
    assert first.decision == "match" and first.match.person_id == "b"
    assert third.decision == "unknown"


def test_fit_recovers_a_known_normal_tail():
    """On vectors whose impostor cosines are normal by construction, the fitted tail is that normal's (or above)."""
    rng = np.random.default_rng(1)
    identities = np.repeat(np.arange(60), 3)
    centres = rng.normal(size=(60, 64))
    vectors = centres[identities] + rng.normal(scale=0.6, size=(180, 64))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    calibration = fit("test", vectors, identities, np.ones((180, 180), bool), source="synthetic", created="today")
    sims = vectors @ vectors.T
    a, b = np.triu_indices(180, 1)
    impostors = sims[a, b][identities[a] != identities[b]]
    for rate in (1e-2, 1e-3):
        observed = np.mean(impostors >= calibration.threshold_for(rate))
        assert observed <= rate * 1.5
    assert calibration.identities == 60 and calibration.genuine_pairs == 60 * 3
