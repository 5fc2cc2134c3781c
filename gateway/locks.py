"""Owner-checked locks in Redis: the one way the gateway takes, extends and releases a lock.

A lock is ``SET key token NX PX``; releasing or extending it checks the token in one script
(redis-py's ``Lock``), so a process whose lock expired and was taken by another can never delete
or stretch the new owner's lock (a plain GET-then-DEL could).
"""

from __future__ import annotations

import redis
from redis.exceptions import LockError
from redis.lock import Lock


class OwnedLock:
    """A non-blocking lock held by this process until ``release`` or its timeout."""

    def __init__(self, client: redis.Redis, key: str, seconds: float) -> None:
        # thread_local=False: the token lives on this object, whichever thread releases it.
        self._lock = Lock(client, key, timeout=seconds, blocking=False, thread_local=False)
        self.key = key

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def extend(self, seconds: float) -> bool:
        """Reset the timeout to ``seconds`` if this process still owns the lock."""
        try:
            return bool(self._lock.extend(seconds, replace_ttl=True))
        except LockError:
            return False

    def release(self) -> bool:
        """Release the lock if this process still owns it; False when it had lapsed."""
        try:
            self._lock.release()
            return True
        except LockError:
            return False


def try_lock(client: redis.Redis, key: str, seconds: float) -> OwnedLock | None:
    """Take ``key`` for ``seconds`` if nobody holds it; ``None`` when it is held."""
    lock = OwnedLock(client, key, seconds)
    return lock if lock.acquire() else None
