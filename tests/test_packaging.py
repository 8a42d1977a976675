"""`bentoml build` packs the service offline, with the models it needs, from a fresh model store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_bentoml_build_packs_service_and_models(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    imported = subprocess.run(
        [sys.executable, "scripts/import_models.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr
    assert "dlib-resnet" in imported.stdout and "skipped" in imported.stdout  # FaceNet weights are not offline
    built = subprocess.run(
        [str(BIN / "bentoml"), "build", "--output", "tag"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr + built.stdout
    (bento_dir,) = [p.parent for p in (tmp_path / "bentoml" / "bentos" / "faceserve").glob("*/bento.yaml")]
    info = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    models = {m["tag"].split(":")[0] for svc in info["services"] for m in svc["models"]}
    assert models == {"mtcnn", "dlib-resnet"}
    routes = {r["route"] for r in info["schema"]["routes"]}
    assert {"/detect", "/recognize", "/enroll", "/verify", "/persons/list", "/directories/delete"} <= routes
    sources = {p.relative_to(bento_dir / "src").as_posix() for p in (bento_dir / "src").rglob("*.py")}
    assert "service.py" in sources and "qdrant/edge.py" in sources
    assert not any(s.startswith(("tests/", "scripts/")) for s in sources)
