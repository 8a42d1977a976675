"""The request deadline, enforced so that a 504 never hides a stored enrolment.

BentoML's own timeout cancels the handler wherever it is, so an enrolment
whose gallery write had already started answered 504 and was stored anyway.
Here a handler calls `commit_before_write()` right before its gallery write:
past the deadline that raises 504 `timeout` and nothing is written; before
it, the request is marked committed and the deadline no longer cuts it off,
so it finishes and answers what it did. A 504 from this middleware therefore
means the write never began.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError

EXEMPT = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})


@dataclass
class _Deadline:
    expires_at: float
    committed: bool = False


_current: ContextVar[_Deadline | None] = ContextVar("faceserve_deadline", default=None)


def timeout_error() -> ApiError:
    return ApiError(504, "timeout", "The request did not finish in time; nothing was stored by it. Retry later.")


def commit_before_write() -> None:
    """Refuse the write once the deadline has passed, else promise to finish it (see the module docstring)."""
    deadline = _current.get()
    if deadline is None:
        return
    if time.monotonic() >= deadline.expires_at:
        raise timeout_error()
    deadline.committed = True


class DeadlineMiddleware:
    """504 `timeout` in our error shape once `timeout_s` has passed, unless the request committed to a write."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            return await self.app(scope, receive, send)
        deadline = _Deadline(time.monotonic() + self.timeout_s)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        token = _current.set(deadline)
        try:
            task = asyncio.ensure_future(self.app(scope, receive, tracking_send))  # copies the context: sees deadline
        finally:
            _current.reset(token)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        # Nothing else runs between this check and cancel(): an uncommitted handler is cancelled before its write.
        if done or deadline.committed or started:
            return await task
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for message in timeout_error().asgi_messages():
            await send(message)
