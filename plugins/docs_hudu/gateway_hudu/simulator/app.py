"""A Hudu API v1 simulator: companies and knowledge-base articles, served the way Hudu does.

What it reproduces (spec ``hudu_api_v1_swagger__v2.44.0.json`` and contract section 2):

- ``x-api-key`` on every call under ``/api/v1``; a missing or unknown key gets
  ``401 {"error": "Unauthorized"}``. Keys may be scoped to some companies.
- ``GET /companies`` and ``GET /articles`` wrapped (``{"companies": [...]}``), paged with
  ``page`` (1-based, a page past the end is empty) and ``page_size`` (default 25; the
  simulator can be told to ignore it, as Hudu 2.45 was seen to), with the spec's filters
  (``id_in_integration``, ``company_id``...).
- ``GET /companies/{id}`` -> ``{"company": ...}`` or ``404 {"error": "Company not found"}``;
  ``GET /articles/{id}`` -> ``{"article": ...}`` or ``200 null`` (the live quirk).
- ``GET /companies/jump``: 302 to the company page, 406 for ``Accept: application/json``.
- Rack::Attack's throttle: a request budget per fixed 5-minute window (epoch-aligned); over it,
  ``429 text/plain "Retry later\\n"``, with Retry-After only when switched on. Settable with
  ``set_window_budget`` or ``POST /_sim/hudu/window``.
- The base fault switches; their 429s use the same ``Retry later`` body.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.testing.simulator import Faults, Simulator
from gateway_hudu.constants import API_KEY_SETTING, PAGE_SIZE, RATE_WINDOW_SECONDS, REQUESTS_PER_WINDOW

DEMO_API_KEY = "hudu-demo-key-4f1c9a7e2b"
HUDU_VERSION = "2.44.0"
CREATED_AT = "2026-05-01T10:00:00.000Z"
UPDATED_AT = "2026-06-02T08:30:00.000Z"
# The largest page_size the simulator honours; HuduAPI asks for up to 1000.
MAX_PAGE_SIZE = 1000

# Demo NinjaOne organization ids for the cross-linked companies (NinjaOne's contract example
# puts Acme at organization 7); pass others to ``seed_demo`` to match a NinjaOne simulator.
DEMO_NINJA_ORG_IDS = {"Acme Corp": 7, "Globex": 9}


class WindowSettings(msgspec.Struct, omit_defaults=True):
    """The throttle: at most ``budget`` requests per ``seconds`` window (``None``: no limit)."""

    budget: int | None = REQUESTS_PER_WINDOW
    seconds: float = float(RATE_WINDOW_SECONDS)
    retry_after_header: bool = False


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _token(*parts: object, length: int) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


class HuduSimulator(Simulator):
    """An in-memory Hudu instance. Records are plain dicts in Hudu's field names."""

    vendor = "hudu"

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        api_key: str = DEMO_API_KEY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(faults)
        self.api_key = api_key
        # API key -> company ids it may see (None: every company).
        self.api_keys: dict[str, frozenset[int] | None] = {api_key: None}
        self.clock = clock
        self.companies: dict[int, dict[str, Any]] = {}
        self.articles: dict[int, dict[str, Any]] = {}
        self._company_ids = itertools.count(1)
        self._article_ids = itertools.count(1)
        self._integration_ids = itertools.count(1)
        # Hudu 2.45 was seen ignoring page_size (node-hudu envelope sweep, finding F11).
        self.honour_page_size = True
        # "absolute" (what the contract checklist expects) or "relative" (a path to join).
        self.article_urls = "absolute"
        self.window = WindowSettings()
        self._window_index = -1
        self._window_count = 0

    # -- set-up ------------------------------------------------------------------------------

    def add_api_key(self, key: str, company_ids: Iterable[int] | None = None) -> None:
        """Accept another key, optionally scoped to some companies (Hudu's company scoping)."""
        with self.lock:
            self.api_keys[key] = frozenset(company_ids) if company_ids is not None else None

    def set_window_budget(
        self, budget: int | None, *, seconds: float = RATE_WINDOW_SECONDS, retry_after_header: bool = False
    ) -> None:
        """Allow ``budget`` requests per ``seconds`` window; the next one gets 429 Retry later."""
        with self.lock:
            self.window = WindowSettings(budget=budget, seconds=seconds, retry_after_header=retry_after_header)
            self._window_index = -1
            self._window_count = 0

    def add_company(
        self,
        name: str,
        *,
        integrations: Iterable[tuple[str, int | str]] = (),
        archived: bool = False,
        id_number: str | None = None,
    ) -> int:
        """Add a company; ``integrations`` are ``(slug, id in that tool)`` pairs (``("ninja", 7)``):
        a number becomes the matcher's ``sync_id``, a string its ``identifier``."""
        with self.lock:
            company_id = next(self._company_ids)
            slug = f"{_slugify(name)}-{_token('company', company_id, length=6)}"
            self.companies[company_id] = {
                "id": company_id,
                "slug": slug,
                "name": name,
                "nickname": None,
                "address_line_1": f"{company_id} Main Street",
                "address_line_2": None,
                "city": "Springfield",
                "state": "IL",
                "zip": "62701",
                "country_name": "United States",
                "phone_number": f"555-01{company_id:02d}",
                "company_type": None,
                "parent_company_id": None,
                "parent_company_name": None,
                "fax_number": "",
                "website": f"https://{_slugify(name)}.example",
                "notes": "",
                "archived": archived,
                "object_type": "Company",
                "id_number": id_number or f"C-{company_id:04d}",
                "created_at": CREATED_AT,
                "updated_at": UPDATED_AT,
                "integrations": [
                    self._integration(tool, external, company_id, name) for tool, external in integrations
                ],
            }
            return company_id

    def _integration(self, slug: str, external: int | str, company_id: int, company_name: str) -> dict[str, Any]:
        numeric = isinstance(external, int)
        return {
            "id": next(self._integration_ids),
            "integrator_id": int(_token("integrator", slug, length=4), 16) % 1000,
            "integrator_name": slug,
            "sync_id": external if numeric else None,
            "identifier": None if numeric else external,
            "name": company_name,
            "potential_company_id": None,
            "company_id": company_id,
            "company_name": company_name,
        }

    def add_article(
        self,
        name: str,
        company_id: int | None,
        *,
        content: str = "",
        draft: bool = False,
        enable_sharing: bool = False,
        folder_id: int | None = None,
    ) -> int:
        """Add a knowledge-base article; ``company_id=None`` makes it a global article."""
        with self.lock:
            article_id = next(self._article_ids)
            self.articles[article_id] = {
                "id": article_id,
                "slug": f"{_slugify(name)}-{_token('article', article_id, length=6)}",
                "name": name,
                "draft": draft,
                "content": content or f"<h1>{name}</h1><p>Steps.</p>",
                "object_type": "Article",
                "folder_id": folder_id,
                "enable_sharing": enable_sharing,
                "share_token": _token("share", article_id, length=24),
                "company_id": company_id,
                "created_at": CREATED_AT,
                "updated_at": UPDATED_AT,
                "public_photos": [],
            }
            return article_id

    def seed_demo(self, ninja_org_ids: dict[str, int] | None = None) -> None:
        """Acme Corp and Globex linked to NinjaOne organizations, Initech not; each with
        runbook articles, plus one global article and one draft."""
        orgs = DEMO_NINJA_ORG_IDS if ninja_org_ids is None else ninja_org_ids
        acme_links: list[tuple[str, int | str]] = [("cw_manage", 250)]
        globex_links: list[tuple[str, int | str]] = []
        if "Acme Corp" in orgs:
            acme_links.insert(0, ("ninja", orgs["Acme Corp"]))
        if "Globex" in orgs:
            globex_links.append(("ninja", orgs["Globex"]))
        initech_links: list[tuple[str, int | str]] = [("autotask", "INITECH-01")]
        if "Initech" in orgs:
            initech_links.append(("ninja", orgs["Initech"]))

        acme = self.add_company("Acme Corp", integrations=acme_links)
        globex = self.add_company("Globex", integrations=globex_links)
        initech = self.add_company("Initech", integrations=initech_links)
        self.add_article("Reset the site-to-site VPN tunnel", acme, folder_id=1)
        self.add_article("Onboard a new user", acme, folder_id=1, enable_sharing=True)
        self.add_article("Restore the file share from backup", acme, folder_id=2)
        self.add_article("Restart the print spooler on PRN01", globex)
        self.add_article("Recover a deleted Exchange Online mailbox", globex, enable_sharing=True)
        self.add_article("Restart the TPS report server", initech)
        self.add_article("Badge system outage", initech)
        self.add_article("Firewall migration plan", initech, draft=True)
        self.add_article("MSP escalation policy", None)

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"vendor": "hudu", "base_url": base_url, "settings": {}, "secrets": {API_KEY_SETTING: self.api_key}}

    # -- inspection ----------------------------------------------------------------------------

    def company_id(self, name: str) -> int:
        """The id of the company called ``name``."""
        with self.lock:
            return next(c["id"] for c in self.companies.values() if c["name"] == name)

    def article_ids(self, company_id: int | None) -> list[int]:
        """Ids of the company's articles (``None``: global articles), drafts included."""
        with self.lock:
            return [a["id"] for a in self.articles.values() if a["company_id"] == company_id]

    # -- the vendor's shapes -----------------------------------------------------------------------

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        if status == 429:
            # Rack::Attack's default throttled response.
            return 429, b"Retry later\n", {"content-type": "text/plain"}
        if status >= 500:
            # Rails' public/500.html, as a Hudu instance in production answers.
            body = b"<html><body><h1>We're sorry, but something went wrong.</h1></body></html>"
            return status, body, {"content-type": "text/html; charset=utf-8"}
        body = msgspec.json.encode({"error": message})
        return status, body, {"content-type": "application/json; charset=utf-8"}

    def _window_wait(self) -> float | None:
        """Count a request in the current window; seconds until the next one if over budget."""
        with self.lock:
            window = self.window
            now = self.clock()
            index = int(now // window.seconds)
            if index != self._window_index:
                self._window_index, self._window_count = index, 0
            self._window_count += 1  # Rack::Attack counts throttled requests too
            if window.budget is not None and self._window_count > window.budget:
                return window.seconds - (now % window.seconds)
        return None

    # -- JSON views ------------------------------------------------------------------------------

    def _company_json(self, company: dict[str, Any], host: str) -> dict[str, Any]:
        path = f"/c/{company['slug']}"
        return {
            **company,
            "url": path,
            "full_url": host + path,
            "passwords_url": f"{path}/passwords",
            "knowledge_base_url": f"{path}/articles",
            "integrations": [dict(i) for i in company["integrations"]],
        }

    def _article_json(self, article: dict[str, Any], host: str) -> dict[str, Any]:
        view = {k: v for k, v in article.items() if k != "share_token"}
        path = f"/kb/{article['slug']}"
        view["url"] = path if self.article_urls == "relative" else host + path
        view["share_url"] = f"{host}/shared_article/{article['share_token']}" if article["enable_sharing"] else None
        return view

    def _page(self, rows: list[Any], page: int | None, page_size: int | None) -> list[Any]:
        size = PAGE_SIZE
        if self.honour_page_size and page_size and page_size > 0:
            size = min(page_size, MAX_PAGE_SIZE)
        start = (max(1, page or 1) - 1) * size
        return rows[start : start + size]

    @staticmethod
    def _visible(scope: frozenset[int] | None, company_id: int | None) -> bool:
        return scope is None or (company_id is not None and company_id in scope)

    # -- routes ----------------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        def json_response(value: Any, status: int = 200) -> Response[bytes]:
            return Response(content=msgspec.json.encode(value), status_code=status, media_type="application/json")

        def error(status: int, message: str) -> Response[bytes]:
            code, body, headers = sim.error_response(status, message)
            return Response(content=body, status_code=code, headers=headers, media_type=headers["content-type"])

        def host_of(request: Request) -> str:
            return str(request.base_url).rstrip("/")

        def gate(request: Request) -> Response[bytes] | None:
            wait = sim._window_wait()
            if wait is not None:
                sim.count("throttled")
                response = error(429, "Retry later")
                if sim.window.retry_after_header:
                    response.headers["retry-after"] = str(math.ceil(wait))
                return response
            key = request.headers.get("x-api-key") or ""
            with sim.lock:
                if key not in sim.api_keys:
                    sim.count("unauthorized")
                    return error(401, "Unauthorized")
                request.state.hudu_scope = sim.api_keys[key]
            return None

        @get("/api_info", sync_to_thread=False)
        def api_info() -> Response[bytes]:
            return json_response({"version": HUDU_VERSION, "date": "2026-06-01"})

        @get("/companies", sync_to_thread=False)
        def list_companies(
            request: Request,
            page: FromQuery[int | None] = None,
            page_size: FromQuery[int | None] = None,
            name: FromQuery[str | None] = None,
            search: FromQuery[str | None] = None,
            slug: FromQuery[str | None] = None,
            id_number: FromQuery[str | None] = None,
            id_in_integration: FromQuery[str | None] = None,
        ) -> Response[bytes]:
            scope = request.state.hudu_scope
            host = host_of(request)
            with sim.lock:
                rows = [c for c in sim.companies.values() if sim._visible(scope, c["id"])]
                if name is not None:
                    rows = [c for c in rows if c["name"].lower() == name.lower()]
                if search is not None:
                    rows = [c for c in rows if search.lower() in c["name"].lower()]
                if slug is not None:
                    rows = [c for c in rows if c["slug"] == slug]
                if id_number is not None:
                    rows = [c for c in rows if c["id_number"] == id_number]
                if id_in_integration is not None:
                    rows = [
                        c
                        for c in rows
                        if any(
                            id_in_integration in (str(i["sync_id"]), str(i["identifier"]))
                            for i in c["integrations"]
                        )
                    ]
                page_rows = [sim._company_json(c, host) for c in sim._page(rows, page, page_size)]
            return json_response({"companies": page_rows})

        @get("/companies/jump", sync_to_thread=False)
        def jump(
            request: Request,
            integration_slug: FromQuery[str],
            integration_id: FromQuery[str | None] = None,
            integration_identifier: FromQuery[str | None] = None,
        ) -> Response[bytes]:
            if "application/json" in request.headers.get("accept", ""):
                return error(406, "Not Acceptable")
            scope = request.state.hudu_scope
            with sim.lock:
                for company in sim.companies.values():
                    if not sim._visible(scope, company["id"]):
                        continue
                    for i in company["integrations"]:
                        if i["integrator_name"] != integration_slug:
                            continue
                        if (integration_id is not None and str(i["sync_id"]) == integration_id) or (
                            integration_identifier is not None and i["identifier"] == integration_identifier
                        ):
                            target = host_of(request) + f"/c/{company['slug']}"
                            return Response(content=b"", status_code=302, headers={"location": target})
            return error(404, "Integration or matcher not found")

        @get("/companies/{company_id:int}", sync_to_thread=False)
        def get_company(request: Request, company_id: FromPath[int]) -> Response[bytes]:
            scope = request.state.hudu_scope
            with sim.lock:
                company = sim.companies.get(company_id)
                if company is None or not sim._visible(scope, company_id):
                    return error(404, "Company not found")
                return json_response({"company": sim._company_json(company, host_of(request))})

        @get("/articles", sync_to_thread=False)
        def list_articles(
            request: Request,
            page: FromQuery[int | None] = None,
            page_size: FromQuery[int | None] = None,
            company_id: FromQuery[int | None] = None,
            name: FromQuery[str | None] = None,
            slug: FromQuery[str | None] = None,
            search: FromQuery[str | None] = None,
            draft: FromQuery[bool | None] = None,
            enable_sharing: FromQuery[bool | None] = None,
        ) -> Response[bytes]:
            scope = request.state.hudu_scope
            host = host_of(request)
            with sim.lock:
                rows = [a for a in sim.articles.values() if sim._visible(scope, a["company_id"])]
                if company_id is not None:
                    rows = [a for a in rows if a["company_id"] == company_id]
                if name is not None:
                    rows = [a for a in rows if a["name"].lower() == name.lower()]
                if slug is not None:
                    rows = [a for a in rows if a["slug"] == slug]
                if search is not None:
                    rows = [a for a in rows if search.lower() in (a["name"] + a["content"]).lower()]
                if draft is not None:
                    rows = [a for a in rows if a["draft"] == draft]
                if enable_sharing is not None:
                    rows = [a for a in rows if a["enable_sharing"] == enable_sharing]
                page_rows = [sim._article_json(a, host) for a in sim._page(rows, page, page_size)]
            return json_response({"articles": page_rows})

        @get("/articles/{article_id:int}", sync_to_thread=False)
        def get_article(request: Request, article_id: FromPath[int]) -> Response[bytes]:
            scope = request.state.hudu_scope
            with sim.lock:
                article = sim.articles.get(article_id)
                if article is None or not sim._visible(scope, article["company_id"]):
                    # Hudu answers a missing article with 200 and a bare null.
                    return json_response(None)
                return json_response({"article": sim._article_json(article, host_of(request))})

        return [
            Router(
                path="/api/v1",
                route_handlers=[api_info, list_companies, jump, get_company, list_articles, get_article],
                before_request=gate,
            )
        ]

    def control_routes(self) -> list[Any]:
        sim = self

        @post("/_sim/hudu/window", status_code=200, sync_to_thread=False)
        def set_window(data: JSONBody[WindowSettings]) -> WindowSettings:
            sim.set_window_budget(data.budget, seconds=data.seconds, retry_after_header=data.retry_after_header)
            return sim.window

        @get("/_sim/hudu/window", sync_to_thread=False)
        def get_window() -> WindowSettings:
            return sim.window

        return [*super().control_routes(), set_window, get_window]
