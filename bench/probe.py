"""One write at a time through the gateway, timed from the caller to the vendor.

``Prober.write`` posts an internal note through the API and waits (on the simulator's
``VendorTap``, no polling) until the vendor has answered the call it caused. Each probe goes to
a ticket not written since its cache was warmed: a landed write drops its ticket from the
API's cache, and a cold ticket would add a vendor read to the next write's latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from bench.rig import Rig, Vendor

BODY = {"text": "Benchmark probe", "internal": True}


@dataclass
class Probe:
    sent: float
    accepted: float
    arrived: float | None  # when the vendor received the call (None: not within the timeout)
    write_id: str

    @property
    def to_vendor(self) -> float | None:
        """Seconds from the caller sending the write to the vendor receiving the call."""
        return None if self.arrived is None else self.arrived - self.sent

    @property
    def queue_to_vendor(self) -> float | None:
        """Seconds from the 202 to the vendor receiving the call (queue, worker, plugin)."""
        return None if self.arrived is None else self.arrived - self.accepted

    @property
    def to_accept(self) -> float:
        return self.accepted - self.sent


class Prober:
    def __init__(self, rig: Rig, vendor: Vendor, *, timeout: float = 60.0) -> None:
        self.rig = rig
        self.vendor = vendor
        self.timeout = timeout
        self.client = rig.client()
        self._next = 0
        self._warm()

    def _warm(self) -> None:
        self.rig.warm_ticket_cache(self.vendor)
        self._next = 0

    def _ref(self) -> str:
        if self._next >= len(self.vendor.refs):
            self._warm()
        ref = self.vendor.refs[self._next]
        self._next += 1
        return ref

    def write(self) -> Probe:
        tap = self.vendor.tap
        ref = self._ref()
        before = tap.ok
        sent = time.monotonic()
        response = self.client.post(f"/v1/tickets/{ref}/replies", json=BODY)
        accepted = time.monotonic()
        if response.status_code != 202:
            raise RuntimeError(f"probe write refused: {response.status_code} {response.text[:300]}")
        arrived = None
        if tap.wait_for(before + 1, self.timeout):
            arrived = tap.ok_calls()[before].arrived
        return Probe(sent, accepted, arrived, response.json()["write_id"])

    def run(self, count: int | None = None, *, seconds: float | None = None, gap: float = 0.01,
            until: object = None) -> list[Probe]:
        """Probe ``count`` times, or for ``seconds``, or while ``until()`` is false; ``gap``
        seconds apart (after the vendor answered)."""
        probes: list[Probe] = []
        deadline = time.monotonic() + seconds if seconds is not None else None
        while True:
            if count is not None and len(probes) >= count:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if until is not None and until():  # type: ignore[operator]
                break
            probes.append(self.write())
            time.sleep(gap)
        return probes

    def succeeded(self, probes: list[Probe]) -> int:
        """How many of the probes' writes the gateway reports as succeeded."""
        done = 0
        for probe in probes:
            response = self.client.get(f"/v1/writes/{probe.write_id}")
            if response.status_code == 200 and response.json()["status"] == "succeeded":
                done += 1
        return done

    def close(self) -> None:
        self.client.close()


def replay_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30.0)
