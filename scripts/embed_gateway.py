"""A public front for the batched Embedder, for scripts/bench_serving.py only.

BentoML accepts pickle bodies only between its own services, and JSON turns
a 150×150 chip into 250 KB of numbers; so the benchmark sends raw chip bytes
(base64) here, and this entry service calls the Embedder exactly as the API
service does: `bentoml.depends`, pickle, adaptive batching, `remote_call`.

    bentoml serve scripts.embed_gateway:EmbedGateway
"""

from __future__ import annotations

import base64

import bentoml
import numpy as np

from api.remote import remote_call
from service import SPEC, Embedder, settings


@bentoml.service(workers=1, traffic={"timeout": settings.request_timeout_s})
class EmbedGateway:
    embedder = bentoml.depends(Embedder)

    def __init__(self) -> None:
        self.embed_remote = remote_call(self.embedder, "embed")

    @bentoml.api
    async def embed(self, chips: str) -> list[list[float]]:
        """`chips`: base64 of N aligned chips, uint8, N×size×size×3, C order."""
        size = SPEC.geometry.size
        array = np.frombuffer(base64.b64decode(chips), dtype=np.uint8).reshape(-1, size, size, 3)
        return (await self.embed_remote(array)).tolist()
