"""An Atera API v3 simulator: the slice of the contract the plugin uses, served for real.

What it follows (``RMM_DOCS_CONTRACTS.md`` section 4 and its checklist in section 7, and the
spec's paths and schemas):

- every ``/api/v3`` call needs ``X-API-KEY``; a missing or unknown key gets **401 with an
  empty body** and no ``WWW-Authenticate`` (observed behaviour, contract section 4);
- other errors are ASP.NET ``ProblemDetails`` (``application/problem+json``), the shape the
  spec gives for 400 and 404;
- lists page with ``page`` (1-based) and ``itemsInPage`` (default 20, capped at 50) inside
  ``{"items", "page", "itemsInPage", "totalItemCount", "totalPages", "prevLink", "nextLink"}``,
  envelope keys camelCase, record fields PascalCase; a page past the end has no items;
- ``GET /api/v3/customers[/{id}]``, ``GET /api/v3/agents``, ``/agents/customer/{id}``,
  ``/agents/{agentId}``, ``/agents/machine/{machineName}``;
- ``GET /api/v3/alerts?alertStatus=Open|Resolved|Snoozed``, ``GET /api/v3/alerts/{id}``
  (404 ProblemDetails when unknown), ``PUT /api/v3/alerts/{id}`` = resolve (204, the alert is
  archived: ``Archived`` true, ``ArchivedDate`` set), ``DELETE`` removes the alert (204);
- the console page an agent's ``AppViewUrl`` points at, so demo links open something;
- faults (5xx, 429 + Retry-After, drops) come from the base ``Simulator``.

Assumed, with no source (see the README): the 50 cap on ``itemsInPage``, 404 for an unknown
agent or for a resolve of an unknown alert, 400 for a resolve of an alert already resolved,
every alert listed when ``alertStatus`` is left out, and a ProblemDetails body on 429 and 5xx.
"""

from __future__ import annotations

import html
import secrets
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, delete, get, put
from litestar.params import FromPath

from gateway.testing.simulator import Faults, Simulator

DEMO_API_KEY = "demo-atera-api-key-0c6b1f7e2a9d4e51"
DEFAULT_ITEMS_IN_PAGE = 20  # spec
MAX_ITEMS_IN_PAGE = 50  # reported by third-party clients [UNVERIFIED]; assumed here
ALERT_STATUSES = ("Open", "Resolved", "Snoozed")
PROBLEM_TYPES = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    403: ("https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "An error occurred while processing your request."),
    502: ("https://tools.ietf.org/html/rfc9110#section-15.6.3", "Bad Gateway"),
    503: ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
}


def atera_time(moment: datetime) -> str:
    """A date-time as Atera's example shows them: ISO 8601 without an offset (UTC here)."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()


class AteraSimulator(Simulator):
    """Atera's API v3 for tests, the demo and benchmarks."""

    vendor = "atera"

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self._empty()

    def clear(self) -> None:
        """Forget every record, fault and count: a fresh account with only the demo key
        (lets one running server serve many tests)."""
        with self.lock:
            self.set_faults(Faults())
            self.stats.clear()
            self._empty()

    def _empty(self) -> None:
        self.api_keys: set[str] = {DEMO_API_KEY}
        self.customers: dict[int, dict[str, Any]] = {}
        self.agents: dict[int, dict[str, Any]] = {}
        self.alerts: dict[int, dict[str, Any]] = {}
        self.resolves: Counter[int] = Counter()
        self.max_items_in_page = MAX_ITEMS_IN_PAGE
        self._next_customer = 1
        self._next_agent = 501
        self._next_alert = 9801

    # -- records ----------------------------------------------------------------------------

    def add_customer(self, name: str, *, customer_id: int | None = None, domain: str = "") -> dict[str, Any]:
        """A customer with the ``CustomerDto`` fields."""
        with self.lock:
            customer_id = customer_id or self._next_customer
            self._next_customer = max(self._next_customer, customer_id + 1)
            created = datetime.now(timezone.utc) - timedelta(days=400)
            customer = {
                "CustomerID": customer_id, "CustomerName": name, "CreatedOn": atera_time(created),
                "LastModified": atera_time(created + timedelta(days=30)), "BusinessNumber": None,
                "Domain": domain or None, "Address": None, "City": None, "State": None, "Country": None,
                "Phone": None, "Fax": None, "Notes": None, "Logo": None, "Links": None, "Longitude": None,
                "Latitude": None, "ZipCodeStr": None,
            }  # fmt: skip
            self.customers[customer_id] = customer
            return customer

    def add_agent(
        self,
        customer_id: int,
        machine_name: str,
        serial: str | None,
        *,
        domain: str = "WORKGROUP",
        online: bool = True,
        os_name: str = "Windows 11 Pro",
        os_type: str = "Work Station",
        vendor: str = "Dell Inc.",
        model: str = "OptiPlex 7090",
        ip: str = "10.0.0.10",
        with_link: bool = True,
        last_seen_minutes: float = 1.0,
    ) -> dict[str, Any]:
        """An agent of ``customer_id`` with the ``AgentDto`` fields the plugin reads and the
        usual hardware ones; ``with_link=False`` leaves ``AppViewUrl`` null."""
        with self.lock:
            agent_id = self._next_agent
            self._next_agent += 1
            guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"atera-sim/agent/{agent_id}/{machine_name}"))
            now = datetime.now(timezone.utc)
            customer = self.customers[customer_id]
            agent = {
                "MachineID": secrets.token_hex(16), "AgentID": agent_id, "DeviceGuid": guid, "FolderID": 1,
                "FolderName": "Default", "CustomerID": customer_id, "CustomerName": customer["CustomerName"],
                "AgentName": machine_name, "SystemName": machine_name, "MachineName": machine_name,
                "DomainName": domain, "CurrentLoggedUsers": "", "ComputerDescription": "", "Monitored": True,
                "AgentVersion": "2.0.1.63", "Favorite": False, "ThresholdID": 1, "MonitoredAgentID": agent_id,
                "Created": atera_time(now - timedelta(days=200)), "Modified": atera_time(now - timedelta(hours=2)),
                "Online": online, "LastSeen": atera_time(now - timedelta(minutes=last_seen_minutes)),
                "ReportedFromIP": "203.0.113.20", "AppViewUrl": None, "Motherboard": f"{vendor} 0K9C4R",
                "Processor": "Intel(R) Core(TM) i7-11700 CPU @ 2.50GHz", "Memory": 16384, "Display": "",
                "Sound": "", "ProcessorCoresCount": 8, "SystemDrive": "C:", "ProcessorClock": "2496",
                "Vendor": vendor, "VendorSerialNumber": serial, "VendorBrandModel": model, "ProductName": model,
                "BiosManufacturer": vendor, "BiosVersion": "1.14.0", "BiosReleaseDate": None,
                "MacAddresses": ["00-50-56-%02X-%02X-%02X" % (agent_id >> 16 & 255, agent_id >> 8 & 255, agent_id & 255)],
                "IpAddresses": [ip], "HardwareDisks": [], "BatteryInfo": None, "OS": os_name, "OSType": os_type,
                "WindowsSerialNumber": "00330-80000-00000-AA" + str(agent_id)[-3:], "Office": None,
                "OfficeSP": None, "OfficeOEM": None, "OfficeSerialNumber": None, "OSNum": 10.0,
                "LastRebootTime": atera_time(now - timedelta(days=3)), "OSVersion": "10.0.22631",
                "OSBuild": "22631", "OfficeFullVersion": None, "LastLoginUser": "", "DeviceType": "Agent",
            }  # fmt: skip
            agent["_with_link"] = with_link
            self.agents[agent_id] = agent
            return agent

    def add_alert(
        self,
        agent_id: int | None,
        title: str,
        *,
        customer_id: int | None = None,
        severity: str = "Warning",
        category: str = "General",
        age_minutes: float = 10.0,
        snoozed_minutes: float | None = None,
        archived: bool = False,
        device_name: str = "",
        device_type: str = "Agent",
    ) -> int:
        """Raise an alert on an agent (or, with ``agent_id`` None, on a network device of
        ``customer_id``); return its ``AlertID``."""
        with self.lock:
            alert_id = self._next_alert
            self._next_alert += 1
            now = datetime.now(timezone.utc)
            agent = self.agents.get(agent_id) if agent_id is not None else None
            customer_id = agent["CustomerID"] if agent else customer_id
            customer = self.customers[customer_id] if customer_id is not None else None
            self.alerts[alert_id] = {
                "AlertID": alert_id, "Code": 0, "Source": "Agent" if agent else device_type, "Title": title,
                "Severity": severity, "Created": atera_time(now - timedelta(minutes=age_minutes)),
                "SnoozedEndDate": atera_time(now + timedelta(minutes=snoozed_minutes)) if snoozed_minutes else None,
                "DeviceGuid": agent["DeviceGuid"] if agent else str(uuid.uuid5(uuid.NAMESPACE_URL, f"atera-sim/{title}")),
                "AgentId": agent_id if agent else None, "AdditionalInfo": "", "Archived": archived,
                "AlertCategoryID": category, "ArchivedDate": atera_time(now) if archived else None, "TicketID": None,
                "AlertMessage": title, "DeviceName": agent["MachineName"] if agent else device_name,
                "CustomerID": customer_id, "CustomerName": customer["CustomerName"] if customer else None,
                "FolderID": 1, "PollingCyclesCount": 1, "DeviceType": "Agent" if agent else device_type,
            }  # fmt: skip
            return alert_id

    def seed_demo(self) -> None:
        """Acme Corp, Globex and Initech (the demo PSA customers) with agents and open alerts,
        plus one resolved and one snoozed alert that the open list must leave out."""
        acme = self.add_customer("Acme Corp", customer_id=12, domain="acme.example")["CustomerID"]
        globex = self.add_customer("Globex", customer_id=14, domain="globex.example")["CustomerID"]
        initech = self.add_customer("Initech", customer_id=17, domain="initech.example")["CustomerID"]
        srv01 = self.add_agent(acme, "ACME-SRV01", "4HXQ7M3", domain="acme.local", os_name="Windows Server 2022 Standard",
                               os_type="Server", model="PowerEdge R550", ip="10.1.0.5")["AgentID"]
        lt023 = self.add_agent(acme, "ACME-LT023", "PF4B2K9Q", domain="acme.local", vendor="LENOVO",
                               model="ThinkPad T14 Gen 3", ip="10.1.4.23")["AgentID"]
        self.add_agent(acme, "ACME-WS007", "To Be Filled By O.E.M.", domain="acme.local", online=False,
                       vendor="ASRock", model="B660M Pro RS", ip="10.1.2.7", last_seen_minutes=4320)
        dc02 = self.add_agent(globex, "GLOBEX-DC02", "CZ2140R0LM", domain="globex.corp",
                              os_name="Windows Server 2019 Standard", os_type="Domain Controller", vendor="HPE",
                              model="ProLiant DL360 Gen10", ip="10.2.0.2")["AgentID"]
        pc114 = self.add_agent(globex, "GLOBEX-PC114", "5CG2231XYZ", domain="globex.corp", vendor="HP",
                               model="EliteBook 840 G8", ip="10.2.5.114", with_link=False)["AgentID"]
        fs01 = self.add_agent(initech, "INITECH-FS01", "J7RTQ42", domain="initech.lan",
                              os_name="Windows Server 2022 Standard", os_type="Server", model="PowerEdge T350",
                              ip="10.3.0.11")["AgentID"]
        lt042 = self.add_agent(initech, "INITECH-LT042", "PC2ZK8M1", vendor="LENOVO", model="ThinkPad X1 Carbon",
                               ip="10.3.6.42")["AgentID"]
        self.add_alert(srv01, "Disk Space Critical", severity="Critical", category="Disk", age_minutes=45)
        self.add_alert(lt023, "CPU usage above 90% for 15 minutes", severity="Warning", category="Performance")
        self.add_alert(srv01, "Windows Update failed", severity="Information", archived=True, age_minutes=2880)
        self.add_alert(dc02, "Service 'DNS Server' stopped", severity="Critical", category="Availability",
                       age_minutes=20)
        self.add_alert(pc114, "Low memory", severity="Warning", category="Performance", age_minutes=90)
        self.add_alert(dc02, "Pending reboot", severity="Information", snoozed_minutes=240, age_minutes=600)
        self.add_alert(fs01, "Backup job failed", severity="Critical", category="General", age_minutes=300)
        self.add_alert(lt042, "Agent has not reported for 30 minutes", severity="Warning",
                       category="Availability", age_minutes=35)
        self.add_alert(None, "Printer toner low", customer_id=initech, severity="Information",
                       category="Hardware", device_name="INITECH-PRN01", device_type="SNMP")  # fmt: skip

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "base_url": f"{base_url.rstrip('/')}/api/v3",
            "settings": {},
            "secrets": {"api_key": DEMO_API_KEY},
        }

    # -- inspection ---------------------------------------------------------------------------

    def sample_alert_id(self) -> str:
        """An open alert the conformance tests may resolve."""
        with self.lock:
            return str(next(i for i, a in self.alerts.items() if self._status(a) == "Open"))

    def open_alert_ids(self) -> list[str]:
        with self.lock:
            return [str(i) for i, a in self.alerts.items() if self._status(a) == "Open"]

    def alert_resolved(self, alert_id: str | int) -> bool:
        """Whether Atera shows the alert archived (resolved)."""
        with self.lock:
            alert = self.alerts.get(int(alert_id))
            return bool(alert and alert["Archived"])

    def alert_exists(self, alert_id: str) -> bool:
        """Whether the alert is still open (the conformance suite's question)."""
        with self.lock:
            alert = self.alerts.get(int(alert_id))
            return bool(alert and self._status(alert) == "Open")

    def alert_resolve_count(self, alert_id: str) -> int:
        return self.resolve_count(alert_id)

    def resolve_count(self, alert_id: str | int) -> int:
        """How many resolves were applied to the alert (1 however often one was retried)."""
        with self.lock:
            return self.resolves[int(alert_id)]

    def customer_named(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(c for c in self.customers.values() if c["CustomerName"] == name)

    def agents_of(self, customer_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self._agent(a) for a in self.agents.values() if a["CustomerID"] == customer_id]

    def agent_named(self, machine_name: str) -> dict[str, Any]:
        with self.lock:
            return self._agent(next(a for a in self.agents.values() if a["MachineName"] == machine_name))

    # -- the vendor's shapes --------------------------------------------------------------------

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        if status == 401:  # Atera: an empty body, no WWW-Authenticate
            return 401, b"", {}
        kind, title = PROBLEM_TYPES.get(status, ("about:blank", "Error"))
        body = {"type": kind, "title": title, "status": status, "detail": message,
                "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"}  # fmt: skip
        return status, msgspec.json.encode(body), {"content-type": "application/problem+json"}

    # -- routes -----------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        def answer(status: int, body: Any = None) -> Response:
            if body is None:
                return Response(content=b"", status_code=status)
            return Response(content=msgspec.json.encode(body), status_code=status, media_type="application/json")

        def problem(status: int, detail: str) -> Response:
            code, body, headers = sim.error_response(status, detail)
            return Response(content=body, status_code=code, headers=headers, media_type=headers.get("content-type"))

        def refused(request: Request) -> Response | None:
            key = request.headers.get("x-api-key", "")
            with sim.lock:
                known = any(secrets.compare_digest(key, k) for k in sim.api_keys)
            return None if key and known else answer(401)

        def number(value: str) -> int | None:
            return int(value) if value.isascii() and value.isdigit() and int(value) < 2**63 else None

        def paged(request: Request, items: list[dict[str, Any]]) -> Response:
            query = request.query_params
            try:
                page = int(query.get("page") or 1)
                size = int(query.get("itemsInPage") or DEFAULT_ITEMS_IN_PAGE)
            except ValueError:
                return problem(400, "One or more validation errors occurred: page and itemsInPage are integers.")
            page = max(1, page)
            size = min(max(1, size), sim.max_items_in_page)
            total = len(items)
            pages = (total + size - 1) // size
            chunk = items[(page - 1) * size : page * size]
            origin = (sim.base_url or str(request.base_url)).rstrip("/")
            others = {k: v for k, v in query.items() if k not in ("page", "itemsInPage")}

            def link(to: int) -> str:
                return f"{origin}{request.url.path}?{urlencode({**others, 'itemsInPage': size, 'page': to})}"

            body = {
                "items": chunk, "page": page, "itemsInPage": size, "totalItemCount": total, "totalPages": pages,
                "prevLink": link(page - 1) if page > 1 else "", "nextLink": link(page + 1) if page < pages else "",
            }  # fmt: skip
            return answer(200, body)

        @get("/api/v3/customers", sync_to_thread=False)
        def customers(request: Request) -> Response:
            if denied := refused(request):
                return denied
            with sim.lock:
                found = [dict(c) for _, c in sorted(sim.customers.items())]
            return paged(request, found)

        @get("/api/v3/customers/{customer_id:str}", sync_to_thread=False)
        def customer(request: Request, customer_id: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            with sim.lock:
                found = sim.customers.get(number(customer_id) or -1)
            return answer(200, dict(found)) if found else problem(404, "Customer not found")

        @get("/api/v3/agents", sync_to_thread=False)
        def agents(request: Request) -> Response:
            if denied := refused(request):
                return denied
            with sim.lock:
                found = [sim._agent(a) for _, a in sorted(sim.agents.items())]
            return paged(request, found)

        @get("/api/v3/agents/customer/{customer_id:str}", sync_to_thread=False)
        def customer_agents(request: Request, customer_id: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            wanted = number(customer_id)
            if wanted is None:
                return problem(400, f"The value '{customer_id}' is not valid for customerId.")
            with sim.lock:
                found = [sim._agent(a) for _, a in sorted(sim.agents.items()) if a["CustomerID"] == wanted]
            return paged(request, found)

        @get("/api/v3/agents/machine/{machine_name:str}", sync_to_thread=False)
        def machine_agents(request: Request, machine_name: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            wanted = machine_name.casefold()
            with sim.lock:
                found = [sim._agent(a) for _, a in sorted(sim.agents.items())
                         if (a["MachineName"] or "").casefold() == wanted]  # fmt: skip
            return paged(request, found)

        @get("/api/v3/agents/{agent_id:str}", sync_to_thread=False)
        def agent(request: Request, agent_id: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            wanted = number(agent_id)
            if wanted is None:
                return problem(400, f"The value '{agent_id}' is not valid for agentId.")
            with sim.lock:
                found = sim.agents.get(wanted)
                body = sim._agent(found) if found else None
            return answer(200, body) if body else problem(404, "Agent not found")

        @get("/api/v3/alerts", sync_to_thread=False)
        def alerts(request: Request) -> Response:
            if denied := refused(request):
                return denied
            status = request.query_params.get("alertStatus")
            if status and status not in ALERT_STATUSES:
                return problem(400, f"The value '{status}' is not valid for alertStatus.")
            with sim.lock:
                found = [dict(a) for _, a in sorted(sim.alerts.items()) if not status or sim._status(a) == status]
            return paged(request, found)

        @get("/api/v3/alerts/{alert_id:str}", sync_to_thread=False)
        def alert(request: Request, alert_id: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            wanted = number(alert_id)
            if wanted is None:
                return problem(400, f"The value '{alert_id}' is not valid for alertId.")
            with sim.lock:
                found = sim.alerts.get(wanted)
                body = dict(found) if found else None
            return answer(200, body) if body else problem(404, f"Alert {alert_id} was not found")

        @put("/api/v3/alerts/{alert_id:str}", status_code=200, sync_to_thread=False)
        def resolve(request: Request, alert_id: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            wanted = number(alert_id)
            if wanted is None:
                return problem(400, f"The value '{alert_id}' is not valid for alertId.")
            with sim.lock:
                found = sim.alerts.get(wanted)
                if found is None:
                    return problem(404, f"Alert {alert_id} was not found")
                if found["Archived"]:
                    return problem(400, f"Alert {alert_id} is already resolved")
                found["Archived"] = True
                found["ArchivedDate"] = atera_time(datetime.now(timezone.utc))
                found["SnoozedEndDate"] = None
                sim.resolves[wanted] += 1
            sim.count("alert_resolves")
            return answer(204)

        @delete("/api/v3/alerts/{alert_id:str}", status_code=200, sync_to_thread=False)
        def remove(request: Request, alert_id: FromPath[str]) -> Response:
            if denied := refused(request):
                return denied
            wanted = number(alert_id)
            with sim.lock:
                found = sim.alerts.pop(wanted, None) if wanted is not None else None
            return answer(204) if found else problem(400, f"Alert {alert_id} could not be deleted")

        @get("/new/rmm/device/{guid:str}/agent", sync_to_thread=False)
        def console_page(guid: FromPath[str]) -> Response:
            with sim.lock:
                found = next((a for a in sim.agents.values() if a["DeviceGuid"] == guid), None)
            if found is None:
                return Response(content=b"<h1>Device not found</h1>", status_code=404, media_type="text/html")
            page = (f"<h1>{html.escape(found['MachineName'])}</h1><p>{html.escape(found['CustomerName'])} - "
                    f"{'online' if found['Online'] else 'offline'} - serial "
                    f"{html.escape(str(found['VendorSerialNumber']))}</p>")  # fmt: skip
            return Response(content=page.encode(), status_code=200, media_type="text/html")

        return [customers, customer, agents, customer_agents, machine_agents, agent, alerts, alert, resolve, remove,
                console_page]  # fmt: skip

    # -- route helpers (call with the lock held) ------------------------------------------------

    def _agent(self, agent: dict[str, Any]) -> dict[str, Any]:
        """The agent as Atera serves it; ``AppViewUrl`` points at this server's console page."""
        body = {k: v for k, v in agent.items() if not k.startswith("_")}
        if agent.get("_with_link"):
            body["AppViewUrl"] = f"{(self.base_url or 'https://app.atera.com').rstrip('/')}/new/rmm/device/{agent['DeviceGuid']}/agent"
        return body

    @staticmethod
    def _status(alert: dict[str, Any]) -> str:
        if alert["Archived"]:
            return "Resolved"
        snoozed = alert.get("SnoozedEndDate")
        if snoozed and datetime.fromisoformat(snoozed).replace(tzinfo=timezone.utc) > datetime.now(timezone.utc):
            return "Snoozed"
        return "Open"
