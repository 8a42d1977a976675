"""The openvino runtime (FACESERVE_RUNTIME=openvino) against torch: same faces, same vectors, on real photos.

Both runtimes run the same weights from the model store; OpenVINO's kernels
sum in another order, so answers agree to float32 rounding, not bit for bit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1

from models import store
from models.detector import DetectorConfig, FaceDetector
from models.embedders import Embedder, load_embedder
from models.imaging import ImageError, decode_image
from models.openvino_runtime import compile_net
from models.registry import DLIB_RESNET, FACENET_VGGFACE2, MTCNN, ModelEntry
from scripts.faces_data import FACES2_DIR, FACES_DIR
from settings import Settings

pytestmark = pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"shared photos not found at {FACES_DIR}")

# Measured worst difference of the unit vectors: 2.1e-7 (dlib-resnet, 34 real chips), 7.7e-7 (FaceNet, random weights).
EMBEDDING = 1e-4
# Measured worst difference over all 382 photos of ../shared/faces* at detection size (the same faces in
# each): 0.00018 px, one or two float32 steps at 1280 px (the box arithmetic is float32), and 4e-7 in
# scores; on this test's 49 photos, in original pixels, 0.0002 px. 0.01 px leaves room for other CPUs'
# kernels and for the up to 5.75x upscaling of the largest photos' coordinates.
PIXELS = 0.01
SCORE = 1e-5
PHOTOS = [
    FACES_DIR / "dlib/examples/faces/bald_guys.jpg",
    FACES_DIR / "facenet-pytorch/data/multiface.jpg",
    FACES_DIR / "face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
    FACES_DIR / "face_recognition/tests/test_images/obama.jpg",
]


def sample() -> list[np.ndarray]:
    """Every eighth photo of ../shared/faces* that decodes (49)."""
    paths = sorted(
        path
        for folder in (FACES_DIR, FACES2_DIR)
        for path in folder.rglob("*")
        if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    )
    images = []
    for path in paths[::8]:
        try:
            images.append(decode_image(path.read_bytes()).pixels)
        except ImageError:  # the folders hold deliberately undecodable files too
            continue
    return images


@pytest.fixture(scope="module")
def detectors() -> tuple[FaceDetector, FaceDetector]:
    weights = store.stored_file(MTCNN)
    # two workers, as the service runs on two cores: the nets are called from both at once
    return FaceDetector(weights=weights), FaceDetector(DetectorConfig(workers=2, runtime="openvino"), weights=weights)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [decode_image(path.read_bytes()).pixels for path in PHOTOS]


def chips_of(entry: ModelEntry, detector: FaceDetector, images: list[np.ndarray]) -> np.ndarray:
    """Every face of the photos cut for `entry` as the pipeline cuts it (34 with dlib's cut)."""
    found = detector.detect(images)
    return np.concatenate([entry.cut(image, faces, entry.geometry) for image, faces in zip(images, found, strict=True)])


@pytest.fixture(scope="module")
def dlib_resnets() -> tuple[Embedder, Embedder]:
    return load_embedder("dlib-resnet"), load_embedder("dlib-resnet", runtime="openvino")


def test_dlib_resnet_vectors_match_torch(detectors, images, dlib_resnets):
    chips = chips_of(DLIB_RESNET, detectors[0], images)
    assert len(chips) >= 30
    torch_run, openvino_run = dlib_resnets
    assert not isinstance(openvino_run._net, torch.nn.Module)
    # the whole batch, and batches of other sizes than the one traced
    for batch in (chips, chips[:1], chips[:7]):
        assert np.abs(openvino_run.embed(batch) - torch_run.embed(batch)).max() <= EMBEDDING


def test_threads_embed_at_once(detectors, images, dlib_resnets):
    """The services call their models from a thread pool: concurrent calls each get their own answer."""
    chips = chips_of(DLIB_RESNET, detectors[0], images[1:])
    torch_run, openvino_run = dlib_resnets
    batches = [chips[i : i + 1 + i % 3] for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(openvino_run.embed, batches))
    for batch, answer in zip(batches, answers, strict=True):
        assert np.abs(answer - torch_run.embed(batch)).max() <= EMBEDDING


def test_facenet_with_random_weights_converts_with_parity(detectors, images, tmp_path):
    """FaceNet's weights cannot be had here; its architecture converts all the same, which is what is tested,
    loaded by the registry's own loader from a file of random weights.

    Freshly initialised, the net embeds every face alike (vectors within 0.002 of each other), which would
    hide a conversion that mixed faces up; batch-norm statistics gathered from the chips themselves spread
    them (each at least 0.098 from the first in some component), far beyond the tolerance.
    """
    torch.manual_seed(0)
    weights = tmp_path / FACENET_VGGFACE2.weights.filename
    torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), weights)
    net, preprocess = FACENET_VGGFACE2.load(weights)
    chips = chips_of(FACENET_VGGFACE2, detectors[0], images[1:])
    for layer in net.modules():
        if isinstance(layer, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            layer.momentum = None  # the plain mean over the one batch
    with torch.no_grad():
        net.train()(preprocess(torch.from_numpy(chips)))
    torch_run = Embedder(FACENET_VGGFACE2, net, preprocess)
    openvino_run = Embedder(FACENET_VGGFACE2, net, preprocess, runtime="openvino")
    vectors = torch_run.embed(chips)
    assert np.abs(vectors[1:] - vectors[0]).max(axis=1).min() > 100 * EMBEDDING
    assert np.abs(openvino_run.embed(chips) - vectors).max() <= EMBEDDING
    assert np.abs(openvino_run.embed(chips[:3]) - vectors[:3]).max() <= EMBEDDING


def test_same_faces_as_torch_on_49_photos(detectors):
    """Batches of 8 photos of mixed sizes (as adaptive batching forms them), downscaling and mapping back
    included: the same faces, in the same places."""
    photos = sample()
    assert len(photos) >= 40
    torch_detector, openvino_detector = detectors
    found = 0
    for start in range(0, len(photos), 8):
        batch = photos[start : start + 8]
        for want, have in zip(torch_detector.detect(batch), openvino_detector.detect(batch), strict=True):
            assert want is not None and have is not None and len(want) == len(have)
            for a, b in zip(want, have, strict=True):
                assert np.abs(np.subtract(a.box, b.box)).max() <= PIXELS
                assert np.abs(a.landmark_array - b.landmark_array).max() <= PIXELS
                assert abs(a.score - b.score) <= SCORE
            found += len(want)
    assert found >= 60


def test_an_image_that_fails_fails_alone(detectors, images):
    """Per-item fault isolation (models/isolation) holds on this runtime too: a four-channel array makes
    detection raise, and only its own slot comes back None."""
    openvino_detector = detectors[1]
    bad = np.zeros((100, 100, 4), dtype=np.uint8)
    found = openvino_detector.detect([images[1], bad, images[3]])
    assert found[1] is None and len(found[0]) == 6 and len(found[2]) == 1


def test_the_setting_chooses_the_runtime(monkeypatch):
    monkeypatch.delenv("FACESERVE_RUNTIME", raising=False)
    assert Settings().runtime == "torch"
    monkeypatch.setenv("FACESERVE_RUNTIME", "openvino")
    assert Settings().runtime == "openvino"
    monkeypatch.setenv("FACESERVE_RUNTIME", "onnx")
    with pytest.raises(ValueError):
        Settings()


def test_only_cpu_modules_convert():
    net = torch.nn.Conv2d(3, 4, 3).to("meta")
    with pytest.raises(ValueError, match="CPU only"):
        compile_net(net, torch.zeros(1, 3, 8, 8))
