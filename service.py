"""faceserve's BentoML services: wiring only, the logic lives in api/, models/ and qdrant/.

Three services: `Detector` (MTCNN) and `Embedder` (the chosen embedding
model) are batchable and adaptive-batched by BentoML; `FaceService` is the
public API, composes them with `bentoml.depends`, and is the single owner of
the gallery (Qdrant Edge allows one process per shard, hence workers=1).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
from starlette.staticfiles import StaticFiles

from api import compat, connections, log_redaction
from api.auth import Authorizer, Key, load_keys
from api.compat import compreface, deepstack
from api.compat.errors import CompatErrors
from api.cross_site import CrossSiteGuard, parse_origins
from api.deadline import DeadlineMiddleware
from api.errors import json_errors
from api.handlers import FaceApi
from api.middleware import BufferedBody, MultipartToJson, OverloadMiddleware, UniformErrors
from api.pixel_budget import PixelBudget
from api.remote import NEVER_REFRESH, remote_call
from api.route_labels import RestorePath
from faceserve import schemas
from models import calibration, cores, registry, store
from models.faces import Detection
from models.imaging import ImageLimits
from qdrant import open_gallery
from settings import get_settings

logger = logging.getLogger("faceserve")
settings = get_settings()
MODEL_ID = store.resolve_model_id(settings.embedding_model)
SPEC = registry.EMBEDDERS[MODEL_ID]
# The model services are internal: no session refresh (see api/remote.py), and no access log line per call
# (the public API logs each request once; the embedder would log every face of it again).
MODEL_SERVICE: dict[str, Any] = {
    "workers": 1,
    "traffic": {"timeout": settings.request_timeout_s},
    "runner_connection": NEVER_REFRESH,
    "logging": {"access": {"enabled": False}},
}


def batching(max_batch_size: int, max_latency_ms: int) -> dict[str, Any]:
    """Adaptive batching, or one call per request when it is switched off (the methods take lists either way)."""
    if not settings.adaptive_batching:
        return {}
    return {"batchable": True, "max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms}


@bentoml.service(**MODEL_SERVICE)
class Detector:
    """MTCNN over batches of decoded images."""

    mtcnn = bentoml.models.BentoModel(registry.MTCNN.tag)

    def __init__(self) -> None:
        # torch is imported by the model processes alone, after its threads are set up: the API process and
        # `bentoml serve`'s own process import this module too and never load it (BENCHMARKS.md, "Memory")
        workers = cores.use_cores(settings.torch_threads)
        logger.info("detector: %d workers", workers)
        from models.detector import DetectorConfig, FaceDetector

        config = DetectorConfig(
            min_face_size=settings.min_face_size,
            min_confidence=settings.min_confidence,
            max_side=settings.detect_max_side,
            device=settings.device,
            workers=workers,
            runtime=settings.runtime,
        )
        self.detector = FaceDetector(config, weights=Path(self.mtcnn.path_of(registry.MTCNN.filename)))

    @bentoml.api(**batching(settings.detect_max_batch, settings.detect_max_latency_ms))
    def detect(self, images: list[np.ndarray]) -> list[Detection]:
        return self.detector.detect(images)


@bentoml.service(**MODEL_SERVICE)
class Embedder:
    """The embedding model over batches of aligned chips from many requests at once."""

    weights = bentoml.models.BentoModel(SPEC.weights.tag)

    def __init__(self) -> None:
        logger.info("embedder: %d torch threads", cores.use_cores(settings.torch_threads))
        from models.embedders import load_embedder  # torch: model processes only, as in Detector

        self.model = load_embedder(MODEL_ID, settings.device, settings.runtime)
        logger.info("embedding model: %s (%d-d), runtime %s", MODEL_ID, SPEC.dim, settings.runtime)

    @bentoml.api(**batching(settings.embed_max_batch, settings.embed_max_latency_ms))
    def embed(self, chips: np.ndarray) -> np.ndarray:
        return self.model.embed(chips)


# BentoML names a root output's media type by generating its JSON schema on every response (a tenth of the
# detector's busy time under load, py-spy): name it once. Internal calls are pickled whatever the header says.
for model_api in (Detector.apis["detect"], Embedder.apis["embed"]):
    model_api.output_spec.media_type = model_api.output_spec.mime_type()

# Every worker (this module is imported by each) closes silent connections and labels metrics by route.
connections.install(settings.header_timeout_s)
log_redaction.install()


# Our DeadlineMiddleware answers request_timeout_s after the body has arrived (BufferedBody); BentoML's own
# timeout, which counts from the header and answers in its own shape, is set past both so it never fires first.
@bentoml.service(
    workers=1,
    traffic={"timeout": settings.request_timeout_s + settings.body_timeout_s + 30},
)
class FaceService:
    """Face detection, enrolment, recognition and verification over HTTP."""

    detector = bentoml.depends(Detector)
    embedder = bentoml.depends(Embedder)

    def __init__(self) -> None:
        # chips are cut here, in the API process: load what cutting needs (dlib's landmark model) before serving
        SPEC.cut(np.zeros((1, 1, 3), dtype=np.uint8), [], SPEC.geometry)
        gallery = open_gallery(
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key,
            path=settings.gallery_path,
            model_id=MODEL_ID,
            dim=SPEC.dim,
            max_metadata_bytes=settings.max_metadata_bytes,
        )
        self.auth = Authorizer(load_keys(settings.api_keys, settings.api_keys_file), settings.auth == "enabled")
        self.api = FaceApi(
            detect=remote_call(self.detector, "detect"),
            embed=remote_call(self.embedder, "embed"),
            spec=SPEC,
            gallery=gallery,
            # decoded at twice the detection side at least, which leaves alignment the pixels it needs
            limits=ImageLimits(
                settings.max_image_bytes, settings.max_image_pixels, reduce_to=2 * settings.detect_max_side
            ),
            max_faces=settings.max_faces,
            max_request_bytes=settings.max_request_bytes,
            # waiting longer than half the request timeout for a decode would leave too little for the models
            decode_budget=PixelBudget(settings.max_decode_pixels, settings.request_timeout_s / 2),
            calibration=calibration.find(MODEL_ID, store.stored_file(SPEC.weights).parent),
            security=settings.security,
            enroll_quality=settings.enroll_quality,
            recognize_quality=settings.recognize_quality,
        )
        logger.info("faceserve: model %s, gallery %s (%s)", MODEL_ID, gallery.backend, gallery.collection)
        if settings.auth == "disabled":
            logger.warning(
                "API KEYS ARE DISABLED (FACESERVE_AUTH=disabled): anyone who can reach this port "
                "can read and delete every directory. Local development only."
            )

    def key(self, ctx: bentoml.Context) -> Key:
        return self.auth.resolve(ctx.request.headers)

    def __is_ready__(self) -> bool:
        return self.api.gallery.ready()

    @bentoml.api
    def info(self) -> schemas.ModelInfo:
        """The embedding model in use, its threshold, and the gallery backend."""
        return self.api.info()

    # Each endpoint takes its request model as the whole body (a positional-only parameter, which BentoML reads
    # as the body itself): BentoML validates it and documents it from faceserve/schemas.py; the key is read
    # from the headers here, once; the request logic in api/handlers.py does the rest.

    @bentoml.api
    @json_errors
    async def detect(self, request: schemas.DetectRequest, /, ctx: bentoml.Context) -> schemas.DetectResponse:
        """Every face in the photo: box, detection score and five landmarks, largest first."""
        return await self.api.detect(self.key(ctx), request)

    @bentoml.api
    @json_errors
    async def embed(self, request: schemas.EmbedRequest, /, ctx: bentoml.Context) -> schemas.EmbedResponse:
        """Every face with its embedding vector, for callers who keep their own store."""
        return await self.api.embed(self.key(ctx), request)

    @bentoml.api
    @json_errors
    async def verify(self, request: schemas.VerifyRequest, /, ctx: bentoml.Context) -> schemas.VerifyResponse:
        """Whether the largest faces of two photos are the same person, decided at a security level."""
        return await self.api.verify(self.key(ctx), request)

    @bentoml.api
    @json_errors
    async def enroll(self, request: schemas.EnrollRequest, /, ctx: bentoml.Context) -> schemas.EnrollResponse:
        """Enrol the face in the photo as `person_id` (the largest face when there are several; 422 when none)."""
        return await self.api.enroll(self.key(ctx), request)

    @bentoml.api(route="/enroll_batch")
    @json_errors
    async def enroll_batch(
        self, request: schemas.EnrollBatchRequest, /, ctx: bentoml.Context
    ) -> schemas.EnrollBatchResponse:
        """Several enrolments in one call, each reported as succeeded or failed on its own."""
        return await self.api.enroll_batch(self.key(ctx), request)

    @bentoml.api
    @json_errors
    async def recognize(self, request: schemas.RecognizeRequest, /, ctx: bentoml.Context) -> schemas.RecognizeResponse:
        """Every face in the photo decided against the directory: match, unknown or ambiguous."""
        return await self.api.recognize(self.key(ctx), request)

    @bentoml.api(route="/persons/list")
    @json_errors
    async def list_persons(self, request: schemas.ListPersonsRequest, /, ctx: bentoml.Context) -> schemas.PersonPage:
        """Persons in a directory with their face counts, by person_id, a page at a time."""
        return await self.api.list_persons(self.key(ctx), request)

    @bentoml.api(route="/persons/get")
    @json_errors
    async def get_person(self, request: schemas.PersonRequest, /, ctx: bentoml.Context) -> schemas.Person:
        """One person with the ids of their enrolled faces (404 when absent)."""
        return await self.api.get_person(self.key(ctx), request)

    @bentoml.api(route="/persons/reject")
    @json_errors
    async def reject(self, request: schemas.RejectRequest, /, ctx: bentoml.Context) -> schemas.RejectResponse:
        """ "Not this person": store the face as a negative example of the person, so faces like it stop matching."""
        return await self.api.reject(self.key(ctx), request)

    @bentoml.api(route="/persons/update")
    @json_errors
    async def update_person(self, request: schemas.UpdatePersonRequest, /, ctx: bentoml.Context) -> schemas.Person:
        """Rename a person and/or replace their metadata (404 when absent)."""
        return await self.api.update_person(self.key(ctx), request)

    @bentoml.api(route="/persons/delete")
    @json_errors
    async def delete_person(self, request: schemas.PersonRequest, /, ctx: bentoml.Context) -> schemas.Deleted:
        """Delete every face of a person; deleting an absent person deletes 0."""
        return await self.api.delete_person(self.key(ctx), request)

    @bentoml.api(route="/faces/delete")
    @json_errors
    async def delete_face(self, request: schemas.FaceRequest, /, ctx: bentoml.Context) -> schemas.Deleted:
        """Delete one enrolled face."""
        return await self.api.delete_face(self.key(ctx), request)

    @bentoml.api(route="/directories/delete")
    @json_errors
    async def delete_directory(self, request: schemas.DirectoryRequest, /, ctx: bentoml.Context) -> schemas.Deleted:
        """Delete every person and face of a directory."""
        return await self.api.delete_directory(self.key(ctx), request)

    @bentoml.api(route="/directories/health")
    @json_errors
    async def directory_health(self, request: schemas.HealthRequest, /, ctx: bentoml.Context) -> schemas.HealthResponse:
        """Mislabelled faces, confusable persons, single-face persons and low-quality faces of a directory."""
        return await self.api.health(self.key(ctx), request)

    @bentoml.api(route="/directories/export")
    @json_errors
    async def export_directory(self, request: schemas.ExportRequest, /, ctx: bentoml.Context) -> schemas.ExportPage:
        """A page of the directory's faces with their vectors, for backup or moving to another gallery."""
        return await self.api.export_faces(self.key(ctx), request)

    @bentoml.api(route="/directories/import")
    @json_errors
    async def import_directory(self, request: schemas.ImportRequest, /, ctx: bentoml.Context) -> schemas.ImportResponse:
        """Faces from an export, under their own face ids: importing the same page twice stores it once."""
        return await self.api.import_faces(self.key(ctx), request)


# The web page (plain HTML/JS, no CDN) at /ui; it calls the same API as any client.
FaceService.mount_asgi_app(StaticFiles(directory=Path(__file__).parent / "api" / "static", html=True), path="/ui")
# CompreFace- and DeepStack-compatible APIs (api/compat), on the same FaceApi, keys, limits and middleware.
FaceService.mount_asgi_app(compreface.create_app(), path=compat.COMPREFACE_PREFIX, name="compreface")
FaceService.mount_asgi_app(deepstack.create_app(), path=compat.DEEPSTACK_PREFIX, name="deepstack")
# Outermost first: the real path back (api/route_labels.py), compat paths' errors in their API's shape, uniform
# error bodies, refuse cross-site requests, read whole bodies (size and time limits), refuse overload, the
# request deadline, then multipart → JSON.
FaceService.add_asgi_middleware(RestorePath)
FaceService.add_asgi_middleware(CompatErrors)
FaceService.add_asgi_middleware(UniformErrors)
FaceService.add_asgi_middleware(
    CrossSiteGuard,
    allowed_origins=parse_origins(settings.allowed_origins),
    form_prefixes=(compat.DEEPSTACK_PREFIX + "/",),
)
FaceService.add_asgi_middleware(BufferedBody, max_bytes=settings.max_request_bytes, timeout_s=settings.body_timeout_s)
FaceService.add_asgi_middleware(OverloadMiddleware, max_concurrency=settings.max_concurrency)
FaceService.add_asgi_middleware(DeadlineMiddleware, timeout_s=settings.request_timeout_s)
FaceService.add_asgi_middleware(
    MultipartToJson, max_part_bytes=settings.max_request_bytes, exclude_prefixes=compat.PREFIXES
)
