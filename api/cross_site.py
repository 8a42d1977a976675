"""Refuse what a foreign web page can make a browser send: other origins, and bodies that need no CORS preflight.

A page on any site may POST text/plain, form-encoded or multipart bodies to
a local service without asking first, and BentoML parsed the first two as
JSON, so with keys disabled any site could delete directories. Here a body
must be JSON (application/json: browsers preflight that cross-site, and we
never grant it) or a multipart upload, and a request whose Origin header is
not the service's own nor allowed by settings is refused, which also covers
multipart.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError

BODY_TYPES = ("application/json", "multipart/form-data")
FORM_TYPE = "application/x-www-form-urlencoded"


def parse_origins(setting: str) -> frozenset[str]:
    """FACESERVE_ALLOWED_ORIGINS: comma-separated origins, compared without a trailing slash, case-insensitively."""
    return frozenset(o.strip().rstrip("/").lower() for o in setting.split(",") if o.strip())


class CrossSiteGuard:
    """403 `forbidden_origin` for foreign origins, 415 `unsupported_media_type` for bodies that are not ours."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str], form_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed_origins = allowed_origins
        # Paths that also take url-encoded forms (DeepStack clients send them): parsed by their own app, never
        # as JSON, and as safe as multipart behind the same Origin check.
        self.form_prefixes = form_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            forms_ok = bool(self.form_prefixes) and scope["path"].startswith(self.form_prefixes)
            error = self._refusal(dict(scope["headers"]), forms_ok)
            if error is not None:
                for message in error.asgi_messages():
                    await send(message)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: dict[bytes, bytes], forms_ok: bool = False) -> ApiError | None:
        origin = headers.get(b"origin")
        if origin is not None and not self._origin_allowed(origin.decode("latin-1"), headers):
            return ApiError(
                403,
                "forbidden_origin",
                "Requests from this web origin are refused; add it to FACESERVE_ALLOWED_ORIGINS to allow it.",
            )
        has_body = b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"
        media_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if has_body and media_type not in BODY_TYPES and not (forms_ok and media_type == FORM_TYPE):
            return ApiError(
                415,
                "unsupported_media_type",
                f"Send the body as application/json, or an upload as multipart/form-data, not '{media_type}'.",
            )
        return None

    def _origin_allowed(self, origin: str, headers: dict[bytes, bytes]) -> bool:
        """Same origin: the Origin's host and port are the Host the request was sent to (any scheme, for proxies)."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.allowed_origins:
            return True
        host = headers.get(b"host", b"").decode("latin-1").lower()
        return bool(host) and urlsplit(origin).netloc == host
