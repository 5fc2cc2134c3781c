"""How long to wait after Hudu's 429 "Retry later".

Hudu throttles with Rack::Attack: calls are counted per fixed window of five minutes that
starts on a multiple of 300 seconds of the epoch, and an over-budget call gets
``429 text/plain "Retry later"`` with no Retry-After header by default. Waiting a fixed 30
seconds usually lands in the same window and earns another 429 (lwhitelock/HuduAPI issue #66),
so when Hudu gives no Retry-After we fill one in: the seconds until the next window starts.
``VendorHTTP`` then pauses the whole connection for that long.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx

from gateway_hudu.constants import RATE_WINDOW_SECONDS, WINDOW_MARGIN_SECONDS


def seconds_to_next_window(now: float, period: float = RATE_WINDOW_SECONDS) -> float:
    """Seconds from ``now`` (epoch seconds) until the next window of ``period`` begins."""
    return period - (now % period)


def retry_after_filler(
    clock: Callable[[], float],
    period: float = RATE_WINDOW_SECONDS,
    margin: float = WINDOW_MARGIN_SECONDS,
) -> Callable[[httpx.Response], None]:
    """An httpx response hook that gives a header-less 429 the wait until the next window."""

    def fill(response: httpx.Response) -> None:
        if response.status_code == 429 and "retry-after" not in response.headers:
            wait = seconds_to_next_window(clock(), period) + margin
            response.headers["Retry-After"] = str(math.ceil(wait))

    return fill
