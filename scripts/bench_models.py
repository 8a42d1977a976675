"""The bare models' ceiling, in-process, no HTTP: what the served numbers are compared against.

    python scripts/bench_models.py [--repeats 5] [--threads N] [--device cpu|cuda] [--runtime torch|openvino]

Prints, as medians over repeats:
- embedder throughput (faces/s) at batch 1, 8, 32, 64 for every imported model;
- detection ms/image, ours (models/mtcnn with the detector's downscaling) against facenet-pytorch's
  stock `MTCNN.detect` on the same photos at 640×480, 1920×1080 and their native sizes, and ours
  with the photos as one batch;
- with `--runtime openvino`, our detector's and the embedders' nets run by OpenVINO (stock stays torch);
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
from facenet_pytorch import MTCNN
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import store  # noqa: E402
from models.alignment import align_many  # noqa: E402
from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.imaging import decode_image  # noqa: E402
from models.registry import EMBEDDERS  # noqa: E402
from scripts.detection_bench import PHOTOS  # noqa: E402


def seconds_of(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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


def stock_detect(mtcnn, image: np.ndarray) -> None:
    """facenet-pytorch's own MTCNN.detect on the full photo: what we are compared against."""
    with torch.inference_mode():
        mtcnn.detect(image, landmarks=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="torch device for every model (cpu, cuda)")
    parser.add_argument("--runtime", default="torch", choices=["torch", "openvino"], help="what runs our nets")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, runtime {args.runtime}")
    # the detector as the service runs it: one worker per core, single-threaded kernels (models/detector)
    detector = FaceDetector(DetectorConfig(device=args.device, workers=torch.get_num_threads(), runtime=args.runtime))

    print("\n== Embedder throughput (faces/s; mirrored models embed each face twice)")
    worst_embed = 0.0
    for model_id, entry in EMBEDDERS.items():
        if store.find(entry.weights) is None:
            print(f"{model_id:18} not imported, skipped")
            continue
        embedder = load_embedder(model_id, args.device, args.runtime)
        row = []
        for batch in (1, 8, 32, 64):
            chips = real_chips(detector, entry.geometry, batch)
            seconds = timed(lambda embedder=embedder, chips=chips: embedder.embed(chips), args.repeats)
            worst_embed = max(worst_embed, seconds)
            row.append(f"b{batch}: {batch / seconds:7.1f}")
        print(f"{model_id:18} " + "  ".join(row))

    print("\n== Detection: ours (models/mtcnn, downscaling included) vs facenet-pytorch's stock MTCNN.detect")
    stock = MTCNN(min_face_size=detector.config.min_face_size, keep_all=True, device=torch.device(args.device))
    sets = {
        "640x480": [resized(p, (640, 480)) for p in PHOTOS],
        "1920x1080": [resized(p, (1920, 1080)) for p in PHOTOS],
        "native mix": [decode_image(p.read_bytes()).pixels for p in PHOTOS],
    }
    print("native mix: " + ", ".join(f"{i.shape[1]}x{i.shape[0]}" for i in sets["native mix"]))
    print(f"{'photos':12} {'stock ms/img':>13} {'ours ms/img':>12} {'ratio':>6} {'ours, 1 batch':>14}")
    ratios = []
    worst_detect = 0.0
    for name, images in sets.items():
        # stock and ours alternate inside each repeat, so both see the same machine noise
        stock_s, ours_s, batch_s = [], [], []
        for _ in range(args.repeats + 1):
            stock_s.append(seconds_of(lambda images=images: [stock_detect(stock, img) for img in images]))
            ours_s.append(seconds_of(lambda images=images: [detector.detect([img]) for img in images]))
            batch_s.append(seconds_of(lambda images=images: detector.detect(images)))
        stock_ms, ours_ms, batch_ms = (
            1000 * statistics.median(s[1:]) / len(images) for s in (stock_s, ours_s, batch_s)
        )
        worst_detect = max(worst_detect, statistics.median(batch_s[1:]))
        ratios.append(stock_ms / ours_ms)
        print(f"{name:12} {stock_ms:13.1f} {ours_ms:12.1f} {stock_ms / ours_ms:5.2f}x {batch_ms:11.1f} ms")
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x")
    eight = sets["native mix"] * 2
    slowest = timed(lambda: detector.detect(eight), args.repeats)
    print(
        f"\n== Slowest batches: detection of 8 mixed photos {slowest * 1000:.0f} ms, "
        f"embedding of 64 faces {worst_embed * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
