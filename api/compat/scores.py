"""The one number CompreFace and DeepStack clients threshold themselves, from faceserve's decision.

Calibrated model: a person faceserve names (decision `match`, or one of the
tied persons of `ambiguous`) is reported as 1 − false_accept_probability,
so it is at least 1 − the security level's rate (0.99 at "medium") and a
client threshold of 0.99 means "at most a 1% chance this is a stranger".

A person faceserve does not name is reported as half of that, so under 0.5.
Plain 1 − false_accept_probability would not do for them: a stranger's
best match is a p-value, uniform on 0–1, so one stranger in five would
score over 0.8, a threshold CompreFace users often pick. Halving keeps
their order (the closest non-match still comes first, and clients such as
Viseron expect a subject per face) while any client threshold between 0.5
and the level's 1 − rate gives exactly faceserve's own decision.

Uncalibrated model (no false-accept probability): 0.5 + cosine/2 for named
persons and cosine/2 for the others; only the 0.5 boundary means anything.
"""

from __future__ import annotations

UNNAMED_SCALE = 0.5


def reported_similarity(false_accept_probability: float | None, cosine: float, named: bool) -> float:
    if false_accept_probability is None:
        base = max(0.0, min(1.0, cosine)) * UNNAMED_SCALE
        return round(base + UNNAMED_SCALE if named else base, 5)
    confidence = 1.0 - max(0.0, min(1.0, false_accept_probability))
    return round(confidence if named else confidence * UNNAMED_SCALE, 5)
