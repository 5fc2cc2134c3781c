"""Zone discovery: which Autotask host serves this API user.

``GET {discovery}/atservicesrest/v1.0/zoneInformation?user={UserName}`` (no credentials) answers
``{"zoneName", "url": "https://webservices5.autotask.net/atservicesrest/", "webUrl", "ci"}``.
The answer rarely changes, so it is kept for a day: in Redis under ``plugin:{connection}:zone``
when the gateway runs (every worker shares one lookup), else in this process.
"""

from __future__ import annotations

import re
import threading

import msgspec

from gateway.errors import VendorRejected
from gateway.vendor_http import VendorHTTP
from gateway_autotask.constants import API_PREFIX, API_VERSION, ZONE_CACHE_SECONDS


class Zone(msgspec.Struct, frozen=True):
    """Where one API user's database lives."""

    # The REST root every entity path hangs off: ``https://webservices5.autotask.net/atservicesrest/v1.0``.
    api_root: str
    # The web UI root for links people open: ``https://ww5.autotask.net/``.
    web_url: str | None = None


def discovery_root(base_url: str) -> str:
    """The host part of a configured base URL, with any ``/atservicesrest[/v1.0]`` suffix removed."""
    root = base_url.rstrip("/")
    lowered = root.lower()
    for suffix in (f"{API_PREFIX}/{API_VERSION}", API_PREFIX):
        if lowered.endswith(suffix):
            return root[: -len(suffix)]
    return root


def api_root_from(url: str) -> str:
    """``.../atservicesrest/`` (as zoneInformation answers) or ``.../atservicesrest/v1.0`` → the v1.0 root."""
    root = url.rstrip("/")
    if root.lower().endswith(f"/{API_VERSION}"):
        return root
    if not root.lower().endswith(API_PREFIX):
        root = f"{root}{API_PREFIX}"
    return f"{root}/{API_VERSION}"


def web_url_for(api_url: str) -> str | None:
    """The web UI of a zone API host: ``webservices5.autotask.net`` serves ``ww5.autotask.net``."""
    match = re.match(r"https://webservices(\d+)\.autotask\.net", api_url, re.IGNORECASE)
    return f"https://ww{match.group(1)}.autotask.net/" if match else None


class ZoneDirectory:
    """Looks up and remembers the zone of one connection's API user."""

    def __init__(self, http: VendorHTTP, username: str, zone_url: str | None = None) -> None:
        self.http = http
        self.username = username
        self._configured = Zone(api_root_from(zone_url), web_url_for(zone_url)) if zone_url else None
        self._zone: Zone | None = self._configured
        self._lock = threading.Lock()
        runtime = http.connection.runtime
        self._redis = runtime.redis if runtime is not None else None
        self._key = f"plugin:{http.connection.id}:zone"

    def get(self) -> Zone:
        """The zone, from memory, Redis or a discovery call (in that order)."""
        zone = self._zone
        if zone is not None:
            return zone
        with self._lock:
            if self._zone is None:
                self._zone = self._cached() or self._discover()
            return self._zone

    def forget(self) -> None:
        """Drop a discovered zone (not a configured one), so the next call looks it up again."""
        with self._lock:
            self._zone = self._configured
            if self._redis is not None:
                self._redis.delete(self._key)

    def _cached(self) -> Zone | None:
        if self._redis is None:
            return None
        raw = self._redis.get(self._key)
        if not raw:
            return None
        try:
            return msgspec.json.decode(raw, type=Zone)
        except msgspec.DecodeError:
            return None

    def _discover(self) -> Zone:
        root = discovery_root(self.http.connection.base_url)
        response = self.http.get(f"{root}{API_PREFIX}/{API_VERSION}/zoneInformation", params={"user": self.username})
        body = response.json()
        url = body.get("url") if isinstance(body, dict) else None
        if not url:
            raise VendorRejected(
                f"autotask zoneInformation named no zone for user {self.username!r}",
                connection=self.http.connection.id,
                status=response.status_code,
            )
        zone = Zone(api_root=api_root_from(url), web_url=body.get("webUrl") or None)
        if self._redis is not None:
            self._redis.set(self._key, msgspec.json.encode(zone), ex=ZONE_CACHE_SECONDS)
        return zone
