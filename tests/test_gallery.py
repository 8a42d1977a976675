"""The same behaviour on every gallery backend: Qdrant Edge, qdrant-client local mode, and a real
server when QDRANT_URL is set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qdrant import Conflict, Gallery, ImportedPerson, InvalidInput, NewFace
from qdrant.domain import FACE, NEGATIVE, collection_name, point_id
from qdrant.edge import EdgeStore, GalleryBusy
from qdrant.server import ServerStore
from qdrant.store import PROBE_DIRECTORY, Point, Scope

DIM = 16
ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["edge", "local", "server"]


def edge_gallery(path, model_id: str, dim: int, max_metadata_bytes: int = 4096) -> Gallery:
    """The Edge gallery as open_gallery builds it: one shard folder per collection under `path`."""
    return Gallery(EdgeStore(Path(path) / collection_name(model_id, dim), dim), model_id, dim, max_metadata_bytes)


def make_gallery(kind: str, tmp_path, model_id: str = "test-model") -> Gallery:
    if kind == "edge":
        return edge_gallery(tmp_path / "gallery", model_id, DIM, max_metadata_bytes=256)
    if kind == "local":
        return Gallery(ServerStore(collection_name(model_id, DIM), DIM, location=":memory:"), model_id, DIM, 256)
    url = os.environ.get("QDRANT_URL")
    if not url:
        pytest.skip("QDRANT_URL is not set: no Qdrant server to test against")
    # a fresh model id gives a fresh collection on the shared server
    model_id = f"t{uuid.uuid4().hex[:8]}"
    store = ServerStore(collection_name(model_id, DIM), DIM, url=url, api_key=os.environ.get("QDRANT_API_KEY"))
    return Gallery(store, model_id, DIM, 256)


@pytest.fixture(params=BACKENDS)
def gallery(request, tmp_path):
    with make_gallery(request.param, tmp_path) as g:
        yield g
        if request.param == "server":  # leave the shared server as it was
            g.store.client.delete_collection(g.collection)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, seed: int, noise: float = 0.05) -> np.ndarray:
    w = v + noise * np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return w / np.linalg.norm(w)


def face(v: np.ndarray, face_id: str | None = None) -> NewFace:
    return NewFace(vector=v, box=(1.0, 2.0, 30.0, 40.0), score=0.99, source_sha256="ab" * 32, face_id=face_id)


def test_add_search_and_match_persons(gallery):
    alice, bob = unit(1), unit(2)
    gallery.add_faces("d1", "alice", [face(near(alice, 10)), face(near(alice, 11))], name="Alice", metadata={"k": 1})
    gallery.add_faces("d1", "bob", [face(near(bob, 12))], name="Bob")
    hits = gallery.search("d1", alice, limit=3)
    assert [h.face.person_id for h in hits[:2]] == ["alice", "alice"]
    assert hits[0].similarity > 0.95 and hits[0].face.box == (1.0, 2.0, 30.0, 40.0)
    matches = gallery.match_persons("d1", alice, top_k=3)
    assert [m.person_id for m in matches] == ["alice", "bob"]
    assert matches[0].matched_faces == 2 and matches[0].name == "Alice" and matches[0].metadata == {"k": 1}
    assert gallery.search("d1", alice, limit=5, min_similarity=0.9)[-1].face.person_id == "alice"


def test_list_get_update_and_counts(gallery):
    for i, person in enumerate(["carol", "alice", "bob"]):
        gallery.add_faces("d", person, [face(unit(i * 10 + j)) for j in range(i + 1)], name=person.title())
    page, next_offset = gallery.list_persons("d", limit=2)
    assert [(p.person_id, p.face_count, p.name) for p in page] == [("alice", 2, "Alice"), ("bob", 3, "Bob")]
    page, next_offset = gallery.list_persons("d", limit=2, offset=next_offset)
    assert [p.person_id for p in page] == ["carol"] and next_offset is None
    person = gallery.update_person("d", "bob", name="Robert", metadata={"team": "x"})
    assert person.name == "Robert" and len(person.faces) == 3
    assert all(f.name == "Robert" and f.metadata == {"team": "x"} for f in person.faces)
    gallery.add_faces("d", "bob", [face(unit(99))])  # no name given: keeps Robert
    assert gallery.get_person("d", "bob").name == "Robert"
    assert gallery.update_person("d", "nobody", name="x") is None
    assert gallery.get_person("d", "nobody") is None
    assert gallery.count("d") == 7 and gallery.count("d", "bob") == 4


def test_list_persons_pages_in_id_order_whatever_the_face_counts(gallery):
    # person k has 12 - k faces, so ranking by face count would reverse the id order
    for k in range(12):
        gallery.add_faces("d", f"p{k:02d}", [face(unit(100 * k + j)) for j in range(12 - k)])
    seen, offset = [], 0
    while offset is not None:
        page, offset = gallery.list_persons("d", limit=5, offset=offset)
        seen += [(p.person_id, p.face_count) for p in page]
    assert seen == [(f"p{k:02d}", 12 - k) for k in range(12)]
    assert gallery.list_persons("empty") == ([], None)


def test_deletes_are_exact(gallery):
    ids = gallery.add_faces("d", "p", [face(unit(1)), face(unit(2))])
    gallery.add_faces("d", "q", [face(unit(3))])
    assert gallery.delete_face("d", ids[0]) == 1
    assert gallery.count("d", "p") == 1
    assert gallery.delete_person("d", "p") == 1 and gallery.count("d", "p") == 0
    assert gallery.delete_person("d", "p") == 0
    assert gallery.delete_directory("d") == 1 and gallery.count("d") == 0


def test_retry_with_same_face_id_does_not_duplicate(gallery):
    fid = str(uuid.uuid4())
    gallery.add_faces("d", "p", [face(unit(1), fid)])
    gallery.add_faces("d", "p", [face(unit(1), fid)])
    assert gallery.count("d", "p") == 1


def test_a_face_id_reused_in_another_directory_is_another_face(gallery):
    fid = str(uuid.uuid4())
    gallery.add_faces("victim", "p", [face(unit(1), fid)], name="Victim")
    gallery.add_faces("other", "q", [face(unit(2), fid)])
    assert gallery.count("victim") == 1 and gallery.get_person("victim", "p").faces[0].face_id == fid
    assert gallery.delete_face("other", fid) == 1
    assert gallery.count("victim") == 1


def test_same_person_id_in_two_directories_stays_separate(gallery):
    gallery.add_faces("a", "p", [face(unit(1))], name="In A")
    gallery.add_faces("b", "p", [face(unit(1))], name="In B")
    gallery.update_person("a", "p", name="Renamed A")
    assert gallery.get_person("b", "p").name == "In B"
    assert [h.face.directory for h in gallery.search("b", unit(1))] == ["b"]
    assert gallery.delete_person("a", "p") == 1
    assert gallery.count("b", "p") == 1 and gallery.search("a", unit(1)) == []


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda g: g.add_faces("", "p", [face(unit(1))]), "invalid_directory"),
        (lambda g: g.add_faces("d" * 129, "p", [face(unit(1))]), "invalid_directory"),
        (lambda g: g.add_faces("d", "p\x00", [face(unit(1))]), "invalid_person_id"),
        (lambda g: g.add_faces("d", " p", [face(unit(1))]), "invalid_person_id"),
        (lambda g: g.add_faces("d", "p", [face(unit(1))], name="x" * 300), "invalid_name"),
        (lambda g: g.add_faces("d", "p", [face(unit(1))], metadata={"x": "y" * 300}), "metadata_too_large"),
        (lambda g: g.add_faces("d", "p", [face(np.ones(DIM + 1))]), "invalid_vector"),
        (lambda g: g.add_faces("d", "p", [face(np.full(DIM, np.nan))]), "invalid_vector"),
        (lambda g: g.add_faces("d", "p", []), "no_faces"),
        (lambda g: g.add_faces("d", "p", [face(unit(1), "x"), face(unit(2), "x")]), "invalid_face_id"),
        (lambda g: g.add_faces("d", "p", [face(np.zeros(DIM))]), "invalid_vector"),
        (lambda g: g.search("\n", unit(1)), "invalid_directory"),
        (lambda g: g.search("d", unit(1), limit=0), "invalid_limit"),
        (lambda g: g.search("d", np.zeros(DIM)), "invalid_vector"),
        (lambda g: g.list_persons("d", offset=-1), "invalid_limit"),
        (lambda g: g.delete_face("d", ""), "invalid_face_id"),
    ],
)
def test_invalid_input_changes_nothing(gallery, call, code):
    gallery.add_faces("d", "keep", [face(unit(5))])
    with pytest.raises(InvalidInput) as info:
        call(gallery)
    assert info.value.code == code
    assert gallery.count("d") == 1


def test_export_pages_through_a_directory_with_vectors_and_import_restores_it(gallery):
    for i in range(7):
        gallery.add_faces("src", f"p{i % 3}", [face(unit(100 + i))], name=f"P{i % 3}", metadata={"n": i % 3})
    gallery.add_faces("other", "p0", [face(unit(999))])
    exported, cursor = [], None
    while True:
        page, cursor = gallery.export_faces("src", limit=3, cursor=cursor)
        assert len(page) <= 3
        exported += page
        if cursor is None:
            break
    assert len(exported) == 7 and {f.directory for f, _ in exported} == {"src"}
    by_id = {f.face_id: v for f, v in exported}
    assert len(by_id) == 7 and all(len(v) == DIM for v in by_id.values())

    persons: dict[str, list] = {}
    for stored, vector in exported:
        persons.setdefault(stored.person_id, []).append((stored, vector))
    batch = [
        ImportedPerson(
            pid,
            faces[0][0].name,
            faces[0][0].metadata,
            [NewFace(np.asarray(v), f.box, f.score, f.source_sha256, f.face_id, f.created_at) for f, v in faces],
        )
        for pid, faces in persons.items()
    ]
    assert gallery.import_faces("dst", batch) == 7
    assert gallery.import_faces("dst", batch) == 7  # a re-run overwrites, never duplicates
    assert gallery.count("dst") == 7
    for stored, vector in exported:
        (hit,) = gallery.search("dst", np.asarray(vector), limit=1)
        assert (hit.face.face_id, hit.face.person_id, hit.face.created_at) == (
            stored.face_id,
            stored.person_id,
            stored.created_at,
        )
        assert hit.similarity > 0.999 and hit.face.name == stored.name and hit.face.metadata == stored.metadata
    assert gallery.count("src") == 7 and gallery.count("other") == 1


@pytest.mark.parametrize(
    "bad, code",
    [
        (lambda ok: [ImportedPerson("p", None, {}, [face(np.zeros(DIM), "f1")])], "invalid_vector"),
        (lambda ok: [ImportedPerson("p", None, {}, [face(unit(1), None)])], "invalid_face_id"),
        (lambda ok: [*ok, ImportedPerson("q", None, {}, [face(unit(2), "f1")])], "invalid_face_id"),
        (lambda ok: [*ok, ImportedPerson(" q", None, {}, [face(unit(2), "f2")])], "invalid_person_id"),
        (lambda ok: [*ok, ImportedPerson("q", None, {"x": "y" * 300}, [face(unit(2), "f2")])], "metadata_too_large"),
        (lambda ok: [], "invalid_batch"),
    ],
)
def test_an_import_with_one_bad_record_writes_nothing(gallery, bad, code):
    ok = [ImportedPerson("p", "P", {}, [face(unit(1), "f1")])]
    with pytest.raises(InvalidInput) as info:
        gallery.import_faces("dst", bad(ok))
    assert info.value.code == code and gallery.count("dst") == 0


@pytest.mark.parametrize("cursor", ["not-a-cursor", "1; drop", ""])
def test_export_refuses_a_cursor_it_did_not_give(gallery, cursor):
    with pytest.raises(InvalidInput) as info:
        gallery.export_faces("d", cursor=cursor)
    assert info.value.code == "invalid_cursor"


@pytest.mark.parametrize("model_id", ["../x", "a/b", "a_b", "", "x" * 65])
def test_a_model_id_that_could_escape_or_collide_is_refused(tmp_path, model_id):
    with pytest.raises(ValueError):
        edge_gallery(tmp_path, model_id, DIM)


def test_models_never_share_a_collection(tmp_path):
    with edge_gallery(tmp_path, "model-a", DIM) as a, edge_gallery(tmp_path, "model-b", DIM) as b:
        a.add_faces("d", "p", [face(unit(1))])
        assert b.count("d") == 0 and a.collection != b.collection


def test_edge_survives_close_and_reopen(tmp_path):
    with edge_gallery(tmp_path, "m", DIM) as g:
        ids = g.add_faces("d", "p", [face(unit(1)), face(unit(2))], name="P", metadata={"a": 1})
        g.add_faces("d", "q", [face(unit(3))])
        g.delete_face("d", ids[1])
        before = g.get_person("d", "p")
    with edge_gallery(tmp_path, "m", DIM) as g:
        assert g.get_person("d", "p") == before
        assert g.count("d") == 2
        assert g.search("d", unit(1))[0].face.face_id == ids[0]


def test_edge_has_one_owner_at_a_time(tmp_path):
    with edge_gallery(tmp_path, "m", DIM) as g:
        g.add_faces("d", "p", [face(unit(1))])
        with pytest.raises(GalleryBusy):
            edge_gallery(tmp_path, "m", DIM)
    with edge_gallery(tmp_path, "m", DIM) as g:
        assert g.count("d") == 1


def test_edge_write_survives_a_killed_process(tmp_path):
    """No close(), no clean exit: what add_faces returned must be on disk."""
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        from pathlib import Path
        from qdrant import NewFace, open_gallery
        g = open_gallery(url=None, api_key=None, path=Path({str(tmp_path)!r}), model_id="m", dim={DIM})
        v = np.ones({DIM}, np.float32)
        print(*g.add_faces("d", "p", [NewFace(v, (0, 0, 1, 1), 1.0, "", "kept")]), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == -signal.SIGKILL and done.stdout.split() == ["kept"], done.stderr
    with edge_gallery(tmp_path, "m", DIM) as g:
        assert [f.face_id for f in g.get_person("d", "p").faces] == ["kept"]


def test_edge_serves_threads_writing_and_searching_at_once(tmp_path):
    """The service calls the gallery from a thread pool."""

    def work(n: int) -> None:
        directory = f"d{n}"
        for i in range(15):
            g.add_faces(directory, f"p{i % 3}", [face(unit(1000 * n + i))])
            assert {h.face.directory for h in g.search(directory, unit(i), limit=20)} == {directory}

    with edge_gallery(tmp_path, "m", DIM) as g, ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
        assert [g.count(f"d{n}") for n in range(4)] == [15] * 4


def nested(depth: int) -> dict:
    """A metadata object `depth` levels deep, counting the object itself."""
    value: object = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return {"a": value}


def test_metadata_depth_and_size_limits(gallery):
    gallery.add_faces("d", "p", [face(unit(1))], metadata=nested(8))
    assert gallery.get_person("d", "p").metadata == nested(8)
    assert gallery.match_persons("d", unit(1))[0].metadata == nested(8)
    for bad in (nested(9), nested(150), {f"k{i}": i for i in range(257)}, {"a": [0] * 256}, {"x": float("nan")}):
        for call in (
            lambda bad=bad: gallery.add_faces("d", "p", [face(unit(2))], metadata=bad),
            lambda bad=bad: gallery.update_person("d", "p", metadata=bad),
        ):
            with pytest.raises(InvalidInput) as info:
                call()
            assert info.value.code == "invalid_metadata"
    gallery.update_person("d", "p", metadata={f"k{i}": i for i in range(25)})  # 25 values, within 256 bytes
    assert gallery.count("d") == 1 and len(gallery.get_person("d", "p").metadata) == 25


def test_metadata_is_stored_as_one_json_string(gallery):
    gallery.add_faces("d", "p", [face(unit(1))], name="P", metadata={"team": {"floor": [3]}})
    (point,), _ = gallery.store.scroll(Scope("d"), 10, None)
    assert point.payload["metadata_json"] == '{"team":{"floor":[3]}}' and "metadata" not in point.payload
    gallery.update_person("d", "p", metadata={"x": 1})
    (point,), _ = gallery.store.scroll(Scope("d"), 10, None)
    assert json.loads(point.payload["metadata_json"]) == {"x": 1}


def test_faces_stored_in_the_old_format_are_still_read(gallery):
    """Before metadata_json, metadata was a payload object; such points must keep working."""
    payload = {
        "directory": "d",
        "person_id": "old",
        "face_id": "f-old",
        "name": "Old",
        "metadata": {"k": [1, 2]},
        "created_at": "2024-01-01T00:00:00.000+00:00",
        "source_sha256": "",
        "box": [1.0, 2.0, 3.0, 4.0],
        "det_score": 0.9,
        "model": gallery.model_id,
    }
    gallery.store.upsert([Point(point_id("d", "f-old"), unit(1).tolist(), payload)])
    assert gallery.get_person("d", "old").metadata == {"k": [1, 2]}
    assert gallery.list_persons("d")[0][0].metadata == {"k": [1, 2]}
    gallery.add_faces("d", "old", [face(unit(2))])  # keeps the person's metadata
    assert {f.metadata["k"][1] for f in gallery.get_person("d", "old").faces} == {2}
    assert gallery.update_person("d", "old", name="Renamed").metadata == {"k": [1, 2]}


def test_ids_are_one_nfc_form_and_refuse_invisible_and_wildcard_characters(gallery):
    nfd, nfc = unicodedata.normalize("NFD", "Zoë"), "Zoë"
    assert nfd != nfc
    gallery.add_faces(nfd, nfd, [face(unit(1))])
    gallery.add_faces(nfc, nfc, [face(unit(2))])
    assert gallery.count(nfc) == 2 and gallery.count(nfd, nfc) == 2
    assert [p.person_id for p in gallery.list_persons(nfd)[0]] == [nfc]
    assert {h.face.directory for h in gallery.search(nfd, unit(1))} == {nfc}
    gallery.add_faces("a b", "first last", [face(unit(3))])  # an inner plain space is fine
    for bad in ["*", "a*", ".", "..", "a\u2028b", "a\u2029b", "a\u00a0b", "a\u200bb", "\u3000a", "a\tb"]:
        with pytest.raises(InvalidInput) as info:
            gallery.add_faces(bad, "p", [face(unit(4))])
        assert info.value.code == "invalid_directory", bad
        with pytest.raises(InvalidInput) as info:
            gallery.add_faces("d", bad, [face(unit(4))])
        assert info.value.code == "invalid_person_id", bad


def test_a_face_id_given_again_for_another_photo_or_person_is_a_conflict(gallery):
    first = NewFace(unit(1), (1.0, 2.0, 3.0, 4.0), 0.9, "aa" * 32, "fid")
    assert gallery.add_faces("d", "p", [first]) == ["fid"]
    assert gallery.add_faces("d", "p", [first]) == ["fid"]  # the same photo again: idempotent
    for directory, person, sha in (("d", "p", "bb" * 32), ("d", "q", "aa" * 32)):
        with pytest.raises(Conflict) as info:
            gallery.add_faces(directory, person, [NewFace(unit(2), (0, 0, 1, 1), 0.5, sha, "fid")])
        assert info.value.code == "face_id_conflict"
    assert gallery.count("d") == 1 and gallery.get_person("d", "p").faces[0].source_sha256 == "aa" * 32
    gallery.add_faces("elsewhere", "q", [NewFace(unit(2), (0, 0, 1, 1), 0.5, "bb" * 32, "fid")])
    ok = ImportedPerson("new", None, {}, [NewFace(unit(3), (0, 0, 1, 1), 0.5, "", "other")])
    clash = ImportedPerson("q", None, {}, [NewFace(unit(4), (0, 0, 1, 1), 0.5, "", "fid")])
    with pytest.raises(Conflict):
        gallery.import_faces("d", [ok, clash])
    assert gallery.count("d") == 1  # checked before the first person was written


def test_concurrent_writers_of_one_face_id_cannot_both_store_it(gallery):
    def enrol(n: int) -> str:
        try:
            gallery.add_faces("d", "p", [NewFace(unit(n % 2), (0, 0, 1, 1), 0.5, f"{n % 2}" * 64, "fid")])
        except Conflict:
            return "conflict"
        return f"{n % 2}" * 64

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(enrol, range(16)))
    stored = gallery.get_person("d", "p").faces
    assert len(stored) == 1 and results.count(stored[0].source_sha256) == 8 and results.count("conflict") == 8


@pytest.mark.parametrize(
    "box, score", [((0, 0, float("nan"), 1), 0.5), ((0, 0, 1, 1), float("inf")), ((0, float("-inf"), 1, 1), 0.5)]
)
def test_a_face_with_a_non_finite_box_or_score_is_refused(gallery, box, score):
    bad = NewFace(unit(1), box, score, "", "f1")
    with pytest.raises(InvalidInput) as info:
        gallery.add_faces("d", "p", [bad])
    assert info.value.code == "invalid_face"
    with pytest.raises(InvalidInput) as info:
        gallery.import_faces("d", [ImportedPerson("p", None, {}, [bad])])
    assert info.value.code == "invalid_face" and gallery.count("d") == 0


def test_ready_probes_a_real_write_and_leaves_no_trace(gallery):
    gallery.add_faces("d", "p", [face(unit(1))])
    assert gallery.ready() is True and gallery.ready() is True
    assert gallery.store.count(Scope(PROBE_DIRECTORY)) == 0 and gallery.count("d") == 1
    with pytest.raises(InvalidInput):
        gallery.count(PROBE_DIRECTORY)


def poison(store: EdgeStore) -> None:
    """What unchecked metadata did before: a payload Edge cannot decode, then a write that has to read it."""
    deep: object = 0
    for _ in range(130):
        deep = [deep]
    store.upsert([Point(point_id("bad", "f"), unit(1).tolist(), {"directory": "bad", "metadata": {"a": deep}})])
    with pytest.raises(Exception, match="recursion limit"):
        store.set_payload(Scope("bad"), {"name": "x"})


def test_ready_reports_an_edge_shard_that_refuses_writes(tmp_path):
    with edge_gallery(tmp_path, "m", DIM) as g:
        g.add_faces("good", "p", [face(unit(1))])
        poison(g.store)
        assert g.ready() is False  # and does not raise
        with pytest.raises(Exception, match="Not recovered"):
            g.add_faces("good", "q", [face(unit(2))])


def test_negatives_are_never_matched_but_listed_counted_and_deleted_with_the_person(gallery):
    alice, bob, stranger = unit(1), unit(2), unit(3)
    gallery.add_faces("d", "alice", [face(near(alice, 10)), face(near(alice, 11))], name="Alice")
    gallery.add_faces("d", "bob", [face(near(bob, 12))], name="Bob")
    (negative_id,) = gallery.add_negatives("d", "alice", [face(near(stranger, 13))])
    assert {h.face.person_id for h in gallery.search("d", stranger, limit=10)} == {"alice", "bob"}
    assert negative_id not in {h.face.face_id for h in gallery.search("d", stranger, limit=10)}
    matches = {m.person_id: m for m in gallery.match_persons("d", stranger, with_negatives=True)}
    assert matches["alice"].negative_similarity > 0.95 > matches["alice"].similarity
    assert matches["bob"].negative_similarity is None
    assert all(m.negative_similarity is None for m in gallery.match_persons("d", stranger))
    assert gallery.best_negatives("d", stranger, ["alice", "bob", "nobody"]).keys() == {"alice"}
    person = gallery.get_person("d", "alice")
    assert [f.face_id for f in person.negatives] == [negative_id] and person.negatives[0].kind == NEGATIVE
    assert len(person.faces) == 2 and all(f.kind == FACE for f in person.faces) and person.name == "Alice"
    page, _ = gallery.list_persons("d")
    assert [(p.person_id, p.face_count, p.negative_count) for p in page] == [("alice", 2, 1), ("bob", 1, 0)]
    assert gallery.count("d") == 3 and gallery.count("d", kind=NEGATIVE) == 1
    assert gallery.count("d", "alice") == 2 and gallery.count("d", "alice", kind=NEGATIVE) == 1
    renamed = gallery.update_person("d", "alice", name="Alicia")  # a rename is the faces'; negatives stay negatives
    assert renamed.name == "Alicia" and len(renamed.negatives) == 1
    assert gallery.delete_person("d", "alice") == 3 and gallery.count("d", kind=NEGATIVE) == 0
    assert gallery.get_person("d", "alice") is None


def test_a_negative_needs_an_enrolled_person_and_goes_with_their_last_face(gallery):
    assert gallery.add_negatives("d", "nobody", [face(unit(1))]) is None
    assert gallery.count("d", kind=NEGATIVE) == 0
    (only,) = gallery.add_faces("d", "p", [face(unit(2))])
    other = gallery.add_faces("d", "q", [face(unit(3))])
    gallery.add_negatives("d", "p", [face(unit(4)), face(unit(5))])
    gallery.add_negatives("d", "q", [face(unit(6))])
    assert gallery.delete_face("d", only) == 1
    assert gallery.get_person("d", "p") is None and gallery.count("d", "q", kind=NEGATIVE) == 1
    (negative,) = gallery.get_person("d", "q").negatives
    assert gallery.delete_face("d", negative.face_id) == 1  # a negative is deleted by its id
    assert gallery.count("d", "q") == 1 and gallery.get_person("d", "q").faces[0].face_id == other[0]
    gallery.add_negatives("d", "q", [face(unit(7))])
    assert gallery.delete_directory("d") == 2 and gallery.count("d", kind=NEGATIVE) == 0


def test_a_face_id_is_one_kind_in_a_directory(gallery):
    gallery.add_faces("d", "p", [face(unit(1), "as-face")])
    gallery.add_faces("d", "q", [face(unit(2))])
    assert gallery.add_negatives("d", "p", [face(unit(3), "as-negative")]) == ["as-negative"]
    assert gallery.add_negatives("d", "p", [face(unit(3), "as-negative")]) == ["as-negative"]  # a retry
    for call in (
        lambda: gallery.add_negatives("d", "p", [face(unit(1), "as-face")]),
        lambda: gallery.add_faces("d", "p", [face(unit(3), "as-negative")]),
        lambda: gallery.add_negatives("d", "q", [face(unit(3), "as-negative")]),
    ):
        with pytest.raises(Conflict):
            call()
    assert gallery.count("d") == 2 and gallery.count("d", kind=NEGATIVE) == 1
    gallery.add_faces("elsewhere", "p", [face(unit(4))])
    assert gallery.add_negatives("elsewhere", "p", [face(unit(5), "as-face")]) == ["as-face"]
    assert gallery.get_person("d", "p").faces[0].face_id == "as-face"


def test_negatives_stay_in_their_directory(gallery):
    for directory in ("a", "b"):
        gallery.add_faces(directory, "p", [face(unit(1))])
    gallery.add_negatives("a", "p", [face(unit(2))])
    assert gallery.best_negatives("b", unit(2), ["p"]) == {} and gallery.get_person("b", "p").negatives == []
    assert gallery.delete_person("b", "p") == 1 and gallery.count("a", "p", kind=NEGATIVE) == 1
    assert gallery.delete_directory("b") == 0 and gallery.count("a", kind=NEGATIVE) == 1


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda g: g.add_negatives("d", "keep", []), "no_faces"),
        (lambda g: g.add_negatives("d", "keep", [face(np.zeros(DIM))]), "invalid_vector"),
        (lambda g: g.add_negatives("d", " keep", [face(unit(1))]), "invalid_person_id"),
        (lambda g: g.add_negatives("*", "keep", [face(unit(1))]), "invalid_directory"),
        (lambda g: g.best_negatives("d", np.zeros(DIM), ["keep"]), "invalid_vector"),
        (lambda g: g.best_negatives("d", unit(1), ["\n"]), "invalid_person_id"),
        (lambda g: g.person_vectors("d", limit=0), "invalid_limit"),
    ],
)
def test_invalid_negative_and_health_input_changes_nothing(gallery, call, code):
    gallery.add_faces("d", "keep", [face(unit(5))])
    with pytest.raises(InvalidInput) as info:
        call(gallery)
    assert info.value.code == code
    assert gallery.count("d") == 1 and gallery.count("d", kind=NEGATIVE) == 0


def test_export_says_which_points_are_negatives_and_import_restores_them_as_such(gallery):
    gallery.add_faces("src", "p", [face(unit(1)), face(unit(2))], name="P", metadata={"k": 1})
    (negative_id,) = gallery.add_negatives("src", "p", [face(unit(3))])
    exported, cursor = [], None
    while True:
        page, cursor = gallery.export_faces("src", limit=1, cursor=cursor)
        exported += page
        if cursor is None:
            break
    assert sorted((f.face_id == negative_id, f.kind) for f, _ in exported) == [
        (False, FACE),
        (False, FACE),
        (True, NEGATIVE),
    ]

    def new(stored, vector):
        return NewFace(np.asarray(vector), stored.box, stored.score, stored.source_sha256, stored.face_id)

    # one page at a time, as a client imports an export file: the negative may come before the faces
    for stored, vector in sorted(exported, key=lambda e: e[0].kind != NEGATIVE):
        record = [new(stored, vector)]
        faces, negatives = ([], record) if stored.kind == NEGATIVE else (record, [])
        gallery.import_faces("dst", [ImportedPerson("p", stored.name, stored.metadata, faces, negatives)])
    person = gallery.get_person("dst", "p")
    assert [f.face_id for f in person.negatives] == [negative_id] and len(person.faces) == 2
    assert person.name == "P" and person.metadata == {"k": 1}
    assert gallery.search("dst", unit(3), limit=1)[0].face.face_id != negative_id
    assert gallery.best_negatives("dst", unit(3), ["p"])["p"] > 0.999


def test_person_vectors_pages_persons_with_their_faces_only(gallery):
    vectors = {f"p{k}": [unit(10 * k + j) for j in range(k + 1)] for k in range(5)}
    ids = {p: gallery.add_faces("d", p, [face(v) for v in vs], name=p.upper()) for p, vs in vectors.items()}
    gallery.add_negatives("d", "p1", [face(unit(999))])
    gallery.add_faces("other", "p0", [face(unit(998))])
    seen, offset = [], 0
    while offset is not None:
        page, offset = gallery.person_vectors("d", limit=2, offset=offset)
        seen += page
    assert [p.person_id for p in seen] == sorted(vectors) and not any(p.truncated for p in seen)
    for person in seen:
        assert set(person.face_ids) == set(ids[person.person_id]) and person.name == person.person_id.upper()
        by_id = dict(zip(ids[person.person_id], vectors[person.person_id], strict=True))
        for face_id, vector in zip(person.face_ids, person.vectors, strict=True):
            assert float(vector @ by_id[face_id]) > 0.9999
