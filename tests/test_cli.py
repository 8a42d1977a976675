"""The `faceserve` command against the real service: bulk enrolment (failures, resume, no duplicates)
and moving a directory with export/import."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from server import KEYS

from faceserve import Faceserve
from scripts.faces_data import FACES_DIR

JOHNS = FACES_DIR / "dlib/examples/johns"
GROUP = FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg"
FACESERVE = Path(sys.executable).with_name("faceserve")


def run(service_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACESERVE_URL": service_url, "FACESERVE_API_KEY": KEYS["admin"]}
    return subprocess.run(
        [str(FACESERVE), "--quiet", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def summary(out: str) -> dict[str, int]:
    """'enrolled 9, failed 2, …, skipped 2 (state: …)' as a dict."""
    line = next(line for line in out.splitlines() if line.startswith("enrolled ")).split(" (state")[0]
    return {key.replace(" ", "_"): int(n) for key, n in re.findall(r"([a-z][a-z ]*) (\d+)", line)}


@pytest.fixture
def people(tmp_path) -> Path:
    """Three people, three photos each, plus what a real folder holds: a group photo, a blank image,
    a note, and a file outside any person folder."""
    root = tmp_path / "people"
    for person in ("John_Salley", "John_Savage", "John_Simm"):
        (root / person).mkdir(parents=True)
        for photo in sorted((JOHNS / person).glob("*.jpg"))[:3]:
            (root / person / photo.name).symlink_to(photo)
    (root / "John_Salley" / "with_friends.jpg").symlink_to(GROUP)
    Image.new("RGB", (300, 300), "white").save(root / "John_Savage" / "blank.png")
    (root / "John_Simm" / "notes.txt").write_text("not a photo")
    (root / "README.txt").write_text("not a person")
    return root


def counts(service_url: str, directory: str) -> dict[str, int]:
    with Faceserve(service_url, KEYS["admin"]) as fs:
        return {p.person_id: p.face_count for p in fs.persons(directory)}


def test_bulk_enrolment_reports_failures_resumes_and_never_duplicates(service_url, people, tmp_path):
    with Faceserve(service_url, KEYS["admin"]) as fs:
        fs.delete_directory("cli-people")
    first = run(service_url, "enroll", str(people), "--directory", "cli-people", "--batch-size", "4", cwd=tmp_path)
    assert first.returncode == 1, first.stderr  # done, with failures
    assert summary(first.stdout) == {
        "enrolled": 9,
        "failed": 2,
        "already_done": 0,
        "failed_before": 0,
        "skipped": 2,
    }, first.stdout
    assert "no_face: 1" in first.stdout and "several_faces: 1" in first.stdout
    assert "John_Simm/notes.txt" in first.stdout and "README.txt: not in a person folder" in first.stdout
    expected = {"John_Salley": 3, "John_Savage": 3, "John_Simm": 3}
    assert counts(service_url, "cli-people") == expected
    with Faceserve(service_url, KEYS["admin"]) as fs:
        probe = sorted((JOHNS / "John_Savage").glob("*.jpg"))[6]
        assert fs.recognize(probe, "cli-people").faces[0].match.name == "John_Savage"

    again = run(service_url, "enroll", str(people), "--directory", "cli-people", cwd=tmp_path)
    assert summary(again.stdout)["enrolled"] == 0 and summary(again.stdout)["already_done"] == 9
    assert summary(again.stdout)["failed_before"] == 2 and again.returncode == 1

    # A crash after the service stored a batch but before the state file said so: everything is sent again,
    # and the derived request ids make the service overwrite rather than add.
    (tmp_path / "faceserve-enroll-cli-people.jsonl").unlink()
    lost_state = run(service_url, "enroll", str(people), "--directory", "cli-people", cwd=tmp_path)
    assert summary(lost_state.stdout)["enrolled"] == 9
    assert counts(service_url, "cli-people") == expected

    largest = run(
        service_url,
        "enroll",
        str(people),
        "--directory",
        "cli-people",
        "--largest-face",
        "--retry-failed",
        cwd=tmp_path,
    )
    # the group photo's largest face is Obama, not John Salley: the enrolment check refuses it
    assert summary(largest.stdout)["enrolled"] == 0 and "no_face: 1" in largest.stdout
    assert "not_same_person: 1" in largest.stdout
    assert counts(service_url, "cli-people")["John_Salley"] == 3


def test_export_then_import_moves_a_directory(service_url, people, tmp_path):
    with Faceserve(service_url, KEYS["admin"]) as fs:
        fs.delete_directory("cli-move-src")
        fs.delete_directory("cli-move-dst")
    run(service_url, "enroll", str(people), "--directory", "cli-move-src", cwd=tmp_path)
    export = run(service_url, "export", "--directory", "cli-move-src", "-o", "backup.jsonl", cwd=tmp_path)
    assert export.returncode == 0 and "exported 9 faces" in export.stdout, export.stderr
    lines = (tmp_path / "backup.jsonl").read_text().splitlines()
    assert len(lines) == 10 and '"format": "faceserve-gallery"' in lines[0]
    assert not (tmp_path / "backup.jsonl.partial").exists()

    for _ in range(2):  # importing twice stores everything once
        imported = run(service_url, "import", "backup.jsonl", "--directory", "cli-move-dst", cwd=tmp_path)
        assert imported.returncode == 0 and "imported 9 faces into 'cli-move-dst'" in imported.stdout
    assert counts(service_url, "cli-move-dst") == counts(service_url, "cli-move-src")

    (tmp_path / "broken.jsonl").write_text('{"format": "something-else"}\n')
    broken = run(service_url, "import", "broken.jsonl", cwd=tmp_path)
    assert broken.returncode == 2 and "not a faceserve export" in broken.stderr
    missing = run(service_url, "enroll", str(tmp_path / "nope"), "--directory", "x", cwd=tmp_path)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_recognize_prints_one_decision_per_face(service_url, people, tmp_path):
    run(service_url, "enroll", str(people), "--directory", "cli-recognize", cwd=tmp_path)
    probe = sorted((JOHNS / "John_Simm").glob("*.jpg"))[5]
    found = run(service_url, "recognize", str(probe), "--directory", "cli-recognize", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    header, face = found.stdout.splitlines()
    assert header.startswith("1 face(s); security medium, threshold 0.") and "over 9 enrolled faces" in header
    assert re.search(r"\] match John_Simm \(similarity 0\.\d{4}, stranger chance \d\.\de-\d\d\)$", face), face
    group = run(
        service_url, "recognize", str(GROUP), "--directory", "cli-recognize", "--security", "strict", cwd=tmp_path
    )
    assert group.stdout.startswith("3 face(s); security strict") and group.stdout.count(" unknown") == 3, group.stdout
