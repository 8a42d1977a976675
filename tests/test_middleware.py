"""Overload and error-shape middleware, driven through real ASGI calls with httpx."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.middleware import OverloadMiddleware, UniformErrors


def app_with(release: asyncio.Event) -> Starlette:
    async def slow(request):
        await release.wait()
        return JSONResponse({"ok": True})

    async def shed(request):
        return JSONResponse({"error": "process is overloaded"}, status_code=503)

    async def invalid(request):
        return JSONResponse({"error": "1 validation error", "detail": [{"loc": ["image"]}]}, status_code=400)

    return Starlette(
        routes=[
            Route(p, f, methods=["GET", "POST"])
            for p, f in (("/slow", slow), ("/shed", shed), ("/invalid", invalid), ("/readyz", slow))
        ]
    )


@pytest.mark.anyio
async def test_requests_over_max_concurrency_get_429_with_retry_after():
    release = asyncio.Event()
    app = UniformErrors(OverloadMiddleware(app_with(release), max_concurrency=2, retry_after_s=3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        in_flight = [asyncio.create_task(client.post("/slow")) for _ in range(2)]
        await asyncio.sleep(0.05)
        refused = await client.post("/slow")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
        assert refused.json()["error"]["code"] == "overloaded"
        probe = asyncio.create_task(client.get("/readyz"))  # probes are never refused
        await asyncio.sleep(0.05)
        release.set()
        assert [r.status_code for r in await asyncio.gather(*in_flight, probe)] == [200, 200, 200]
        assert (await client.post("/slow")).status_code == 200  # capacity is given back


@pytest.mark.anyio
async def test_bentoml_style_errors_get_our_shape_and_503_a_retry_after():
    app = UniformErrors(app_with(asyncio.Event()), retry_after_s=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        shed = await client.post("/shed")
        assert shed.status_code == 503 and shed.headers["retry-after"] == "2"
        assert shed.json() == {"error": {"code": "unavailable", "message": "process is overloaded"}}
        invalid = await client.post("/invalid")
        assert invalid.json()["error"]["code"] == "invalid_request" and invalid.json()["error"]["detail"]
        assert int(invalid.headers["content-length"]) == len(invalid.content)


@pytest.fixture
def anyio_backend():
    return "asyncio"
