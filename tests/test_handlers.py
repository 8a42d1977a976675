"""The request logic (api/handlers.py) without a server: the real Gallery over an in-memory store, stand-in
models (tests/fakes), so every rule is checked in milliseconds; tests/test_service.py keeps the HTTP paths."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from fakes import models as fake
from fakes.store import MemoryStore
from pydantic import ValidationError

from api.auth import OPEN, ApiKey, Key
from api.errors import ApiError
from api.handlers import FaceApi
from api.pixel_budget import PixelBudget
from faceserve import schemas
from models.calibration import Calibration
from models.imaging import ImageLimits
from models.registry import EMBEDDERS
from qdrant import Gallery

SPEC = EMBEDDERS["dlib-resnet"]
ALICE, BOB, CAROL = (0, 10, 0), (0, 20, 0), (0, 30, 0)
NOBODY: fake.Colour = (0, 0, 0)
T = TypeVar("T")
# One loop for the module: the decode budget's lock belongs to the loop it first waited on.
LOOP = asyncio.new_event_loop()


def run(call: Coroutine[Any, Any, T]) -> T:
    return LOOP.run_until_complete(call)


def key(directories: list[str], access: str = "read") -> Key:
    return Key(ApiKey(name="k", sha256="0" * 64, directories=directories, access=access))


def make_api(calibration: Calibration | None = None) -> FaceApi:
    return FaceApi(
        detect=fake.detect,
        embed=fake.embedder(SPEC.dim),
        spec=SPEC,
        gallery=Gallery(MemoryStore(), SPEC.model_id, SPEC.dim),
        limits=ImageLimits(),
        max_faces=100,
        max_request_bytes=1 << 20,
        decode_budget=PixelBudget(10**7, 1.0),
        calibration=calibration,
        security="medium",
    )


@pytest.fixture
def api() -> FaceApi:
    return make_api()


def enroll(api: FaceApi, colour: fake.Colour, person_id: str, directory: str = "d", **fields: Any):
    fields.setdefault("image", fake.photo(colour))
    request = schemas.EnrollRequest(directory=directory, person_id=person_id, **fields)
    return run(api.enroll(OPEN, request))


def refused(call: Coroutine[Any, Any, Any]) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        run(call)
    return info.value.status, info.value.code


def test_enrol_then_recognise_every_face(api):
    enroll(api, ALICE, "alice", name="Alice")
    enroll(api, BOB, "bob")
    result = run(api.recognize(OPEN, schemas.RecognizeRequest(image=fake.photo(BOB, CAROL, ALICE), directory="d")))
    assert [(f.decision, f.match and f.match.person_id) for f in result.faces] == [
        ("match", "bob"),
        ("unknown", None),
        ("match", "alice"),
    ]
    assert result.faces[2].match.name == "Alice" and result.enrolled_faces == 2 and not result.calibrated


def test_keys_are_asked_before_any_work(api):
    reader = key(["d"])
    photo = fake.photo(ALICE)
    assert refused(api.enroll(reader, schemas.EnrollRequest(image=photo, directory="d", person_id="a"))) == (
        403,
        "forbidden",
    )
    assert refused(api.recognize(key(["other"]), schemas.RecognizeRequest(image=photo, directory="d"))) == (
        403,
        "forbidden",
    )
    stranger = Key(None, "no key")
    assert refused(api.detect(stranger, schemas.DetectRequest(image=photo))) == (401, "unauthorized")
    assert refused(api.list_persons(stranger, schemas.ListPersonsRequest(directory="d"))) == (401, "unauthorized")
    for call in (
        api.export_faces(reader, schemas.ExportRequest(directory="d")),
        api.import_faces(reader, schemas.ImportRequest(directory="d", model=SPEC.model_id, faces=[_face()])),
    ):
        assert refused(call) == (403, "forbidden")  # an export is every vector of a directory: write keys only
    assert run(api.detect(reader, schemas.DetectRequest(image=photo))).faces  # any valid key may detect
    assert api.gallery.count("d") == 0


def _face() -> schemas.GalleryFace:
    return schemas.GalleryFace(
        face_id="f1",
        person_id="p",
        created_at="2024-01-01T00:00:00+00:00",
        box=schemas.Box(x1=0, y1=0, x2=1, y2=1),
        score=0.9,
        embedding=fake.vector(ALICE, SPEC.dim).tolist(),
    )


def test_absent_persons_are_404_and_deleting_them_deletes_nothing(api):
    assert refused(api.get_person(OPEN, schemas.PersonRequest(directory="d", person_id="x"))) == (404, "not_found")
    update = schemas.UpdatePersonRequest(directory="d", person_id="x", name="X")
    assert refused(api.update_person(OPEN, update)) == (404, "not_found")
    assert run(api.delete_person(OPEN, schemas.PersonRequest(directory="d", person_id="x"))).deleted_faces == 0


def test_a_request_id_is_one_photo(api):
    first = enroll(api, ALICE, "alice", request_id="r1")
    assert enroll(api, ALICE, "alice", request_id="r1").face_id == first.face_id  # a retry stores nothing twice
    assert api.gallery.count("d") == 1
    with pytest.raises(ApiError) as info:
        enroll(api, (40, 10, 0), "alice", request_id="r1")
    assert (info.value.status, info.value.code) == (409, "request_id_conflict")


def test_one_person_per_photo(api):
    assert refused(api.enroll(OPEN, schemas.EnrollRequest(image=fake.photo(NOBODY), directory="d", person_id="a"))) == (
        422,
        "no_face",
    )
    group = fake.photo(ALICE, BOB)
    single = schemas.EnrollRequest(image=group, directory="d", person_id="a", single_face=True)
    assert refused(api.enroll(OPEN, single)) == (422, "several_faces")
    largest = run(api.enroll(OPEN, single.model_copy(update={"single_face": False})))
    assert largest.largest_selected and largest.faces_detected == 2
    assert refused(api.detect(OPEN, schemas.DetectRequest(image=fake.photo(fake.FAILS)))) == (422, "detection_failed")


def test_verify_decides_on_the_largest_faces(api):
    same = run(api.verify(OPEN, schemas.VerifyRequest(image_a=fake.photo(ALICE), image_b=fake.photo((10, 10, 0)))))
    other = run(api.verify(OPEN, schemas.VerifyRequest(image_a=fake.photo(ALICE), image_b=fake.photo(BOB))))
    assert same.same_person and not other.same_person and other.similarity == 0
    no_face = schemas.VerifyRequest(image_a=fake.photo(ALICE), image_b=fake.photo(NOBODY))
    with pytest.raises(ApiError) as info:
        run(api.verify(OPEN, no_face))
    assert (info.value.code, info.value.message.split(":")[0]) == ("no_face", "image_b")


def test_security_levels_move_the_threshold_with_a_calibration():
    calibration = Calibration(
        model_id=SPEC.model_id,
        similarities=(0.0, 0.5, 0.9, 0.99),
        rates=(1e-1, 1e-2, 1e-4, 1e-9),
        ambiguity_margin=0.01,
        source="test",
        created="now",
        identities=2,
        impostor_pairs=1,
        genuine_pairs=1,
    )
    api = make_api(calibration)
    enroll(api, ALICE, "alice")
    probe = fake.photo((90, 10, 0))  # cos(90/255·90°) ≈ 0.85 to Alice
    decided = {
        level: run(api.recognize(OPEN, schemas.RecognizeRequest(image=probe, directory="d", security=level)))
        for level in ("low", "strict")
    }
    assert decided["low"].threshold < 0.85 < decided["strict"].threshold
    assert [f.decision for f in decided["low"].faces] == ["match"]
    assert [f.decision for f in decided["strict"].faces] == ["unknown"]
    assert decided["low"].faces[0].false_accept_probability is not None


def test_import_refuses_another_models_vectors(api):
    wrong = schemas.ImportRequest(directory="d", model="facenet-vggface2", faces=[_face()])
    assert refused(api.import_faces(OPEN, wrong)) == (409, "model_mismatch")
    right = wrong.model_copy(update={"model": SPEC.model_id})
    assert run(api.import_faces(OPEN, right)).imported_faces == 1
    page = run(api.export_faces(OPEN, schemas.ExportRequest(directory="d")))
    assert [(f.face_id, f.person_id) for f in page.faces] == [("f1", "p")]


def test_batch_items_fail_alone(api):
    request = schemas.EnrollBatchRequest.model_validate(
        {
            "items": [
                {"image": fake.photo(ALICE), "directory": "d", "person_id": "alice"},
                {"image": fake.photo(NOBODY), "directory": "d", "person_id": "nobody"},
                {"image": fake.photo(BOB), "directory": "", "person_id": "bob"},
                {"image": fake.photo(BOB), "directory": "d", "person_id": "bob", "metadata": {"x": "y" * 5000}},
                {"image": "", "directory": "d", "person_id": "e"},
            ]
        }
    )
    result = run(api.enroll_batch(OPEN, request))
    assert (result.enrolled, result.failed) == (1, 4)
    assert [r.error.code for r in result.results if isinstance(r, schemas.EnrollItemFailed)] == [
        "no_face",
        "invalid_directory",
        "metadata_too_large",
        "empty_image",
    ]


def test_a_batch_runs_only_when_the_key_may_write_every_directory(api):
    request = schemas.EnrollBatchRequest(
        items=[
            schemas.EnrollRequest(image=fake.photo(ALICE), directory="mine", person_id="a"),
            schemas.EnrollRequest(image=fake.photo(BOB), directory="theirs", person_id="b"),
        ]
    )
    assert refused(api.enroll_batch(key(["mine"], "write"), request)) == (403, "forbidden")
    assert api.gallery.count("mine") == 0


BAD_FIELDS = [
    (schemas.EnrollRequest, "directory", "", "invalid_directory"),
    (schemas.EnrollRequest, "person_id", "a*", "invalid_person_id"),
    (schemas.EnrollRequest, "name", "n" * 300, "invalid_name"),
    (schemas.EnrollRequest, "name", "a\x00b", "invalid_name"),
    (schemas.EnrollRequest, "metadata", [1], "invalid_metadata"),
    (schemas.EnrollRequest, "request_id", "r" * 200, "invalid_parameter"),
    (schemas.RecognizeRequest, "top_k", 101, "invalid_parameter"),
    (schemas.FaceRequest, "face_id", "..", "invalid_face_id"),
]


@pytest.mark.parametrize(("model", "field", "value", "code"), BAD_FIELDS)
def test_request_models_give_each_broken_rule_its_code(model, field, value, code):
    body = {"image": fake.photo(ALICE), "directory": "d", "person_id": "p", "face_id": "f", field: value}
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert schemas.request_error(info.value.errors()).code == code


def test_ids_are_normalised_before_they_reach_the_logic(api):
    decomposed = "Jose\u0301"
    enroll(api, ALICE, decomposed, directory="Cafe\u0301")
    person = run(api.get_person(OPEN, schemas.PersonRequest(directory="Café", person_id="José")))
    assert (person.directory, person.person_id) == ("Café", "José")


def refusal(call: Coroutine[Any, Any, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        run(call)
    return info.value


def test_a_face_below_the_enrolment_quality_level_is_refused_with_its_reasons(api):
    blurred = schemas.EnrollRequest(image=fake.photo(ALICE, sharp=False), directory="d", person_id="alice")
    error = refusal(api.enroll(OPEN, blurred))
    assert (error.status, error.code, error.details) == (422, "low_quality", {"reasons": ["blurry"]})
    assert error.body()["error"]["reasons"] == ["blurry"]
    enrolled = run(api.enroll(OPEN, blurred.model_copy(update={"quality": "none"})))
    assert enrolled.face.quality is not None and enrolled.face.quality.reasons == []
    sharp = enroll(api, ALICE, "alice")
    assert sharp.face.quality is not None and sharp.face.quality.level == "medium"


def test_recognize_never_names_a_face_below_its_quality_level(api):
    enroll(api, ALICE, "alice")
    probe = fake.photo(ALICE, sharp=False)
    (face,) = run(api.recognize(OPEN, schemas.RecognizeRequest(image=probe, directory="d"))).faces
    assert (face.decision, face.match) == ("unknown", None)
    assert face.quality is not None and face.quality.reasons == ["blurry"]
    assert face.candidates[0].person_id == "alice"
    request = schemas.RecognizeRequest(image=probe, directory="d", quality="none")
    assert [f.decision for f in run(api.recognize(OPEN, request)).faces] == ["match"]


def test_enrolment_checks_refuse_another_persons_face_and_a_stranger_to_the_person(api):
    enroll(api, ALICE, "alice")
    conflict = refusal(api.enroll(OPEN, schemas.EnrollRequest(image=fake.photo(ALICE), directory="d", person_id="a2")))
    assert (conflict.status, conflict.code, conflict.details["person_id"]) == (409, "identity_conflict", "alice")
    assert conflict.details["similarity"] == pytest.approx(1.0)
    mismatch = refusal(api.enroll(OPEN, schemas.EnrollRequest(image=fake.photo(BOB), directory="d", person_id="alice")))
    assert (mismatch.status, mismatch.code) == (409, "not_same_person")
    enroll(api, (30, 10, 0), "alice")  # cos ≈ 0.98 to Alice's face: her own
    enroll(api, ALICE, "a2", allow_conflict=True)
    enroll(api, BOB, "alice", allow_mismatch=True)
    assert api.gallery.count("d", "alice") == 3


def test_batch_items_report_the_enrolment_checks(api):
    enroll(api, ALICE, "alice")
    request = schemas.EnrollBatchRequest.model_validate(
        {
            "items": [
                {"image": fake.photo(ALICE), "directory": "d", "person_id": "other"},
                {"image": fake.photo(BOB), "directory": "d", "person_id": "alice"},
                {"image": fake.photo(CAROL, sharp=False), "directory": "d", "person_id": "carol"},
            ]
        }
    )
    results = run(api.enroll_batch(OPEN, request)).results
    errors = [r.error for r in results if isinstance(r, schemas.EnrollItemFailed)]
    assert [(e.code, e.person_id, e.reasons) for e in errors] == [
        ("identity_conflict", "alice", None),
        ("not_same_person", "alice", None),
        ("low_quality", None, ["blurry"]),
    ]


def test_a_rejected_face_stops_matching_the_person_and_her_own_faces_still_do(api):
    enroll(api, ALICE, "alice")
    near = fake.photo((40, 10, 0))  # cos ≈ 0.97 to Alice: over the 0.91 threshold
    recognize = schemas.RecognizeRequest(image=near, directory="d")
    assert [f.decision for f in run(api.recognize(OPEN, recognize)).faces] == ["match"]
    rejected = run(api.reject(OPEN, schemas.RejectRequest(directory="d", person_id="alice", image=near)))
    assert [f.decision for f in run(api.recognize(OPEN, recognize)).faces] == ["unknown"]
    own = schemas.RecognizeRequest(image=fake.photo(ALICE), directory="d")
    assert [f.match and f.match.person_id for f in run(api.recognize(OPEN, own)).faces] == ["alice"]
    person = run(api.get_person(OPEN, schemas.PersonRequest(directory="d", person_id="alice")))
    assert [n.face_id for n in person.negatives] == [rejected.face_id]
    listed = run(api.list_persons(OPEN, schemas.ListPersonsRequest(directory="d"))).persons
    assert [(p.face_count, p.negative_count) for p in listed] == [(1, 1)]
    exported = run(api.export_faces(OPEN, schemas.ExportRequest(directory="d"))).faces
    assert sorted(f.kind for f in exported) == ["face", "negative"]
    run(api.import_faces(OPEN, schemas.ImportRequest(directory="copy", model=SPEC.model_id, faces=exported)))
    again = schemas.RecognizeRequest(image=near, directory="copy")
    assert [f.decision for f in run(api.recognize(OPEN, again)).faces] == ["unknown"]
    absent = schemas.RejectRequest(directory="d", person_id="nobody", image=near)
    assert refused(api.reject(OPEN, absent)) == (404, "not_found")
    assert refused(api.reject(key(["d"]), absent)) == (403, "forbidden")
    run(api.delete_person(OPEN, schemas.PersonRequest(directory="d", person_id="alice")))
    assert api.gallery.count("d", kind="negative") == 0


def test_reject_picks_the_face_its_box_overlaps(api):
    enroll(api, ALICE, "alice")
    two = fake.photo((40, 10, 0), (0, 50, 0))
    box = schemas.Box(x1=90, y1=10, x2=150, y2=70)  # the second square
    rejected = run(api.reject(OPEN, schemas.RejectRequest(directory="d", person_id="alice", image=two, box=box)))
    assert rejected.face.box.x1 > 80
    far = schemas.Box(x1=500, y1=500, x2=600, y2=600)
    assert refused(api.reject(OPEN, schemas.RejectRequest(directory="d", person_id="alice", image=two, box=far))) == (
        422,
        "no_face",
    )


def test_health_flags_a_mislabelled_face_a_duplicate_a_single_face_and_a_low_quality_face(api):
    enroll(api, ALICE, "alice")
    enroll(api, (30, 10, 0), "alice")
    enroll(api, BOB, "bob")
    enroll(api, (30, 20, 0), "bob")
    mislabelled = enroll(api, CAROL, "bob", allow_mismatch=True)
    enroll(api, (10, 10, 0), "alice-dup", allow_conflict=True)
    blurred = enroll(api, (0, 40, 0), "dave", quality="none", image=fake.photo((0, 40, 0), sharp=False))
    report = run(api.health(OPEN, schemas.HealthRequest(directory="d")))
    assert [(d.person_id, d.face_id) for d in report.disagreeing] == [("bob", mislabelled.face_id)]
    assert [(c.person_a, c.person_b) for c in report.confusable] == [("alice", "alice-dup")]
    assert report.single_face == ["alice-dup", "dave"]
    assert [(f.person_id, f.face_id, f.reasons) for f in report.low_quality] == [("dave", blurred.face_id, ["blurry"])]
    assert (report.persons, report.faces, report.truncated) == (4, 7, False)
    assert refused(api.health(key(["other"]), schemas.HealthRequest(directory="d"))) == (403, "forbidden")


def test_a_retry_is_not_refused_by_the_enrolment_checks_and_a_reused_request_id_is_still_a_conflict(api):
    first = enroll(api, ALICE, "alice", request_id="r1")
    assert enroll(api, ALICE, "alice", request_id="r1").face_id == first.face_id
    assert refused(
        api.enroll(
            OPEN, schemas.EnrollRequest(image=fake.photo(BOB), directory="d", person_id="alice", request_id="r1")
        )
    ) == (
        409,
        "request_id_conflict",
    )
