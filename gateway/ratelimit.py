"""One rate limiter per connection, kept in Redis and shared by every process.

Vendors count calls in rolling windows (Autotask: 10,000 an hour; HaloPSA: 300 in any 5
minutes), so the limiter keeps a log of call times per connection and allows a call at time
``t`` only if every window ending at ``t`` holds fewer calls than its limit. It never sleeps:
``reserve`` books the earliest allowed time and says how long until then. A worker that is
told to wait defers its job to that moment (holding the booked slot) and moves on to other
connections' writes. A 429 with Retry-After pauses the connection for everyone
(``pause``). ``concurrency`` caps calls in flight (Autotask's three threads per endpoint).
Reads take at most ``read_share`` of each window, so writes always find budget.
"""

from __future__ import annotations

import time
import uuid

import redis

from gateway.models import RateLimitPolicy

_RESERVE = """
local now = tonumber(ARGV[1])
local book = tonumber(ARGV[2])  -- book if the wait is at most this many seconds; -2: always
local tolerance = tonumber(ARGV[3])
local windows = tonumber(ARGV[4])
local kind = ARGV[5]  -- 'r' read, 'w' write: kept in the log for the status page
local t = now
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > t then t = pause end
local longest = 0
for i = 0, windows - 1 do
  local limit = tonumber(ARGV[6 + i * 2])
  local span = tonumber(ARGV[7 + i * 2])
  if span > longest then longest = span end
  local count = redis.call('ZCARD', KEYS[1])
  if count >= limit then
    local e = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    local allowed = tonumber(e[2]) + span
    if allowed > t then t = allowed end
  end
end
if (book >= 0 and t - now <= book) or book < -1 or t - now <= tolerance then
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], t, kind .. seq)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
  redis.call('PEXPIRE', KEYS[1], math.ceil((longest + (t - now)) * 1000) + 1000)
  redis.call('PEXPIRE', KEYS[3], math.ceil((longest + (t - now)) * 1000) + 1000)
end
return tostring(t - now)
"""

_ACQUIRE_SLOT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000))
  return 1
end
return 0
"""


class RateLimiter:
    """The shared per-connection budget. Keys live under ``rl:{connection}``."""

    def __init__(self, client: redis.Redis, *, tolerance: float = 0.002, guard: float = 0.03) -> None:
        self.redis = client
        self.tolerance = tolerance
        # Each window is booked as if it were this much longer: a call's log time is when it
        # was booked, the vendor counts when it arrives, and those differ by a few ms from call
        # to call. Without the guard, "R in any rolling second" booked exactly drew 429s.
        self.guard = guard
        self._reserve = client.register_script(_RESERVE)
        self._acquire_slot = client.register_script(_ACQUIRE_SLOT)

    @staticmethod
    def _keys(connection: str) -> list[str]:
        return [f"rl:{connection}:log", f"rl:{connection}:pause", f"rl:{connection}:seq"]

    def reserve(self, connection: str, policy: RateLimitPolicy, *, max_wait: float | None = None,
                read: bool = False) -> float:
        """Book the next call on ``connection``; return seconds until it may be sent (0 = now).

        The slot is booked only when the wait is at most ``max_wait`` (``None``: any wait; 0:
        only a call that may go now); otherwise the answer is just how long the caller would
        wait, and nothing is spent. A ``read`` may only use ``policy.read_share`` of each window
        (counting every call in it), so the rest of the budget is always there for writes.
        """
        if not policy.windows:
            wait = self.paused_for(connection)
            return wait if wait > self.tolerance else 0.0
        share = policy.read_share if read else 1.0
        book = -2 if max_wait is None else max(0.0, max_wait)
        args: list[float | int | str] = [time.time(), book, self.tolerance, len(policy.windows), "r" if read else "w"]
        for window in policy.windows:
            limit = max(1, int(window.requests * policy.headroom * share))
            args += [limit, window.per_seconds * (1 + self.guard)]
        wait = float(self._reserve(keys=self._keys(connection), args=args))
        return wait if wait > self.tolerance else 0.0

    def pause(self, connection: str, seconds: float) -> None:
        """Stop every call on ``connection`` for ``seconds`` (a vendor 429's Retry-After)."""
        until = time.time() + seconds
        key = f"rl:{connection}:pause"
        current = float(self.redis.get(key) or 0)
        if until > current:
            self.redis.set(key, repr(until), px=max(1, int(seconds * 1000) + 1000))

    def paused_for(self, connection: str) -> float:
        """Seconds left on a pause of ``connection`` (0 when not paused)."""
        until = float(self.redis.get(f"rl:{connection}:pause") or 0)
        return max(0.0, until - time.time())

    def acquire_slot(self, connection: str, concurrency: int, lease_seconds: float) -> str | None:
        """Take one of ``concurrency`` in-flight slots; return its token, or ``None`` if full."""
        token = uuid.uuid4().hex
        ok = self._acquire_slot(
            keys=[f"rl:{connection}:inflight"],
            args=[time.time(), concurrency, lease_seconds, token],
        )
        return token if ok else None

    def release_slot(self, connection: str, token: str) -> None:
        self.redis.zrem(f"rl:{connection}:inflight", token)

    def calls_in_window(self, connection: str, seconds: float) -> int:
        """How many calls were booked in the last ``seconds`` (for status pages and tests)."""
        now = time.time()
        return int(self.redis.zcount(f"rl:{connection}:log", now - seconds, now))

    def budget_used(self, connection: str, policy: RateLimitPolicy) -> list[dict[str, float | int]]:
        """Per window of ``policy``: its limit and the calls booked in it by reads and by writes
        (booked slots not yet reached count too: they are spent)."""
        now = time.time()
        used = []
        for window in policy.windows:
            members = self.redis.zrangebyscore(f"rl:{connection}:log", now - window.per_seconds, "+inf")
            reads = sum(1 for m in members if m.startswith(b"r"))
            used.append({
                "requests": max(1, int(window.requests * policy.headroom)),
                "per_seconds": window.per_seconds,
                "reads": reads,
                "writes": len(members) - reads,
                "read_limit": max(1, int(window.requests * policy.headroom * policy.read_share)),
            })
        return used
