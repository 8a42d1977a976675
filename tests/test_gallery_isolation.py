"""Property test: whatever sequence of operations runs, no directory ever sees or loses another's faces."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdrant import NewFace
from qdrant.edge import EdgeGallery
from qdrant.server import ServerGallery

DIM = 8
DIRECTORIES = ["a", "b", "c"]
PERSONS = ["p1", "p2", "p3"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.integers(0, 5)),
        st.tuples(st.just("delete_person"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.just(0)),
        st.tuples(st.just("delete_directory"), st.sampled_from(DIRECTORIES), st.just(""), st.just(0)),
        st.tuples(st.just("rename"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=25,
)


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def check_against_model(gallery, ops) -> None:
    model: dict[str, dict[str, int]] = {d: {} for d in DIRECTORIES}
    for op, directory, person, arg in ops:
        if op == "add":
            gallery.add_faces(directory, person, [NewFace(vector(arg), (0, 0, 1, 1), 1.0, "")])
            model[directory][person] = model[directory].get(person, 0) + 1
        elif op == "delete_person":
            assert gallery.delete_person(directory, person) == model[directory].pop(person, 0)
        elif op == "delete_directory":
            assert gallery.delete_directory(directory) == sum(model[directory].values())
            model[directory] = {}
        else:
            renamed = gallery.update_person(directory, person, name=f"n{arg}")
            assert (renamed is None) == (person not in model[directory])
        for d in DIRECTORIES:
            assert gallery.count(d) == sum(model[d].values())
            page, _ = gallery.list_persons(d, limit=10)
            assert {p.person_id: p.face_count for p in page} == model[d]
            hits = gallery.search(d, vector(0), limit=50)
            assert all(h.face.directory == d for h in hits) and len(hits) == sum(model[d].values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_isolation_on_edge(ops):
    with tempfile.TemporaryDirectory() as tmp, EdgeGallery(Path(tmp), "iso", DIM) as gallery:
        check_against_model(gallery, ops)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_isolation_on_qdrant_client(ops):
    with ServerGallery("iso", DIM, location=":memory:") as gallery:
        check_against_model(gallery, ops)
