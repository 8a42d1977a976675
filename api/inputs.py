"""Images arrive as base64 text (or a data URI) inside JSON; this turns them back into bytes.

Multipart uploads reach the same place: `MultipartToJson` (api/middleware)
re-encodes file parts as base64 before BentoML parses the body, so there is
one schema per endpoint and BentoML's own file handling, which answers some
bad inputs with a 500 and fetches URLs given in form fields, is never used.
"""

from __future__ import annotations

import base64
import binascii
import re

from api.errors import ApiError

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_URLSAFE = str.maketrans("-_", "+/")


def image_bytes(text: str, field: str = "image") -> bytes:
    """Bytes of a base64 image, standard or URL-safe alphabet, padded or not, with or without a data-URI prefix."""
    text = text.strip()
    match = _DATA_URI.match(text)
    if match:
        text = text[match.end() :]
    payload = _WHITESPACE.sub("", text).translate(_URLSAFE)
    if not payload:
        raise ApiError(400, "empty_image", f"{field}: the image is empty.")
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_base64", f"{field}: not valid base64 ({exc}).") from exc
