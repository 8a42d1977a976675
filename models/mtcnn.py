"""MTCNN inference of our own over facenet-pytorch's three nets, built to batch on CPU.

facenet-pytorch's `detect_face` (kept as the reference in tests/test_mtcnn.py)
cuts every stage-2/3 candidate with its own `interpolate(mode="area")` call in
a Python loop (about a quarter of detection) and runs a batch only as one
padded tensor, which on CPU costs more than it saves. Here:

- stage 1 (P-Net) runs per image shape and pyramid scale, as there;
- the candidates of *all* images are cut and resized in one gather from each
  image's summed-area table: the mean over the same source rectangle that
  adaptive average pooling ("area" interpolation) takes, so the nets see the
  same pixels, to float rounding;
- R-Net and O-Net run over every image's candidates together, in cache-sized
  chunks;
- with `workers`, pyramid levels and candidate chunks are spread over worker
  threads (each with single-threaded kernels, see models/detector), so a
  batch of images keeps every core busy without torch's per-kernel threads;
- non-maximum suppression is torchvision's batched NMS (image index as group).

The arithmetic of boxes, regressions and landmarks follows the reference
step by step, so the answers match it (tests/test_mtcnn.py measures how well).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torchvision.ops import batched_nms

Item = TypeVar("Item")
Result = TypeVar("Result")
Net = Callable[[torch.Tensor], Sequence[torch.Tensor]]
"""One of the three MTCNN nets: an N×3×H×W normalised float batch in, its output heads out."""

# Candidates go through R-Net (24 px crops) and O-Net (48 px) in chunks whose activations stay in the CPU's
# caches: per-box cost measured lowest at 128 and 32 (2-3x below one batch of 1024 or 256; BENCHMARKS.md).
CHUNKS = {24: 128, 48: 32}


@dataclass(frozen=True)
class MtcnnParams:
    """facenet-pytorch MTCNN's defaults: the values its weights were published with."""

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709


@dataclass(frozen=True)
class Found:
    """One image's faces in its own pixels: N×4 boxes (x1, y1, x2, y2), N scores, N×5×2 landmarks."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray


def pyramid(height: int, width: int, params: MtcnnParams) -> list[float]:
    """The scales at which P-Net's 12-pixel window covers faces from `min_face_size` up to the image."""
    scale = 12.0 / params.min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= params.factor
        side *= params.factor
    return scales


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    return ((pixels - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


class Mtcnn:
    """The three-stage cascade over a list of images of any sizes at once."""

    def __init__(
        self, pnet: Net, rnet: Net, onet: Net, params: MtcnnParams, device: torch.device, workers: int = 1
    ) -> None:
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.params = params
        self.device = device
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="mtcnn") if workers > 1 else None

    def _map(self, task: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """`task` over `items` in order, on the worker threads when there are several of both."""

        def run(item: Item) -> Result:
            with torch.inference_mode():  # a per-thread mode
                return task(item)

        if self._pool is None or len(items) < 2:
            return [run(item) for item in items]
        return list(self._pool.map(run, items))

    def detect(self, images: Sequence[np.ndarray]) -> list[Found]:
        """Faces in each H×W×3 uint8 RGB image; every image's short side must be at least `min_face_size`."""
        with torch.inference_mode():
            planes = [torch.from_numpy(np.require(img, np.uint8, ("C", "W"))).to(self.device) for img in images]
            tables = _SummedAreas(planes)
            boxes, owners = self._stage1(tables, planes)
            boxes, owners, _ = self._refine(tables, boxes, owners, self.rnet, 24, self.params.thresholds[1])
            boxes, owners, points = self._refine(tables, boxes, owners, self.onet, 48, self.params.thresholds[2])
            return self._per_image(boxes, owners, points, len(images))

    def _stage1(self, tables: _SummedAreas, planes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """P-Net over each image's pyramid (images of one shape together): N×5 boxes with scores, N owners."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, plane in enumerate(planes):
            by_shape.setdefault(tuple(plane.shape), []).append(index)
        levels = [
            (indices, scale)
            for shape, indices in by_shape.items()
            for scale in pyramid(shape[0], shape[1], self.params)
        ]

        def level(job: tuple[list[int], float]) -> tuple[torch.Tensor, torch.Tensor]:
            indices, scale = job
            height, width = planes[indices[0]].shape[:2]
            size = (int(height * scale + 1), int(width * scale + 1))
            resized = torch.stack([tables.resized(i, *size) for i in indices]).permute(0, 3, 1, 2)
            reg, probs = self.pnet(_normalised(resized))
            boxes, local = _windows(reg, probs[:, 1], scale, self.params.thresholds[0])
            keep = batched_nms(boxes[:, :4], boxes[:, 4], local, 0.5)
            return boxes[keep], torch.tensor(indices, device=self.device)[local[keep]]

        found = self._map(level, levels)
        found_boxes = [boxes for boxes, _ in found]
        found_owners = [owners for _, owners in found]
        boxes, owners = torch.cat(found_boxes), torch.cat(found_owners)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], owners, 0.7)
        boxes, owners = boxes[keep], owners[keep]
        # each window moved by its regression, then made square
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        moved = torch.stack(
            [
                boxes[:, 0] + boxes[:, 5] * width,
                boxes[:, 1] + boxes[:, 6] * height,
                boxes[:, 2] + boxes[:, 7] * width,
                boxes[:, 3] + boxes[:, 8] * height,
                boxes[:, 4],
            ],
            dim=1,
        )
        return _squared(moved), owners

    def _refine(
        self, tables: _SummedAreas, boxes: torch.Tensor, owners: torch.Tensor, net: Net, size: int, threshold: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """R-Net (size 24) or O-Net (size 48) over every candidate of every image; O-Net also places landmarks."""
        if len(boxes) == 0:
            return boxes, owners, torch.zeros(0, 5, 2, device=self.device)

        def chunk(start: int) -> tuple[torch.Tensor, Sequence[torch.Tensor]]:
            part = slice(start, start + step)
            crops, usable = tables.crops(boxes[part], owners[part], size)
            return usable, net(_normalised(crops))

        # chunks small enough to keep every worker busy, never above the cache-friendly size
        step = max(1, min(CHUNKS[size], -(-len(boxes) // self.workers)))
        chunks = self._map(chunk, range(0, len(boxes), step))
        usable = torch.cat([u for u, _ in chunks])
        boxes, owners = boxes[usable], owners[usable]
        heads = [torch.cat(parts) for parts in zip(*(h for _, h in chunks), strict=True)]
        shifts, scores = heads[0], heads[-1][:, 1]
        passed = scores > threshold
        boxes = torch.cat([boxes[passed, :4], scores[passed, None]], dim=1)
        owners, shifts = owners[passed], shifts[passed]
        if size == 24:
            keep = batched_nms(boxes[:, :4], boxes[:, 4], owners, 0.7)
            return _squared(_regressed(boxes[keep], shifts[keep])), owners[keep], None
        marks = heads[1][passed]
        width = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        height = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = torch.stack(
            [width * marks[:, :5] + boxes[:, 0:1] - 1, height * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2
        )
        boxes = _regressed(boxes, shifts)
        keep = _nms_min(boxes, owners, 0.7)
        return boxes[keep], owners[keep], points[keep]

    @staticmethod
    def _per_image(boxes: torch.Tensor, owners: torch.Tensor, points: torch.Tensor | None, count: int) -> list[Found]:
        boxes_np, owners_np = boxes.cpu().numpy(), owners.cpu().numpy()
        points_np = np.zeros((0, 5, 2), np.float32) if points is None else points.cpu().numpy()
        found = []
        for index in range(count):
            mine = owners_np == index
            found.append(Found(boxes_np[mine, :4], boxes_np[mine, 4], points_np[mine]))
        return found


def _windows(reg: torch.Tensor, probs: torch.Tensor, scale: float, threshold: float) -> tuple[torch.Tensor, ...]:
    """P-Net's 12×12 windows scoring at least `threshold`, in image pixels: N×9 (box, score, regression), owners."""
    hits = (probs >= threshold).nonzero()
    owners = hits[:, 0]
    scores = probs[hits[:, 0], hits[:, 1], hits[:, 2]]
    shifts = reg[hits[:, 0], :, hits[:, 1], hits[:, 2]]
    cells = hits[:, 1:].to(reg.dtype).flip(1)
    top_left = ((2 * cells + 1) / scale).floor()
    bottom_right = ((2 * cells + 12) / scale).floor()
    return torch.cat([top_left, bottom_right, scores[:, None], shifts], dim=1), owners


def _squared(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown about its centre to a square on its longer side (the reference's `rerec`)."""
    height = boxes[:, 3] - boxes[:, 1]
    width = boxes[:, 2] - boxes[:, 0]
    side = torch.max(width, height)
    x1 = boxes[:, 0] + width * 0.5 - side * 0.5
    y1 = boxes[:, 1] + height * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side, boxes[:, 4]], dim=1)


def _regressed(boxes: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Boxes moved by a net's regression, in units of the inclusive box size (the reference's `bbreg`)."""
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    size = torch.stack([width, height, width, height], dim=1)
    return torch.cat([boxes[:, :4] + shifts[:, :4] * size, boxes[:, 4:]], dim=1)


def _nms_min(boxes: torch.Tensor, owners: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS whose overlap is intersection over the *smaller* box (MTCNN's last stage); torchvision has only IoU.

    Few boxes reach this point (a handful per face), so a greedy pass over each image is cheap.
    """
    keep: list[int] = []
    data = boxes.cpu().numpy().astype(np.float64)
    owner = owners.cpu().numpy()
    for image in np.unique(owner):
        idx = np.nonzero(owner == image)[0]
        x1, y1, x2, y2, score = (data[idx, k] for k in range(5))
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        order = np.argsort(score)
        while order.size:
            best, rest = order[-1], order[:-1]
            keep.append(int(idx[best]))
            w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
            h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
            overlap = w * h / np.minimum(area[best], area[rest])
            order = rest[overlap <= threshold]
    return torch.as_tensor(keep, dtype=torch.long, device=boxes.device)


class _SummedAreas:
    """Every image's summed-area table, in one flat tensor so all crops of all images come from one gather.

    Integer sums are exact; 32-bit while 255·H·W fits (every image at the default 1280-pixel detection side).
    """

    def __init__(self, planes: list[torch.Tensor]) -> None:
        sizes = [(plane.shape[0] + 1) * (plane.shape[1] + 1) for plane in planes]
        largest = max(plane.shape[0] * plane.shape[1] for plane in planes)
        dtype = torch.int32 if 255 * largest < 2**31 else torch.int64
        device = planes[0].device
        self.flat = torch.zeros(sum(sizes), 3, dtype=dtype, device=device)
        self.tables = []
        start = 0
        for plane, size in zip(planes, sizes, strict=True):
            table = self.flat[start : start + size].view(plane.shape[0] + 1, plane.shape[1] + 1, 3)
            table[1:, 1:] = plane.cumsum(0, dtype=dtype).cumsum(1, dtype=dtype)
            self.tables.append(table)
            start += size
        self.starts = torch.tensor([0, *sizes[:-1]], device=device).cumsum(0)
        self.widths = torch.tensor([plane.shape[1] for plane in planes], device=device)
        self.heights = torch.tensor([plane.shape[0] for plane in planes], device=device)

    def resized(self, index: int, height: int, width: int) -> torch.Tensor:
        """Image `index` area-resampled to height×width (H×W×3 float): adaptive average pooling's bins, in two
        row/column lookups of the table instead of a pass over every source pixel per pyramid level."""
        table = self.tables[index]
        rows_start, rows_end = _bins(table.shape[0] - 1, height, table.device)
        cols_start, cols_end = _bins(table.shape[1] - 1, width, table.device)
        strips = table[rows_end] - table[rows_start]
        sums = strips[:, cols_end] - strips[:, cols_start]
        area = (rows_end - rows_start)[:, None, None] * (cols_end - cols_start)[None, :, None]
        return sums.to(torch.float32) / area

    def crops(self, boxes: torch.Tensor, owners: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """size×size area-resampled crops (N×3×size×size float, channels-last) of the boxes clipped to their
        images, and which boxes had pixels to crop.

        The clipping and the source rows/columns of each output pixel are the reference's: integer box
        coordinates (truncated) clipped to [1, side], then adaptive pooling's floor/ceil bins.
        """
        corners = boxes[:, :4].trunc().long()
        x0 = corners[:, 0].clamp(min=1) - 1
        y0 = corners[:, 1].clamp(min=1) - 1
        x1 = torch.minimum(corners[:, 2], self.widths[owners])
        y1 = torch.minimum(corners[:, 3], self.heights[owners])
        usable = (x1 > x0) & (y1 > y0)
        x0, y0, x1, y1, owners = x0[usable], y0[usable], x1[usable], y1[usable], owners[usable]
        steps = torch.arange(size + 1, device=boxes.device)
        rows_h, cols_w = (y1 - y0)[:, None], (x1 - x0)[:, None]
        row_start = y0[:, None] + steps[None, :size] * rows_h // size
        row_end = y0[:, None] + (steps[None, 1:] * rows_h + size - 1) // size
        col_start = (x0[:, None] + steps[None, :size] * cols_w // size)[:, None, :]
        col_end = (x0[:, None] + (steps[None, 1:] * cols_w + size - 1) // size)[:, None, :]
        stride = (self.widths[owners] + 1)[:, None]
        base = self.starts[owners][:, None]
        top = (base + row_start * stride)[:, :, None]
        bottom = (base + row_end * stride)[:, :, None]
        corners_at = torch.stack([bottom + col_end, top + col_end, bottom + col_start, top + col_start])
        corner_sums = self.flat.index_select(0, corners_at.view(-1)).view(*corners_at.shape, 3)
        total = corner_sums[0] - corner_sums[1] - corner_sums[2] + corner_sums[3]
        area = ((row_end - row_start)[:, :, None] * (col_end - col_start))[..., None]
        return (total.to(torch.float32) / area).permute(0, 3, 1, 2), usable


def _bins(source: int, target: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive pooling's bin i of `source` pixels into `target`: [floor(i·source/target), ceil((i+1)·source/target))."""
    steps = torch.arange(target + 1, device=device)
    return steps[:-1] * source // target, (steps[1:] * source + target - 1) // target
