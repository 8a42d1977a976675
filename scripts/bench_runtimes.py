"""The torch runtime against the openvino one (FACESERVE_RUNTIME), per stage and end to end, in one process.

    python scripts/bench_runtimes.py [--repeats 3]

Both runtimes run scripts/bench_peer.py's photos letterboxed to VGA and 1080p,
taking turns inside every repeat so that both see the same machine noise (on
a shared machine, runs apart are not comparable). Per image: detection alone,
embedding alone (each photo's faces as one batch, the same chips for both),
and the bare pipeline end to end (models/pipeline, dlib-resnet: detect, cut,
embed every face). Also each runtime's load time; openvino's includes
converting and compiling the four nets. FACESERVE_RUNTIME stays torch unless
openvino is at least 1.3x faster end to end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import cores  # noqa: E402

# as the service's model processes run: OpenMP threads waiting passively, one detector worker per core
# (models/cores, models/detector); this must happen before torch loads
WORKERS = cores.use_cores()

from models import store  # noqa: E402
from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from models.embedders import Embedder, load_embedder  # noqa: E402
from models.imaging import DecodedImage  # noqa: E402
from models.pipeline import FacePipeline  # noqa: E402
from models.registry import MTCNN, Runtime  # noqa: E402
from scripts.bench_peer import PHOTOS, SIZES, letterboxed  # noqa: E402

RUNTIMES: tuple[Runtime, ...] = ("torch", "openvino")


def loaded(runtime: Runtime) -> tuple[FaceDetector, Embedder, float]:
    started = time.perf_counter()
    detector = FaceDetector(DetectorConfig(workers=WORKERS, runtime=runtime), weights=store.stored_file(MTCNN))
    embedder = load_embedder("dlib-resnet", runtime=runtime)
    return detector, embedder, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models = {}
    for runtime in RUNTIMES:
        detector, embedder, seconds = loaded(runtime)
        models[runtime] = detector, embedder
        print(f"{runtime:8} loaded in {seconds:.1f} s")
    torch_detector, torch_embedder = models["torch"]
    entry = torch_embedder.entry

    print(
        f"\n{WORKERS} detector workers; {len(PHOTOS)} photos letterboxed to each size; ms per image, medians of {args.repeats} runs"
    )
    print(f"{'':16} {'stage':11} {'torch':>8} {'openvino':>9} {'ov/torch':>9} {'speed-up':>9}")
    for label, size in SIZES.items():
        images = [letterboxed(p, size) for p in PHOTOS]
        found = torch_detector.detect(images)
        chips = [entry.cut(img, faces, entry.geometry) for img, faces in zip(images, found, strict=True)]
        decoded = [DecodedImage(img, size[0], size[1]) for img in images]
        stages: dict[str, dict[Runtime, Callable[[], object]]] = {"detect": {}, "embed": {}, "end to end": {}}
        for runtime, (detector, embedder) in models.items():
            pipeline = FacePipeline.in_process(detector, embedder)
            stages["detect"][runtime] = lambda d=detector, images=images: [d.detect([img]) for img in images]
            stages["embed"][runtime] = lambda e=embedder, chips=chips: [e.embed(c) for c in chips]
            stages["end to end"][runtime] = lambda p=pipeline, decoded=decoded: [p.run(img) for img in decoded]
        runs = {(stage, runtime): [] for stage in stages for runtime in RUNTIMES}
        for repeat in range(args.repeats + 1):  # the first is a warm-up
            for stage, by_runtime in stages.items():
                for runtime, run in by_runtime.items():
                    started = time.perf_counter()
                    run()
                    if repeat:
                        runs[stage, runtime].append(time.perf_counter() - started)
        for stage in stages:
            ms = {runtime: 1000 * statistics.median(runs[stage, runtime]) / len(images) for runtime in RUNTIMES}
            ratio = ms["openvino"] / ms["torch"]
            print(f"{label:16} {stage:11} {ms['torch']:8.1f} {ms['openvino']:9.1f} {ratio:9.2f} {1 / ratio:8.2f}x")
        print(f"{'':16} {sum(map(len, chips))} faces")


if __name__ == "__main__":
    main()
