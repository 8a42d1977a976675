"""The edge middleware, driven through real ASGI calls with httpx (test_edge.py covers them over sockets)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.cross_site import CrossSiteGuard, parse_origins
from api.deadline import DeadlineMiddleware, commit_before_write
from api.middleware import BufferedBody, OverloadMiddleware, UniformErrors


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


@pytest.mark.anyio
async def test_a_pickle_refusal_in_a_list_gets_our_shape():
    async def pickled(request):
        return JSONResponse([{"error": "application/vnd.bentoml+pickle is not allowed"}], status_code=415)

    app = UniformErrors(Starlette(routes=[Route("/p", pickled, methods=["POST"])]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        body = (await client.post("/p")).json()
    assert body["error"]["code"] == "unsupported_media_type" and "pickle" in body["error"]["message"]


async def echo_length(request):
    return JSONResponse({"length": len(await request.body())})


@pytest.mark.anyio
async def test_bodies_arrive_whole_before_the_app_and_slow_ones_get_408():
    app = UniformErrors(BufferedBody(Starlette(routes=[Route("/e", echo_length, methods=["POST"])]), 100, 0.3))

    async def trickle():
        yield b"x"
        await asyncio.sleep(5)
        yield b"y"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.post("/e", content=b"a" * 100)).json() == {"length": 100}
        too_large = await client.post("/e", content=b"a" * 101)
        assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "request_too_large")
        slow = await client.post("/e", content=trickle())
        assert (slow.status_code, slow.json()["error"]["code"]) == (408, "request_timeout")
        assert slow.headers["connection"] == "close"


@pytest.mark.anyio
async def test_deadline_cuts_off_before_a_write_but_not_after_one():
    async def slow_then_write(request):
        await asyncio.sleep(float(request.query_params["before"]))
        commit_before_write()
        await asyncio.sleep(float(request.query_params["after"]))
        return JSONResponse({"stored": True})

    inner = Starlette(routes=[Route("/w", slow_then_write, methods=["POST"])])
    app = DeadlineMiddleware(inner, timeout_s=0.2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        cut = await client.post("/w?before=1&after=0")
        assert (cut.status_code, cut.json()["error"]["code"]) == (504, "timeout")
        committed = await client.post("/w?before=0&after=0.5")
        assert committed.json() == {"stored": True}


@pytest.mark.anyio
async def test_cross_site_requests_and_non_json_bodies_are_refused():
    inner = Starlette(routes=[Route("/e", echo_length, methods=["POST"])])
    app = CrossSiteGuard(inner, parse_origins("https://app.example/, http://b.example"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc:3000") as client:
        cases = [
            ({"json": {}}, 200),
            ({}, 200),
            ({"json": {}, "headers": {"origin": "http://svc:3000"}}, 200),
            ({"json": {}, "headers": {"origin": "HTTPS://APP.EXAMPLE"}}, 200),
            ({"json": {}, "headers": {"origin": "http://evil.example"}}, 403),
            ({"json": {}, "headers": {"origin": "null"}}, 403),
            ({"files": {"f": ("a", b"b")}, "headers": {"origin": "http://evil.example"}}, 403),
            ({"files": {"f": ("a", b"b")}}, 200),
            ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 415),
            ({"data": {"a": "b"}}, 415),
            ({"content": b"{}", "headers": {"content-type": "application/json; charset=utf-8"}}, 200),
        ]
        for kwargs, status in cases:
            assert (await client.post("/e", **kwargs)).status_code == status, kwargs


@pytest.fixture
def anyio_backend():
    return "asyncio"
