"""The model store: idempotent offline import, and FaceNet never served without imported weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def run(code: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_import_is_idempotent_and_says_what_it_skipped(tmp_path):
    first = run("import runpy; runpy.run_path('scripts/import_models.py', run_name='__main__')", tmp_path)
    second = run("import runpy; runpy.run_path('scripts/import_models.py', run_name='__main__')", tmp_path)
    assert "mtcnn" in first.stdout and " imported " in first.stdout, first.stderr
    assert first.stdout.count("already imported") == 0
    assert second.stdout.count("already imported") == 2
    assert "facenet-vggface2   skipped: no --facenet-weights FILE given" in second.stdout


def test_facenet_without_weights_fails_with_the_fix(tmp_path):
    result = run("from models.embedders import load_embedder; load_embedder('facenet-vggface2')", tmp_path)
    assert result.returncode != 0
    assert "not in the BentoML model store" in result.stderr
    assert "scripts/import_models.py --facenet-weights" in result.stderr


def test_facenet_weights_file_imports_and_embeds(tmp_path):
    """The import path for a release file: checked by loading, stored with metadata, then served 512-d."""
    from facenet_pytorch import InceptionResnetV1

    weights = tmp_path / "20180402-114759-vggface2.pt"
    torch.manual_seed(0)
    torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), weights)
    code = f"""
import runpy, sys, numpy as np
sys.argv = ['import_models.py', '--facenet-weights', {str(weights)!r}]
try:
    runpy.run_path('scripts/import_models.py', run_name='__main__')
except SystemExit as done:
    assert done.code == 0
from models import registry, store
from models.embedders import load_embedder
from models.store import resolve_model_id
entry = store.find(registry.FACENET_VGGFACE2.weights)
assert entry.info.metadata['dimension'] == 512 and len(entry.info.metadata['sha256']) == 64
assert resolve_model_id('auto') == 'facenet-vggface2'
vectors = load_embedder('facenet-vggface2').embed(np.zeros((2, 160, 160, 3), np.uint8))
assert vectors.shape == (2, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
print('ok')
"""
    result = run(code, tmp_path)
    assert result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_a_file_that_is_not_facenet_is_refused(tmp_path):
    bogus = tmp_path / "bogus.pt"
    torch.save({"weight": torch.zeros(3)}, bogus)
    code = f"import runpy, sys; sys.argv = ['x', '--facenet-weights', {str(bogus)!r}]; runpy.run_path('scripts/import_models.py', run_name='__main__')"
    result = run(code, tmp_path)
    assert result.returncode != 0 and "Missing key" in result.stderr
    check = run("from models import registry, store; print(store.find(registry.FACENET_VGGFACE2.weights))", tmp_path)
    assert check.stdout.strip() == "None"


def test_import_measures_a_calibration_that_the_service_prefers(faces_dir, tmp_path):
    """FaceNet's calibration is measured at import (its weights are the user's); the same code runs here on
    dlib-resnet, the model whose weights exist, into a folder standing in for the model-store entry."""
    from models import calibration, registry
    from scripts.import_models import calibrate_into

    target = tmp_path / calibration.FILENAME
    assert calibrate_into(registry.DLIB_RESNET, target, (faces_dir,))
    measured = calibration.find("dlib-resnet", tmp_path)
    assert measured is not None and measured.source.startswith("faces (")
    assert measured != calibration.find("dlib-resnet") and measured.impostor_pairs > 1000
    assert not calibrate_into(registry.DLIB_RESNET, tmp_path / "none.json", ())
