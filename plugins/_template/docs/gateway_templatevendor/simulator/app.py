"""A simulator of Template Vendor's API: an in-memory documentation tool over loopback HTTP.

This is the stub the generated plugin starts from; with the generated hooks it passes the
plugin's tests. Make it the vendor's real contract before (or while) writing the client
against it: the vendor's paths, auth header, paging, field names and error bodies, from the
vendor's published documentation, with the source of each in the README.

What it serves now (under ``/api/v1``, every call needs ``X-API-Key``, else 401):
``GET /companies`` and ``GET /articles`` (``company_id`` filter), as
``{"items": [...], "next_page": n | null}``; errors as ``{"error": {"code", "message"}}``;
429 with Retry-After from the base fault switches.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, Router, get

from gateway.testing.simulator import Faults, Simulator
from gateway_templatevendor.constants import API_KEY_HEADER, API_KEY_SETTING, API_PREFIX, MAX_PAGE_SIZE, PAGE_SIZE, VENDOR

DEMO_API_KEY = "templatevendor-demo-key-7d41c2"

# id, name, ids in other tools
COMPANIES = (
    (1, "Acme Corp", {"connectwise": "250"}),
    (2, "Globex", {}),
    (3, "Initech", {"autotask": "INITECH-01"}),
)
# company (None: global), title, archived
ARTICLES = (
    (1, "Reset the site-to-site VPN tunnel", False),
    (1, "Onboard a new user", False),
    (1, "Old firewall notes", True),
    (2, "Restart the print spooler on PRN01", False),
    (3, "Restart the TPS report server", False),
    (None, "MSP escalation policy", False),
)


def _json(value: Any, status: int = 200) -> Response[bytes]:
    return Response(content=msgspec.json.encode(value), status_code=status, media_type="application/json")


class TemplateVendorSimulator(Simulator):
    """An in-memory Template Vendor. Records are dicts in the vendor's field names."""

    vendor = VENDOR

    def __init__(self, faults: Faults | None = None, *, api_key: str = DEMO_API_KEY) -> None:
        super().__init__(faults)
        self.api_key = api_key
        self.companies: dict[int, dict[str, Any]] = {}
        self.articles: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(100)

    def seed_demo(self) -> None:
        """Three companies, their articles (one archived) and one global article."""
        with self.lock:
            if self.companies:
                return
            for company_id, name, external in COMPANIES:
                self.companies[company_id] = {"id": company_id, "name": name, "external_ids": dict(external)}
            stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            for company_id, title, archived in ARTICLES:
                article_id = next(self._ids)
                self.articles[article_id] = {"id": article_id, "title": title, "url": f"/kb/{article_id}",
                                             "company_id": company_id, "archived": archived, "updated_at": stamp}

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"vendor": VENDOR, "base_url": base_url, "settings": {}, "secrets": {API_KEY_SETTING: self.api_key}}

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        codes = {400: "invalid", 401: "unauthorized", 404: "not_found", 429: "rate_limited"}
        body = msgspec.json.encode({"error": {"code": codes.get(status, "server_error"), "message": message}})
        return status, body, {"content-type": "application/json"}

    def routes(self) -> list[Any]:
        sim = self

        def paged(request: Request, rows: list[dict[str, Any]]) -> Response[bytes]:
            try:
                page = max(1, int(request.query_params.get("page") or 1))
                size = max(1, min(int(request.query_params.get("page_size") or PAGE_SIZE), MAX_PAGE_SIZE))
            except ValueError:
                return _json({"error": {"code": "invalid", "message": "page and page_size must be integers"}}, 400)
            start = (page - 1) * size
            more = len(rows) > start + size
            return _json({"items": rows[start:start + size], "next_page": page + 1 if more else None})

        def gate(request: Request) -> Response[bytes] | None:
            if request.headers.get(API_KEY_HEADER.lower()) != sim.api_key:
                sim.count("unauthorized")
                return _json({"error": {"code": "unauthorized", "message": "missing or unknown API key"}}, 401)
            return None

        @get("/companies", sync_to_thread=False)
        def list_companies(request: Request) -> Response[bytes]:
            with sim.lock:
                rows = [dict(c) for c in sim.companies.values()]
            return paged(request, rows)

        @get("/articles", sync_to_thread=False)
        def list_articles(request: Request) -> Response[bytes]:
            company = request.query_params.get("company_id")
            with sim.lock:
                rows = [dict(a) for a in sim.articles.values() if company is None or str(a["company_id"]) == company]
            return paged(request, rows)

        return [Router(path=API_PREFIX, route_handlers=[list_companies, list_articles], before_request=gate)]

    # -- inspection, in vendor terms ---------------------------------------------------------

    def article_titles(self, company_id: int, *, archived: bool = False) -> list[str]:
        """Titles of the company's articles (archived ones only when asked)."""
        with self.lock:
            return [a["title"] for a in self.articles.values()
                    if a["company_id"] == company_id and (archived or not a["archived"])]
