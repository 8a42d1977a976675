"""The PyPI `mtcnn` package (TensorFlow), the detector the MTCNN REST seed used, on our detection benchmark.

Runs in its own environment, never the service's (TensorFlow is not a service dependency); then the service's
environment puts our detector beside it:

    make bench-tf-env
    .venv-bench-tf/bin/python scripts/bench_mtcnn_pypi.py --repeats 3
    .venv/bin/python scripts/bench_mtcnn_compare.py --repeats 3

Measures `MTCNN().detect_faces(image, min_face_size=20)` one image at a time on scripts/detection_bench's sets
(ms/image medians, first pass excluded) and counts its faces of score >= 0.9 in every manifest photo. Prints a
table, writes everything to --json for bench_mtcnn_compare, and ends with it as one JSON line (less the
per-photo counts).

What mtcnn 1.0 differs in from 0.1 and from ours: `detect_faces` also takes a list of images, which it pads to
the largest and runs as one batch (not used: ours is timed per image too); the pyramid and stage thresholds are
keyword arguments of `detect_faces`, not of the constructor; boxes come as [x, y, width, height]; O-Net keeps
faces from 0.8 (ours from 0.7), which the 0.9 count makes moot. It runs every image at full size, where the
service first scales photos down to 1280 px on the long side.

TensorFlow's intra-op and inter-op pools are both set to --threads (default: every core), explicitly, so that
the thread count reported is the one used rather than TensorFlow's own guess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices would bury the table

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from mtcnn import MTCNN  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.detection_bench import MIN_FACE_SIZE, TF_JSON, cap_memory, count_faces, time_sets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="TensorFlow intra- and inter-op")
    parser.add_argument("--json", type=Path, default=TF_JSON, help="where the full results go")
    parser.add_argument("--max-gb", type=float, default=10, help="address-space cap (detection_bench.cap_memory)")
    args = parser.parse_args()
    cap_memory(args.max_gb)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    detector = MTCNN()

    def detect(image: np.ndarray) -> list[float]:
        return [float(face["confidence"]) for face in detector.detect_faces(image, min_face_size=MIN_FACE_SIZE)]

    env = {
        "detector": "mtcnn (PyPI)",
        "versions": {"mtcnn": version("mtcnn"), "tensorflow": tf.__version__, "python": platform.python_version()},
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "min_face_size": MIN_FACE_SIZE,
        "repeats": args.repeats,
    }
    print(f"mtcnn {env['versions']['mtcnn']}, tensorflow {tf.__version__}, threads {env['threads']}")
    timing = time_sets(detect, args.repeats)
    print(f"load average {timing['load'][0]} before, {timing['load'][1]} after timing, {os.cpu_count()} cores")
    for name, s in timing["sets"].items():
        print(f"{name:10} {s['ms_per_image']:8.1f} ms/image {s['images_per_s']:6.2f} images/s {s['faces']:3} faces")
    count = count_faces(detect)
    print(
        f"faces >= 0.9 in {count['photos']} photos ({count['seconds']:.0f} s): {count['found']} found where "
        f"{count['expected']} expected in {count['labelled']} labelled, {count['exact']} exact, "
        f"{count['missed']} missed, {count['extra']} extra"
    )
    result = {**env, **timing, "count": count}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    summary = {**result, "count": {k: v for k, v in count.items() if k != "per_photo"}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
