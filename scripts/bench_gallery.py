"""Gallery speed on Qdrant Edge: upsert and filtered top-10 search at 10k and 100k faces.

    python scripts/bench_gallery.py [--sizes 10000 100000] [--dims 512 128] [--queries 500]

Faces are spread evenly over 100 directories; each search is confined to
one directory, as every recognition is. Every add_faces call ends in a
flush (see qdrant/edge.py), so the load and "enrol 1" figures include an
fsync per call. Prints median and p95 latency.
Target: p95 <= 10 ms for a search at 100k faces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qdrant import NewFace, open_gallery  # noqa: E402

DIRECTORIES = 100


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ms(samples: list[float]) -> str:
    a = np.asarray(samples) * 1000
    return f"median {np.median(a):7.3f} ms  p95 {np.percentile(a, 95):7.3f} ms"


def bench(size: int, dim: int, queries: int, batch: int) -> None:
    """Every directory gets size/100 faces, loaded in one-person batches that cycle through the directories."""
    rng = np.random.default_rng(0)
    vectors = unit_rows(rng, size, dim)
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_gallery(url=None, api_key=None, path=Path(tmp), model_id="bench", dim=dim) as gallery,
    ):
        upserts = []
        started = time.perf_counter()
        for n, start in enumerate(range(0, size, batch)):
            faces = [NewFace(v, (0, 0, 1, 1), 1.0, "") for v in vectors[start : start + batch]]
            t = time.perf_counter()
            gallery.add_faces(f"dir{n % DIRECTORIES:03d}", f"person{n}", faces)
            upserts.append(time.perf_counter() - t)
        total = time.perf_counter() - started
        per_dir = gallery.count("dir000")
        one = []
        for i in range(min(queries, 200)):
            t = time.perf_counter()
            gallery.add_faces(f"dir{i % DIRECTORIES:03d}", f"single{i}", [NewFace(vectors[i], (0, 0, 1, 1), 1.0, "")])
            one.append(time.perf_counter() - t)
        searches = []
        for q in unit_rows(rng, queries, dim):
            directory = f"dir{rng.integers(DIRECTORIES):03d}"
            t = time.perf_counter()
            hits = gallery.search(directory, q, limit=10)
            searches.append(time.perf_counter() - t)
            assert len(hits) == 10
        print(
            f"{size:>7} faces {dim:>3}-d, ~{per_dir} per directory\n"
            f"  load       {total:6.1f} s ({size / total:6.0f} faces/s); add_faces of {batch}: {ms(upserts)}\n"
            f"  enrol 1    {ms(one)}\n"
            f"  top-10 search in 1 of {DIRECTORIES} directories: {ms(searches)}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100, help="faces per add_faces call (at most size/100)")
    args = parser.parse_args()
    for size in args.sizes:
        for dim in args.dims:
            bench(size, dim, args.queries, args.batch)


if __name__ == "__main__":
    main()
