"""API keys, each scoped to directories and to read or write.

Keys are random tokens (`scripts/make_api_key.py` makes them); the service
only ever holds their SHA-256, so a leaked key file does not leak keys. A
plain hash suffices because the tokens carry 256 bits of entropy: there is
nothing to brute-force. Keys come from a JSON file (FACESERVE_API_KEYS_FILE)
or the same JSON in FACESERVE_API_KEYS:

    [{"name": "door-kiosk", "sha256": "…", "directories": ["office"], "access": "read"},
     {"name": "admin", "sha256": "…", "directories": ["*"], "access": "write"}]

"write" includes "read". Requests send `Authorization: Bearer <key>` or `X-API-Key: <key>`.

The headers are read once, at the edge (`Authorizer.resolve`), into a `Key`;
the request logic only asks that key what the call needs, so it never sees
a header and can be exercised without HTTP.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter

from api.errors import ApiError

Access = Literal["read", "write"]


class ApiKey(BaseModel):
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    directories: list[str] = Field(min_length=1, description='Directories this key may use; "*" for all.')
    access: Access = "read"

    def allows(self, directory: str, access: Access) -> bool:
        if access == "write" and self.access != "write":
            return False
        return "*" in self.directories or directory in self.directories


KEY_LIST = TypeAdapter(list[ApiKey])


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(keys_json: str | None, keys_file: Path | None) -> list[ApiKey]:
    keys: list[ApiKey] = []
    if keys_file is not None:
        keys += KEY_LIST.validate_json(keys_file.read_bytes())
    if keys_json:
        keys += KEY_LIST.validate_json(keys_json)
    return keys


UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Key:
    """The caller's key as the edge resolved it; `refusal` says why there is none.

    A missing or unknown key still resolves, so a request is refused (401)
    only where its endpoint asks for a key, after the request itself was
    found valid: a malformed request is a 400 whoever sends it.
    """

    api_key: ApiKey | None
    refusal: str = ""

    def require_any(self) -> ApiKey:
        """Any valid key: endpoints that touch no directory (detect, embed, verify)."""
        if self.api_key is None:
            raise ApiError(401, "unauthorized", self.refusal, UNAUTHORIZED)
        return self.api_key

    def require(self, directory: str, access: Access) -> None:
        key = self.require_any()
        if not key.allows(directory, access):
            raise ApiError(403, "forbidden", f"The key '{key.name}' has no {access} access to directory '{directory}'.")


# With keys disabled (local development only) every caller holds this key.
OPEN = Key(ApiKey(name="auth-disabled", sha256="0" * 64, directories=["*"], access="write"))


class Authorizer:
    """Resolves each request's key from its headers: 401 without a known key, 403 outside its directories or access."""

    def __init__(self, keys: list[ApiKey], enabled: bool) -> None:
        self.enabled = enabled
        self._keys = {k.sha256: k for k in keys}
        if enabled and not keys:
            raise ValueError(
                "Authentication is on but no API keys are configured: set FACESERVE_API_KEYS_FILE or "
                "FACESERVE_API_KEYS, or FACESERVE_AUTH=disabled for local development only."
            )

    def resolve(self, headers: Mapping[str, str]) -> Key:
        if not self.enabled:
            return OPEN
        token = headers.get("x-api-key") or ""
        scheme, _, value = (headers.get("authorization") or "").partition(" ")
        if not token and scheme.lower() == "bearer":
            token = value.strip()
        if not token:
            return Key(None, "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'.")
        key = self._keys.get(hash_key(token))
        return Key(None, "The API key is not valid.") if key is None else Key(key)


def dump_key(name: str, key: str, directories: list[str], access: Access) -> str:
    return json.dumps(ApiKey(name=name, sha256=hash_key(key), directories=directories, access=access).model_dump())
