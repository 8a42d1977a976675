"""Request bodies as CompreFace and DeepStack clients send them: multipart files, base64 JSON, or form fields.

Images come back as base64 text, the form FaceApi decodes (api/inputs.py,
models/imaging.py), so a compat upload meets exactly the decoding and
limits a native one does. MultipartToJson leaves these paths alone, so the
form is read here, with the same part limits.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile
from starlette.requests import Request

from api.errors import ApiError

MAX_FILES = 8
MAX_FIELDS = 64


@dataclass
class Body:
    files: dict[str, str] = field(default_factory=dict)
    """Each image part (or base64 JSON field) by name, as base64 text; form order is kept."""
    fields: dict[str, str] = field(default_factory=dict)
    json: object = None
    """A JSON body that is not an object (CompreFace's delete-by-ids list)."""

    def image(self, name: str) -> str:
        value = self.files.get(name)
        if value is None:
            raise ApiError(400, "missing_image", f"{name}: send the image as a multipart file part or base64 JSON.")
        return value


async def read_body(request: Request, max_part_bytes: int, image_fields: tuple[str, ...] = ()) -> Body:
    """`image_fields`: JSON keys that carry base64 images (CompreFace's `file`, `source_image`, `target_image`)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return _json_body(await request.body(), image_fields)
    if media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _form_body(request, max_part_bytes)
    if await request.body():
        raise ApiError(415, "unsupported_media_type", "Send multipart/form-data or application/json.")
    return Body()


def _json_body(raw: bytes, image_fields: tuple[str, ...]) -> Body:
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        return Body(json=data)
    body = Body(json=data)
    for name, value in data.items():
        if not isinstance(value, str):
            continue
        if name in image_fields:
            body.files[name] = value
        else:
            body.fields[name] = value
    return body


async def _form_body(request: Request, max_part_bytes: int) -> Body:
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=max_part_bytes)
    except Exception as exc:  # starlette raises several types for broken forms
        raise ApiError(400, "invalid_multipart", f"The form could not be parsed: {exc}") from exc
    body = Body()
    try:
        for name, value in form.multi_items():
            if name in body.files or name in body.fields:
                raise ApiError(400, "invalid_multipart", f"Field '{name}' was sent more than once.")
            if isinstance(value, UploadFile):
                body.files[name] = base64.b64encode(await value.read()).decode("ascii")
            else:
                body.fields[name] = value
    finally:
        await form.close()
    return body
