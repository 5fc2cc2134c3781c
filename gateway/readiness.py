"""Readiness: may a load balancer send this API process traffic yet?

``/health`` answers "is the process alive"; ``/ready`` answers "will a caller get the truth":
Redis answers, the plugins are loaded, and every PSA connection has finished its first backfill
(before that the queue is empty or partial). Plugins are loaded before the app exists
(``Gateway`` loads them), so the answer lists them. A connection that finished once stays counted for
the life of the process, so a ``resync`` or a vendor outage does not take the API out of
rotation. A plugin that failed to load does not hold readiness back (it never will load: the
rest of the gateway serves, and ``/health`` reports it).
"""

from __future__ import annotations

import threading

import msgspec
import redis

from gateway import sync
from gateway.core import Gateway


class ConnectionReadiness(msgspec.Struct):
    id: str
    backfill_done: bool


class Readiness(msgspec.Struct):
    """What ``GET /ready`` shows (with 200 when ``ready``, else 503)."""

    ready: bool
    redis: bool
    plugins: list[str]  # loaded vendor plugins (failed ones are in ``/health``)
    connections: list[ConnectionReadiness]
    waiting_for: list[str]


class ReadinessCheck:
    """One per API process: remembers connections whose first backfill it has seen done."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._backfilled: set[str] = set()
        self._lock = threading.Lock()

    def check(self) -> Readiness:
        gw = self.gw
        waiting: list[str] = []
        try:
            redis_ok = bool(gw.redis.ping())
        except redis.RedisError:
            redis_ok = False
        if not redis_ok:
            waiting.append("redis")
        connections = []
        for connection in sync.synced_connections(gw):
            done = connection in self._backfilled
            if not done and redis_ok:
                try:
                    done = sync.load_state(gw, connection).backfill_done
                except redis.RedisError:
                    done = False
                if done:
                    with self._lock:
                        self._backfilled.add(connection)
            if not done:
                waiting.append(f"first backfill of {connection}")
            connections.append(ConnectionReadiness(connection, done))
        return Readiness(not waiting, redis_ok, sorted(gw.plugins.vendors), connections, waiting)
