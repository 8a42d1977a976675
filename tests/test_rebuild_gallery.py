"""scripts/rebuild_gallery.py on a shard broken the way unchecked metadata broke it: the good faces come back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe

from qdrant import Gallery, NewFace, open_gallery
from qdrant.domain import collection_name, point_id
from qdrant.edge import EdgeStore
from qdrant.store import Point, Scope

ROOT = Path(__file__).resolve().parents[1]
DIM = 8


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_rebuild_copies_the_readable_faces_of_a_broken_shard(tmp_path):
    with open_gallery(url=None, api_key=None, path=tmp_path / "gallery", model_id="m", dim=DIM) as g:
        g.add_faces("d", "alice", [NewFace(unit(1), (1, 2, 3, 4), 0.9, "aa" * 32)], name="Alice", metadata={"k": 1})
        g.add_faces("e", "bob", [NewFace(unit(2), (1, 2, 3, 4), 0.9, "")])
        legacy = {**g.store.scroll(Scope("e"), 1, None)[0][0].payload, "face_id": "old", "metadata": {"v": 1}}
        del legacy["metadata_json"]
        g.store.upsert([Point(point_id("e", "old"), unit(3).tolist(), legacy)])
        deep: object = 0
        for _ in range(130):
            deep = [deep]
        bad = {"directory": "bad", "person_id": "p", "face_id": "f", "metadata": {"a": deep}}
        g.store.upsert([Point(point_id("bad", "f"), unit(4).tolist(), bad)])
        with pytest.raises(Exception, match="recursion limit"):
            g.store.set_payload(Scope("bad"), {"name": "x"})
    source = tmp_path / "gallery" / collection_name("m", DIM)
    with pytest.raises(Exception, match="RecursionLimitExceeded"):  # the crash loop: the shard no longer loads
        qe.EdgeShard.load(str(source))

    target = tmp_path / "rebuilt"
    done = subprocess.run(
        [sys.executable, "scripts/rebuild_gallery.py", str(source), str(target)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1, done.stderr
    assert [line["unreadable_point"] for line in lines if "unreadable_point" in line] == [point_id("bad", "f")]
    assert lines[-1]["copied"] == 3 and lines[-1]["unreadable"] == 1

    with Gallery(EdgeStore(target, DIM), "m", DIM) as rebuilt:
        alice = rebuilt.get_person("d", "alice")
        assert (alice.name, alice.metadata, alice.faces[0].source_sha256) == ("Alice", {"k": 1}, "aa" * 32)
        assert rebuilt.search("d", unit(1))[0].similarity > 0.999
        assert rebuilt.count("e") == 2 and rebuilt.count("bad") == 0
        (old,), _ = rebuilt.store.scroll(Scope("e", face_id="old"), 1, None)
        assert old.payload["metadata_json"] == '{"v":1}' and "metadata" not in old.payload
        assert rebuilt.ready()
    again = subprocess.run(
        [sys.executable, "scripts/rebuild_gallery.py", str(source), str(target)], capture_output=True, cwd=ROOT
    )
    assert again.returncode != 0  # never writes over an existing folder
