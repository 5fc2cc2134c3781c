"""A simulator of Template Vendor's API: an in-memory RMM served over loopback HTTP.

This is the stub the generated plugin starts from; with the generated hooks it passes the
plugin's pipeline tests. Make it the vendor's real contract before (or while) writing the
client against it: the vendor's paths, auth header, paging, field names and error bodies, from
the vendor's published documentation, with the source of each in the README.

What it serves now (under ``/api/v1``, every call needs ``X-API-Key``, else 401):

- ``GET /organizations``; ``GET /devices`` (``serial_number``, ``hostname`` filters) and
  ``GET /devices/{id}``; ``GET /alerts`` (``active``, ``organization_id`` filters) and
  ``GET /alerts/{id}``: lists are ``{"items": [...], "next_page": n | null}``.
- ``POST /alerts/{id}/acknowledge`` and ``POST /alerts/{id}/resolve``: the alert with its new
  ``status``; acknowledging a resolved alert is 409.
- Errors as ``{"error": {"code", "message"}}``; 429 with Retry-After from the base faults.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath

from gateway.testing.simulator import Faults, Simulator
from gateway_templatevendor.constants import API_KEY_HEADER, API_KEY_SETTING, API_PREFIX, MAX_PAGE_SIZE, PAGE_SIZE, VENDOR

DEMO_API_KEY = "templatevendor-demo-key-7d41c2"

ORGANIZATIONS = ((1, "Acme Corp"), (2, "Globex"), (3, "Initech"))
# organization, name, host name, serial, online
DEVICES = (
    (1, "ACME-DC01", "acme-dc01.acme.local", "SN-ACME-0001", True),
    (1, "ACME-WS17", "acme-ws17.acme.local", "SN-ACME-0017", False),
    (2, "GLOBEX-FS01", "globex-fs01.globex.local", "SN-GLOBEX-0001", True),
    (3, "INITECH-TPS", "initech-tps.initech.local", "SN-INITECH-0042", True),
)
# device index, message, severity
ALERTS = (
    (0, "Disk C: below 10% free", "major"),
    (1, "Device offline for 24 hours", "minor"),
    (2, "Backup job failed", "critical"),
    (3, "CPU above 95% for 15 minutes", "major"),
)
ACTION_STATUS = {"acknowledge": "acknowledged", "resolve": "resolved"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(value: Any, status: int = 200) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type="application/json")


class TemplateVendorSimulator(Simulator):
    """An in-memory Template Vendor RMM. Records are dicts in the vendor's field names."""

    vendor = VENDOR

    def __init__(self, faults: Faults | None = None, *, api_key: str = DEMO_API_KEY) -> None:
        super().__init__(faults)
        self.api_key = api_key
        self.organizations: dict[int, dict[str, Any]] = {}
        self.devices: dict[int, dict[str, Any]] = {}
        self.alerts: dict[int, dict[str, Any]] = {}
        # (alert id, action) -> how many times the vendor applied it.
        self.actions: Counter[tuple[int, str]] = Counter()
        self._ids = itertools.count(100)

    def seed_demo(self) -> None:
        """Three organizations, four devices and an open alert on each device."""
        with self.lock:
            if self.organizations:
                return
            for org_id, name in ORGANIZATIONS:
                self.organizations[org_id] = {"id": org_id, "name": name}
            device_ids = []
            for org_id, name, hostname, serial, online in DEVICES:
                device = {"id": next(self._ids), "organization_id": org_id, "name": name, "hostname": hostname,
                          "serial_number": serial, "online": online}
                self.devices[device["id"]] = device
                device_ids.append(device["id"])
            for index, message, severity in ALERTS:
                device = self.devices[device_ids[index]]
                alert = {"id": next(self._ids), "device_id": device["id"], "organization_id": device["organization_id"],
                         "message": message, "severity": severity, "status": "open", "created_at": now()}
                self.alerts[alert["id"]] = alert

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"vendor": VENDOR, "base_url": base_url, "settings": {}, "secrets": {API_KEY_SETTING: self.api_key}}

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        codes = {400: "invalid", 401: "unauthorized", 404: "not_found", 409: "conflict", 429: "rate_limited"}
        body = msgspec.json.encode({"error": {"code": codes.get(status, "server_error"), "message": message}})
        return status, body, {"content-type": "application/json"}

    def _record(self, table: dict[int, dict[str, Any]], record_id: str, what: str) -> dict[str, Any]:
        record = table.get(int(record_id)) if record_id.isdigit() else None
        if record is None:
            raise ApiError(404, "not_found", f"{what} {record_id} not found")
        return record

    # -- routes ------------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        def answer(work: Any) -> Response[bytes]:
            try:
                with sim.lock:
                    return _json(work())
            except ApiError as exc:
                return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)

        def paged(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
            try:
                page = max(1, int(request.query_params.get("page") or 1))
                size = max(1, min(int(request.query_params.get("page_size") or PAGE_SIZE), MAX_PAGE_SIZE))
            except ValueError:
                raise ApiError(400, "invalid", "page and page_size must be integers") from None
            start = (page - 1) * size
            more = len(rows) > start + size
            return {"items": [dict(r) for r in rows[start:start + size]], "next_page": page + 1 if more else None}

        def gate(request: Request) -> Response[bytes] | None:
            if request.headers.get(API_KEY_HEADER.lower()) != sim.api_key:
                sim.count("unauthorized")
                return _json({"error": {"code": "unauthorized", "message": "missing or unknown API key"}}, 401)
            return None

        @get("/organizations", sync_to_thread=False)
        def list_organizations(request: Request) -> Response[bytes]:
            return answer(lambda: paged(request, list(sim.organizations.values())))

        @get("/devices", sync_to_thread=False)
        def list_devices(request: Request) -> Response[bytes]:
            def work() -> dict[str, Any]:
                rows = list(sim.devices.values())
                serial = request.query_params.get("serial_number")
                if serial:
                    rows = [d for d in rows if (d["serial_number"] or "").casefold() == serial.casefold()]
                hostname = request.query_params.get("hostname")
                if hostname:
                    rows = [d for d in rows if (d["hostname"] or "").casefold() == hostname.casefold()]
                return paged(request, rows)

            return answer(work)

        @get("/devices/{device_id:str}", sync_to_thread=False)
        def get_device(device_id: FromPath[str]) -> Response[bytes]:
            return answer(lambda: dict(sim._record(sim.devices, device_id, "device")))

        @get("/alerts", sync_to_thread=False)
        def list_alerts(request: Request) -> Response[bytes]:
            def work() -> dict[str, Any]:
                rows = list(sim.alerts.values())
                if request.query_params.get("active") == "true":
                    rows = [a for a in rows if a["status"] != "resolved"]
                org = request.query_params.get("organization_id")
                if org is not None:
                    rows = [a for a in rows if str(a["organization_id"]) == org]
                return paged(request, rows)

            return answer(work)

        @get("/alerts/{alert_id:str}", sync_to_thread=False)
        def get_alert(alert_id: FromPath[str]) -> Response[bytes]:
            return answer(lambda: dict(sim._record(sim.alerts, alert_id, "alert")))

        def act(alert_id: str, action: str) -> Response[bytes]:
            def work() -> dict[str, Any]:
                alert = sim._record(sim.alerts, alert_id, "alert")
                if action == "acknowledge" and alert["status"] == "resolved":
                    raise ApiError(409, "conflict", f"alert {alert_id} is already resolved")
                alert["status"] = ACTION_STATUS[action]
                sim.actions[(alert["id"], action)] += 1
                return dict(alert)

            return answer(work)

        @post("/alerts/{alert_id:str}/acknowledge", status_code=200, sync_to_thread=False)
        def acknowledge(alert_id: FromPath[str]) -> Response[bytes]:
            return act(alert_id, "acknowledge")

        @post("/alerts/{alert_id:str}/resolve", status_code=200, sync_to_thread=False)
        def resolve(alert_id: FromPath[str]) -> Response[bytes]:
            return act(alert_id, "resolve")

        handlers = [list_organizations, list_devices, get_device, list_alerts, get_alert, acknowledge, resolve]
        return [Router(path=API_PREFIX, route_handlers=handlers, before_request=gate)]

    # -- inspection, in vendor terms ---------------------------------------------------------

    def sample_alert_id(self) -> str:
        """An open alert the tests may act on."""
        with self.lock:
            if not self.alerts:
                self.seed_demo()
            return str(next(a["id"] for a in self.alerts.values() if a["status"] == "open"))

    def alert_status(self, alert_id: str) -> str:
        with self.lock:
            return str(self.alerts[int(alert_id)]["status"])

    def alert_exists(self, alert_id: str) -> bool:
        """Whether the alert is still unresolved (``RmmConformanceSuite`` asks)."""
        with self.lock:
            return self.alerts[int(alert_id)]["status"] != "resolved"

    def alert_resolve_count(self, alert_id: str) -> int:
        return self.action_count(alert_id, "resolve")

    def action_count(self, alert_id: str, action: str) -> int:
        """How many times the vendor applied ``action`` to the alert."""
        with self.lock:
            return self.actions[(int(alert_id), action)]
