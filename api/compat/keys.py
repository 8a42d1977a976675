"""Which directory a compat request works in: the role of a CompreFace "service key" or a DeepStack install.

CompreFace clients hold one key per face collection and never name a
collection, so a faceserve key used here must name exactly one directory;
a key for several directories (or "*") would leave the collection a guess,
and is refused rather than defaulted. With keys disabled (local
development) the key's text itself names the directory, so two CompreFace
"services" on one faceserve stay apart; without any key, DEFAULT_DIRECTORY.
"""

from __future__ import annotations

from api.errors import ApiError

DEFAULT_DIRECTORY = "default"


def directory_of(scope: list[str] | None, token: str | None) -> str:
    """`scope`: the key's directories, or None when keys are disabled; `token`: the key text sent, if any."""
    if scope is None:
        return token.strip() if token and token.strip() else DEFAULT_DIRECTORY
    if len(scope) != 1 or scope[0] == "*":
        shown = ", ".join(scope)
        raise ApiError(
            403,
            "key_not_single_directory",
            f"This key may use several directories ({shown}); CompreFace and DeepStack clients name none, so use "
            "a key bound to exactly one directory (scripts/make_api_key.py NAME --directories DIR --access write).",
        )
    return scope[0]
