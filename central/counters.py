"""Thread-safe named counts: what the service received, filed, refused and sent."""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """Counts by name. Quarantines are counted twice: 'quarantined' and 'quarantined.<reason>'."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def inc(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))
