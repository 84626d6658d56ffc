"""A small time-to-live cache: what the functions keep of the table between requests (apps, key grants)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class TtlCache:
    """A small map of recent answers that each live ``seconds`` (oldest dropped beyond ``size`` entries)."""

    def __init__(self, seconds: float, size: int = 1024, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._size = size
        self._monotonic = monotonic
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        now = self._monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self._seconds:
            return hit[1]
        value = load()
        self._entries[key] = (now, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value

    def forget(self, key: Any = None) -> None:
        """Drop one entry (or every entry): the next read loads afresh."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
