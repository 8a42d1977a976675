"""ASGI middleware for what BentoML leaves open: whole bodies first, size limits, multipart uploads, Retry-After."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from faceserve import schemas


async def _answer(send: Send, error: ApiError) -> None:
    for message in error.asgi_messages():
        await send(message)


class BufferedBody:
    """Read the whole body before anything behind this sees the request: 413 over `max_bytes`, 408 past `timeout_s`.

    Everything behind it (the overload limit above all) then only ever sees
    requests that have fully arrived, so slow senders cannot hold the
    concurrency slots that finished requests need. Over the limit is decided
    from Content-Length when sent, else while the body streams in, so a
    chunked upload is cut off at the limit instead of buffered whole. A 408
    closes the connection: a client that trickles its body is not kept.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _answer(send, self._too_large())
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout_s)
        except TimeoutError:
            message = f"The request body did not arrive within {self.timeout_s:g} s."
            return await _answer(send, ApiError(408, "request_timeout", message, {"Connection": "close"}))
        except _TooLarge:
            return await _answer(send, self._too_large())
        if body is None:
            return  # the client went away; there is no one to answer
        await self.app(scope, replaying(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return ApiError(413, "request_too_large", f"The request body is over the limit of {self.max_bytes} bytes.")


class _TooLarge(Exception):
    pass


class OverloadMiddleware:
    """429 with Retry-After once `max_concurrency` requests are in flight.

    BentoML's own max_concurrency answers 429 from outside every user
    middleware, without Retry-After, and counts requests whose bodies are
    still arriving; this one sits behind BufferedBody, so only requests that
    have fully arrived take a slot, and clients are told when to come back.
    Probes and metrics are never refused.
    """

    EXEMPT = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp, max_concurrency: int, retry_after_s: int = 1) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.retry_after = str(retry_after_s)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_concurrency:
            message = "Too many requests in flight; retry later."
            return await _answer(send, ApiError(429, "overloaded", message, {"Retry-After": self.retry_after}))
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


# BentoML's own error bodies are {"error": "<text>"} (or that object in a list); they get a code from their status.
_CODES = {
    400: "invalid_request",
    404: "not_found",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "overloaded",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


class UniformErrors:
    """Give every error the same JSON shape, {"error": {"code", "message"}}, and 503s a Retry-After.

    Our handlers already answer that way; BentoML's request validation (400,
    coded by the field that broke its rule, with pydantic's "detail" list kept
    alongside), its overload 503s and its refusal
    of pickled bodies (415, the error object inside a list) do not.
    """

    def __init__(self, app: ASGIApp, retry_after_s: int = 1) -> None:
        self.app = app
        self.retry_after = str(retry_after_s).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        await rewrite_errors(self.app, scope, receive, send, self._rewritten)

    def _rewritten(self, start: Message, body: bytes) -> tuple[Message, bytes]:
        status = start["status"]
        headers = list(start.get("headers", []))
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            rewritten = {"code": _CODES.get(status, "error"), "message": data["error"]}
            if "detail" in data:
                rewritten = {**_validation_error(data["detail"], rewritten), "detail": data["detail"]}
            body = json.dumps({"error": rewritten}).encode()
        if status in (429, 503) and not any(k.lower() == b"retry-after" for k, _ in headers):
            headers.append((b"retry-after", self.retry_after))
        return {**start, "headers": headers}, body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app `body` whole, once, then passes on whatever the client sends next
    (a disconnect): how a middleware that read the body gives it back."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


Rewrite = Callable[[Message, bytes], tuple[Message, bytes]]


async def rewrite_errors(app: ASGIApp, scope: Scope, receive: Receive, send: Send, rewrite: Rewrite) -> None:
    """Run `app`, holding back any error response (status >= 400) whole so `rewrite` can reshape it.

    Successful responses stream through untouched; an error body is small, so buffering it costs nothing.
    """
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
            head, body = rewrite(start, b"".join(chunks))
            headers = [(k, v) for k, v in head.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**head, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    await app(scope, receive, capture)


def _validation_error(detail: object, fallback: dict[str, str]) -> dict[str, str]:
    """A request model refused the body: the broken field's own code (faceserve/schemas.py), not the status's."""
    if not isinstance(detail, list) or not detail:
        return fallback
    try:
        return schemas.request_error(detail).model_dump()
    except (TypeError, KeyError):
        return fallback


# The form fields our endpoints declare as JSON objects or lists; every other text part stays a string,
# so `person_id=[bob]` is an id, not a list.
JSON_FORM_FIELDS = frozenset({"metadata", "items", "faces"})


class MultipartToJson:
    """Re-encode multipart/form-data requests as the JSON body our endpoints declare.

    File parts become base64 strings, text parts stay strings (pydantic's
    lax mode reads "0.5" as a float), and the fields in JSON_FORM_FIELDS are
    parsed as JSON. A malformed form is a 400 here, with our error shape,
    instead of a 500 inside BentoML.
    """

    def __init__(self, app: ASGIApp, max_part_bytes: int, exclude_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_part_bytes = max_part_bytes
        # mounted apps that read their own forms (api/compat: CompreFace and DeepStack uploads)
        self.exclude_prefixes = exclude_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        if not headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data"):
            return await self.app(scope, receive, send)
        if self.exclude_prefixes and scope["path"].startswith(self.exclude_prefixes):
            return await self.app(scope, receive, send)
        try:
            fields = await self._fields(Request(scope, receive))
        except _BadForm as exc:
            return await _answer(send, ApiError(400, exc.code, str(exc)))
        body = json.dumps(fields).encode()
        rest = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        scope = {
            **scope,
            "headers": [*rest, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        await self.app(scope, replaying(body, receive), send)

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
                elif name in JSON_FORM_FIELDS:
                    fields[name] = _parse_json_field(name, value)
                else:
                    fields[name] = value
        finally:
            await form.close()
        return fields


def _parse_json_field(name: str, value: str) -> object:
    """JSON too deeply nested for the parser (RecursionError) is as much the client's mistake as broken JSON."""
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        code = "invalid_metadata" if name == "metadata" else "invalid_multipart"
        reason = "nested too deeply" if isinstance(exc, RecursionError) else f"not valid JSON: {exc}"
        raise _BadForm(f"Field '{name}' is {reason}.", code) from None


class _BadForm(Exception):
    def __init__(self, message: str, code: str = "invalid_multipart") -> None:
        super().__init__(message)
        self.code = code
