"""Gallery speed on Qdrant Edge: upsert and filtered top-10 search at 10k and 100k faces.

    python scripts/bench_gallery.py [--sizes 10000 100000] [--dims 512 128] [--queries 500]

Faces are spread over 100 directories; each search is confined to one
directory, as every recognition is. Prints median and p95 latency.
Target: p95 <= 10 ms for a search at 100k faces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qdrant.base import NewFace  # noqa: E402
from qdrant.edge import EdgeGallery  # noqa: E402

DIRECTORIES = 100


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ms(samples: list[float]) -> str:
    a = np.asarray(samples) * 1000
    return f"median {np.median(a):7.3f} ms  p95 {np.percentile(a, 95):7.3f} ms"


def bench(size: int, dim: int, queries: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    vectors = unit_rows(rng, size, dim)
    with tempfile.TemporaryDirectory() as tmp, EdgeGallery(Path(tmp), "bench", dim) as gallery:
        upserts = []
        started = time.perf_counter()
        for start in range(0, size, batch):
            directory = f"dir{(start // batch) % DIRECTORIES:03d}"
            faces = [NewFace(v, (0, 0, 1, 1), 1.0, "", str(uuid.uuid4())) for v in vectors[start : start + batch]]
            t = time.perf_counter()
            gallery.add_faces(directory, f"person{start // batch}", faces)
            upserts.append(time.perf_counter() - t)
        total = time.perf_counter() - started
        one = []
        for i in range(min(queries, 200)):
            t = time.perf_counter()
            gallery.add_faces(f"dir{i % DIRECTORIES:03d}", f"single{i}", [NewFace(vectors[i], (0, 0, 1, 1), 1.0, "")])
            one.append(time.perf_counter() - t)
        searches = []
        for q in unit_rows(rng, queries, dim):
            directory = f"dir{rng.integers(DIRECTORIES):03d}"
            t = time.perf_counter()
            gallery.search(directory, q, limit=10)
            searches.append(time.perf_counter() - t)
        print(
            f"{size:>7} faces {dim:>3}-d | load {total:6.1f} s ({size / total:8.0f} faces/s, batches of {batch}: {ms(upserts)}) "
            f"| enrol 1 face: {ms(one)} | top-10 search in 1 of {DIRECTORIES} dirs: {ms(searches)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    for size in args.sizes:
        for dim in args.dims:
            bench(size, dim, args.queries, args.batch)


if __name__ == "__main__":
    main()
