"""API keys for the test session's service (started by scripts/local_service.py)."""

from __future__ import annotations

import json
import secrets

# Fresh keys per test session: (directories, access) for each.
KEY_SCOPES = {
    "admin": (["*"], "write"),
    "reader-a": (["tenant-a"], "read"),
    "writer-b": (["tenant-b"], "write"),
    # CompreFace / DeepStack clients: each key is one collection (tests/test_compat_*.py)
    "compat-c": (["compat-c"], "write"),
    "compat-d": (["compat-d"], "write"),
    "compat-c-reader": (["compat-c"], "read"),
}
KEYS = {name: secrets.token_urlsafe(32) for name in KEY_SCOPES}


def keys_json() -> str:
    from api.auth import ApiKey, hash_key

    return json.dumps(
        [
            ApiKey(name=name, sha256=hash_key(KEYS[name]), directories=dirs, access=access).model_dump()
            for name, (dirs, access) in KEY_SCOPES.items()
        ]
    )


def auth(name: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}"}
