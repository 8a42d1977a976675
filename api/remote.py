"""Calls from the API service to the batched model services, made safe under load.

BentoML 1.4's inter-service client (`_bentoml_impl/client/proxy2.py`,
SessionManager) replaces its aiohttp session every `max_requests` calls
(default 100) or `max_age` seconds and closes the old one while other
requests are still in flight on it; those fail and the public request
answers 500 (upstream bentoml/BentoML#5540). Two measures, both needed:

- the model services are declared with a `runner_connection` that never
  refreshes (see `NEVER_REFRESH`), which removes the cause;
- a connection that dies anyway (the server closing an idle keep-alive
  connection as the client reuses it) is retried here. Detection and
  embedding are pure functions of their input, so re-sending is always safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

logger = logging.getLogger("faceserve")

NEVER_REFRESH = {"max_requests": 2**62, "max_age": 10.0**12}
RETRIED = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


def remote_call(proxy: Any, endpoint: str, attempts: int = 4, backoff_s: float = 0.05) -> Callable[..., Awaitable[Any]]:
    """An async function calling `endpoint` on a `bentoml.depends` proxy, retrying lost connections."""

    async def call(*args: Any) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return await proxy.to_async.call(endpoint, *args)
            except RETRIED as exc:
                if attempt == attempts:
                    raise
                logger.warning("retrying %s after %r (attempt %d of %d)", endpoint, exc, attempt, attempts)
                await asyncio.sleep(backoff_s * attempt)
        raise AssertionError("unreachable")

    return call
