"""API keys, each scoped to directories and to read or write.

Keys are random tokens (`scripts/make_api_key.py` makes them); the service
only ever holds their SHA-256, so a leaked key file does not leak keys. A
plain hash suffices because the tokens carry 256 bits of entropy: there is
nothing to brute-force. Keys come from a JSON file (FACESERVE_API_KEYS_FILE)
or the same JSON in FACESERVE_API_KEYS:

    [{"name": "door-kiosk", "sha256": "…", "directories": ["office"], "access": "read"},
     {"name": "admin", "sha256": "…", "directories": ["*"], "access": "write"}]

"write" includes "read". Requests send `Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
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

    def allows(self, directory: str | None, access: Access) -> bool:
        if access == "write" and self.access != "write":
            return False
        return directory is None or "*" in self.directories or directory in self.directories


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


class Authorizer:
    """Decides every request: 401 without a known key, 403 outside the key's directories or access."""

    def __init__(self, keys: list[ApiKey], enabled: bool) -> None:
        self.enabled = enabled
        self._keys = {k.sha256: k for k in keys}
        if enabled and not keys:
            raise ValueError(
                "Authentication is on but no API keys are configured: set FACESERVE_API_KEYS_FILE or "
                "FACESERVE_API_KEYS, or FACESERVE_AUTH=disabled for local development only."
            )

    def _key(self, headers: Mapping[str, str]) -> ApiKey:
        token = headers.get("x-api-key") or ""
        scheme, _, value = (headers.get("authorization") or "").partition(" ")
        if not token and scheme.lower() == "bearer":
            token = value.strip()
        if not token:
            raise ApiError(
                401,
                "unauthorized",
                "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'.",
                {"WWW-Authenticate": "Bearer"},
            )
        key = self._keys.get(hash_key(token))
        if key is None:
            raise ApiError(401, "unauthorized", "The API key is not valid.", {"WWW-Authenticate": "Bearer"})
        return key

    def check(self, headers: Mapping[str, str], directories: list[str | None], access: Access) -> None:
        """Every directory the request touches must be allowed (None: no directory, any valid key)."""
        if not self.enabled:
            return
        key = self._key(headers)
        for directory in directories:
            if not key.allows(directory, access):
                where = f"directory '{directory}'" if directory else "this endpoint"
                raise ApiError(403, "forbidden", f"The key '{key.name}' has no {access} access to {where}.")


def dump_key(name: str, key: str, directories: list[str], access: Access) -> str:
    return json.dumps(ApiKey(name=name, sha256=hash_key(key), directories=directories, access=access).model_dump())
