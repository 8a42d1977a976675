"""Reliability at the HTTP edge, over real sockets to a service started with small limits (loopback only).

Slow senders must not lock others out, silent connections are closed,
unknown paths share one metrics label, a 504 never hides a stored
enrolment, and request values stay out of the log.
"""

from __future__ import annotations

import base64
import concurrent.futures
import re
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from server import auth, keys_json

from scripts.local_service import Running, running_service

BODY_TIMEOUT_S = 3
HEADER_TIMEOUT_S = 3
MAX_CONCURRENCY = 2


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path):
    work = tmp_path_factory.mktemp("edge")
    env = {
        "FACESERVE_GALLERY_PATH": str(work / "gallery"),
        "FACESERVE_AUTH": "enabled",
        "FACESERVE_API_KEYS": keys_json(),
        "FACESERVE_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "FACESERVE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "FACESERVE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "FACESERVE_REQUEST_TIMEOUT_S": "1",
        "FACESERVE_ALLOWED_ORIGINS": "http://allowed.example, https://other.example/",
    }
    with running_service(env, work / "serve.log") as service:
        yield service


def connect(service: Running) -> socket.socket:
    host, port = service.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_S + 10)


def trickler(service: Running) -> socket.socket:
    """A complete header and the first byte of a 100-byte body that never comes."""
    sock = connect(service)
    header = (
        "POST /persons/list HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth()['Authorization']}\r\nContent-Length: 100\r\n\r\n{{"
    )
    sock.sendall(header.encode())
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_trickling_uploads_hold_no_concurrency_slot_and_get_408(edge: Running):
    slow = [trickler(edge) for _ in range(MAX_CONCURRENCY + 2)]
    try:
        time.sleep(0.5)
        response = httpx.post(f"{edge.url}/persons/list", json={"directory": "edge"}, headers=auth(), timeout=30)
        assert response.status_code == 200, response.text
        started = time.monotonic()
        answer = read_until_closed(slow[0])  # the server closes the connection after its 408
        assert time.monotonic() - started < BODY_TIMEOUT_S + 5
        assert answer.startswith(b"HTTP/1.1 408 ") and b'"code": "request_timeout"' in answer, answer
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize("sent", [b"", b"POST /info HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["idle", "half_header"])
def test_connections_without_a_complete_header_are_closed(edge: Running, sent: bytes):
    sock = connect(edge)
    try:
        sock.sendall(sent)
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 5
    finally:
        sock.close()


def endpoint_labels(metrics: str) -> set[str]:
    return set(re.findall(r'endpoint="([^"]*)"', metrics))


def test_unknown_paths_share_one_metrics_label(edge: Running):
    with httpx.Client(base_url=edge.url, timeout=30) as client:
        client.get("/no-such-path-warmup")
        before = client.get("/metrics").text
        for _ in range(200):
            assert client.get(f"/no-such-{uuid.uuid4().hex}").status_code == 404
        after = client.get("/metrics").text
    assert len(endpoint_labels(after) - endpoint_labels(before)) == 0
    assert len(after) - len(before) < 5_000


def test_origins_from_the_setting_are_allowed(edge: Running):
    for origin, status in (
        ("http://allowed.example", 200),
        ("https://other.example", 200),
        ("http://evil.example", 403),
        (edge.url, 200),
    ):
        response = httpx.post(f"{edge.url}/info", json={}, headers={"Origin": origin}, timeout=30)
        assert response.status_code == status, (origin, response.text)


def test_a_504_enrolment_was_not_stored(edge: Running, faces_dir: Path):
    """With a 1 s deadline, concurrent enrolments of large photos time out; each 504 must have stored nothing."""
    photos = sorted(p for p in faces_dir.rglob("*.jpg") if p.stat().st_size > 200_000)[:6]
    assert photos
    directory = "deadline"

    def enrol(index: int) -> httpx.Response:
        body = {
            "image": base64.b64encode(photos[index % len(photos)].read_bytes()).decode(),
            "directory": directory,
            "person_id": f"p{index}",
        }
        return httpx.post(f"{edge.url}/enroll", json=body, headers=auth(), timeout=120)

    answers: dict[str, httpx.Response] = {}
    for _round in range(3):
        with concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENCY) as pool:
            start = len(answers)
            for index, response in enumerate(pool.map(enrol, range(start, start + 8)), start):
                answers[f"p{index}"] = response
        if any(r.status_code == 504 for r in answers.values()):
            break
    timed_out = {p for p, r in answers.items() if r.status_code == 504}
    assert timed_out, {p: r.status_code for p, r in answers.items()}
    for person in timed_out:
        assert answers[person].json()["error"]["code"] == "timeout"
    listed = httpx.post(
        f"{edge.url}/persons/list", json={"directory": directory, "limit": 500}, headers=auth(), timeout=30
    ).json()
    stored = {p["person_id"] for p in listed["persons"]}
    assert stored == {p for p, r in answers.items() if r.status_code == 200}
    assert not stored & timed_out


def test_validation_errors_log_fields_not_values(edge: Running):
    marker = f"NAME-MARKER-{uuid.uuid4().hex}"
    body = {"image": "aGVsbG8=", "directory": "edge", "person_id": "p", "name": marker * 10}
    response = httpx.post(f"{edge.url}/enroll", json=body, headers=auth(), timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_name")
    time.sleep(1)  # the worker's log line reaches the file
    log = edge.log_path.read_text(errors="replace")
    assert "invalid body on /enroll [POST]: name (invalid_name)" in log
    assert marker not in log
