"""Other face services' HTTP APIs (CompreFace, DeepStack / CodeProject.AI) over faceserve's own request logic.

Each API is an ASGI app mounted on FaceService; everything they need from
the request logic goes through `adapter.Backend`, the only module here that
knows FaceApi's and the gallery's signatures.
"""

COMPREFACE_PREFIX = "/api/v1"
DEEPSTACK_PREFIX = "/v1/vision"
PREFIXES = (COMPREFACE_PREFIX + "/", DEEPSTACK_PREFIX + "/")


def is_compat_path(path: str) -> bool:
    return path.startswith(PREFIXES) or path in (COMPREFACE_PREFIX, DEEPSTACK_PREFIX)
