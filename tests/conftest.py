"""Fixtures shared by the tests that need real photos or dlib itself as a reference."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.dlib_reference import DlibReference
from scripts.faces_data import FACES_DIR


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """../shared/faces; tests that need real photos skip on a checkout without it, but fail in CI, which
    promises the photos (.ci/run), so a broken CI layout cannot pass by skipping everything."""
    if not FACES_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared photos are missing at {FACES_DIR}")
        pytest.skip(f"shared photos not found at {FACES_DIR}")
    return FACES_DIR


@pytest.fixture(scope="session")
def dlib_reference() -> DlibReference:
    return DlibReference()


@pytest.fixture(scope="session")
def dlib_chip(dlib_reference: DlibReference) -> Callable[[Path], np.ndarray]:
    """dlib's own aligned 150×150 chip of the largest face in a photo, cached for the session.

    dlib's HOG detector takes seconds on the larger photos, and several tests
    look at the same ones.
    """

    @functools.cache
    def chip(path: Path) -> np.ndarray:
        found = dlib_reference.chip(np.asarray(Image.open(path).convert("RGB")))
        if found is None:
            raise AssertionError(f"dlib found no face in {path}")
        return found

    return chip


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path):
    """One real `bentoml serve` for the session, on a free loopback port with a fresh Edge gallery."""
    from server import keys_json

    from scripts.local_service import running_service

    work = tmp_path_factory.mktemp("service")
    env = {
        "FACESERVE_GALLERY_PATH": str(work / "gallery"),
        "FACESERVE_AUTH": "enabled",
        "FACESERVE_API_KEYS": keys_json(),
    }
    with running_service(env, work / "serve.log") as running:
        yield running


@pytest.fixture(scope="session")
def service_url(service) -> str:
    return service.url
