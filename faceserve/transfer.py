"""A directory's gallery as a file: export for backup or a move, import to restore it.

The file is JSON lines: a header naming the format, model and directory,
then one face per line (`schemas.GalleryFace`, vector included). Lines
stream both ways, so a gallery of any size never sits in memory whole.
Vectors belong to the model that made them; the service refuses an import
from another model rather than storing faces that would match nobody.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO

from faceserve import schemas
from faceserve.client import Faceserve

FORMAT = "faceserve-gallery"
VERSION = 1


class BadExportFile(ValueError):
    pass


def export_directory(
    client: Faceserve,
    directory: str,
    out: IO[str],
    *,
    page_size: int = 256,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Write the header and every face of `directory` to `out`; returns the number of faces."""
    count = 0
    for number, page in enumerate(client.export_pages(directory, page_size=page_size)):
        if number == 0:  # the first page names the model; an empty directory still gets its header
            header = {
                "format": FORMAT,
                "version": VERSION,
                "directory": directory,
                "model": page.model,
                "dim": page.dim,
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            out.write(json.dumps(header) + "\n")
        for face in page.faces:
            out.write(face.model_dump_json() + "\n")
        count += len(page.faces)
        progress(len(page.faces))
    return count


def export_to_file(client: Faceserve, directory: str, path: Path, **kwargs) -> int:
    """Written beside the target and renamed at the end: an interrupted export leaves no file that looks whole."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as out:
        count = export_directory(client, directory, out, **kwargs)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return count


def read_header(lines: IO[str]) -> dict:
    try:
        header = json.loads(lines.readline())
    except ValueError as exc:
        raise BadExportFile(f"not a faceserve export (first line is not JSON: {exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadExportFile("not a faceserve export (no faceserve-gallery header)")
    if header.get("version") != VERSION:
        raise BadExportFile(f"export format version {header.get('version')} is not {VERSION}")
    return header


def _faces(lines: IO[str]) -> Iterator[schemas.GalleryFace]:
    for number, line in enumerate(lines, start=2):
        if line.strip():
            try:
                yield schemas.GalleryFace.model_validate_json(line)
            except ValueError as exc:
                raise BadExportFile(f"line {number}: {exc}") from exc


def import_file(
    client: Faceserve,
    lines: IO[str],
    directory: str | None = None,
    *,
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[str, int]:
    """Import an export into `directory` (the exported one by default); returns (directory, faces imported).

    Importing the same file again stores nothing twice: faces keep their ids.
    """
    header = read_header(lines)
    target = directory or header["directory"]
    chunk = client.info().limits.max_transfer_faces
    faces = _faces(lines)
    imported = 0
    while batch := list(islice(faces, chunk)):
        imported += client.import_faces(target, header["model"], batch).imported_faces
        progress(len(batch))
    return target, imported
