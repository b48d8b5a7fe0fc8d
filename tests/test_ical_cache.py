"""The LRU cache of parsed and rendered objects: bounded in entries, and in
bytes when its entries weigh (gateway.ical.cache)."""

from __future__ import annotations

import pytest

from gateway.ical.cache import _LRU


def test_the_count_bounds_it_least_recently_used_first() -> None:
    cache: _LRU[str, str] = _LRU(2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # now "b" is the least recently used
    cache.put("c", "3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("1", None, "3")


def test_the_budget_bounds_the_bytes_kept() -> None:
    cache: _LRU[str, bytes] = _LRU(100, budget=10, weight=len)
    cache.put("a", b"xxxx")
    cache.put("b", b"yyyy")
    assert cache.weight == 8
    cache.put("c", b"zzzz")  # 12 > 10: "a" goes
    assert (cache.get("a"), len(cache), cache.weight) == (None, 2, 8)
    cache.put("b", b"y")  # replaced: its old weight goes with it
    assert cache.weight == 5
    cache.pop("c")
    assert (len(cache), cache.weight) == (1, 1)


def test_an_entry_heavier_than_the_budget_is_not_kept() -> None:
    cache: _LRU[str, bytes] = _LRU(100, budget=10, weight=len)
    cache.put("a", b"xxxx")
    cache.put("big", b"x" * 11)
    assert (cache.get("big"), cache.get("a"), cache.weight) == (None, b"xxxx", 4)


def test_budget_and_weight_go_together() -> None:
    with pytest.raises(ValueError, match="together"):
        _LRU[str, bytes](10, budget=10)
