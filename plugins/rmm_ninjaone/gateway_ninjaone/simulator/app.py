"""A NinjaOne Public API v2 simulator: the slice of the contract the plugin uses, served for real.

What it follows (``RMM_DOCS_CONTRACTS.md`` section 1 and its checklist, section 7):

- ``POST /ws/oauth/token``: client_credentials with a form body (``client_secret_post``) or HTTP
  Basic (``client_secret_basic``); answers ``{access_token, token_type: "Bearer", expires_in,
  scope}`` and no refresh token. A bad client gets 401 ``{"error": "invalid_client", ...}``;
  ``offline_access`` with client_credentials gets 400, as the EU instance answers.
  ``token_lifetime`` sets ``expires_in``; ``expire_tokens()`` makes every issued token stale.
- every ``/v2`` call needs ``Authorization: Bearer``; a missing, unknown or expired token gets
  401 ``{"error": "not_authenticated", "error_description": "Invalid credentials",
  "error_code": 10}``; a token without the ``management`` scope cannot reset (403).
- other errors use NinjaOne's ``{"resultCode": "FAILURE", "errorMessage", "incidentId"}``.
- organizations and devices: bare arrays paged by ``pageSize`` + ``after=<last id>`` in id
  order, no total, 100 a page when ``pageSize`` is left out; ``GET /v2/device/{id}`` is the
  detailed agent device with ``system.serialNumber``; ``/v2/devices/search`` matches names and
  IP addresses; ``/v2/queries/computer-systems`` pages with a named cursor.
- ``GET /v2/alerts``: every active alert, not paged, each embedding its device; ``df`` filters.
- ``DELETE /v2/alert/{uid}`` and ``POST /v2/alert/{uid}/reset``: 204, the alert leaves
  ``/v2/alerts``; an unknown or already reset uid gets 404 (assumed; the spec says nothing).
- faults (5xx, 429 + Retry-After, drops) come from the base ``Simulator``.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
import time
import uuid
from collections import Counter
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from gateway.testing.simulator import Faults, Simulator

DEMO_CLIENT_ID = "demo-ninjaone-client"
DEMO_CLIENT_SECRET = "demo-ninjaone-secret"
ALL_SCOPES = frozenset({"monitoring", "management", "control"})
DEFAULT_PAGE_SIZE = 100
CURSOR_SECONDS = 300.0

NOT_AUTHENTICATED = {"error": "not_authenticated", "error_description": "Invalid credentials", "error_code": 10}

# Fields of the basic device (spec: getDevices items); the detail adds the rest.
BASIC_DEVICE_FIELDS = (
    "id", "uid", "organizationId", "locationId", "nodeClass", "nodeRoleId", "rolePolicyId", "policyId",
    "approvalStatus", "offline", "displayName", "systemName", "dnsName", "netbiosName", "created",
    "lastContact", "lastUpdate", "userData", "tags", "maintenance", "references",
)  # fmt: skip
ALERT_DEVICE_FIELDS = (
    "id", "uid", "organizationId", "locationId", "nodeClass", "approvalStatus", "offline", "displayName",
    "systemName", "dnsName", "created", "lastContact",
)  # fmt: skip
AGENT_ONLY_FIELDS = ("os", "system", "memory", "processors", "volumes", "lastLoggedInUser")


def _incident_id() -> str:
    tail = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
    return f"WEB_MGMT_SERVICE-{uuid.uuid4().hex}-{int(time.time())}-{tail}"


class NinjaOneSimulator(Simulator):
    """NinjaOne's API v2 for tests, the demo and benchmarks."""

    fault_exempt_paths = ("/ws/oauth/token",)

    vendor = "ninjaone"

    def __init__(self, faults: Any = None) -> None:
        super().__init__(faults)
        self._empty()

    def clear(self) -> None:
        """Forget every record, token, fault and count: a fresh tenant with only the demo
        client app registered (lets one running server serve many tests)."""
        with self.lock:
            self.set_faults(Faults())
            self.stats.clear()
            self._empty()

    def _empty(self) -> None:
        self.clients: dict[str, tuple[str, frozenset[str]]] = {}
        self.tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self.token_lifetime = 3600
        self.reject_offline_access = True  # the EU token server's behaviour
        self.organizations: dict[int, dict[str, Any]] = {}
        self.devices: dict[int, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.resets: Counter[str] = Counter()
        self.activities: list[dict[str, Any]] = []
        self.cursors: dict[str, dict[str, Any]] = {}
        self._next_org = 1
        self._next_device = 1001
        self.add_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)

    # -- records ----------------------------------------------------------------------------

    def add_client(self, client_id: str, secret: str, scopes: frozenset[str] = ALL_SCOPES) -> None:
        """Register an API client app (client_credentials) allowed ``scopes``."""
        with self.lock:
            self.clients[client_id] = (secret, frozenset(scopes))

    def add_organization(self, name: str, *, org_id: int | None = None, description: str = "") -> dict[str, Any]:
        with self.lock:
            org_id = org_id or self._next_org
            self._next_org = max(self._next_org, org_id + 1)
            org = {
                "id": org_id,
                "name": name,
                "description": description,
                "userData": {},
                "nodeApprovalMode": "AUTOMATIC",
                "locations": [{"id": org_id * 10 + 1, "name": "Main Office", "address": "", "description": ""}],
                "policies": [],
                "settings": {},
            }
            self.organizations[org_id] = org
            return org

    def add_device(
        self,
        org_id: int,
        system_name: str,
        serial: str,
        *,
        dns_domain: str = "",
        node_class: str = "WINDOWS_WORKSTATION",
        offline: bool = False,
        manufacturer: str = "Dell Inc.",
        model: str = "OptiPlex 7090",
        ip: str = "10.0.0.10",
    ) -> dict[str, Any]:
        """An approved agent device of ``org_id`` with the detail fields the spec lists."""
        with self.lock:
            device_id = self._next_device
            self._next_device += 1
            now = time.time()
            org = self.organizations[org_id]
            location = org["locations"][0]
            device = {
                "id": device_id,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ninjaone-sim/device/{device_id}")),
                "organizationId": org_id,
                "locationId": location["id"],
                "nodeClass": node_class,
                "nodeRoleId": 1,
                "rolePolicyId": 1,
                "policyId": 1,
                "approvalStatus": "APPROVED",
                "offline": offline,
                "displayName": system_name,
                "systemName": system_name,
                "dnsName": f"{system_name.lower()}.{dns_domain}" if dns_domain else system_name.lower(),
                "netbiosName": system_name.upper()[:15],
                "created": now - 86400 * 200,
                "lastContact": now - (7200 if offline else 30),
                "lastUpdate": now - (7200 if offline else 60),
                "userData": {},
                "tags": [],
                "references": {
                    "organization": {k: org[k] for k in ("id", "name", "description", "nodeApprovalMode")},
                    "location": {"id": location["id"], "name": location["name"]},
                },
                "ipAddresses": [ip],
                "macAddresses": ["00:50:56:%02x:%02x:%02x" % (device_id >> 16 & 255, device_id >> 8 & 255, device_id & 255)],
                "publicIP": "203.0.113.7",
                "notes": [],
                "deviceType": "AGENT",
                "os": {"manufacturer": "Microsoft Corporation", "name": "Windows", "architecture": "64-bit",
                       "needsReboot": False},
                "system": {
                    "name": system_name,
                    "manufacturer": manufacturer,
                    "model": model,
                    "biosSerialNumber": serial,
                    "serialNumber": serial,
                    "assetSerialNumber": "",
                    "domain": dns_domain or "WORKGROUP",
                    "virtualMachine": False,
                    "chassisType": "DESKTOP" if "WORKSTATION" in node_class else "RACK_MOUNT",
                },
                "lastLoggedInUser": "",
            }  # fmt: skip
            self.devices[device_id] = device
            return device

    def add_alert(
        self,
        device_id: int,
        message: str,
        *,
        source_type: str = "CONDITION_AGENT_CPU",
        source_name: str = "",
        severity: str = "MAJOR",
        priority: str = "HIGH",
        age_seconds: float = 600.0,
        uid: str | None = None,
    ) -> str:
        """Trigger an alert on a device; return its uid."""
        with self.lock:
            uid = uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"ninjaone-sim/alert/{len(self.alerts) + len(self.resets)}/{device_id}/{message}"))
            created = time.time() - age_seconds
            self.alerts[uid] = {
                "uid": uid,
                "deviceId": device_id,
                "message": message,
                "createTime": round(created, 3),
                "updateTime": round(created + 60, 3),
                "sourceType": source_type,
                "sourceConfigUid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ninjaone-sim/condition/{source_type}")),
                "sourceName": source_name or source_type.replace("CONDITION_", "").replace("_", " ").title(),
                "subject": message,
                "userId": None,
                "psaTicketId": None,
                "ticketTemplateId": None,
                "data": {},
                "priority": priority,
                "severity": severity,
                "conditionName": source_name or source_type,
                "conditionHealthStatus": "UNHEALTHY",
                "useGlobalHealthStatus": False,
            }
            return uid

    def seed_demo(self) -> None:
        """Three organizations matching the demo PSA customers, with devices and active alerts."""
        # Acme 7 and Globex 9 are the organization ids the Hudu simulator's demo links to.
        acme = self.add_organization("Acme Corp", org_id=7, description="Manufacturing, 2 sites")["id"]
        globex = self.add_organization("Globex", org_id=9, description="Energy trading")["id"]
        initech = self.add_organization("Initech", org_id=12, description="Software, TPS reports")["id"]
        dc01 = self.add_device(acme, "ACME-DC01", "7XK2Q93", dns_domain="acme.local", node_class="WINDOWS_SERVER",
                               model="PowerEdge R650", ip="10.1.0.10")["id"]
        fs01 = self.add_device(acme, "ACME-FS01", "CZJ0123FS1", dns_domain="acme.local", node_class="WINDOWS_SERVER",
                               manufacturer="HPE", model="ProLiant DL380 Gen10", ip="10.1.0.11")["id"]
        self.add_device(acme, "ACME-WS014", "PF3K8Z2M", dns_domain="acme.local", offline=True,
                        manufacturer="Lenovo", model="ThinkCentre M70q", ip="10.1.2.14")
        sql01 = self.add_device(globex, "GLOBEX-SQL01", "MXQ9230F7K", dns_domain="globex.corp",
                                node_class="WINDOWS_SERVER", manufacturer="HPE", model="ProLiant DL360 Gen10",
                                ip="10.2.0.20")["id"]
        mac07 = self.add_device(globex, "GLOBEX-MAC07", "C02ZK1XYMD6R", node_class="MAC",
                                manufacturer="Apple Inc.", model="MacBook Pro", ip="10.2.3.7")["id"]
        app01 = self.add_device(initech, "INITECH-APP01", "J8TQ2M3", dns_domain="initech.lan",
                                node_class="LINUX_SERVER", model="PowerEdge R450", ip="10.3.0.30")["id"]
        ws022 = self.add_device(initech, "INITECH-WS022", "5CD2345LMN", dns_domain="initech.lan",
                                manufacturer="HP", model="EliteDesk 800 G6", ip="10.3.1.22")["id"]
        self.add_alert(dc01, "CPU utilization exceeded 90% for 5 minutes", severity="MAJOR", priority="HIGH")
        self.add_alert(fs01, "Disk D: free space is below 5%", source_type="CONDITION_AGENT_DISK_FREE_SPACE",
                       severity="CRITICAL", priority="HIGH", age_seconds=3600)
        self.add_alert(sql01, "Service MSSQLSERVER stopped", source_type="CONDITION_WINDOWS_SERVICE_STATE_CHANGED",
                       severity="MAJOR", priority="HIGH", age_seconds=1200)
        self.add_alert(mac07, "Reboot pending for 7 days", source_type="CONDITION_PENDING_REBOOT",
                       severity="MINOR", priority="LOW", age_seconds=86400)
        self.add_alert(ws022, "Device has been offline for 30 minutes", source_type="AGENT_OFFLINE",
                       severity="MODERATE", priority="MEDIUM", age_seconds=1800)
        self.add_alert(app01, "Backup script exited with code 2", source_type="CONDITION_SCRIPT_RESULT",
                       severity="MINOR", priority="MEDIUM", age_seconds=7200)  # fmt: skip

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "base_url": base_url,
            "settings": {"client_id": DEMO_CLIENT_ID, "scope": "monitoring management"},
            "secrets": {"client_secret": DEMO_CLIENT_SECRET},
        }

    # -- tokens -----------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Make every token issued so far stale, as an hour passing would."""
        with self.lock:
            self.tokens.clear()

    def _issue(self, scopes: frozenset[str]) -> dict[str, Any]:
        token = "sim_" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (time.time() + self.token_lifetime, scopes)
        self.count("tokens_issued")
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(scopes)),
        }

    def _scopes_of(self, request: Any) -> frozenset[str] | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        with self.lock:
            entry = self.tokens.get(token.strip())
        if entry is None or entry[0] <= time.time():
            return None
        return entry[1]

    # -- inspection ---------------------------------------------------------------------------

    def alert_exists(self, uid: str) -> bool:
        """Whether the alert is still active (listed by ``/v2/alerts``)."""
        with self.lock:
            return uid in self.alerts

    def reset_count(self, uid: str) -> int:
        """How many times a reset was applied to the alert (1 however often it was retried)."""
        with self.lock:
            return self.resets[uid]

    def alert_resolve_count(self, alert_id: str) -> int:
        """The conformance suite's name for ``reset_count``: a reset is NinjaOne's resolve."""
        return self.reset_count(alert_id)

    def sample_alert_id(self) -> str:
        """An active alert the conformance suite may resolve."""
        with self.lock:
            return next(iter(self.alerts))

    def organization_named(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(o for o in self.organizations.values() if o["name"] == name)

    def devices_of(self, org_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [d for d in self.devices.values() if d["organizationId"] == org_id]

    # -- the vendor's shapes --------------------------------------------------------------------

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        body = {"resultCode": "FAILURE", "errorMessage": message, "incidentId": _incident_id()}
        return status, msgspec.json.encode(body), {"content-type": "application/json"}

    # -- routes -----------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Response:
            if body is None:
                return Response(content=b"", status_code=status, headers=headers or {})
            return Response(
                content=msgspec.json.encode(body), status_code=status, media_type="application/json",
                headers=headers or {},
            )  # fmt: skip

        def failure(status: int, message: str) -> Response:
            code, body, headers = sim.error_response(status, message)
            return Response(content=body, status_code=code, headers=headers, media_type="application/json")

        def unauthenticated(request: Request, scope: str | None = None) -> Response | None:
            scopes = sim._scopes_of(request)
            if scopes is None:
                return answer(401, NOT_AUTHENTICATED)
            if scope and scope not in scopes:
                return failure(403, f"Missing OAuth scope: {scope}")
            return None

        def int_param(request: Request, name: str) -> int | None:
            raw = request.query_params.get(name)
            if raw in (None, ""):
                return None
            if not re.fullmatch(r"-?\d+", raw):
                raise ValueError(f"Invalid value for parameter {name}: {raw}")
            return int(raw)

        def after_page(request: Request, items: list[dict[str, Any]]) -> Response:
            try:
                size = int_param(request, "pageSize") or DEFAULT_PAGE_SIZE
                after = int_param(request, "after")
            except ValueError as exc:
                return failure(400, str(exc))
            ordered = sorted(items, key=lambda item: item["id"])
            if after is not None:
                ordered = [item for item in ordered if item["id"] > after]
            return answer(200, ordered[: max(1, size)])

        @post("/ws/oauth/token")
        async def token(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if "application/x-www-form-urlencoded" not in content_type:
                return answer(400, {"error": "invalid_request", "error_description": "Form body expected"})
            form = await request.form()
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = request.headers.get("authorization", "")
            if basic.lower().startswith("basic "):
                try:
                    client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                except ValueError:
                    return answer(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
            if form.get("grant_type") != "client_credentials":
                return answer(400, {"error": "unsupported_grant_type",
                                    "error_description": "Only client_credentials is served here"})
            with sim.lock:
                known = sim.clients.get(str(client_id or ""))
            if known is None or not secrets.compare_digest(known[0], str(secret or "")):
                return answer(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
            requested = frozenset(str(form.get("scope") or "monitoring").split())
            if "offline_access" in requested and sim.reject_offline_access:
                return answer(400, {"error": "invalid_scope",
                                    "error_description": "offline_access is not allowed for client_credentials"})
            if not requested <= known[1]:
                return answer(400, {"error": "invalid_scope", "error_description": "Invalid scope"})
            return answer(200, sim._issue(requested))  # fmt: skip

        @get("/v2/organizations", sync_to_thread=False)
        def organizations(request: Request) -> Response:
            if refused := unauthenticated(request):
                return refused
            with sim.lock:
                orgs = [{k: o[k] for k in ("id", "name", "description", "userData", "nodeApprovalMode")}
                        for o in sim.organizations.values()]  # fmt: skip
            return after_page(request, orgs)

        @get("/v2/organization/{org_id:str}", sync_to_thread=False)
        def organization(request: Request, org_id: FromPath[str]) -> Response:
            if refused := unauthenticated(request):
                return refused
            with sim.lock:
                org = sim.organizations.get(int(org_id)) if org_id.isdigit() else None
            return answer(200, org) if org else failure(404, "Organization not found")

        @get("/v2/organization/{org_id:str}/devices", sync_to_thread=False)
        def organization_devices(request: Request, org_id: FromPath[str]) -> Response:
            if refused := unauthenticated(request):
                return refused
            with sim.lock:
                if not org_id.isdigit() or int(org_id) not in sim.organizations:
                    return failure(404, "Organization not found")
                devices = [sim._basic(d) for d in sim.devices.values() if d["organizationId"] == int(org_id)]
            return after_page(request, devices)

        @get("/v2/devices", sync_to_thread=False)
        def devices(request: Request) -> Response:
            if refused := unauthenticated(request):
                return refused
            with sim.lock:
                found = [sim._basic(d) for d in sim._filtered(request.query_params.get("df"))]
            return after_page(request, found)

        @get("/v2/devices-detailed", sync_to_thread=False)
        def devices_detailed(request: Request) -> Response:
            if refused := unauthenticated(request):
                return refused
            with sim.lock:
                found = [{k: v for k, v in d.items() if k not in AGENT_ONLY_FIELDS}
                         for d in sim._filtered(request.query_params.get("df"))]  # fmt: skip
            return after_page(request, found)

        @get("/v2/devices/search", sync_to_thread=False)
        def search(request: Request) -> Response:
            if refused := unauthenticated(request):
                return refused
            query = request.query_params.get("q", "")
            try:
                limit = int_param(request, "limit") or 50
            except ValueError as exc:
                return failure(400, str(exc))
            return answer(200, {"query": query, "devices": sim._search(query)[:limit]})

        @get("/v2/device/{device_id:str}", sync_to_thread=False)
        def device(request: Request, device_id: FromPath[str]) -> Response:
            if refused := unauthenticated(request):
                return refused
            found = sim._device(device_id)
            return answer(200, found) if found else failure(404, "Device not found")

        @get("/v2/device/{device_id:str}/dashboard-url", sync_to_thread=False)
        def dashboard_url(request: Request, device_id: FromPath[str]) -> Response:
            if refused := unauthenticated(request):
                return refused
            if not sim._device(device_id):
                return failure(404, "Device not found")
            web = (sim.base_url or str(request.base_url)).rstrip("/")
            expires = time.time() + 300
            url = f"{web}/#/deviceDashboard/{device_id}/overview?linkToken={secrets.token_urlsafe(12)}"
            if request.query_params.get("redirect") == "true":
                return answer(302, None, {"location": url})
            return answer(200, {"url": url, "expires": expires})

        @get("/v2/queries/computer-systems", sync_to_thread=False)
        def computer_systems(request: Request) -> Response:
            if refused := unauthenticated(request):
                return refused
            try:
                size = int_param(request, "pageSize") or DEFAULT_PAGE_SIZE
            except ValueError as exc:
                return failure(400, str(exc))
            return sim._report_page(request.query_params.get("cursor"), request.query_params.get("df"), size,
                                    answer, failure)  # fmt: skip

        @get("/v2/alerts", sync_to_thread=False)
        def alerts(request: Request) -> Response:
            if refused := unauthenticated(request):
                return refused
            source_type = request.query_params.get("sourceType")
            with sim.lock:
                allowed = {d["id"] for d in sim._filtered(request.query_params.get("df"))}
                found = [sim._alert(a) for a in sim.alerts.values()
                         if a["deviceId"] in allowed and (not source_type or a["sourceType"] == source_type)]
            return answer(200, found)  # fmt: skip

        @get("/v2/device/{device_id:str}/alerts", sync_to_thread=False)
        def device_alerts(request: Request, device_id: FromPath[str]) -> Response:
            if refused := unauthenticated(request):
                return refused
            if not sim._device(device_id):
                return failure(404, "Device not found")
            with sim.lock:
                found = [sim._alert(a) for a in sim.alerts.values() if a["deviceId"] == int(device_id)]
            return answer(200, found)

        @delete("/v2/alert/{uid:str}", status_code=200, sync_to_thread=False)
        def reset_alert(request: Request, uid: FromPath[str]) -> Response:
            if refused := unauthenticated(request, "management"):
                return refused
            return sim._reset(uid, None, answer, failure)

        @post("/v2/alert/{uid:str}/reset", status_code=200)
        async def reset_alert_with_data(request: Request, uid: FromPath[str]) -> Response:
            if refused := unauthenticated(request, "management"):
                return refused
            raw = await request.body()
            try:
                data = msgspec.json.decode(raw) if raw else {}
            except msgspec.DecodeError:
                return failure(400, "Malformed JSON body")
            if not isinstance(data, dict):
                return failure(400, "Activity data must be a JSON object")
            return sim._reset(uid, data, answer, failure)

        return [
            token, organizations, organization, organization_devices, devices, devices_detailed, search, device,
            dashboard_url, computer_systems, alerts, device_alerts, reset_alert, reset_alert_with_data,
        ]  # fmt: skip

    # -- route helpers (call with the lock free) --------------------------------------------------

    def _basic(self, device: dict[str, Any]) -> dict[str, Any]:
        return {k: device[k] for k in BASIC_DEVICE_FIELDS if k in device}

    def _device(self, device_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.devices.get(int(device_id)) if device_id.isdigit() else None

    def _alert(self, alert: dict[str, Any]) -> dict[str, Any]:
        device = self.devices[alert["deviceId"]]
        return {**alert, "device": {k: device[k] for k in ALERT_DEVICE_FIELDS}}

    def _filtered(self, df: str | None) -> list[dict[str, Any]]:
        """Devices matching a device filter: ``org``, ``loc``, ``class``, ``status`` (``=`` or
        ``in (...)``), ``online``/``offline``, joined by AND. Other terms pass everything."""
        devices = list(self.devices.values())
        for term in re.split(r"\s+AND\s+", (df or "").strip(), flags=re.IGNORECASE):
            term = term.strip()
            if not term:
                continue
            if term.lower() in ("online", "offline"):
                devices = [d for d in devices if d["offline"] == (term.lower() == "offline")]
                continue
            match = re.fullmatch(r"(\w+)\s*(=|in)\s*\(?([^)]*)\)?", term, flags=re.IGNORECASE)
            if not match:
                continue
            field = {"org": "organizationId", "loc": "locationId", "class": "nodeClass", "status": "approvalStatus"}
            key = field.get(match.group(1).lower())
            if key is None:
                continue
            values = {v.strip().strip("'\"") for v in match.group(3).split(",")}
            devices = [d for d in devices if str(d[key]) in values]
        return devices

    def _search(self, query: str) -> list[dict[str, Any]]:
        """Devices whose names or IP addresses contain ``query``, best match first."""
        wanted = query.strip().casefold()
        if not wanted:
            return []
        found = []
        with self.lock:
            for device in self.devices.values():
                match = self._search_match(device, wanted)
                if match:
                    attr, value = match
                    score = 100 if value.casefold() == wanted else 50
                    found.append({**self._basic(device), "score": score, "matchAttr": attr, "matchAttrValue": value})
        return sorted(found, key=lambda d: -d["score"])

    @staticmethod
    def _search_match(device: dict[str, Any], wanted: str) -> tuple[str, str] | None:
        for attr in ("systemName", "displayName", "dnsName", "netbiosName", "ipAddresses"):
            values = device.get(attr)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, str) and wanted in value.casefold():
                    return attr, value
        return None

    def _report_page(self, cursor: str | None, df: str | None, size: int, answer: Any, failure: Any) -> Any:
        now = time.time()
        with self.lock:
            if cursor:
                state = self.cursors.get(cursor)
                if state is None or state["expires"] <= now:
                    return failure(400, "Cursor not found or expired")
            else:
                rows = [{**d["system"], "deviceId": d["id"], "timestamp": d["lastUpdate"]}
                        for d in sorted(self._filtered(df), key=lambda d: d["id"])]  # fmt: skip
                cursor = uuid.uuid4().hex
                state = {"rows": rows, "offset": 0, "expires": now + CURSOR_SECONDS}
                self.cursors[cursor] = state
            start = state["offset"]
            page = state["rows"][start : start + max(1, size)]
            state["offset"] = start + len(page)
            body = {
                "cursor": {"name": cursor, "offset": state["offset"], "count": len(page), "expires": state["expires"]},
                "results": page,
            }
        return answer(200, body)

    def _reset(self, uid: str, data: dict[str, Any] | None, answer: Any, failure: Any) -> Any:
        with self.lock:
            alert = self.alerts.pop(uid, None)
            if alert is None:
                return failure(404, "Alert not found")
            self.resets[uid] += 1
            self.activities.append(
                {"id": len(self.activities) + 1, "activityTime": time.time(), "deviceId": alert["deviceId"],
                 "seriesUid": uid, "activityType": "CONDITION", "statusCode": "RESET", "status": "RESET",
                 "sourceConfigUid": alert["sourceConfigUid"], "message": alert["message"], "data": data or {}}
            )  # fmt: skip
        self.count("alert_resets")
        return answer(204)
