"""Property test: whatever sequence of operations runs, no directory ever sees or loses another's faces,
and negative examples stay negatives: never matched, counted apart, deleted with their person."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdrant import Conflict, Gallery, NewFace, open_gallery
from qdrant.domain import NEGATIVE
from qdrant.server import ServerStore

DIM = 8
DIRECTORIES = ["a", "b", "c"]
PERSONS = ["p1", "p2", "p3"]
# Caller-chosen face ids drawn from a pool shared by all directories, so that
# the same id is enrolled in several directories and must stay one face in each,
# and is offered both as a face and as a negative.
FACE_IDS = ["f1", "f2", "f3"]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.integers(0, 5)),
        st.tuples(st.just("add_as"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.sampled_from(FACE_IDS)),
        st.tuples(st.just("negative"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.integers(0, 5)),
        st.tuples(
            st.just("negative_as"), st.sampled_from(DIRECTORIES), st.sampled_from(PERSONS), st.sampled_from(FACE_IDS)
        ),
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
    """Replays `ops` on the gallery and on two dicts per directory (face_id -> person_id, for faces and for
    negatives), comparing after each."""
    model: dict[str, dict[str, str]] = {d: {} for d in DIRECTORIES}
    negatives: dict[str, dict[str, str]] = {d: {} for d in DIRECTORIES}
    ever_stored: list[str] = []  # every face id of every directory, for deletes aimed across directories
    for op, directory, person, arg in ops:
        faces, negs = model[directory], negatives[directory]
        if op == "add":
            (face_id,) = gallery.add_faces(directory, person, [NewFace(vector(arg), (0, 0, 1, 1), 1.0, "")])
            faces[face_id] = person
            ever_stored.append(face_id)
        elif op == "add_as":
            face = NewFace(vector(len(arg)), (0, 0, 1, 1), 1.0, "", arg)
            if faces.get(arg, person) != person or arg in negs:
                # a face id this directory holds for someone else, or as a negative, is refused; nothing changes
                with pytest.raises(Conflict):
                    gallery.add_faces(directory, person, [face])
            else:
                gallery.add_faces(directory, person, [face])
                faces[arg] = person
                ever_stored.append(arg)
        elif op in ("negative", "negative_as"):
            chosen = arg if op == "negative_as" else None
            new = NewFace(vector(100 + len(str(arg))), (0, 0, 1, 1), 1.0, "", chosen)
            if person not in faces.values():
                assert gallery.add_negatives(directory, person, [new]) is None
            elif chosen is not None and (negs.get(chosen, person) != person or chosen in faces):
                with pytest.raises(Conflict):
                    gallery.add_negatives(directory, person, [new])
            else:
                (face_id,) = gallery.add_negatives(directory, person, [new])
                negs[face_id] = person
                ever_stored.append(face_id)
        elif op == "delete_face":
            face_id = ever_stored[arg % len(ever_stored)] if ever_stored else "f1"
            owner = faces.pop(face_id, None) or negs.pop(face_id, None)
            assert gallery.delete_face(directory, face_id) == (0 if owner is None else 1)
            if owner is not None and owner not in faces.values():  # their last face: the negatives go too
                negatives[directory] = {f: p for f, p in negs.items() if p != owner}
        elif op == "delete_person":
            expected = [f for f, p in [*faces.items(), *negs.items()] if p == person]
            assert gallery.delete_person(directory, person) == len(expected)
            model[directory] = {f: p for f, p in faces.items() if p != person}
            negatives[directory] = {f: p for f, p in negs.items() if p != person}
        elif op == "delete_directory":
            assert gallery.delete_directory(directory) == len(faces) + len(negs)
            model[directory], negatives[directory] = {}, {}
        else:
            renamed = gallery.update_person(directory, person, name=f"n{arg}")
            assert (renamed is None) == (person not in faces.values() and person not in negs.values())
        for d in DIRECTORIES:
            assert gallery.count(d) == len(model[d])
            assert gallery.count(d, kind=NEGATIVE) == len(negatives[d])
            page, _ = gallery.list_persons(d, limit=10)
            assert {p.person_id: p.face_count for p in page} == Counter(model[d].values())
            assert {p.person_id: p.negative_count for p in page if p.negative_count} == Counter(negatives[d].values())
            hits = gallery.search(d, vector(0), limit=50)
            assert {(h.face.face_id, h.face.person_id) for h in hits} == set(model[d].items())
            assert all(h.face.directory == d for h in hits)
            assert set(gallery.best_negatives(d, vector(0), PERSONS)) == set(negatives[d].values())
            held = set(model[d]) | set(negatives[d])
            assert all(gallery.has_face(d, f) for f in held)
            assert not any(gallery.has_face(d, f) for f in set(FACE_IDS) - held)
            for person_id in PERSONS:
                stored = gallery.get_person(d, person_id)
                held = {f for f, p in negatives[d].items() if p == person_id}
                assert {f.face_id for f in stored.negatives} == held if stored else not held
                # the enrolment check's read sees this directory's faces of the person, never a negative
                enrolled = person_id in model[d].values()
                assert (gallery.person_similarity(d, person_id, vector(0)) is not None) == enrolled


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
