"""The real CompreFace SDK and DeepStack client, and the exact requests Double Take and Viseron send, against the
real service (api/compat) on real photos.

The tests of each module run in order on one collection (one key, one directory), as a client would use it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from compreface import CompreFace
from deepstack.core import DeepstackFace
from server import KEYS

ROOT = Path("face_recognition/examples/knn_examples")
TRAIN = {
    "Barack Obama": [ROOT / "train/obama/obama.jpg", ROOT / "train/obama/obama2.jpg"],
    "Joe Biden": [ROOT / "train/biden/biden.jpg", ROOT / "train/biden/biden2.jpg"],
    "Rose Leslie": [ROOT / "train/rose_leslie/img1.jpg", ROOT / "train/rose_leslie/img2.jpg"],
}
GROUP = Path("face_recognition/examples/two_people.jpg")  # Obama and Biden
OBAMA_PROBE = ROOT / "test/obama1.jpg"
STRANGER = ROOT / "test/alex_lacamoire1.jpg"  # never enrolled
NO_FACE = Path("dlib/examples/faces/dogs.jpg")  # animals, no human face


def _host_port(url: str) -> tuple[str, str]:
    host, port = url.rsplit(":", 1)
    return host, port


@pytest.fixture(scope="module")
def compre(service_url: str, faces_dir: Path):
    host, port = _host_port(service_url)
    cf = CompreFace(host, port, {"limit": 0, "det_prob_threshold": 0.8, "prediction_count": 2, "status": True})
    recognition = cf.init_face_recognition(KEYS["compat-c"])
    recognition.get_subjects().delete_all()
    state: dict[str, object] = {"cf": cf, "rec": recognition, "ids": {}}
    return state


def _path(faces_dir: Path, rel: Path) -> str:
    return str(faces_dir / rel)


def test_compreface_add_subject_and_examples(compre, faces_dir):
    subjects = compre["rec"].get_subjects()
    collection = compre["rec"].get_face_collection()
    assert subjects.add("Barack Obama") == {"subject": "Barack Obama"}
    # a subject without a face is not stored (the gallery keeps persons through their faces)
    assert subjects.list() == {"subjects": []}
    ids: dict[str, list[str]] = compre["ids"]
    for subject, photos in TRAIN.items():
        for photo in photos:
            added = collection.add(_path(faces_dir, photo), subject)
            assert added["subject"] == subject, added
            ids.setdefault(subject, []).append(added["image_id"])
    assert sorted(subjects.list()["subjects"]) == sorted(TRAIN)
    listed = collection.list()
    assert listed["total_elements"] == 6 and listed["page_number"] == 0
    assert {f["image_id"] for f in listed["faces"]} == {i for v in ids.values() for i in v}


def test_compreface_list_pages(compre, service_url):
    page = httpx.get(
        f"{service_url}/api/v1/recognition/faces",
        params={"page": 1, "size": 4},
        headers={"x-api-key": KEYS["compat-c"]},
    ).json()
    assert page["total_pages"] == 2 and page["page_size"] == 4 and len(page["faces"]) == 2
    one = httpx.get(
        f"{service_url}/api/v1/recognition/faces",
        params={"subject": "Joe Biden"},
        headers={"x-api-key": KEYS["compat-c"]},
    ).json()
    assert sorted(f["image_id"] for f in one["faces"]) == sorted(compre["ids"]["Joe Biden"])


def test_compreface_recognize_group_and_stranger(compre, faces_dir):
    result = compre["rec"].recognize(_path(faces_dir, GROUP))["result"]
    named = {face["subjects"][0]["subject"] for face in result if face["subjects"][0]["similarity"] >= 0.99}
    assert named == {"Barack Obama", "Joe Biden"}, result
    for face in result:
        assert set(face["box"]) == {"probability", "x_min", "y_min", "x_max", "y_max"}
        assert len(face["landmarks"]) == 5 and "execution_time" in face
    stranger = compre["rec"].recognize(_path(faces_dir, STRANGER))["result"]
    assert len(stranger) == 1
    # listed (clients such as Viseron read subjects[0]) but under 0.5: no client threshold names a stranger
    assert stranger[0]["subjects"] and all(s["similarity"] < 0.5 for s in stranger[0]["subjects"])


def test_compreface_verify_against_saved_example(compre, faces_dir):
    collection = compre["rec"].get_face_collection()
    same = collection.verify(_path(faces_dir, OBAMA_PROBE), compre["ids"]["Barack Obama"][0])
    assert same["result"][0]["similarity"] >= 0.99, same
    other = collection.verify(_path(faces_dir, OBAMA_PROBE), compre["ids"]["Joe Biden"][0])
    assert other["result"][0]["similarity"] < 0.5, other


def test_compreface_detection_and_verification_services(compre, faces_dir):
    cf = compre["cf"]
    detected = cf.init_face_detection(KEYS["compat-c"]).detect(_path(faces_dir, GROUP))
    assert len(detected["result"]) == 2 and "plugins_versions" in detected
    verified = cf.init_face_verification(KEYS["compat-c"]).verify(
        _path(faces_dir, OBAMA_PROBE), _path(faces_dir, GROUP)
    )
    matches = sorted(m["similarity"] for m in verified["result"][0]["face_matches"])
    assert len(matches) == 2 and matches[0] < 0.5 <= 0.99 <= matches[1], verified


def test_compreface_rename_merges_and_keeps_recognition(compre, faces_dir):
    subjects = compre["rec"].get_subjects()
    assert subjects.update("Joe Biden", "Biden") == {"updated": True}
    assert sorted(subjects.list()["subjects"]) == ["Barack Obama", "Biden", "Rose Leslie"]
    result = compre["rec"].recognize(_path(faces_dir, GROUP))["result"]
    assert {f["subjects"][0]["subject"] for f in result} == {"Barack Obama", "Biden"}
    assert subjects.update("Biden", "Biden") == {"updated": False}
    # the faces moved, under new image ids
    listed = compre["rec"].get_face_collection().list()["faces"]
    compre["ids"]["Biden"] = [f["image_id"] for f in listed if f["subject"] == "Biden"]
    assert len(compre["ids"]["Biden"]) == 2


def test_compreface_delete_by_id_subject_and_all(compre):
    collection = compre["rec"].get_face_collection()
    subjects = compre["rec"].get_subjects()
    first = compre["ids"]["Barack Obama"][0]
    assert collection.delete(first) == {"image_id": first, "subject": "Barack Obama"}
    again = collection.delete(first)
    assert again["code"] == 11 and again["faceserve_code"] == "face_not_found"
    assert collection.delete_all("Rose Leslie") == {"deleted": 2}
    assert subjects.delete("Biden") == {"subject": "Biden"}
    assert subjects.list() == {"subjects": ["Barack Obama"]}
    assert subjects.delete_all() == {"deleted": 1}
    assert collection.list()["total_elements"] == 0


@pytest.fixture(scope="module")
def deepstack(service_url: str):
    host, port = _host_port(service_url)
    client = DeepstackFace(ip=host.split("//")[1], port=int(port), api_key=KEYS["compat-d"], min_confidence=0.6)
    for userid in client.get_registered_faces():
        httpx.post(f"{service_url}/v1/vision/face/delete", data={"userid": userid, "api_key": KEYS["compat-d"]})
    return client


def test_deepstack_register_recognize_list_delete(deepstack, service_url, faces_dir):
    for userid, photos in (("obama", TRAIN["Barack Obama"]), ("biden", TRAIN["Joe Biden"])):
        for photo in photos:
            assert deepstack.register(userid, (faces_dir / photo).read_bytes()) == "face added"
    assert sorted(deepstack.get_registered_faces()) == ["biden", "obama"]
    predictions = deepstack.recognize((faces_dir / GROUP).read_bytes())
    assert sorted(p["userid"] for p in predictions) == ["biden", "obama"]
    assert all(p["confidence"] >= 0.99 for p in predictions)
    stranger = deepstack.recognize((faces_dir / STRANGER).read_bytes())
    assert [p["userid"] for p in stranger] == ["unknown"]
    assert len(deepstack.detect((faces_dir / GROUP).read_bytes())) == 2
    # CodeProject.AI clients (Viseron) delete with a url-encoded form
    deleted = httpx.post(
        f"{service_url}/v1/vision/face/delete", data={"userid": "biden"}, headers={"X-API-Key": KEYS["compat-d"]}
    )
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    assert deepstack.get_registered_faces() == ["obama"]


def test_deepstack_register_several_images_is_all_or_nothing(deepstack, service_url, faces_dir):
    files = [
        ("image1", (faces_dir / TRAIN["Rose Leslie"][0]).read_bytes()),
        ("image2", b"not an image at all"),
    ]
    answer = httpx.post(
        f"{service_url}/v1/vision/face/register",
        data={"userid": "rose", "api_key": KEYS["compat-d"]},
        files=files,
    )
    assert answer.status_code == 415 and answer.json()["success"] is False
    assert "rose" not in deepstack.get_registered_faces()
    files[1] = ("image2", (faces_dir / TRAIN["Rose Leslie"][1]).read_bytes())
    answer = httpx.post(
        f"{service_url}/v1/vision/face/register",
        data={"userid": "rose", "api_key": KEYS["compat-d"]},
        files=files,
    )
    assert answer.json()["success"] is True
    assert sorted(deepstack.get_registered_faces()) == ["obama", "rose"]


# --- the exact requests of integrations (read from their public source) -----------------------------------


def test_double_take_compreface_requests(service_url, faces_dir):
    """Double Take's detectors/compreface.js: train, recognize (face_plugins may be 'undefined'), remove."""
    key = {"x-api-key": KEYS["compat-c"]}
    url = f"{service_url}/api/v1/recognition"
    with open(faces_dir / TRAIN["Rose Leslie"][0], "rb") as photo:
        trained = httpx.post(f"{url}/faces", params={"subject": "rose"}, headers=key, files={"file": photo})
    assert trained.status_code == 201 and trained.json()["subject"] == "rose"
    with open(faces_dir / "face_recognition/examples/knn_examples/test/kit_with_rose.jpg", "rb") as photo:
        found = httpx.post(
            f"{url}/recognize?face_plugins=undefined",
            params={"det_prob_threshold": 0.8},
            headers=key,
            files={"file": photo},
        ).json()
    # Double Take reads subjects[0] when there is one; a face with none is unknown (confidence 0)
    best = [
        (f["subjects"][0]["subject"], f["subjects"][0]["similarity"]) if f["subjects"] else None
        for f in found["result"]
    ]
    assert len(best) == 2
    # Double Take's default MATCH.CONFIDENCE is 60 (%): Rose matches; Kit Harington, not enrolled, does not (Rose
    # is given to one face of a photo only, so his face lists no subject at all)
    assert [b for b in best if b and b[1] >= 0.6] == [("rose", max(b[1] for b in best if b))]
    assert sum(b is None or b[1] < 0.5 for b in best) == 1
    removed = httpx.request("DELETE", f"{url}/faces", params={"subject": "rose"}, headers=key)
    assert removed.json() == {"deleted": 1}


def test_double_take_reads_code_28_as_no_face(service_url, faces_dir):
    answer = httpx.post(
        f"{service_url}/api/v1/recognition/recognize",
        headers={"x-api-key": KEYS["compat-c"]},
        files={"file": (faces_dir / NO_FACE).read_bytes()},
    )
    body = answer.json()
    assert answer.status_code == 422 and body["code"] == 28 and "result" not in body


def test_double_take_and_viseron_deepstack_requests(service_url, faces_dir):
    """Double Take's detectors/deepstack.js (multipart with api_key) and Viseron's CodeProject.AI component
    (list with an empty POST, delete url-encoded; it sends no key, so ours goes in X-API-Key)."""
    url = f"{service_url}/v1/vision/face"
    with open(faces_dir / TRAIN["Joe Biden"][0], "rb") as photo:
        trained = httpx.post(
            f"{url}/register", data={"userid": "joe", "api_key": KEYS["compat-d"]}, files={"image": photo}
        )
    assert trained.json()["success"] is True
    with open(faces_dir / GROUP, "rb") as photo:
        found = httpx.post(f"{url}/recognize", data={"api_key": KEYS["compat-d"]}, files={"image": photo}).json()
    assert found["success"] and "joe" in {p["userid"] for p in found["predictions"]}
    listed = httpx.post(f"{url}/list", headers={"X-API-Key": KEYS["compat-d"]})
    assert "joe" in listed.json()["faces"]
    removed = httpx.post(f"{url}/delete", data={"userid": "joe", "api_key": KEYS["compat-d"]}, files={})
    assert removed.json()["success"] is True
