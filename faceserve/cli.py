"""`faceserve`: bulk enrolment and gallery export/import against a running service.

    faceserve enroll PEOPLE_DIR --directory office      # one sub-folder per person
    faceserve export --directory office -o office.jsonl
    faceserve import office.jsonl --directory office-copy
    faceserve recognize door.jpg --directory office [--security high]

The service and key come from --url/--api-key or FACESERVE_URL/FACESERVE_API_KEY.
Exit status: 0 all done, 1 done but some photos failed, 2 could not run or
stopped early (re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from faceserve.bulk import State, enroll_folder
from faceserve.client import Faceserve, FaceserveError
from faceserve.transfer import BadExportFile, export_to_file, import_file

EXAMPLES_SHOWN = 20


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceserve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("FACESERVE_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", default=os.environ.get("FACESERVE_API_KEY"), help="default: $FACESERVE_API_KEY")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    commands = parser.add_subparsers(dest="command", required=True)

    enroll = commands.add_parser("enroll", help="enrol a folder with one sub-folder of photos per person")
    enroll.add_argument("people", type=Path, help="folder of person folders; a folder's name is the person_id")
    enroll.add_argument("--directory", required=True, help="gallery directory to enrol into")
    enroll.add_argument("--state", type=Path, help="progress file (default: ./faceserve-enroll-DIRECTORY.jsonl)")
    enroll.add_argument("--batch-size", type=int, default=16, help="photos per /enroll_batch call")
    enroll.add_argument("--workers", type=int, default=2, help="batches in flight")
    enroll.add_argument(
        "--largest-face", action="store_true", help="enrol the largest face of a group photo instead of refusing it"
    )
    enroll.add_argument("--retry-failed", action="store_true", help="send again photos that failed in earlier runs")

    export = commands.add_parser("export", help="write a directory's faces (with vectors) to a file")
    export.add_argument("--directory", required=True)
    export.add_argument("-o", "--output", type=Path, help="default: ./DIRECTORY.faceserve.jsonl")

    imp = commands.add_parser("import", help="load an export into a directory of a service running the same model")
    imp.add_argument("file", type=Path)
    imp.add_argument("--directory", help="default: the directory the file was exported from")

    recognize = commands.add_parser("recognize", help="who is in a photo: one line per face with its decision")
    recognize.add_argument("photo", type=Path)
    recognize.add_argument("--directory", required=True)
    recognize.add_argument("--security", choices=["low", "medium", "high", "strict"], help="default: the service's")
    return parser


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _bar(args: argparse.Namespace, unit: str, total: int | None = None) -> tqdm:
    return tqdm(total=total, unit=unit, disable=args.quiet, file=sys.stderr, dynamic_ncols=True, delay=0.5)


def _enroll(client: Faceserve, args: argparse.Namespace) -> int:
    if not args.people.is_dir():
        print(f"faceserve: {args.people} is not a folder", file=sys.stderr)
        return 2
    state = State(args.state or Path(f"faceserve-enroll-{_safe(args.directory)}.jsonl"))
    with _bar(args, "photo") as bar:
        report = enroll_folder(
            client,
            args.people,
            args.directory,
            state,
            batch_size=args.batch_size,
            workers=args.workers,
            largest_face=args.largest_face,
            retry_failed=args.retry_failed,
            progress=bar.update,
            total=lambda n: bar.reset(total=n),
        )
    print(
        f"enrolled {report.enrolled}, failed {len(report.failures)}, already done {report.already_done}, "
        f"failed before {report.failed_before}, skipped {len(report.skipped)} (state: {state.path})"
    )
    for code, count in sorted(report.failure_counts().items()):
        print(f"  {code}: {count}")
    for failure in report.failures[:EXAMPLES_SHOWN]:
        print(f"  failed  {failure.file}: {failure.code}: {failure.message}")
    for file, why in report.skipped[:EXAMPLES_SHOWN]:
        print(f"  skipped {file}: {why}")
    hidden = max(0, len(report.failures) - EXAMPLES_SHOWN) + max(0, len(report.skipped) - EXAMPLES_SHOWN)
    if hidden:
        print(f"  … and {hidden} more (every outcome is in {state.path})")
    return 1 if report.failures or report.failed_before else 0


def _export(client: Faceserve, args: argparse.Namespace) -> int:
    path = args.output or Path(f"{_safe(args.directory)}.faceserve.jsonl")
    with _bar(args, "face") as bar:
        count = export_to_file(client, args.directory, path, progress=bar.update)
    print(f"exported {count} faces of '{args.directory}' to {path}")
    return 0


def _import(client: Faceserve, args: argparse.Namespace) -> int:
    with open(args.file) as lines, _bar(args, "face") as bar:
        directory, count = import_file(client, lines, args.directory, progress=bar.update)
    print(f"imported {count} faces into '{directory}'")
    return 0


def _recognize(client: Faceserve, args: argparse.Namespace) -> int:
    result = client.recognize(args.photo, args.directory, security=args.security)
    print(
        f"{len(result.faces)} face(s); security {result.security}, threshold {result.threshold:.4f} "
        f"over {result.enrolled_faces} enrolled faces" + ("" if result.calibrated else " (UNCALIBRATED)")
    )
    for warning in result.warnings:
        print(f"  warning: {warning}")
    for face in result.faces:
        box = f"[{face.box.x1:.0f},{face.box.y1:.0f},{face.box.x2:.0f},{face.box.y2:.0f}]"
        if face.decision == "match" and face.match is not None:
            chance = (
                ""
                if face.false_accept_probability is None
                else f", stranger chance {face.false_accept_probability:.1e}"
            )
            print(f"  {box} match {face.match.person_id} (similarity {face.match.similarity:.4f}{chance})")
        elif face.decision == "ambiguous":
            names = " or ".join(f"{c.person_id} ({c.similarity:.4f})" for c in face.ambiguous)
            print(f"  {box} ambiguous: {names}")
        else:
            print(f"  {box} unknown")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run = {"enroll": _enroll, "export": _export, "import": _import, "recognize": _recognize}[args.command]
    try:
        with Faceserve(args.url, args.api_key) as client:
            return run(client, args)
    except (FaceserveError, OSError, BadExportFile) as exc:
        print(f"faceserve: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("faceserve: interrupted", file=sys.stderr)
    if args.command == "enroll":
        print("faceserve: stopped early; run the same command again to resume", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
