"""Mixed load against a running faceserve, then proof that nothing acknowledged was lost.

    python scripts/loadtest.py --url http://127.0.0.1:3000 [--api-key KEY] [--clients 32] [--seconds 600]

Each client enrols photos as its own persons, recognises, and now and then
deletes one of its persons, in directory `loadtest`. Afterwards every
acknowledged enrolment must be listed with the right face count and every
acknowledged delete must be gone. Prints request counts, errors by status,
latency percentiles per endpoint; exits non-zero on any error or lost write.
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.faces_data import FACES_DIR  # noqa: E402

DIRECTORY = "loadtest"
PHOTOS = sorted((FACES_DIR / "dlib/examples/johns").glob("*/*.jpg"))


@dataclass
class Report:
    requests: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    enrolled: dict[str, int] = field(default_factory=dict)  # person → acknowledged faces
    deleted: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, status: int, detail: str = "") -> None:
        with self.lock:
            self.requests[endpoint] += 1
            self.latencies[endpoint].append(seconds)
            if status != 200:
                self.errors[f"{endpoint} {status} {detail[:120]}"] += 1

    def summary(self, wall_s: float) -> str:
        lines = [
            f"{sum(self.requests.values())} requests in {wall_s:.0f} s ({sum(self.requests.values()) / wall_s:.1f}/s)"
        ]
        for endpoint, samples in sorted(self.latencies.items()):
            ms = np.asarray(samples) * 1000
            lines.append(
                f"  {endpoint:15} n={len(ms):5}  p50 {np.median(ms):7.0f} ms  p95 {np.percentile(ms, 95):7.0f} ms  max {ms.max():7.0f} ms"
            )
        lines.append(f"errors: {sum(self.errors.values())}" + "".join(f"\n  {k}: {v}" for k, v in self.errors.items()))
        lines.append(
            f"acknowledged: {len(self.enrolled)} persons enrolled, {len(self.deleted)} deleted; lost: {len(self.lost)}"
        )
        lines.extend(f"  lost: {item}" for item in self.lost)
        return "\n".join(lines)


def client_loop(
    index: int, url: str, headers: dict[str, str], deadline: float, report: Report, images: list[str]
) -> None:
    rng = random.Random(index)
    mine: list[str] = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        step = 0
        while time.monotonic() < deadline:
            step += 1
            roll = rng.random()
            if roll < 0.35 or not mine:
                person = f"c{index:02d}-p{step:05d}"
                # the same few photos stand for many persons: the enrolment check would call them one (409)
                body = {
                    "image": rng.choice(images),
                    "directory": DIRECTORY,
                    "person_id": person,
                    "request_id": person,
                    "allow_conflict": True,
                }
                endpoint = "enroll"
            elif roll < 0.9:
                body = {"image": rng.choice(images), "directory": DIRECTORY}
                endpoint = "recognize"
            else:
                person = mine.pop(rng.randrange(len(mine)))
                body = {"directory": DIRECTORY, "person_id": person}
                endpoint = "persons/delete"
            started = time.perf_counter()
            try:
                response = http.post(f"/{endpoint}", json=body)
                status, detail = response.status_code, response.text
            except httpx.HTTPError as exc:
                status, detail = 0, repr(exc)
            report.record(endpoint, time.perf_counter() - started, status, detail)
            if status != 200:
                continue
            with report.lock:
                if endpoint == "enroll":
                    mine.append(person)
                    report.enrolled[person] = 1
                elif endpoint == "persons/delete":
                    report.enrolled.pop(person, None)
                    report.deleted.add(person)


def verify(url: str, headers: dict[str, str], report: Report) -> None:
    """Every acknowledged enrolment listed with its face, every acknowledged delete gone."""
    listed: dict[str, int] = {}
    offset: int | None = 0
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        while offset is not None:
            page = http.post("/persons/list", json={"directory": DIRECTORY, "limit": 500, "offset": offset}).json()
            listed.update({p["person_id"]: p["face_count"] for p in page["persons"]})
            offset = page["next_offset"]
    for person, faces in report.enrolled.items():
        if listed.get(person) != faces:
            report.lost.append(f"{person}: acknowledged {faces} face(s), listed {listed.get(person)}")
    for person in report.deleted:
        if person in listed:
            report.lost.append(f"{person}: acknowledged deleted, still listed")


def run_load(url: str, headers: dict[str, str], clients: int, seconds: float) -> Report:
    images = [base64.b64encode(p.read_bytes()).decode() for p in PHOTOS]
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        http.post("/directories/delete", json={"directory": DIRECTORY}).raise_for_status()
    report = Report()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(i, url, headers, deadline, report, images)) for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verify(url, headers, report)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--api-key")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=600)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    started = time.monotonic()
    report = run_load(args.url, headers, args.clients, args.seconds)
    print(report.summary(time.monotonic() - started))
    return 1 if report.errors or report.lost else 0


if __name__ == "__main__":
    sys.exit(main())
