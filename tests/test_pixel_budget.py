"""The decode pixel budget: decodes beyond it wait their turn, and a wait past the limit is refused."""

from __future__ import annotations

import asyncio

import pytest

from api.pixel_budget import PixelBudget, PixelBudgetExhausted


def test_decodes_beyond_the_budget_wait_for_room():
    async def main() -> list[str]:
        budget = PixelBudget(100, max_wait_s=5)
        events: list[str] = []

        async def decode(name: str, pixels: int, seconds: float) -> None:
            async with budget.hold(pixels):
                events.append(f"{name} start")
                await asyncio.sleep(seconds)
                events.append(f"{name} end")

        await asyncio.gather(decode("a", 60, 0.2), decode("b", 60, 0.01))
        return events

    assert asyncio.run(main()) == ["a start", "a end", "b start", "b end"]


def test_small_decodes_share_the_budget():
    async def main() -> int:
        budget = PixelBudget(100, max_wait_s=5)
        running = peak = 0

        async def decode() -> None:
            nonlocal running, peak
            async with budget.hold(30):
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.05)
                running -= 1

        await asyncio.gather(*(decode() for _ in range(6)))
        return peak

    assert asyncio.run(main()) == 3


def test_an_image_larger_than_the_budget_takes_all_of_it_rather_than_waiting_forever():
    async def main() -> None:
        budget = PixelBudget(100, max_wait_s=0.5)
        async with budget.hold(1000):
            pass
        async with budget.hold(100):
            pass

    asyncio.run(main())


def test_a_wait_past_the_limit_is_refused_with_a_retry_time_and_releases_nothing():
    async def main() -> None:
        budget = PixelBudget(100, max_wait_s=0.1)
        async with budget.hold(80):
            with pytest.raises(PixelBudgetExhausted) as info:
                async with budget.hold(80):
                    pass
            assert info.value.retry_after_s == 1
        async with budget.hold(100):  # the refused request took nothing
            pass

    asyncio.run(main())
