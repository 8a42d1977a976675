"""Face detection: MTCNN with facenet-pytorch's weights, run by our batched cascade (models/mtcnn).

Large photos are downscaled for detection only and the boxes and landmarks
mapped back, so a 12-megapixel upload costs what a 1-megapixel one does while
callers still get original-image coordinates to crop and align from.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
from PIL import Image

from models import cores
from models.faces import DetectedFace, Detection
from models.isolation import batch_or_one_by_one
from models.mtcnn import Found, Mtcnn, MtcnnParams, Net
from models.registry import Runtime


@dataclass(frozen=True)
class DetectorConfig:
    min_face_size: int = 20
    min_confidence: float = 0.9
    max_side: int = 1280
    device: str = "cpu"
    workers: int = 1
    """Threads the cascade spreads its pyramid levels and candidate chunks over, each running single-threaded
    kernels. On 2 cores 2 workers beat torch's own 2 threads per kernel, which must meet after every small
    kernel: as fast without spinning, and faster on batches (BENCHMARKS.md, "Bare models")."""
    runtime: Runtime = "torch"


def load_nets(weights: Path | None, device: torch.device) -> tuple[PNet, RNet, ONet]:
    """The three nets from the model store's mtcnn.pt, or without it from facenet-pytorch's own files (the same
    bytes `scripts/import_models.py` stores).

    Channels-last weights make every conv and max-pool take torch's vectorised NHWC kernels: 1.4x faster on CPU,
    same outputs (BENCHMARKS.md, "Bare models").
    """
    nets = (PNet(pretrained=weights is None), RNet(pretrained=weights is None), ONet(pretrained=weights is None))
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        for name, net in zip(("pnet", "rnet", "onet"), nets, strict=True):
            net.load_state_dict(state[name])
    for net in nets:
        net.eval().to(device, memory_format=torch.channels_last)
    return nets


def openvino_nets(pnet: PNet, rnet: RNet, onet: ONet, workers: int) -> tuple[Net, Net, Net]:
    """The three nets compiled by OpenVINO for `workers` calling at once: P-Net for any image size, R-Net and
    O-Net for their crop sizes.

    openvino is imported here so that the torch runtime never loads it.
    """
    from models.openvino_runtime import compile_net

    def compiled(net: PNet | RNet | ONet, side: int, any_size: bool = False) -> Net:
        example = torch.zeros(2, 3, side, side).contiguous(memory_format=torch.channels_last)
        return compile_net(net, example, any_size, callers=workers)

    return compiled(pnet, 12, any_size=True), compiled(rnet, 24), compiled(onet, 48)


class FaceDetector:
    """Finds faces in batches of decoded RGB images."""

    def __init__(self, config: DetectorConfig = DetectorConfig(), weights: Path | None = None) -> None:
        self.config = config
        device = torch.device(config.device)
        nets: tuple[Net, Net, Net] = load_nets(weights, device)
        if config.runtime == "openvino":
            nets = openvino_nets(*nets, config.workers)
        params = MtcnnParams(min_face_size=config.min_face_size)
        self.mtcnn = Mtcnn(*nets, params, device, workers=config.workers)

    def _scale_for(self, image: np.ndarray) -> float:
        longest = max(image.shape[:2])
        return min(1.0, self.config.max_side / longest)

    def _resized(self, image: np.ndarray, scale: float) -> np.ndarray:
        if scale == 1.0:
            return image
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))

    def detect(self, images: list[np.ndarray]) -> list[Detection]:
        """Detect faces in each image, largest first; None for an image the detector failed on.

        The images may come from several requests batched together: they run as
        one cascade (models/mtcnn), and if that raises, one by one, so an image
        that makes MTCNN raise fails only itself (models/isolation).
        """
        scales = [self._scale_for(img) for img in images]
        small = [self._resized(img, s) for img, s in zip(images, scales, strict=True)]
        # MTCNN's pyramid starts at min_face_size: an image whose short side is below it has no scale to
        # run. No face that small is looked for, so none is found.
        searchable = [i for i, img in enumerate(small) if min(img.shape[:2]) >= self.config.min_face_size]
        single = cores.intra_op_threads(1) if self.config.workers > 1 else nullcontext()
        with single:
            found = batch_or_one_by_one(self.mtcnn.detect, [small[i] for i in searchable], "face detection")
        results: list[Detection] = [[] for _ in images]
        for i, result in zip(searchable, found, strict=True):
            results[i] = None if result is None else self._faces(result, scales[i], images[i].shape)
        return results

    def _faces(self, found: Found, scale: float, shape: tuple[int, ...]) -> list[DetectedFace]:
        h, w = shape[:2]
        faces = []
        for box, prob, pts in zip(found.boxes, found.scores, found.landmarks, strict=True):
            if prob < self.config.min_confidence:
                continue
            x1, y1, x2, y2 = (float(v) / scale for v in box)
            faces.append(
                DetectedFace(
                    box=(max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)),
                    score=float(prob),
                    landmarks=tuple((float(x) / scale, float(y) / scale) for x, y in pts),
                )
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces
