"""A small LRU cache for parsed and rendered objects."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


class _LRU(Generic[_K, _V]):
    """A small bounded mapping that forgets the least recently used entry.

    ``size`` bounds the entries; with ``weight`` (an entry's bytes, say),
    ``budget`` bounds their sum too: a count alone lets entries as big as the
    objects they stand for take any amount of memory. An entry heavier than
    the whole budget is not kept. ``weight`` must give the same for a value
    each time it is asked (it is asked again when the entry goes).

    Feeds may be rendered in a worker thread, hence the lock.
    """

    def __init__(
        self,
        size: int,
        *,
        budget: int | None = None,
        weight: Callable[[_V], int] | None = None,
    ) -> None:
        if (budget is None) != (weight is None):
            raise ValueError("budget and weight go together")
        self._size = size
        self._budget = budget
        self._weight = weight
        self._total = 0
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._forget(key)
            if self._weight is not None and self._budget is not None:
                weight = self._weight(value)
                if weight > self._budget:
                    return
                self._total += weight
            self._data[key] = value
            while len(self._data) > self._size or (
                self._budget is not None and self._total > self._budget
            ):
                self._forget(next(iter(self._data)))

    def pop(self, key: _K) -> None:
        with self._lock:
            self._forget(key)

    def _forget(self, key: _K) -> None:
        value = self._data.pop(key, None)
        if value is not None and self._weight is not None:
            self._total -= self._weight(value)

    @property
    def weight(self) -> int:
        """The sum of the entries' weights (0 without ``weight``)."""
        return self._total

    def __len__(self) -> int:
        return len(self._data)
