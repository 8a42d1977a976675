"""The rules every id, name and metadata object must follow, written once for the request models and the gallery.

Each check returns the value to use from then on: ids are normalised (NFC),
so the checked value, not the one received, is what the gallery stores and
what callers must pass on. A broken rule is an `InvalidInput` whose `code`
is the stable error code clients see, whichever endpoint or batch item it
came from. Only the standard library is imported: the client uses these too.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from faceserve.limits import MAX_ID_LENGTH, MAX_METADATA_DEPTH, MAX_METADATA_VALUES, MAX_NAME_LENGTH

# "*" means "every directory" in an API key's scope, so no id may contain it; "." and ".." read as paths.
RESERVED_IDS = frozenset({".", ".."})


class InvalidInput(ValueError):
    """A caller error the API answers with 400; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_identifier(kind: str, value: object) -> str:
    """The one rule for directory, person_id and face_id; returns the NFC form, which is the id from then on.

    Allowed: 1-128 characters after NFC normalisation, no leading or trailing
    space, no `*` anywhere, not `.` or `..`, and no character of the Unicode
    categories C* (control, format, surrogate, private use, unassigned) or Z*
    (separators: line and paragraph separators, non-breaking and other
    spaces) except the plain space U+0020 between other characters. Two
    spellings of one name (NFC and NFD "é") are then one id, and no id can
    hide a line break or an invisible character in a log or a key file.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"invalid_{kind}", f"{kind} must be a non-empty string.")
    value = unicodedata.normalize("NFC", value)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(f"invalid_{kind}", f"{kind} is longer than {MAX_ID_LENGTH} characters.")
    if value != value.strip(" ") or value in RESERVED_IDS or "*" in value:
        raise InvalidInput(
            f"invalid_{kind}", f"{kind} must not be '.' or '..', contain '*', or start or end with a space."
        )
    if any(unicodedata.category(c)[0] in "CZ" and c != " " for c in value):
        raise InvalidInput(
            f"invalid_{kind}", f"{kind} must not contain control, format or separator characters other than a space."
        )
    return value


def check_directory(value: object) -> str:
    return check_identifier("directory", value)


def check_person_id(value: object) -> str:
    return check_identifier("person_id", value)


def check_face_id(value: object) -> str:
    return check_identifier("face_id", value)


def check_name(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_NAME_LENGTH
        or any(unicodedata.category(c) == "Cc" for c in value)
    ):
        raise InvalidInput(
            "invalid_name", f"name must be at most {MAX_NAME_LENGTH} characters without control characters."
        )
    return value


def _metadata_shape_error(value: dict[str, Any]) -> str | None:
    """Why `value` is not small, plain JSON, or None; walked without recursion so no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    values = 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_METADATA_DEPTH:
                return f"metadata nests deeper than {MAX_METADATA_DEPTH} levels"
            if isinstance(item, dict) and not all(isinstance(k, str) for k in item):
                return "metadata keys must be strings"
            children = list(item.values()) if isinstance(item, dict) else item
            values += len(children)
            if values > MAX_METADATA_VALUES:
                return f"metadata holds more than {MAX_METADATA_VALUES} values"
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            return "metadata numbers must be finite"
        elif item is not None and not isinstance(item, (str, int, float)):
            return f"metadata values must be JSON, not {type(item).__name__}"
    return None


def check_metadata_shape(value: object) -> dict[str, Any] | None:
    """A JSON object of at most MAX_METADATA_DEPTH levels and MAX_METADATA_VALUES values (None: not given).

    Its size in bytes is the gallery's setting, so `check_metadata` checks that where the setting is known.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("invalid_metadata", "metadata must be a JSON object.")
    problem = _metadata_shape_error(value)
    if problem:
        raise InvalidInput("invalid_metadata", f"{problem}.")
    return value


def check_metadata(value: object, max_bytes: int) -> dict[str, Any]:
    """`check_metadata_shape`, and at most `max_bytes` of JSON; no metadata is an empty object."""
    checked = check_metadata_shape(value)
    if checked is None:
        return {}
    size = len(encode_metadata(checked).encode())
    if size > max_bytes:
        raise InvalidInput("metadata_too_large", f"metadata is {size} bytes of JSON; the limit is {max_bytes}.")
    return checked


def encode_metadata(value: dict[str, Any]) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
