"""A batch that raises is retried item by item, and only the items that still raise are marked failed."""

from __future__ import annotations

from models.isolation import batch_or_one_by_one, one_by_one


def halves(batch: list[int]) -> list[float]:
    """Real arithmetic that fails on one kind of input (zero), as a model fails on one bad image."""
    return [1 / x for x in batch]


def test_a_good_batch_runs_once_as_a_batch():
    calls: list[list[int]] = []

    def run(batch: list[int]) -> list[float]:
        calls.append(batch)
        return halves(batch)

    assert batch_or_one_by_one(run, [1, 2, 4], "test") == [1.0, 0.5, 0.25]
    assert calls == [[1, 2, 4]]


def test_a_failing_batch_fails_only_its_bad_items():
    assert batch_or_one_by_one(halves, [1, 0, 4, 0], "test") == [1.0, None, 0.25, None]


def test_one_by_one_never_batches():
    sizes: list[int] = []

    def run(batch: list[int]) -> list[float]:
        sizes.append(len(batch))
        return halves(batch)

    assert one_by_one(run, [2, 0], "test") == [0.5, None]
    assert sizes == [1, 1]


def test_a_single_failing_item():
    assert batch_or_one_by_one(halves, [0], "test") == [None]
