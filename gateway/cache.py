"""The read-through cache: a vendor fact kept in Redis for a while, read from the vendor on a miss.

Every cache of vendor facts (a ticket for validating a write, a board's statuses, the
new-ticket form, a device, the device a configuration item resolves to, a customer's runbooks,
the workspace's customer map) is one ``ReadThrough``: its type, how long a value is kept, and
whether a miss is remembered. Key names come from ``gateway.keys``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
import redis

from gateway.locks import try_lock

T = TypeVar("T")

# Stored for a remembered miss (a lookup that found nothing); no encoded value is this.
MISS = b"-"


class ReadThrough(Generic[T]):
    """Values of one type under keys of one kind, each kept ``ttl`` seconds.

    ``miss_ttl``: also remember that the loader found nothing (``None``), this long.
    ``single_flight``: ``(lock seconds, wait seconds)``; on a miss one process loads while the
    others wait up to the wait for its answer instead of asking the vendor too.
    """

    def __init__(
        self,
        type_: type[T],
        ttl: float,
        *,
        miss_ttl: float | None = None,
        single_flight: tuple[float, float] | None = None,
    ) -> None:
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self.single_flight = single_flight
        self._encode = msgspec.json.Encoder().encode
        self._decoder = msgspec.json.Decoder(type_)

    def decode(self, raw: bytes) -> T:
        """A value as ``put`` stored it."""
        return self._decoder.decode(raw)

    def peek(self, client: redis.Redis, key: str) -> tuple[bool, T | None]:
        """``(True, value)`` when ``key`` holds a value or a remembered miss, else ``(False, None)``."""
        raw = client.get(key)
        if raw is None or raw == b"":
            return False, None
        if raw == MISS and self.miss_ttl is not None:
            return True, None
        return True, self._decoder.decode(raw)

    def put(self, client: redis.Redis, key: str, value: T | None, *, ttl: float | None = None) -> None:
        """Keep ``value`` (``None``: a miss, when misses are remembered) for ``ttl`` or the default."""
        if value is None:
            if self.miss_ttl is not None:
                client.set(key, MISS, ex=max(1, math.ceil(self.miss_ttl)))
            return
        client.set(key, self._encode(value), ex=max(1, math.ceil(self.ttl if ttl is None else ttl)))

    def get(
        self,
        client: redis.Redis,
        key: str,
        load: Callable[[], T | None],
        *,
        refresh: bool = False,
        ttl: Callable[[T], float] | None = None,
    ) -> T | None:
        """The value at ``key``, else ``load()``'s answer, kept for next time. ``refresh`` skips
        the cached value; ``ttl`` picks how long to keep a loaded value by what it is."""
        if not refresh:
            found, value = self.peek(client, key)
            if found:
                return value
        owner = None
        if self.single_flight is not None:
            lock_seconds, wait_seconds = self.single_flight
            owner = try_lock(client, f"lock:{key}", lock_seconds)
            if owner is None and not refresh:
                deadline = time.monotonic() + wait_seconds
                while time.monotonic() < deadline:
                    time.sleep(0.05)
                    found, value = self.peek(client, key)
                    if found:
                        return value
        try:
            value = load()
            self.put(client, key, value, ttl=ttl(value) if ttl is not None and value is not None else None)
            return value
        finally:
            if owner is not None:
                owner.release()
