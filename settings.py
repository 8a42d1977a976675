"""The one settings object, read from the environment (prefix FACESERVE_).

Qdrant's own variables keep their usual names (QDRANT_URL, QDRANT_API_KEY)
because operators already set them for their Qdrant deployments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbeddingModelChoice = Literal["auto", "dlib-resnet", "facenet-vggface2", "facenet-casia"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACESERVE_", extra="ignore")

    embedding_model: EmbeddingModelChoice = Field(
        "auto", description="auto: facenet-vggface2 when imported into the model store, else dlib-resnet."
    )
    device: str = Field("cpu", description="torch device for detection and embedding: cpu, cuda, cuda:0 …")
    torch_threads: int = Field(
        0, ge=0, description="torch threads in each model process; 0: the cores the process may use (cgroup-aware)."
    )
    runtime: Literal["torch", "openvino"] = Field(
        "torch",
        description="What runs the MTCNN nets and the embedder: torch, or openvino (its CPU plugin; device cpu "
        "only), the nets converted from the stored weights at startup. See BENCHMARKS.md, 'OpenVINO runtime'.",
    )

    security: Literal["low", "medium", "high", "strict"] = Field(
        "medium",
        description="Default security level of recognize/verify: the chance a stranger's face is named as someone "
        "at most 5% / 1% / 0.1% / 0.01%.",
    )
    enroll_quality: Literal["none", "low", "medium", "high"] = Field(
        "medium",
        description="Default face-quality level an enrolment must pass (422 low_quality below it); "
        "see BENCHMARKS.md, 'Face quality'.",
    )
    recognize_quality: Literal["none", "low", "medium", "high"] = Field(
        "low", description="Default face-quality level below which recognize never answers match."
    )
    min_face_size: int = Field(20, ge=10, description="Smallest face MTCNN looks for, in detection-image pixels.")
    min_confidence: float = Field(0.9, ge=0.0, le=1.0, description="Faces scored below this are dropped.")
    detect_max_side: int = Field(1280, ge=160, description="Longer photos are downscaled to this side for detection.")

    max_request_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest HTTP request body accepted.")
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest encoded image accepted.")
    max_image_pixels: int = Field(40_000_000, ge=10_000, description="Largest decoded image accepted (width×height).")
    max_decode_pixels: int = Field(
        80_000_000, ge=10_000, description="Image pixels decoded at once per API process; further uploads wait."
    )
    max_faces: int = Field(100, ge=1, description="Most faces returned or processed per image.")
    max_metadata_bytes: int = Field(4096, ge=0, description="Largest JSON metadata stored per person.")

    request_timeout_s: int = Field(60, ge=1, description="Per-request timeout of every service.")
    max_concurrency: int = Field(
        64, ge=1, description="Requests in flight (bodies fully received) before the API answers 429 with Retry-After."
    )
    body_timeout_s: float = Field(
        20, gt=0, description="Longest a request body may take to arrive before the API answers 408."
    )
    header_timeout_s: float = Field(
        10, gt=0, description="Longest a connection may stay open without sending a complete request header."
    )
    allowed_origins: str = Field(
        "",
        description="Comma-separated browser origins (https://app.example) allowed besides the service's own.",
    )
    # Latency bounds are ~10x the slowest batch scripts/bench_models.py measured (BENCHMARKS.md, "Bare models"),
    # so queued requests within max_concurrency are never shed with 503.
    adaptive_batching: bool = Field(
        True, description="Batch concurrent requests on the detector and embedder; off only to measure what it buys."
    )
    detect_max_batch: int = Field(8, ge=2, description="Largest adaptive batch of images the detector takes.")
    detect_max_latency_ms: int = Field(20000, ge=100, description="Longest a detection request may queue and run.")
    embed_max_batch: int = Field(32, ge=2, description="Largest adaptive batch of face chips the embedder runs.")
    embed_max_latency_ms: int = Field(10000, ge=100, description="Longest an embedding request may queue and run.")

    auth: Literal["enabled", "disabled"] = Field(
        "enabled", description="API keys are required unless this is 'disabled' (local development only)."
    )
    api_keys_file: Path | None = Field(None, description="JSON list of hashed, directory-scoped API keys.")
    api_keys: str | None = Field(None, description="The same JSON as api_keys_file, inline.")

    gallery_path: Path = Field(Path("var/gallery"), description="Qdrant Edge data folder when QDRANT_URL is unset.")
    qdrant_url: str | None = Field(
        None,
        validation_alias=AliasChoices("QDRANT_URL", "FACESERVE_QDRANT_URL"),
        description="Qdrant server or cluster URL; unset uses the embedded Qdrant Edge gallery.",
    )
    qdrant_api_key: str | None = Field(
        None, validation_alias=AliasChoices("QDRANT_API_KEY", "FACESERVE_QDRANT_API_KEY")
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
