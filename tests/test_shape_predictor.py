"""Our numpy ports of dlib's 5-point shape predictor and face chip against dlib itself, on real photos.

The service cannot run dlib, so these are what prove that `models.dlib_chip`
cuts the chips dlib-resnet was trained on, rather than something close to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.dlib_chip import chips_in_rects, dlib_chips, extract_chip, face_chip_details, mtcnn_rect, pyramid_down
from models.dlib_format import packaged_weights
from models.dlib_resnet import DlibResNet
from models.shape_predictor import ShapePredictor, parse, predictor_path
from scripts.dlib_reference import DlibReference

PHOTOS = (
    *(f"dlib/examples/johns/{person}" for person in ("John_Salley", "John_Savage", "John_Simm")),
    "face_recognition/examples/knn_examples/train/obama/obama.jpg",
    "face_recognition/examples/knn_examples/train/biden/biden2.jpg",
    "face_recognition/examples/knn_examples/train/kit_harington/john2.jpeg",
    "face_recognition/examples/knn_examples/train/rose_leslie/img2.jpg",
    "facenet-pytorch/data/multiface.jpg",
)
# dlib returns integer landmarks, rounded half up from the same float32 cascade we run: equal, not close.
LANDMARK_TOLERANCE_PX = 0
# Chips: the chip→image affine comes from our closed-form solve, dlib's from an SVD pseudo-inverse; the
# ~1e-13 px difference flips a truncated uint8 by 1 where a bilinear value sits on an integer. Measured on
# these faces: at most 8 of 67,500 values off, by 1 (mean 1.2e-4).
CHIP_MEAN_ABS = 0.01
CHIP_MAX_ABS = 1
# Distance between unit embeddings of our chip and dlib's: measured at most 6.3e-6 on these 61 faces.
EMBEDDING_DISTANCE = 0.01


@dataclass(frozen=True)
class Face:
    name: str
    image: np.ndarray
    rect: tuple[int, int, int, int]
    parts: np.ndarray
    """dlib's own landmarks for rect, int (5, 2)."""
    chip: np.ndarray
    """dlib.get_face_chip(image, shape, 150, 0.25)."""


def _photos(faces_dir: Path) -> list[Path]:
    found = []
    for entry in PHOTOS:
        path = faces_dir / entry
        found.extend(sorted(path.glob("*.jpg"))[:3] if path.is_dir() else [path])
    return found


def _extra_rects(image: np.ndarray, rect: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """Rectangles no detector would give: shifted, enlarged, and hanging off the image's top-left corner,
    so features land in other pixels and outside the image (where dlib reads 0)."""
    left, top, right, bottom = rect
    w, h = right - left, bottom - top
    return [
        (left + w // 7, top - h // 9, right + w // 7, bottom - h // 9),
        (left - w // 4, top - h // 4, right + w // 4, bottom + h // 3),
        (-w // 2, -h // 2, w // 2, h // 2),
    ]


@pytest.fixture(scope="module")
def faces(faces_dir: Path, dlib_reference: DlibReference) -> list[Face]:
    import dlib

    found = []
    for path in _photos(faces_dir):
        image = np.asarray(Image.open(path).convert("RGB"))
        detections = list(dlib_reference.detector(image, 1))
        assert detections, f"dlib found no face in {path}"
        for i, det in enumerate(detections):
            base = (det.left(), det.top(), det.right(), det.bottom())
            for j, rect in enumerate([base] + (_extra_rects(image, base) if i == 0 else [])):
                shape = dlib_reference.shape_predictor(image, dlib.rectangle(*rect))
                parts = np.array([(p.x, p.y) for p in shape.parts()])
                chip = np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))
                found.append(Face(f"{path.name}#{i}.{j}", image, rect, parts, chip))
    return found


@pytest.fixture(scope="module")
def predictor() -> ShapePredictor:
    return ShapePredictor.from_file()


def test_landmarks_match_dlib(faces: list[Face], predictor: ShapePredictor) -> None:
    assert len(faces) >= 40
    wrong = []
    for face in faces:
        ours = predictor(face.image, face.rect)
        if np.abs(ours - face.parts).max() > LANDMARK_TOLERANCE_PX:
            wrong.append(f"{face.name} {face.rect}: ours {ours.tolist()} dlib {face.parts.tolist()}")
        # The unrounded landmarks are what dlib rounds: within half a pixel of its integer points.
        assert np.abs(predictor.landmarks(face.image, face.rect) - face.parts).max() <= 0.5 + 1e-6
    assert not wrong, "\n".join(wrong)


def test_landmarks_move_with_the_face(faces: list[Face], predictor: ShapePredictor) -> None:
    """Not a constant mean shape: a face shifted in the image moves its landmarks by the same amount."""
    face = next(f for f in faces if f.name.startswith("obama"))
    shifted = np.zeros_like(face.image)
    shifted[:, 40:] = face.image[:, :-40]
    rect = (face.rect[0] + 40, face.rect[1], face.rect[2] + 40, face.rect[3])
    assert np.array_equal(predictor(shifted, rect), face.parts + [40, 0])


def test_chips_match_dlib(faces: list[Face]) -> None:
    worst_mean, worst_max = 0.0, 0
    for face in faces:
        ours = extract_chip(face.image, face_chip_details(face.parts))
        assert ours.shape == face.chip.shape == (150, 150, 3) and ours.dtype == np.uint8
        diff = np.abs(ours.astype(np.int16) - face.chip)
        worst_mean, worst_max = max(worst_mean, float(diff.mean())), max(worst_max, int(diff.max()))
    assert worst_mean <= CHIP_MEAN_ABS and worst_max <= CHIP_MAX_ABS, (worst_mean, worst_max)


def test_large_faces_are_cut_from_the_pyramid(faces: list[Face]) -> None:
    """test_chips_match_dlib covers dlib's pyramid: some chip rectangles are over twice the chip's width,
    so dlib samples them from pyramid_down<2> levels rather than the photo."""
    widths = [face_chip_details(face.parts).rect[2] - face_chip_details(face.parts).rect[0] for face in faces]
    assert max(widths) > 2 * 150 + 10


def test_pyramid_down_matches_dlib(faces: list[Face]) -> None:
    import dlib

    image = faces[0].image[:97, :131]
    expected = np.asarray(dlib.pyramid_down(2)(np.ascontiguousarray(image)))
    assert np.array_equal(pyramid_down(image), expected)


def test_chips_in_rects_runs_predictor_and_chip(faces: list[Face], predictor: ShapePredictor) -> None:
    some = [f for f in faces if f.name.endswith(".0")][:5]
    for face in some:
        chips = chips_in_rects(face.image, [face.rect, face.rect], predictor)
        assert chips.shape == (2, 150, 150, 3)
        assert np.abs(chips[0].astype(np.int16) - face.chip).max() <= CHIP_MAX_ABS
    assert chips_in_rects(some[0].image, [], predictor).shape == (0, 150, 150, 3)


def test_mtcnn_boxes_map_to_hog_like_squares(faces: list[Face], predictor: ShapePredictor) -> None:
    """A box shaped like MTCNN's (taller, reaching the forehead) is mapped back near dlib's HOG square,
    and dlib_chips cuts the chip from that square."""
    face = next(f for f in faces if f.name.startswith("obama") and f.name.endswith(".0"))
    left, top, right, bottom = face.rect
    side = right - left + 1
    mtcnn_like = (left + 0.0, top - 0.16 * side, right + 1.0, bottom + 1 + 0.04 * side)  # 1.2 × taller
    rect = mtcnn_rect(mtcnn_like)
    assert max(abs(a - b) for a, b in zip(rect, face.rect, strict=True)) <= 0.03 * side
    chips = dlib_chips(face.image, [mtcnn_like], predictor)
    assert np.array_equal(chips[0], chips_in_rects(face.image, [rect], predictor)[0])


def test_embeddings_of_our_chips_match_dlib_chips(faces: list[Face], predictor: ShapePredictor) -> None:
    """End to end: our landmarks and chip, embedded by the service's dlib-resnet port, vs dlib's chip."""
    net = DlibResNet.from_file(packaged_weights()).eval()
    ours = np.stack([chips_in_rects(f.image, [f.rect], predictor)[0] for f in faces])
    theirs = np.stack([f.chip for f in faces])
    with torch.inference_mode():
        vectors = [
            torch.nn.functional.normalize(net(net.preprocess(torch.from_numpy(chips))), dim=1).numpy()
            for chips in (ours, theirs)
        ]
    distances = np.linalg.norm(vectors[0] - vectors[1], axis=1)
    assert distances.max() < EMBEDDING_DISTANCE, f"{faces[distances.argmax()].name}: {distances.max():.2e}"


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data + b"\x00",
        lambda data: b"\x01\x02" + data[2:],  # shape_predictor version 2
    ],
    ids=["truncated", "trailing", "version"],
)
def test_corrupted_model_is_refused(corrupt) -> None:
    with pytest.raises(ValueError, match="malformed dlib model at byte"):
        parse(corrupt(predictor_path().read_bytes()))
