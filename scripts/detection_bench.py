"""One detection benchmark, run by two environments: the PyPI `mtcnn` package's (TensorFlow, no torch) and ours.

Both sides import this module, so the photos, their decoding, the sets, the timing and the face count are one
code path and only the detector differs. It must stay free of torch and of the `models` package for that reason.

A detector is given as a function from one RGB image (H×W×3 uint8) to the scores of the faces it found.
"""

from __future__ import annotations

import hashlib
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from scripts.faces_data import FACES2_DIR, FACES_DIR, manifest

Detect = Callable[[np.ndarray], list[float]]

PHOTOS = [
    FACES_DIR / "facenet-pytorch/data/multiface.jpg",
    FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
    FACES_DIR / "dlib/examples/faces/bald_guys.jpg",
    FACES_DIR / "face_recognition/tests/test_images/obama.jpg",
]
MIN_FACE_SIZE = 20
MIN_SCORE = 0.9
"""A face counts when its score reaches this: the service's own `DetectorConfig.min_confidence`."""
TF_JSON = Path(__file__).resolve().parents[1] / "var" / "bench_mtcnn_pypi.json"
"""Where bench_mtcnn_pypi leaves its results for bench_mtcnn_compare."""


def cap_memory(gigabytes: float) -> None:
    """Cap this process's address space, so that a detector which runs out of memory on one photo fails on it
    with a MemoryError instead of the kernel's OOM killer taking the shared machine's memory first: mtcnn 1.0's
    NMS builds an n×n IoU matrix of its proposals, and a 36-megapixel photo took it past 24 GB."""
    limit = int(gigabytes * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def rgb(path: Path) -> np.ndarray:
    """EXIF-upright 8-bit RGB by Pillow alone, which both environments pin to the same version.

    For the timed JPEGs these are the pixels the service's `decode_image` gives; in the face count, the few
    photos it would refuse (GIF, BMP) are decoded too, and RGBA ones lose their alpha instead of going on white.
    """
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def timed_sets() -> dict[str, list[np.ndarray]]:
    """bench_models' detection sets: the photos stretched to 640×480 and to 1920×1080 (bilinear), and native."""
    native = [rgb(p) for p in PHOTOS]

    def stretched(size: tuple[int, int]) -> list[np.ndarray]:
        return [np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR)) for img in native]

    return {"640x480": stretched((640, 480)), "1920x1080": stretched((1920, 1080)), "native": native}


def faces(scores: list[float]) -> int:
    return sum(score >= MIN_SCORE for score in scores)


def time_set(detect: Detect, images: list[np.ndarray], repeats: int) -> dict:
    """Median over `repeats` passes of the set, per image; a first pass, not timed, loads and traces the nets."""
    found = sum(faces(detect(img)) for img in images)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for img in images:
            detect(img)
        samples.append(time.perf_counter() - start)
    ms = 1000 * statistics.median(samples) / len(images)
    digest = hashlib.sha256(b"".join(img.tobytes() for img in images)).hexdigest()[:16]
    return {
        "ms_per_image": ms,
        "images_per_s": 1000 / ms,
        "faces": found,
        "sizes": [f"{img.shape[1]}x{img.shape[0]}" for img in images],
        "pixels_sha256": digest,
    }


def time_sets(detect: Detect, repeats: int) -> dict:
    """Every set timed, with the 1-minute load average before and after (which then counts the benchmark's own
    threads): the two detectors are timed one after the other on a shared machine, and a load far above the
    cores on either side says that side's milliseconds are not comparable."""
    before = os.getloadavg()[0]
    sets = {name: time_set(detect, images, repeats) for name, images in timed_sets().items()}
    return {"load": [round(before, 2), round(os.getloadavg()[0], 2)], "sets": sets}


def labelled_photos() -> Iterator[tuple[str, int | None, Path]]:
    """Every file both manifests list, as (name relative to shared/, faces expected or None, path)."""
    for faces_dir in (FACES_DIR, FACES2_DIR):
        for photo in manifest(faces_dir):
            yield str(photo.path.relative_to(faces_dir.parent)), photo.faces_expected, photo.path


def count_faces(detect: Detect) -> dict:
    """Faces found with a score of at least MIN_SCORE in every manifest photo Pillow decodes, one pass.

    The count is compared with the manifests' `faces_expected` (counted by eye), not matched box by box: a miss
    and a false face in one photo cancel out. `missed` and `extra` add up the shortfalls and the excesses. A
    photo the detector fails on (it raises: out of memory, say) is listed in `failed` and counts as no face.
    """
    found: dict[str, int] = {}
    expected: dict[str, int] = {}
    undecodable, failed = [], []
    start = time.perf_counter()
    for name, faces_expected, path in labelled_photos():
        try:
            image = rgb(path)
        except (OSError, ValueError):
            undecodable.append(name)
            continue
        try:
            found[name] = faces(detect(image))
        except Exception:  # a detector that raises on one photo is reported, not allowed to end the count
            failed.append(name)
            found[name] = 0
        if faces_expected is not None:
            expected[name] = faces_expected
    return {
        "photos": len(found),
        "seconds": time.perf_counter() - start,
        "undecodable": undecodable,
        "failed": failed,
        "labelled": len(expected),
        "expected": sum(expected.values()),
        "found": sum(found[n] for n in expected),
        "exact": sum(found[n] == e for n, e in expected.items()),
        "missed": sum(max(0, e - found[n]) for n, e in expected.items()),
        "extra": sum(max(0, found[n] - e) for n, e in expected.items()),
        "found_unlabelled": sum(f for n, f in found.items() if n not in expected),
        "per_photo": found,
    }
