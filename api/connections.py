"""Connection limits that uvicorn lacks and BentoML cannot pass, installed in each worker before its server starts.

uvicorn times a connection out only after a response (keep-alive, 5 s by
default); a socket that connects and sends nothing, or half a request
header, is held forever: 250 idle and 50 half-sent connections were all
still open after 70 s. BentoML 1.4.39 starts uvicorn itself and passes no
`http=` protocol option, so `install()` registers a subclass of uvicorn's
h11 protocol (the one uvicorn picks here, httptools not being installed)
under uvicorn's protocol names. The subclass closes a connection that has
not sent a complete request header within `header_timeout_s` of connecting
or of its first byte after a response, and wraps the app in RouteLabels
(see api/route_labels.py), the one place outside BentoML's metrics.
Bodies that trickle in after a complete header are api/middleware.py's
BufferedBody's to time out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.route_labels import RouteLabels


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = RouteLabels(self.app)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_header()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._watch_header()  # bytes of a header, not yet a whole one: the clock runs from the first
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _watch_header(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def install(header_timeout_s: float) -> None:
    GuardedH11Protocol.header_timeout_s = header_timeout_s
    target = f"{__name__}:{GuardedH11Protocol.__name__}"
    HTTP_PROTOCOLS["auto"] = HTTP_PROTOCOLS["h11"] = target
