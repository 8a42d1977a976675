"""A per-process budget of image pixels being decoded at once.

Decoding briefly holds an image at full size (a PNG cannot be decoded
smaller), so eight 36-megapixel uploads decoded together took gigabytes.
Each decode first reserves its header's pixel count here; when the budget is
spent, later decodes wait their turn, and one that would wait past
`max_wait_s` is refused with 503 and Retry-After instead of timing out.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PixelBudgetExhausted(Exception):
    """The budget stayed spent for longer than a request may wait."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"image decoding is at capacity; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class PixelBudget:
    def __init__(self, pixels: int, max_wait_s: float) -> None:
        if pixels < 1:
            raise ValueError("the pixel budget must be positive")
        self.capacity = pixels
        self.max_wait_s = max_wait_s
        self._free = pixels
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        """Reserve `pixels` for the body of the `async with` (an image above the whole budget takes all of it)."""
        need = min(pixels, self.capacity)
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._free >= need), self.max_wait_s)
            except TimeoutError:
                raise PixelBudgetExhausted(max(1, math.ceil(self.max_wait_s))) from None
            self._free -= need
        try:
            yield
        finally:
            async with self._changed:
                self._free += need
                self._changed.notify_all()
