"""Import faceserve's models into the BentoML model store ($BENTOML_HOME).

    python scripts/import_models.py [--facenet-weights FILE [--facenet-variant vggface2|casia]] [--download]

MTCNN and dlib-resnet come from installed packages and always import,
offline (dlib-resnet's calibration is committed in models/calibrations/). FaceNet weights are not on PyPI: pass the release file you
downloaded (20180402-114759-vggface2.pt or 20180408-102900-casia-webface.pt),
or --download to try facenet-pytorch's release URL. A FaceNet model's
calibration is measured on ../shared/faces* when they are present and
stored beside its weights; without them the service runs it uncalibrated
and says so in every response. Whatever cannot be
imported is reported and skipped. Re-running changes nothing that is
already stored with the same sha256.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import urllib.request
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import registry, store  # noqa: E402
from models.calibration import FILENAME  # noqa: E402
from models.dlib_format import packaged_weights  # noqa: E402
from scripts.calibrate import calibrate, print_table  # noqa: E402
from scripts.faces_data import FACES2_DIR, FACES_DIR  # noqa: E402

RELEASES = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
RELEASE_FILES = {
    "vggface2": (registry.FACENET_VGGFACE2, "20180402-114759-vggface2.pt"),
    "casia": (registry.FACENET_CASIA, "20180408-102900-casia-webface.pt"),
}


def _report(weights: registry.Weights, entry, written: bool) -> None:
    state = "imported" if written else "already imported"
    print(f"{weights.name:18} {state:17} {entry.tag}  sha256={entry.info.metadata['sha256'][:16]}…")


def import_mtcnn(workdir: Path) -> None:
    import facenet_pytorch

    data = Path(facenet_pytorch.__file__).parent / "data"
    state = {
        net: torch.load(data / f"{net}.pt", map_location="cpu", weights_only=True) for net in ("pnet", "rnet", "onet")
    }
    combined = workdir / registry.MTCNN.filename
    torch.save(state, combined)
    _report(registry.MTCNN, *store.save(registry.MTCNN, combined))


def import_embedder(entry: registry.ModelEntry, path: Path, extra: dict[str, str] | None = None) -> None:
    """Refuse a file that does not load the way the service will load it, then store it."""
    entry.load(path)
    _report(entry.weights, *store.save(entry.weights, path, {**entry.store_metadata(), **(extra or {})}))


def import_facenet(variant: str, weights: Path) -> None:
    entry, _ = RELEASE_FILES[variant]
    import_embedder(entry, weights, extra={"file": weights.name})
    target = store.stored_file(entry.weights).parent / FILENAME
    if not target.exists():
        calibrate_into(entry, target, tuple(d for d in (FACES_DIR, FACES2_DIR) if d.is_dir()))


def calibrate_into(entry: registry.ModelEntry, target: Path, dirs: tuple[Path, ...]) -> bool:
    """Measure an imported model's impostor tail on the labelled photos and store it at `target`."""
    if not dirs:
        print(f"{entry.model_id:18} uncalibrated: no labelled photos at {FACES_DIR} to measure it on")
        return False
    calibration, impostors = calibrate(entry.model_id, dirs)
    print_table(calibration, impostors)
    calibration.save(target)
    print(f"{entry.model_id:18} calibrated: {target}")
    return True


def download(variant: str, workdir: Path) -> Path | None:
    _, filename = RELEASE_FILES[variant]
    target = workdir / filename
    try:
        urllib.request.urlretrieve(RELEASES + filename, target)
    except OSError as exc:
        print(f"facenet-{variant:10} skipped: could not download {RELEASES + filename} ({exc})")
        return None
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facenet-weights", type=Path, help="a facenet-pytorch release .pt file")
    parser.add_argument("--facenet-variant", choices=sorted(RELEASE_FILES), default="vggface2")
    parser.add_argument("--download", action="store_true", help="try to download the FaceNet release file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        import_mtcnn(workdir)
        import_embedder(registry.DLIB_RESNET, packaged_weights())
        weights = args.facenet_weights
        if weights is None and args.download:
            weights = download(args.facenet_variant, workdir)
        if weights is not None:
            import_facenet(args.facenet_variant, weights)
        elif not args.download:
            print(
                f"facenet-{args.facenet_variant:10} skipped: no --facenet-weights FILE given "
                "(the weights are not on PyPI; pass the release file or --download where GitHub is reachable)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
