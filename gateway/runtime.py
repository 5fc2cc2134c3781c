"""The shared services a connection's ``VendorHTTP`` uses: Redis, limiter, redactor, tracer.

One ``Runtime`` per process; the gateway puts it on every ``Connection`` it hands to
``gateway_connect``. Plugins may also use ``runtime.redis`` for state that every worker must
share (an OAuth token, a discovered zone URL), under keys starting ``plugin:{connection id}:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from opentelemetry.trace import Tracer

from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor


@dataclass
class Runtime:
    redis: redis.Redis
    limiter: RateLimiter
    redactor: Redactor
    tracer: Tracer
    # ``gateway.events.ConnectionWatch``: announces a connection's trouble and recovery.
    connection_watch: Any = None
