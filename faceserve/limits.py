"""Every fixed limit of a request, defined once: the request models, the gallery and /info all read these.

Plain constants (no imports), so the client, the service and the storage
layer agree without any of them importing another's dependencies.
"""

MAX_ID_LENGTH = 128
"""directory, person_id and face_id, in characters after NFC normalisation."""
MAX_NAME_LENGTH = 256
MAX_REQUEST_ID_LENGTH = 128
MAX_CURSOR_LENGTH = 64

DEFAULT_TOP_K = 10
MAX_TOP_K = 100
"""Nearest faces a recognition considers."""
MAX_SEARCH_LIMIT = 1000
"""Nearest faces one gallery search returns (the gallery's own bound, above MAX_TOP_K)."""

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
"""Persons per /persons/list page."""

MAX_BATCH_ITEMS = 64
"""Items per /enroll_batch call."""
DEFAULT_TRANSFER_PAGE = 256
MAX_TRANSFER_PAGE = 1000
"""Faces per /directories/export page and per /directories/import call."""

# Metadata is a caller's JSON object. Qdrant Edge's payload decoder stops at 128 levels (and a shard holding a
# deeper payload fails every later write), so depth and size are held far below anything an engine could choke on.
MAX_METADATA_DEPTH = 8
MAX_METADATA_VALUES = 256

MAX_HEALTH_FACES = 20_000
"""Faces one /directories/health report checks (every face against every other: 20k faces is 4e8 similarities,
seconds of numpy); a larger directory's report covers its persons first by id and says `truncated`."""
