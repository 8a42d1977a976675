"""Bulk enrolment of a folder of people (one sub-folder per person) through /enroll_batch.

Resumable by construction: every photo's request id is derived from the
directory, the photo's path and its bytes, so sending a photo twice (a
re-run after a crash, before the state file caught up) overwrites the same
face instead of adding another. The state file (JSON lines, appended and
fsynced after every batch) records what is finished, so a re-run skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from faceserve import schemas
from faceserve.client import Faceserve, encode_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
# Share of the service's request limit a batch may fill: base64 adds a third, JSON a little more.
BODY_SHARE = 0.6


@dataclass(frozen=True)
class Photo:
    path: Path
    file: str
    """Path relative to the root, with "/" separators: the key in the state file."""
    person_id: str


@dataclass(frozen=True)
class Outcome:
    file: str
    person_id: str
    ok: bool
    code: str = ""
    message: str = ""
    face_id: str = ""


@dataclass
class Report:
    enrolled: int = 0
    already_done: int = 0
    failed_before: int = 0
    """Photos that failed in an earlier run and were not sent again (see --retry-failed)."""
    failures: list[Outcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Files that are not photos of a person folder: (file, why)."""

    def failure_counts(self) -> Counter[str]:
        return Counter(f.code for f in self.failures)


def scan(root: Path) -> tuple[list[Photo], list[tuple[str, str]]]:
    """Photos in person folders (any depth below the folder), and what was skipped and why."""
    photos: list[Photo] = []
    skipped: list[tuple[str, str]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append((entry.name, "not in a person folder"))
            continue
        for path in sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith(".")):
            file = path.relative_to(root).as_posix()
            if path.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(path, file, entry.name))
            else:
                skipped.append((file, f"not a JPEG, PNG or WebP file ({path.suffix or 'no extension'})"))
    return photos, skipped


class State:
    """What earlier runs finished, per file and content: a changed file is enrolled again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[tuple[str, str], dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                    self.done[record["file"], record["sha256"]] = record
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: that photo is simply done again

    def earlier(self, file: str, sha256: str) -> bool | None:
        """True: enrolled by an earlier run; False: failed in one; None: never finished."""
        record = self.done.get((file, sha256))
        return None if record is None else bool(record["ok"])

    def record(self, outcomes: list[tuple[Outcome, str]]) -> None:
        with open(self.path, "a") as f:
            for outcome, sha256 in outcomes:
                record = {"file": outcome.file, "sha256": sha256, "ok": outcome.ok, "code": outcome.code}
                self.done[outcome.file, sha256] = record
                f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass(frozen=True)
class Pending:
    """A photo to send: read again when its batch goes, so a large folder is never all in memory."""

    photo: Photo
    sha256: str
    size: int


def _request_id(directory: str, file: str, sha256: str) -> str:
    return "bulk-" + hashlib.sha256(f"{directory}\0{file}\0{sha256}".encode()).hexdigest()[:40]


def _batches(pending: list[Pending], max_items: int, max_bytes: int) -> Iterator[list[Pending]]:
    batch: list[Pending] = []
    size = 0
    for p in pending:
        if batch and (len(batch) == max_items or size + p.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(p)
        size += p.size
    if batch:
        yield batch


def enroll_folder(
    client: Faceserve,
    root: Path,
    directory: str,
    state: State,
    *,
    batch_size: int = 16,
    workers: int = 2,
    largest_face: bool = False,
    retry_failed: bool = False,
    progress: Callable[[int], None] = lambda n: None,
    total: Callable[[int], None] = lambda n: None,
) -> Report:
    """Enrol every photo under `root` not finished by an earlier run; `progress(n)` after each batch."""
    limits = client.info().limits
    photos, skipped = scan(root)
    report = Report(skipped=skipped)
    todo: list[Pending] = []
    for photo in photos:
        try:
            data = photo.path.read_bytes()
        except OSError as exc:
            report.failures.append(Outcome(photo.file, photo.person_id, False, "unreadable", str(exc)))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        earlier = state.earlier(photo.file, sha256)
        if earlier:
            report.already_done += 1
        elif earlier is False and not retry_failed:
            report.failed_before += 1
        elif len(data) > limits.max_image_bytes:
            outcome = Outcome(photo.file, photo.person_id, False, "image_too_large", f"{len(data)} bytes")
            report.failures.append(outcome)
            state.record([(outcome, sha256)])
        else:
            todo.append(Pending(photo, sha256, len(data) * 4 // 3 + 1024))
    total(len(todo))
    batches = _batches(todo, min(batch_size, limits.max_batch_items), int(limits.max_request_bytes * BODY_SHARE))

    def send(batch: list[Pending]) -> list[tuple[Outcome, str]]:
        items = [
            schemas.EnrollRequest(
                image=encode_image(p.photo.path),
                directory=directory,
                person_id=p.photo.person_id,
                name=p.photo.person_id,
                request_id=_request_id(directory, p.photo.file, p.sha256),
                single_face=not largest_face,
            )
            for p in batch
        ]
        response = client.enroll_batch(items)
        out = []
        for result in response.results:
            p = batch[result.index]
            if isinstance(result, schemas.EnrollItemSucceeded):
                outcome = Outcome(p.photo.file, p.photo.person_id, True, face_id=result.result.face_id)
            else:
                outcome = Outcome(p.photo.file, p.photo.person_id, False, result.error.code, result.error.message)
            out.append((outcome, p.sha256))
        return out

    def finish(outcomes: list[tuple[Outcome, str]]) -> None:
        state.record(outcomes)
        for outcome, _ in outcomes:
            if outcome.ok:
                report.enrolled += 1
            else:
                report.failures.append(outcome)
        progress(len(outcomes))

    # A few batches in flight, recorded in order; an error stops sending after those few.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight: deque = deque()
        for batch in batches:
            in_flight.append(pool.submit(send, batch))
            if len(in_flight) > workers:
                finish(in_flight.popleft().result())
        while in_flight:
            finish(in_flight.popleft().result())
    return report
