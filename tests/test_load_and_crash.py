"""Short forms of the load and crash tests (full forms: scripts/loadtest.py, and this crash test with more rounds)."""

from __future__ import annotations

import base64
import threading
import time

import httpx
from server import auth, keys_json

from scripts.faces_data import FACES_DIR
from scripts.loadtest import run_load
from scripts.local_service import running_service


def test_mixed_load_has_no_errors_and_loses_nothing(service_url):
    report = run_load(service_url, auth(), clients=32, seconds=45)
    print(report.summary(45))
    assert sum(report.requests.values()) >= 64
    assert not report.errors, report.summary(45)
    assert not report.lost, report.summary(45)
    assert report.enrolled and report.deleted


def test_kill_9_during_enrolments_loses_no_acknowledged_face(tmp_path):
    env = {
        "FACESERVE_GALLERY_PATH": str(tmp_path / "gallery"),
        "FACESERVE_AUTH": "enabled",
        "FACESERVE_API_KEYS": keys_json(),
    }
    photos = [
        base64.b64encode(p.read_bytes()).decode() for p in sorted((FACES_DIR / "dlib/examples/johns").glob("*/*.jpg"))
    ]
    acknowledged: list[tuple[str, str]] = []  # (person_id, face_id)
    stop = threading.Event()

    def enrolment(i: int) -> dict[str, str]:
        """Request i of the stream; the retry after the crash re-sends exactly this."""
        person = f"p{i:05d}"
        return {"image": photos[i % len(photos)], "directory": "crash", "person_id": person, "request_id": person}

    def enrol_stream(url: str) -> None:
        with httpx.Client(base_url=url, headers=auth(), timeout=60) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                body = enrolment(i)
                try:
                    response = http.post("/enroll", json=body)
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 200:
                    acknowledged.append((body["person_id"], response.json()["face_id"]))

    with running_service(env, tmp_path / "first.log") as service:
        streams = [threading.Thread(target=enrol_stream, args=(service.url,)) for _ in range(4)]
        for t in streams:
            t.start()
        deadline = time.monotonic() + 90
        while len(acknowledged) < 12 and time.monotonic() < deadline:
            time.sleep(0.2)
        service.kill9()
        stop.set()
        for t in streams:
            t.join()
    assert len(acknowledged) >= 12

    with (
        running_service(env, tmp_path / "second.log") as service,
        httpx.Client(base_url=service.url, headers=auth(), timeout=60) as http,
    ):
        listed = http.post("/persons/list", json={"directory": "crash", "limit": 500}).json()["persons"]
        counts = {p["person_id"]: p["face_count"] for p in listed}
        for person, face_id in acknowledged:
            person_record = http.post("/persons/get", json={"directory": "crash", "person_id": person}).json()
            assert [f["face_id"] for f in person_record["faces"]] == [face_id], person
        assert all(count == 1 for count in counts.values()), "a request stored more or less than its one face"
        # a client retrying an acknowledged request after the crash gets the same face, not a second one
        person, face_id = acknowledged[0]
        retry = http.post("/enroll", json=enrolment(int(person[1:])))
        assert retry.json()["face_id"] == face_id
        assert (
            http.post("/persons/get", json={"directory": "crash", "person_id": person}).json()["faces"][0]["face_id"]
            == face_id
        )
        assert len(http.post("/persons/get", json={"directory": "crash", "person_id": person}).json()["faces"]) == 1
