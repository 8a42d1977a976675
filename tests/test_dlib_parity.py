"""Our PyTorch port of dlib's face-recognition ResNet against dlib itself, on real photos.

The service never runs dlib, so this is the only place that proves the port
(and our own .dat parser) computes dlib's descriptors rather than something
close to them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.dlib_format import packaged_weights, parse_file
from models.dlib_resnet import DlibResNet
from scripts.dlib_reference import DlibReference

JOHNS = "dlib/examples/johns"
# Large, full-scene photos, unlike the pre-cropped johns: their chips come from real detection and resampling.
SCENE_PHOTOS = (
    "face_recognition/examples/knn_examples/train/obama/obama.jpg",
    "face_recognition/examples/knn_examples/train/biden/biden2.jpg",
    "face_recognition/examples/knn_examples/train/kit_harington/john2.jpeg",
    "face_recognition/examples/knn_examples/train/rose_leslie/img2.jpg",
)
MAX_ABS_DIFF = 1e-5
SAME_PERSON = 0.6  # dlib's documented Euclidean threshold on raw descriptors


@pytest.fixture(scope="module")
def net() -> DlibResNet:
    return DlibResNet.from_file(packaged_weights())


def johns(faces_dir: Path) -> dict[str, list[Path]]:
    return {person.name: sorted(person.glob("*.jpg")) for person in sorted((faces_dir / JOHNS).iterdir())}


def descriptors(net: DlibResNet, chips: list[np.ndarray], memory_format: torch.memory_format) -> np.ndarray:
    """One batched forward pass, the way the service runs the port."""
    model = net.to(memory_format=memory_format)
    with torch.inference_mode():
        x = model.preprocess(torch.from_numpy(np.stack(chips))).contiguous(memory_format=memory_format)
        return model(x).double().numpy()


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_descriptors_match_dlib(
    net: DlibResNet,
    faces_dir: Path,
    dlib_chip: Callable[[Path], np.ndarray],
    dlib_reference: DlibReference,
    memory_format: torch.memory_format,
) -> None:
    photos = [p for paths in johns(faces_dir).values() for p in paths[:3]] + [faces_dir / p for p in SCENE_PHOTOS]
    chips = [dlib_chip(p) for p in photos]
    assert len(chips) >= 10
    expected = np.stack([dlib_reference.descriptor(chip) for chip in chips])

    ours = descriptors(net, chips, memory_format)

    worst = np.abs(ours - expected).max(axis=1)
    assert worst.max() <= MAX_ABS_DIFF, f"worst chip {photos[worst.argmax()]}: {worst.max():.2e}"


def test_same_person_closer_than_threshold(
    net: DlibResNet, faces_dir: Path, dlib_chip: Callable[[Path], np.ndarray]
) -> None:
    """Every pair of the johns is on the right side of 0.6, raw descriptors, as dlib's example promises."""
    people = johns(faces_dir)
    assert len(people) >= 3
    labelled = [(name, path) for name, paths in people.items() for path in paths]
    vectors = descriptors(net, [dlib_chip(path) for _, path in labelled], torch.channels_last)

    wrong = []
    for (i, (a, path_a)), (j, (b, path_b)) in itertools.combinations(enumerate(labelled), 2):
        distance = float(np.linalg.norm(vectors[i] - vectors[j]))
        if (distance < SAME_PERSON) != (a == b):
            wrong.append(f"{path_a.name} ({a}) vs {path_b.name} ({b}): {distance:.3f}")
    assert not wrong, "\n".join(wrong)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _one_byte_short(data: bytes) -> bytes:
    return data[:-1]


def _trailing_byte(data: bytes) -> bytes:
    return data + b"\x00"


def _unknown_layer(data: bytes) -> bytes:
    return data.replace(b"con_4", b"con_9", 1)


def _bad_integer(data: bytes) -> bytes:
    """The input record's first float, mantissa control byte set to a 15-byte integer."""
    at = data.index(b"input_rgb_image_sized") + len("input_rgb_image_sized")
    return data[:at] + b"\x0f" + data[at + 1 :]


@pytest.mark.parametrize("corrupt", [_truncated, _one_byte_short, _trailing_byte, _unknown_layer, _bad_integer])
def test_corrupted_file_is_refused(tmp_path: Path, corrupt: Callable[[bytes], bytes]) -> None:
    broken = tmp_path / "broken.dat"
    broken.write_bytes(corrupt(packaged_weights().read_bytes()))
    with pytest.raises(ValueError, match="malformed dlib model at byte"):
        parse_file(broken)


def test_layers_that_do_not_fit_the_architecture_are_refused() -> None:
    network = parse_file(packaged_weights())
    missing_relu = dataclasses.replace(network, layers=network.layers[:2] + network.layers[3:])
    with pytest.raises(ValueError, match="dlib layer 2: expected Relu"):
        DlibResNet.from_parsed(missing_relu)
