"""One item's failure must not fail the others it was batched with.

The detector and embedder services run adaptive batches that mix requests
from different callers (tenants). If the batch raises, every caller gets a
500 for one caller's input; instead the batch is retried item by item and
only the items that still raise come back as None, for their own caller to
turn into a 4xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

logger = logging.getLogger("faceserve")

Item = TypeVar("Item")
Result = TypeVar("Result")


def one_by_one(run: Callable[[list[Item]], list[Result]], items: Sequence[Item], what: str) -> list[Result | None]:
    """`run` on each item alone; an item it raises on gets None (and a log line with the traceback)."""
    results: list[Result | None] = []
    for index, item in enumerate(items):
        try:
            results.append(run([item])[0])
        except Exception:  # any failure of one item's model call is that item's, whatever its type
            logger.exception("%s failed on item %d of %d", what, index, len(items))
            results.append(None)
    return results


def batch_or_one_by_one(
    run: Callable[[list[Item]], list[Result]], items: Sequence[Item], what: str
) -> list[Result | None]:
    """`run` on the whole batch; if that raises, on each item alone (see `one_by_one`)."""
    try:
        return list(run(list(items)))
    except Exception:
        if len(items) == 1:
            logger.exception("%s failed on its only item", what)
            return [None]
        logger.warning("%s failed on a batch of %d; retrying item by item", what, len(items), exc_info=True)
    return one_by_one(run, items, what)
