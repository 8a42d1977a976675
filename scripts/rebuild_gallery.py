"""Copy every readable face of an Edge gallery shard into a fresh shard, reporting what cannot be read.

For a shard that a bad payload has broken (the service answers 500 on
writes, or crash-loops on start with "Failed to deserialize payload:
recursion limit exceeded"). Stop the service first: Edge lets one process
at a time open a shard. Then:

    python scripts/rebuild_gallery.py $GALLERY/faces_<model>_<dim> /tmp/rebuilt
    mv $GALLERY/faces_<model>_<dim> /somewhere/broken && mv /tmp/rebuilt $GALLERY/faces_<model>_<dim>

The source is only read, never changed. When it will not load because its
write-ahead log holds the failed write, it is read from a copy without the
log: the gallery flushes every write to the segments before returning, so
the log only holds writes that never succeeded. Metadata stored in the old
format (a payload object) is rewritten as the JSON string the gallery
stores now. Unreadable points are listed on stdout, one JSON object per
line; the exit status is 1 when there were any.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceserve.rules import encode_metadata  # noqa: E402
from qdrant.edge import EdgeStore  # noqa: E402
from qdrant.payload import LEGACY_METADATA_KEY, METADATA_KEY  # noqa: E402
from qdrant.store import PROBE_DIRECTORY, Point  # noqa: E402

PAGE = 256


def load_readable(source: Path, scratch: Path) -> tuple[qe.EdgeShard, bool]:
    """The source shard, or a copy of it without its write-ahead log when the log cannot be replayed."""
    try:
        return qe.EdgeShard.load(str(source)), False
    except Exception as exc:
        if "WouldBlock" in str(exc):
            raise SystemExit(f"{source} is open in another process: stop the service first") from exc
        copy = scratch / source.name
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("wal"))
        return qe.EdgeShard.load(str(copy)), True


def point_ids(shard: qe.EdgeShard) -> Iterator[list[qe.PointId]]:
    """Ids only, a page at a time: reading ids never decodes a payload, so it works on a broken shard."""
    offset = None
    while True:
        records, offset = shard.scroll(qe.ScrollRequest(offset=offset, limit=PAGE, with_payload=False))
        yield [r.id for r in records]
        if offset is None:
            return


def current_format(payload: dict[str, Any]) -> dict[str, Any]:
    if METADATA_KEY in payload or LEGACY_METADATA_KEY not in payload:
        return payload
    out = {k: v for k, v in payload.items() if k != LEGACY_METADATA_KEY}
    out[METADATA_KEY] = encode_metadata(payload[LEGACY_METADATA_KEY] or {})
    return out


def readable(shard: qe.EdgeShard, ids: list[qe.PointId]) -> tuple[list[Point], list[tuple[qe.PointId, str]]]:
    """The page's points; when the page fails to decode, each point alone, so one bad point costs only itself."""
    try:
        records = shard.retrieve(ids, with_payload=True, with_vector=True)
    except Exception:
        records, failed = [], []
        for point_id in ids:
            try:
                records += shard.retrieve([point_id], with_payload=True, with_vector=True)
            except Exception as exc:
                failed.append((point_id, str(exc)))
    else:
        failed = []
    points = [
        Point(str(r.id), list(r.vector or []), current_format(r.payload or {}))
        for r in records
        if (r.payload or {}).get("directory") != PROBE_DIRECTORY
    ]
    return points, failed


def rebuild(source: Path, target: Path) -> int:
    if target.exists():
        raise SystemExit(f"{target} exists; give a new folder")
    config = json.loads((source / "edge_config.json").read_text())
    dim = int(config["vectors"][""]["size"])
    with tempfile.TemporaryDirectory() as scratch:
        shard, without_wal = load_readable(source, Path(scratch))
        if without_wal:
            print(json.dumps({"note": "source loaded without its write-ahead log (it could not be replayed)"}))
        store = EdgeStore(target, dim)
        copied, lost = 0, 0
        try:
            for ids in point_ids(shard):
                points, failed = readable(shard, ids)
                if points:
                    store.upsert(points)
                copied += len(points)
                lost += len(failed)
                for point_id, error in failed:
                    print(json.dumps({"unreadable_point": str(point_id), "error": error}))
        finally:
            store.close()
            shard.close()
    print(json.dumps({"copied": copied, "unreadable": lost, "target": str(target)}))
    return 1 if lost else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the broken shard folder, e.g. $GALLERY/faces_<model>_<dim>")
    parser.add_argument("target", type=Path, help="a new folder for the rebuilt shard")
    args = parser.parse_args()
    sys.exit(rebuild(args.source, args.target))


if __name__ == "__main__":
    main()
