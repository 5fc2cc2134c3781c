"""What every Autotask call passes before it reaches an entity: path spelling, credentials,
the hourly request threshold with its added latency, and the per-endpoint thread cap.

- ``/ATServicesRest/V1.0/...`` and ``/atservicesrest/v1.0/...`` are the same API (official
  samples use both spellings); entity names are matched case-insensitively further in.
- ``zoneInformation`` needs no credentials and is exempt from both limits.
- Credentials as Autotask checks them (``AutotaskSimulator.auth_refusal``): an unknown
  ``UserName`` or ``ApiIntegrationCode`` is a 500 with an errors body, a wrong ``Secret`` a 401.
- The threshold (10,000 calls per rolling 60 minutes per database): latency is added from 50 %
  (0.5 s) and 75 % (1 s) usage; past it every call is refused with 429 and a Retry-After.
- Three calls in flight per tracking identifier and object endpoint: a fourth is refused at
  once with 429 "Thread Threshold Exceeded" (Retry-After 1). Autotask documents the limit and
  the message, not the status code; 429 is this simulator's choice (see the README).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.testing.simulator import Answer, RollingWindow

if TYPE_CHECKING:
    from gateway_autotask.simulator.app import AutotaskSimulator

PREFIX = "/atservicesrest"
# Child collections count against their own object endpoint.
CHILD_ENDPOINTS = {"notes": "ticketnotes", "attachments": "ticketattachments", "timeentries": "timeentries"}


def endpoint_of(rest: str) -> str:
    """The object endpoint a path under ``/v1.0/`` calls (``Tickets/12/Notes`` → ``ticketnotes``)."""
    parts = [p for p in rest.lower().split("/") if p]
    if len(parts) >= 3 and parts[1].isdigit() and parts[2] in CHILD_ENDPOINTS:
        return CHILD_ENDPOINTS[parts[2]]
    return parts[0] if parts else ""


class AutotaskGate:
    """The simulator's ``gate``: what a call passes between the fault switches and the routes."""

    def __init__(self, sim: AutotaskSimulator) -> None:
        self.sim = sim
        self.usage = RollingWindow()
        self.in_flight: dict[tuple[str, str], int] = {}

    async def __call__(self, scope: dict, forward: Callable[[dict], Awaitable[None]]) -> Answer | None:
        if not scope["path"].lower().startswith(PREFIX + "/"):
            await forward(scope)
            return None
        scope = self._normalise(scope)
        rest = scope["path"][len(PREFIX) + 1 :]
        version, _, entity_path = rest.partition("/")
        if version != "v1.0" or entity_path.lower().startswith("zoneinformation"):
            await forward(scope)
            return None
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        sim = self.sim
        refusal = sim.auth_refusal(headers.get("apiintegrationcode"), headers.get("username"), headers.get("secret"))
        if refusal is not None:
            sim.count("unauthorized")
            return _errors(refusal[0], [refusal[1]])
        key = (headers.get("apiintegrationcode", "").lower(), endpoint_of(entity_path))
        now = time.monotonic()
        with sim.lock:
            used = self.usage.used(sim.threshold_window_seconds, now)
            wait = self.usage.wait_for(1, sim.hourly_threshold, sim.threshold_window_seconds, now)
            if wait:
                sim.count("threshold_exceeded")
                refuse: tuple[str, int] | None = ("threshold", max(1, round(wait)))
            else:
                self.usage.spend(1, now)
                if self.in_flight.get(key, 0) >= sim.thread_limit:
                    sim.count("thread_threshold_exceeded")
                    refuse = ("threads", 1)
                else:
                    self.in_flight[key] = self.in_flight.get(key, 0) + 1
                    refuse = None
        if refuse is not None:
            kind, retry = refuse
            message = (
                f"The Autotask API thread threshold of {sim.thread_limit} threads has been exceeded."
                if kind == "threads"
                else f"The API request threshold of {sim.hourly_threshold} requests per "
                f"{round(sim.threshold_window_seconds / 60)} minutes has been exceeded for this database."
            )
            title = "Thread Threshold Exceeded" if kind == "threads" else "API Threshold Exceeded"
            return _errors(429, [f"{title}: {message}"], retry_after=retry)
        try:
            delay = sim.processing_seconds
            share = used / sim.hourly_threshold
            if share >= 0.75:
                delay += 1.0 * sim.latency_scale
                sim.count("latency_75")
            elif share >= 0.5:
                delay += 0.5 * sim.latency_scale
                sim.count("latency_50")
            if delay > 0:
                await asyncio.sleep(delay)
            await forward(scope)
        finally:
            with sim.lock:
                self.in_flight[key] -= 1
        return None

    def reset(self) -> None:
        self.usage.reset()
        self.in_flight.clear()

    def calls_in_window(self) -> int:
        with self.sim.lock:
            return round(self.usage.used(self.sim.threshold_window_seconds))

    @staticmethod
    def _normalise(scope: dict) -> dict:
        """Lower-case the ``/atservicesrest/v1.0`` prefix; the rest keeps its spelling."""
        path = scope["path"]
        rest = path[len(PREFIX) :]
        version, sep, tail = rest.lstrip("/").partition("/")
        new_path = f"{PREFIX}/{version.lower()}{sep}{tail}"
        if new_path == path:
            return scope
        return {**scope, "path": new_path, "raw_path": new_path.encode()}


def _errors(status: int, errors: list[str], retry_after: int | None = None) -> Answer:
    """Autotask's ``{"errors": [...]}`` answer."""
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return status, json.dumps({"errors": errors}).encode(), headers
