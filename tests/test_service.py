"""The product over real HTTP: `bentoml serve` with real weights, a fresh Edge gallery and real photos."""

from __future__ import annotations

import base64
import concurrent.futures
import re
from pathlib import Path

import httpx
import pytest
from server import auth

from models.registry import EMBEDDERS
from scripts.faces_data import FACES_DIR

JOHNS = FACES_DIR / "dlib/examples/johns"
KNN = FACES_DIR / "face_recognition/examples/knn_examples"


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def post(url: str, endpoint: str, timeout: float = 120, key: str = "admin", **body) -> httpx.Response:
    return httpx.post(f"{url}/{endpoint}", json=body, headers=auth(key), timeout=timeout)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def johns() -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(JOHNS.iterdir()) if d.is_dir()}


@pytest.fixture(scope="module")
def enrolled_johns(service_url) -> dict[str, list[Path]]:
    """Two photos of each of the five Johns enrolled in directory 'johns'; returns the held-out photos."""
    held_out = {}
    for person, photos in johns().items():
        for photo in photos[:2]:
            result = ok(
                post(
                    service_url,
                    "enroll",
                    image=b64(photo),
                    directory="johns",
                    person_id=person,
                    name=person.replace("_", " "),
                    metadata={"source": photo.name},
                )
            )
            assert result["person_id"] == person and result["faces_detected"] >= 1
        held_out[person] = photos[2:]
    return held_out


def test_info_names_the_model(service_url):
    """Whichever model `auto` resolved to on this machine: /info must describe it as the registry does."""
    info = ok(post(service_url, "info"))
    spec = EMBEDDERS[info["model"]]
    assert (info["dim"], info["input_size"], info["threshold"]) == (spec.dim, spec.geometry.size, spec.threshold)
    assert 0 < info["threshold"] < 1


def test_detect_multipart_and_json_agree(service_url):
    photo = FACES_DIR / "facenet-pytorch/data/multiface.jpg"
    with open(photo, "rb") as f:
        multipart = ok(httpx.post(f"{service_url}/detect", files={"image": f}, headers=auth(), timeout=60))
    as_json = ok(post(service_url, "detect", image="data:image/jpeg;base64," + b64(photo)))
    assert len(multipart["faces"]) == len(as_json["faces"]) == 6
    assert multipart["image"] == {"width": 1200, "height": 630}


def test_recognize_held_out_photos_of_every_john(service_url, enrolled_johns):
    wrong = {}
    for person, photos in enrolled_johns.items():
        for photo in photos:
            faces = ok(post(service_url, "recognize", image=b64(photo), directory="johns"))["faces"]
            best = faces[0]["match"] if faces else None
            if best is None or best["person_id"] != person:
                wrong[f"{person}/{photo.name}"] = best and best["person_id"]
    total = sum(map(len, enrolled_johns.values()))
    assert not wrong, f"{len(wrong)} of {total} held-out photos misrecognised: {wrong}"


def test_match_carries_name_metadata_and_scores(service_url, enrolled_johns):
    person, photos = next(iter(enrolled_johns.items()))
    result = ok(post(service_url, "recognize", image=b64(photos[0]), directory="johns", top_k=10))
    face = result["faces"][0]
    match = face["match"]
    assert face["known"] is True
    assert match["name"] == person.replace("_", " ") and "source" in match["metadata"]
    assert match["similarity"] >= result["threshold"]
    assert abs(match["distance"] - (2 - 2 * match["similarity"]) ** 0.5) < 1e-3
    assert all(c["person_id"] != person for c in face["candidates"])
    assert [c["similarity"] for c in face["candidates"]] == sorted(
        (c["similarity"] for c in face["candidates"]), reverse=True
    )


def test_stranger_is_unknown(service_url, enrolled_johns):
    faces = ok(post(service_url, "recognize", image=b64(KNN / "train/obama/obama.jpg"), directory="johns"))["faces"]
    assert len(faces) == 1
    assert faces[0]["known"] is False and faces[0]["match"] is None


def test_every_face_of_a_group_photo(service_url):
    for person, photo in (("obama", "obama/obama.jpg"), ("biden", "biden/biden.jpg")):
        ok(post(service_url, "enroll", image=b64(KNN / "train" / photo), directory="knn", person_id=person))
    faces = ok(post(service_url, "recognize", image=b64(KNN / "test/obama_and_biden.jpg"), directory="knn"))["faces"]
    assert len(faces) == 3
    found = sorted(f["match"]["person_id"] for f in faces if f["match"])
    assert found == ["biden", "obama"]


def test_verify_same_and_different(service_url):
    same = ok(
        post(service_url, "verify", image_a=b64(KNN / "train/obama/obama.jpg"), image_b=b64(KNN / "test/obama1.jpg"))
    )
    assert same["same_person"] is True and same["similarity"] >= same["threshold"]
    different = ok(
        post(
            service_url,
            "verify",
            image_a=b64(KNN / "train/obama/obama.jpg"),
            image_b=b64(KNN / "train/biden/biden.jpg"),
        )
    )
    assert different["same_person"] is False and different["similarity"] < different["threshold"]


def test_embed_returns_unit_vectors(service_url):
    faces = ok(post(service_url, "embed", image=b64(KNN / "train/obama/obama.jpg")))["faces"]
    assert len(faces) == 1 and len(faces[0]["embedding"]) == ok(post(service_url, "info"))["dim"]
    assert abs(sum(v * v for v in faces[0]["embedding"]) - 1) < 1e-3


def test_directories_are_isolated(service_url):
    photo, other = KNN / "train/rose_leslie/img1.jpg", KNN / "train/rose_leslie/img2.jpg"
    ok(post(service_url, "enroll", image=b64(photo), directory="tenant-a", person_id="rose"))
    ok(post(service_url, "enroll", image=b64(photo), directory="tenant-b", person_id="rose"))
    assert ok(post(service_url, "recognize", image=b64(other), directory="tenant-c"))["faces"][0]["match"] is None
    ok(post(service_url, "persons/delete", directory="tenant-a", person_id="rose"))
    assert ok(post(service_url, "recognize", image=b64(other), directory="tenant-a"))["faces"][0]["match"] is None
    assert (
        ok(post(service_url, "recognize", image=b64(other), directory="tenant-b"))["faces"][0]["match"]["person_id"]
        == "rose"
    )


def test_gallery_management_and_delete(service_url):
    directory = "manage"
    photos = sorted((KNN / "train/kit_harington").glob("*.jpeg"))
    face_ids = [
        ok(post(service_url, "enroll", image=b64(p), directory=directory, person_id="kit"))["face_id"] for p in photos
    ]
    page = ok(post(service_url, "persons/list", directory=directory))
    assert [(p["person_id"], p["face_count"]) for p in page["persons"]] == [("kit", 2)]
    person = ok(
        post(
            service_url,
            "persons/update",
            directory=directory,
            person_id="kit",
            name="Kit Harington",
            metadata={"role": "actor"},
        )
    )
    assert person["name"] == "Kit Harington" and person["metadata"] == {"role": "actor"}
    person = ok(post(service_url, "persons/get", directory=directory, person_id="kit"))
    assert sorted(f["face_id"] for f in person["faces"]) == sorted(face_ids)
    assert ok(post(service_url, "faces/delete", directory=directory, face_id=face_ids[0]))["deleted_faces"] == 1
    assert (
        ok(post(service_url, "persons/get", directory=directory, person_id="kit"))["faces"][0]["face_id"] == face_ids[1]
    )
    test_photo = KNN / "test/johnsnow_test1.jpg"
    assert (
        ok(post(service_url, "recognize", image=b64(test_photo), directory=directory))["faces"][0]["match"]["person_id"]
        == "kit"
    )
    assert ok(post(service_url, "persons/delete", directory=directory, person_id="kit"))["deleted_faces"] == 1
    assert ok(post(service_url, "recognize", image=b64(test_photo), directory=directory))["faces"][0]["match"] is None
    assert post(service_url, "persons/get", directory=directory, person_id="kit").status_code == 404
    ok(post(service_url, "enroll", image=b64(photos[0]), directory=directory, person_id="kit"))
    assert ok(post(service_url, "directories/delete", directory=directory))["deleted_faces"] == 1
    assert ok(post(service_url, "persons/list", directory=directory))["persons"] == []


def test_enroll_batch_reports_each_item(service_url):
    items = [
        {"image": b64(KNN / "train/alex_lacamoire/img1.jpg"), "directory": "batch", "person_id": "alex"},
        {"image": b64(FACES_DIR / "synthetic/black_224x224.png"), "directory": "batch", "person_id": "nobody"},
        {"image": "not base64 !!", "directory": "batch", "person_id": "broken"},
    ]
    result = ok(post(service_url, "enroll_batch", items=items))
    assert (result["enrolled"], result["failed"]) == (1, 2)
    assert [r["ok"] for r in result["results"]] == [True, False, False]
    assert [r["error"]["code"] for r in result["results"][1:]] == ["no_face", "invalid_base64"]


def test_enroll_without_a_face_is_422(service_url):
    response = post(
        service_url, "enroll", image=b64(FACES_DIR / "synthetic/black_224x224.png"), directory="x", person_id="y"
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_face"


def test_32_concurrent_clients_recognise_and_are_batched(service_url, enrolled_johns):
    photos = [p for ps in enrolled_johns.values() for p in ps][:32] * 2  # 64 calls, 32 in flight at a time
    bodies = [{"image": b64(p), "directory": "johns"} for p in photos]
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        responses = list(
            pool.map(
                lambda body: httpx.post(f"{service_url}/recognize", json=body, headers=auth(), timeout=300), bodies
            )
        )
    assert [r.status_code for r in responses] == [200] * len(photos)
    metrics = httpx.get(f"{service_url}/metrics", timeout=30).text
    sizes = _batch_size_counts(metrics, "Embedder")
    print(
        "embedder batch sizes (bucket upper bound: count):", sizes, "detector:", _batch_size_counts(metrics, "Detector")
    )
    assert sum(count for size, count in sizes.items() if size > 1) > 0, f"no embedder batch above 1: {sizes}"


def _batch_size_counts(metrics: str, service: str) -> dict[float, float]:
    """Observations per histogram bucket of BentoML's adaptive_batch_size for one service."""
    buckets: dict[float, float] = {}
    for line in metrics.splitlines():
        if "adaptive_batch_size_bucket" in line and f'runner_name="{service}"' in line:
            le = re.search(r'le="([^"]+)"', line).group(1)
            buckets[float(le)] = buckets.get(float(le), 0) + float(line.rsplit(" ", 1)[1])
    # cumulative buckets → observations with batch size above each bound
    ordered = sorted(buckets.items())
    return {bound: count - prev for (bound, count), (_, prev) in zip(ordered, [(0, 0)] + ordered[:-1], strict=False)}
