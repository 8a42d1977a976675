"""End to end "detect, cut and embed every face" per image: the torch runtime against the openvino one.

    python scripts/bench_runtimes.py [--repeats 3]

Both run the bare pipeline (models/pipeline, dlib-resnet) in this process on
scripts/bench_peer.py's photos letterboxed to VGA and 1080p, taking turns
inside every repeat so that both see the same machine noise. Prints each
runtime's load time (openvino's includes converting and compiling the nets),
ms/image, faces found and the ratio; FACESERVE_RUNTIME's default stays torch
unless openvino is at least 1.3x faster here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import store  # noqa: E402
from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from models.embedders import load_embedder  # noqa: E402
from models.imaging import DecodedImage  # noqa: E402
from models.pipeline import FacePipeline  # noqa: E402
from models.registry import MTCNN, Runtime  # noqa: E402
from scripts.bench_peer import PHOTOS, SIZES, letterboxed  # noqa: E402

RUNTIMES: tuple[Runtime, ...] = ("torch", "openvino")


def loaded(runtime: Runtime) -> tuple[FacePipeline, float]:
    started = time.perf_counter()
    detector = FaceDetector(DetectorConfig(runtime=runtime), weights=store.stored_file(MTCNN))
    pipeline = FacePipeline.in_process(detector, load_embedder("dlib-resnet", runtime=runtime))
    return pipeline, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pipelines = {}
    for runtime in RUNTIMES:
        pipelines[runtime], seconds = loaded(runtime)
        print(f"{runtime:8} loaded in {seconds:.1f} s")

    print(f"{len(PHOTOS)} photos, letterboxed to each size; medians of {args.repeats} runs, ms/image")
    for label, size in SIZES.items():
        images = [DecodedImage(img, size[0], size[1]) for img in (letterboxed(p, size) for p in PHOTOS)]
        runs: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
        faces = dict.fromkeys(RUNTIMES, 0)
        for repeat in range(args.repeats + 1):  # the first is a warm-up
            for runtime, pipeline in pipelines.items():
                started = time.perf_counter()
                faces[runtime] = sum(len(pipeline.run(image).faces) for image in images)
                if repeat:
                    runs[runtime].append(time.perf_counter() - started)
        ms = {runtime: 1000 * statistics.median(runs[runtime]) / len(images) for runtime in RUNTIMES}
        print(
            f"{label:16} "
            + " | ".join(f"{runtime} {ms[runtime]:6.1f} ms ({faces[runtime]} faces)" for runtime in RUNTIMES)
            + f" | openvino/torch time {ms['openvino'] / ms['torch']:.2f} (speed-up {ms['torch'] / ms['openvino']:.2f}x)"
        )


if __name__ == "__main__":
    main()
