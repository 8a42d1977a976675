"""Property test: whatever sequence of operations runs, no directory ever sees or loses another's faces."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdrant import Conflict, Gallery, NewFace, open_gallery
from qdrant.server import ServerStore

DIM = 8
DIRECTORIES = ["a", "b", "c"]
PERSONS = ["p1", "p2", "p3"]
# Caller-chosen face ids drawn from a pool shared by all directories, so that
# the same id is enrolled in several directories and must stay one face in each.
FACE_IDS = ["f1", "f2", "f3"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.integers(0, 5)),
        st.tuples(st.just("add_as"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.sampled_from(FACE_IDS)),
        st.tuples(st.just("delete_face"), st.sampled_from(DIRECTORIES), st.just(""), st.integers(0, 50)),
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
    """Replays `ops` on the gallery and on a dict per directory (face_id -> person_id), comparing after each."""
    model: dict[str, dict[str, str]] = {d: {} for d in DIRECTORIES}
    ever_stored: list[str] = []  # every face id of every directory, for deletes aimed across directories
    for op, directory, person, arg in ops:
        if op == "add":
            (face_id,) = gallery.add_faces(directory, person, [NewFace(vector(arg), (0, 0, 1, 1), 1.0, "")])
            model[directory][face_id] = person
            ever_stored.append(face_id)
        elif op == "add_as":
            face = NewFace(vector(len(arg)), (0, 0, 1, 1), 1.0, "", arg)
            if model[directory].get(arg, person) != person:
                # a face id this directory holds for someone else is refused, and nothing changes
                with pytest.raises(Conflict):
                    gallery.add_faces(directory, person, [face])
            else:
                gallery.add_faces(directory, person, [face])
                model[directory][arg] = person
                ever_stored.append(arg)
        elif op == "delete_face":
            face_id = ever_stored[arg % len(ever_stored)] if ever_stored else "f1"
            expected = 1 if model[directory].pop(face_id, None) is not None else 0
            assert gallery.delete_face(directory, face_id) == expected
        elif op == "delete_person":
            expected = [f for f, p in model[directory].items() if p == person]
            assert gallery.delete_person(directory, person) == len(expected)
            for face_id in expected:
                del model[directory][face_id]
        elif op == "delete_directory":
            assert gallery.delete_directory(directory) == len(model[directory])
            model[directory] = {}
        else:
            renamed = gallery.update_person(directory, person, name=f"n{arg}")
            assert (renamed is None) == (person not in model[directory].values())
        for d in DIRECTORIES:
            assert gallery.count(d) == len(model[d])
            page, _ = gallery.list_persons(d, limit=10)
            assert {p.person_id: p.face_count for p in page} == Counter(model[d].values())
            hits = gallery.search(d, vector(0), limit=50)
            assert {(h.face.face_id, h.face.person_id) for h in hits} == set(model[d].items())
            assert all(h.face.directory == d for h in hits)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_isolation_on_edge(ops):
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_gallery(url=None, api_key=None, path=Path(tmp), model_id="iso", dim=DIM) as gallery,
    ):
        check_against_model(gallery, ops)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_isolation_on_qdrant_client(ops):
    with Gallery(ServerStore("iso", DIM, location=":memory:"), "iso", DIM) as gallery:
        check_against_model(gallery, ops)
