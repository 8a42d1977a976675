"""Import faceserve's models into the BentoML model store ($BENTOML_HOME).

    python scripts/import_models.py [--facenet-weights FILE [--facenet-variant vggface2|casia]] [--download]

MTCNN and dlib-resnet come from installed packages and always import,
offline. FaceNet weights are not on PyPI: pass the release file you
downloaded (20180402-114759-vggface2.pt or 20180408-102900-casia-webface.pt),
or --download to try facenet-pytorch's release URL. Whatever cannot be
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

from models import store  # noqa: E402
from models.dlib_format import parse_file  # noqa: E402
from models.dlib_format import weights_path as dlib_weights_path

RELEASES = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
RELEASE_FILES = {
    "vggface2": (store.FACENET_VGGFACE2, "20180402-114759-vggface2.pt"),
    "casia": (store.FACENET_CASIA, "20180408-102900-casia-webface.pt"),
}


def _report(model: store.StoredModel, entry, written: bool) -> None:
    state = "imported" if written else "already imported"
    print(f"{model.name:18} {state:17} {entry.tag}  sha256={entry.info.metadata['sha256'][:16]}…")


def import_mtcnn(workdir: Path) -> None:
    import facenet_pytorch

    data = Path(facenet_pytorch.__file__).parent / "data"
    state = {
        net: torch.load(data / f"{net}.pt", map_location="cpu", weights_only=True) for net in ("pnet", "rnet", "onet")
    }
    combined = workdir / store.MTCNN.filename
    torch.save(state, combined)
    _report(store.MTCNN, *store.save(store.MTCNN, combined))


def import_dlib_resnet() -> None:
    path = dlib_weights_path()
    parse_file(path)  # refuse to store a file our parser cannot read
    _report(store.DLIB_RESNET, *store.save(store.DLIB_RESNET, path))


def import_facenet(variant: str, weights: Path) -> None:
    """Check the file loads into InceptionResnetV1 before storing it."""
    from facenet_pytorch import InceptionResnetV1

    model, _ = RELEASE_FILES[variant]
    state = torch.load(weights, map_location="cpu", weights_only=True)
    InceptionResnetV1(pretrained=None, classify=False).load_state_dict(
        {k: v for k, v in state.items() if not k.startswith("logits.")}
    )
    _report(model, *store.save(model, weights, extra={"file": weights.name}))


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
        import_dlib_resnet()
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
