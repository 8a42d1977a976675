"""The bare models' ceiling, in-process, no HTTP: what the served numbers are compared against.

    python scripts/bench_models.py [--repeats 5] [--threads N]

Prints, as medians over repeats:
- embedder throughput (faces/s) at batch 1, 8, 32, 64 for every imported model;
- MTCNN megapixels/s on real photos resized to 640×480 and 1920×1080;
- MTCNN on a batch of photos of different sizes: one padded batch vs one call per image;
- the slowest batch each batched service may run, which `max_latency_ms` must exceed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import store  # noqa: E402
from models.alignment import align_many  # noqa: E402
from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.imaging import decode_image  # noqa: E402
from models.registry import EMBEDDERS  # noqa: E402
from scripts.faces_data import FACES_DIR  # noqa: E402

PHOTOS = [
    FACES_DIR / "facenet-pytorch/data/multiface.jpg",
    FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
    FACES_DIR / "dlib/examples/faces/bald_guys.jpg",
    FACES_DIR / "face_recognition/tests/test_images/obama.jpg",
]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def resized(path: Path, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(decode_image(path.read_bytes()).pixels).resize(size, Image.BILINEAR))


def real_chips(detector: FaceDetector, geometry, n: int) -> np.ndarray:
    """Aligned chips of real faces, repeated to n."""
    image = decode_image(PHOTOS[2].read_bytes()).pixels
    faces = detector.detect([image])[0]
    chips = align_many(image, [f.landmark_array for f in faces], geometry)
    return np.resize(chips, (n, *chips.shape[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    detector = FaceDetector()

    print("\n== Embedder throughput (faces/s; mirrored models embed each face twice)")
    worst_embed = 0.0
    for model_id, entry in EMBEDDERS.items():
        if store.find(entry.weights) is None:
            print(f"{model_id:18} not imported, skipped")
            continue
        embedder = load_embedder(model_id)
        row = []
        for batch in (1, 8, 32, 64):
            chips = real_chips(detector, entry.geometry, batch)
            seconds = timed(lambda embedder=embedder, chips=chips: embedder.embed(chips), args.repeats)
            worst_embed = max(worst_embed, seconds)
            row.append(f"b{batch}: {batch / seconds:7.1f}")
        print(f"{model_id:18} " + "  ".join(row))

    print("\n== MTCNN")
    # The same nets in torch's default NCHW layout, to show what the detector's channels-last weights buy.
    nchw = FaceDetector()
    for net in (nchw._mtcnn.pnet, nchw._mtcnn.rnet, nchw._mtcnn.onet):
        net.to(memory_format=torch.contiguous_format)
    for size in ((640, 480), (1920, 1080)):
        images = [resized(p, size) for p in PHOTOS]
        seconds = timed(lambda images=images: [detector.detect([img]) for img in images], args.repeats) / len(images)
        before = timed(lambda images=images: [nchw.detect([img]) for img in images], args.repeats) / len(images)
        megapixels = size[0] * size[1] / 1e6
        print(
            f"{size[0]}x{size[1]}: {seconds * 1000:7.1f} ms/image  {megapixels / seconds:6.2f} MP/s (detected at max side {detector.config.max_side})"
            f"   NCHW nets: {before * 1000:.1f} ms/image, {before / seconds:.2f}x slower"
        )

    batcher = FaceDetector(DetectorConfig(pad_batches=True))
    mixed = [decode_image(p.read_bytes()).pixels for p in PHOTOS] * 2
    shapes = ", ".join(f"{i.shape[1]}x{i.shape[0]}" for i in mixed[: len(PHOTOS)])
    per_image = timed(lambda: [detector.detect([img]) for img in mixed], args.repeats)
    padded = timed(lambda: batcher.detect(mixed), args.repeats)
    print(f"mixed sizes ({shapes}) x2: one padded batch {padded * 1000:.0f} ms vs per image {per_image * 1000:.0f} ms")
    same = [resized(PHOTOS[0], (1280, 720))] * 8
    print(
        f"8 same-size 1280x720: one batch {timed(lambda: batcher.detect(same), args.repeats) * 1000:.0f} ms "
        f"vs per image {timed(lambda: [detector.detect([i]) for i in same], args.repeats) * 1000:.0f} ms"
    )
    print(
        f"\n== Slowest batches: detection of 8 mixed photos {padded * 1000:.0f} ms, embedding of 64 faces {worst_embed * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
