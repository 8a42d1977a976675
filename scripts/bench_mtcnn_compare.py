"""Our detector beside the PyPI `mtcnn` package (TensorFlow), on the same photos, pixels and face count.

    make bench-tf-env
    .venv-bench-tf/bin/python scripts/bench_mtcnn_pypi.py --repeats 3
    .venv/bin/python scripts/bench_mtcnn_compare.py --repeats 3 [--max-side 0]

Runs `FaceDetector().detect([image])` through scripts/detection_bench, as bench_mtcnn_pypi ran mtcnn, then
prints one table with the numbers that script wrote (--tf-json). The two run one after the other in separate
processes, not interleaved, so machine noise is not shared: on a busy machine rerun both before trusting a
small difference. Sets whose pixels differ between the two runs are refused.

Ours is measured as the service runs it, photos scaled down to 1280 px on the long side before detection
(--max-side); `--max-side 0` runs it at full size like mtcnn does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.detector import DetectorConfig, FaceDetector  # noqa: E402
from scripts.detection_bench import (  # noqa: E402
    MIN_FACE_SIZE,
    MIN_SCORE,
    TF_JSON,
    Detect,
    cap_memory,
    count_faces,
    time_sets,
)


def our_detect(max_side: int, device: str) -> Detect:
    # as the service runs it: one worker per core with single-threaded kernels (models/detector)
    detector = FaceDetector(
        DetectorConfig(
            min_face_size=MIN_FACE_SIZE,
            min_confidence=MIN_SCORE,
            max_side=max_side or sys.maxsize,
            workers=torch.get_num_threads(),
            device=device,
        )
    )

    def detect(image: np.ndarray) -> list[float]:
        found = detector.detect([image])[0]
        if found is None:
            raise RuntimeError("detection failed")
        return [face.score for face in found]

    return detect


def count_line(label: str, count: dict) -> str:
    return (
        f"{label:10} {count['found']:6} {count['exact']:6} {count['missed']:7} {count['extra']:6} "
        f"{count['found_unlabelled']:11} {len(count['failed']):7} {count['seconds']:7.0f}"
    )


def same_inputs(theirs: dict, timing: dict, count: dict) -> None:
    """Refuse to compare runs that were not given the same pixels and photos."""
    for name, ours in timing["sets"].items():
        if theirs["sets"][name]["pixels_sha256"] != ours["pixels_sha256"]:
            sys.exit(f"set {name}: the two runs were given different pixels (Pillow versions differ?)")
    if set(theirs["count"]["per_photo"]) != set(count["per_photo"]):
        sys.exit("the face counts ran over different photos")


def report(theirs: dict, timing: dict, count: dict, args: argparse.Namespace) -> None:
    v, t = theirs["versions"], theirs["threads"]
    side = f"max side {args.max_side}" if args.max_side else "full size"
    print(
        f"mtcnn-TF: mtcnn {v['mtcnn']}, tensorflow {v['tensorflow']}, intra-op {t['intra_op']} / inter-op "
        f"{t['inter_op']} threads, full size, {theirs['repeats']} repeats, load {theirs['load'][0]} -> {theirs['load'][1]}"
    )
    print(
        f"ours:     models/mtcnn, torch {torch.__version__}, {torch.get_num_threads()} threads, {side}, "
        f"{args.repeats} repeats, load {timing['load'][0]} -> {timing['load'][1]}"
    )
    print(
        f"min face size {MIN_FACE_SIZE} px both; medians per image, one image per call, first pass excluded; "
        f"{os.cpu_count()} cores, 1-minute load average before -> after timing\n"
    )
    print(
        f"{'set':10} {'sizes':36} {'mtcnn-TF ms':>11} {'img/s':>6} {'faces':>5}   "
        f"{'ours ms':>8} {'img/s':>6} {'faces':>5}   {'ours faster':>11}"
    )
    for name, ours in timing["sets"].items():
        tf_set = theirs["sets"][name]
        sizes = ",".join(dict.fromkeys(ours["sizes"]))
        print(
            f"{name:10} {sizes:36} {tf_set['ms_per_image']:11.1f} {tf_set['images_per_s']:6.2f} {tf_set['faces']:5}   "
            f"{ours['ms_per_image']:8.1f} {ours['images_per_s']:6.2f} {ours['faces']:5}   "
            f"{tf_set['ms_per_image'] / ours['ms_per_image']:10.2f}x"
        )
    tf_count = theirs["count"]
    print(
        f"\nfaces with score >= {MIN_SCORE} in {count['photos']} manifest photos, {count['expected']} faces expected "
        f"in the {count['labelled']} with a count ({len(count['undecodable'])} files Pillow cannot decode):"
    )
    print(
        f"{'':10} {'found':>6} {'exact':>6} {'missed':>7} {'extra':>6} {'unlabelled':>11} {'failed':>7} {'pass s':>7}"
    )
    print(count_line("mtcnn-TF", tf_count))
    print(count_line("ours", count))
    for label, c in (("mtcnn-TF", tf_count), ("ours", count)):
        for name in c["failed"]:
            print(f"  {label} failed on {name} (counted as no face)")
    differ = sorted(n for n, f in count["per_photo"].items() if tf_count["per_photo"].get(n) != f)
    print(f"photos where the two counts differ: {len(differ)}")
    for name in differ:
        print(f"  {name}: mtcnn-TF {tf_count['per_photo'].get(name)}, ours {count['per_photo'][name]}")
    ours_summary = {k: v for k, v in count.items() if k != "per_photo"}
    print(json.dumps({"ours": {"max_side": args.max_side, **timing, "count": ours_summary}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="torch device of our detector")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("--max-side", type=int, default=DetectorConfig().max_side, help="0: no downscaling")
    parser.add_argument("--tf-json", type=Path, default=TF_JSON, help="what bench_mtcnn_pypi.py wrote")
    parser.add_argument("--max-gb", type=float, default=10, help="address-space cap (detection_bench.cap_memory)")
    args = parser.parse_args()
    cap_memory(args.max_gb)
    if not args.tf_json.exists():
        sys.exit(f"{args.tf_json} is missing: run .venv-bench-tf/bin/python scripts/bench_mtcnn_pypi.py first")
    theirs = json.loads(args.tf_json.read_text())
    torch.set_num_threads(args.threads)
    detect = our_detect(args.max_side, args.device)
    with torch.inference_mode():
        timing = time_sets(detect, args.repeats)
        count = count_faces(detect)
    same_inputs(theirs, timing, count)
    report(theirs, timing, count, args)


if __name__ == "__main__":
    main()
