"""Keep request values out of the log: a validation error is logged as its fields and error types only.

BentoML logs every pydantic ValidationError of a request with its full
traceback, and the error's text quotes the offending input (a person's
name, the start of an image), so names ended up in server logs. The filter
rewrites those records to one line: path, code and, per error, the field
and the kind of mistake.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

# The logger of bentoml._internal.server.http_app.log_exception, which BentoML's request handling calls.
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"


class RedactValidationErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            problems = ", ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(body)'} ({error['type']})"
                for error in exc.errors()
            )
            record.msg = "invalid body on %s [%s]: %s"
            args = record.args if isinstance(record.args, tuple) else ()
            record.args = (*args[:2], problems)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def install() -> None:
    logging.getLogger(BENTOML_REQUEST_LOGGER).addFilter(RedactValidationErrors())
