"""The job of figure 9's baseline: one httpx call, as a bare rq ``SimpleWorker`` would run it."""

from __future__ import annotations

from typing import Any

import httpx

QUEUE = "bench-bare"
_clients: dict[str, httpx.Client] = {}


def replay(base_url: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> int:
    """Send the captured vendor request again over a kept-alive client; return the status."""
    client = _clients.get(base_url)
    if client is None:
        client = _clients[base_url] = httpx.Client(base_url=base_url, timeout=30.0)
    response: Any = client.request(method, path, headers=headers, content=body)
    return int(response.status_code)
