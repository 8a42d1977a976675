"""ASGI middleware for what BentoML leaves open: size limits, multipart uploads, Retry-After."""

from __future__ import annotations

import base64
import json

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _error(
    status: int, code: str, message: str, extra_headers: list[tuple[bytes, bytes]] = ()
) -> tuple[Message, Message]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes`, decided from Content-Length when sent, else while streaming.

    The streaming check matters for chunked uploads: the body is cut off as
    soon as it passes the limit instead of being buffered whole first. The
    413 is sent from here and the app is told the client went away, so
    whatever the app does about that (BentoML answers 500) never reaches
    the client.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send)
        seen = 0
        started = rejected = False

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    if not started:
                        await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    async def _reject(self, send: Send) -> None:
        for message in _error(
            413, "request_too_large", f"The request body is over the limit of {self.max_bytes} bytes."
        ):
            await send(message)


class OverloadMiddleware:
    """429 with Retry-After once `max_concurrency` requests are in flight, before any body is read.

    BentoML's own max_concurrency answers 429 from outside every user
    middleware, without Retry-After; this one replaces it so clients are told
    when to come back. Probes and metrics are never refused.
    """

    EXEMPT = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp, max_concurrency: int, retry_after_s: int = 1) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.retry_after = str(retry_after_s).encode()
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_concurrency:
            extra = [(b"retry-after", self.retry_after)]
            for message in _error(429, "overloaded", "Too many requests in flight; retry later.", extra):
                await send(message)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


# BentoML's own error bodies are {"error": "<text>"}; they get a code from their status.
_CODES = {400: "invalid_request", 404: "not_found", 422: "invalid_request", 500: "internal_error", 503: "unavailable"}


class UniformErrors:
    """Give every error the same JSON shape, {"error": {"code", "message"}}, and 503s a Retry-After.

    Our handlers already answer that way; BentoML's request validation (400,
    with a "detail" list kept alongside) and its overload 503s do not.
    """

    def __init__(self, app: ASGIApp, retry_after_s: int = 1) -> None:
        self.app = app
        self.retry_after = str(retry_after_s).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_rewritten(start, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    async def _send_rewritten(self, start: Message, body: bytes, send: Send) -> None:
        status = start["status"]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            rewritten = {"code": _CODES.get(status, "error"), "message": data["error"]}
            if "detail" in data:
                rewritten["detail"] = data["detail"]
            body = json.dumps({"error": rewritten}).encode()
        if status in (429, 503) and not any(k.lower() == b"retry-after" for k, _ in headers):
            headers.append((b"retry-after", self.retry_after))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class MultipartToJson:
    """Re-encode multipart/form-data requests as the JSON body our endpoints declare.

    File parts become base64 strings, text parts stay strings (pydantic's
    lax mode reads "0.5" as a float), and text that is a JSON object or
    array (metadata, batch items) is parsed. A malformed form is a 400 here,
    with our error shape, instead of a 500 inside BentoML.
    """

    def __init__(self, app: ASGIApp, max_part_bytes: int) -> None:
        self.app = app
        self.max_part_bytes = max_part_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        if not headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data"):
            return await self.app(scope, receive, send)
        try:
            fields = await self._fields(Request(scope, receive))
        except _BadForm as exc:
            for message in _error(400, "invalid_multipart", str(exc)):
                await send(message)
            return
        body = json.dumps(fields).encode()
        rest = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        scope = {
            **scope,
            "headers": [*rest, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        sent = False

        async def json_receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, json_receive, send)

    async def _fields(self, request: Request) -> dict[str, object]:
        try:
            form = await request.form(max_files=8, max_fields=64, max_part_size=self.max_part_bytes)
        except Exception as exc:  # starlette raises several types for broken forms
            raise _BadForm(f"The multipart form could not be parsed: {exc}") from exc
        fields: dict[str, object] = {}
        try:
            for name, value in form.multi_items():
                if name in fields:
                    raise _BadForm(f"Field '{name}' was sent more than once.")
                if isinstance(value, UploadFile):
                    fields[name] = base64.b64encode(await value.read()).decode("ascii")
                elif value.lstrip()[:1] in ("{", "["):
                    try:
                        fields[name] = json.loads(value)
                    except json.JSONDecodeError as exc:
                        raise _BadForm(f"Field '{name}' is not valid JSON: {exc}") from exc
                else:
                    fields[name] = value
        finally:
            await form.close()
        return fields


class _BadForm(Exception):
    pass
