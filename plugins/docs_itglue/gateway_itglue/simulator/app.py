"""An IT Glue API simulator: organizations, document folders and documents, served the way
IT Glue does (https://api.itglue.com/developer; contract section 3; README "Contract").

What it reproduces:

- ``x-api-key`` on every call; a missing or unknown key is refused with 403, as the docs say
  ("Trying to access the API with an incorrect key will result in an HTTP 403 error"), in the
  JSON:API error shape IT Glue uses (``{"errors": [{"status", "title", "detail"}]}``).
- JSON:API media type: answers are ``application/vnd.api+json``; a request whose
  Content-Type is another media type gets 415 (the docs' "Unsupported Media Type").
- ``GET /organizations`` (filters ``id``, ``name``, ``organization_type_id``, ``psa_id`` with
  ``psa_integration_type``) and ``GET /organizations/{id}``; kebab-case attributes,
  string ids, ``psa-id``/``psa-integration`` on organizations synced from a PSA.
- ``GET /organizations/{id}/relationships/documents``: only the organization's root
  documents, unless ``filter[document_folder_id]`` names a folder (Celerium.ITGlue
  ``Get-ITGlueDocument``: "Returns only root level documents when document_folder_id is not
  specified"); ``.../documents/{id}`` and ``GET /documents/{id}``. There is no
  ``GET /documents`` list (seen answering 404 live).
- ``GET /organizations/{id}/relationships/document_folders`` (filter ``parent_id``).
- Paging with ``page[number]`` (1-based) and ``page[size]`` (default 50, at most 1000), with
  ``meta`` (``current-page``, ``next-page``, ``prev-page``, ``total-pages``, ``total-count``)
  and ``links`` (``self``, ``first``, ``prev``, ``next``, ``last``).
- A missing record is ``404`` with a JSON:API error; every document has a ``resource-url``
  (``<account>/<organization id>/docs/<document id>``, the shape of IT Glue's own links).
- The base fault switches; their 429s carry the JSON:API error body and ``Retry-After``.
"""

from __future__ import annotations

import itertools
import math
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, Router, get
from litestar.params import FromPath

from gateway.testing.simulator import Faults, Simulator
from gateway_itglue.constants import API_KEY_HEADER, API_KEY_SETTING, MAX_PAGE_SIZE, MEDIA_TYPE

DEMO_API_KEY = "ITG.demo4f1c9a7e2b6d0c3a85e1f7b2d9c4a6e8"
DEFAULT_PAGE_SIZE = 50
CREATED_AT = "2026-04-01T09:00:00.000Z"
UPDATED_AT = "2026-06-02T08:30:00.000Z"

# ConnectWise company ids of the demo companies (the ConnectWise simulator's seed), so the
# demo can match an IT Glue organization to its PSA company the way a synced account does.
DEMO_CONNECTWISE_IDS = {"Acme Corp": 250, "Globex": 251}


class SimError(Exception):
    """Raised in a handler to answer an IT Glue error."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimError(400, f"{name} must be a number") from None


class ITGlueSimulator(Simulator):
    """An in-memory IT Glue account. Records are plain dicts of IT Glue's kebab-case attributes.

    :param account_url: the account's web address, the start of every ``resource-url``;
        ``None`` uses the address the request came to, so demo links stay on this server.
    """

    vendor = "itglue"

    def __init__(
        self, faults: Faults | None = None, *, api_key: str = DEMO_API_KEY, account_url: str | None = None
    ) -> None:
        super().__init__(faults)
        self.api_key = api_key
        self.api_keys: set[str] = {api_key}
        self.account_url = account_url.rstrip("/") if account_url else None
        self.organizations: dict[int, dict[str, Any]] = {}
        self.folders: dict[int, dict[str, Any]] = {}
        self.documents: dict[int, dict[str, Any]] = {}
        # IT Glue ids are large numbers; distinct ranges make a mixed-up id fail loudly.
        self._org_ids = itertools.count(3600101)
        self._folder_ids = itertools.count(5200001)
        self._document_ids = itertools.count(7300001)

    # -- records ---------------------------------------------------------------------------

    def add_organization(
        self,
        name: str,
        *,
        type_name: str = "Customer",
        psa: tuple[str, str | int] | None = None,
        short_name: str | None = None,
    ) -> int:
        """Add an organization; ``psa`` = (integration type, id) marks it synced from a PSA."""
        with self.lock:
            org_id = next(self._org_ids)
            self.organizations[org_id] = {
                "name": name,
                "alert": None,
                "description": None,
                "organization-type-id": {"Customer": 86, "Owner": 15, "Vendor": 87}.get(type_name, 88),
                "organization-type-name": type_name,
                "organization-status-id": 68,
                "organization-status-name": "Active",
                "primary": type_name == "Owner",
                "logo": "",
                "quick-notes": None,
                "short-name": short_name or name.split()[0].lower(),
                "my-glue-account-id": None,
                "psa-id": str(psa[1]) if psa else None,
                "psa-integration": psa[0] if psa else None,
                "created-at": CREATED_AT,
                "updated-at": UPDATED_AT,
            }
            return org_id

    def add_folder(self, org_id: int, name: str, *, parent_id: int | None = None) -> int:
        """Add a document folder to the organization (inside ``parent_id`` when given)."""
        with self.lock:
            folder_id = next(self._folder_ids)
            self.folders[folder_id] = {
                "organization-id": org_id,
                "name": name,
                "parent-id": parent_id,
                "restricted": False,
                "created-at": CREATED_AT,
                "updated-at": UPDATED_AT,
            }
            return folder_id

    def add_document(
        self, org_id: int, name: str, *, folder_id: int | None = None, archived: bool = False
    ) -> int:
        """Add a document to the organization (in ``folder_id`` when given)."""
        with self.lock:
            document_id = next(self._document_ids)
            self.documents[document_id] = {
                "organization-id": org_id,
                "name": name,
                "document-folder-id": folder_id,
                "archived": archived,
                "restricted": False,
                "public": False,
                "is-uploaded": False,
                "created-at": CREATED_AT,
                "updated-at": UPDATED_AT,
            }
            return document_id

    def seed_demo(self) -> None:
        """Acme Corp and Globex synced from ConnectWise (companies 250 and 251), Initech not;
        each with runbook documents at the root and in folders, and one archived document."""
        acme = self.add_organization("Acme Corp", psa=("manage", DEMO_CONNECTWISE_IDS["Acme Corp"]))
        globex = self.add_organization("Globex", psa=("manage", DEMO_CONNECTWISE_IDS["Globex"]))
        initech = self.add_organization("Initech")
        network = self.add_folder(acme, "Network")
        self.add_document(acme, "Reset the site-to-site VPN tunnel", folder_id=network)
        self.add_document(acme, "Onboard a new user")
        self.add_document(acme, "Restore the file share from backup")
        self.add_document(globex, "Restart the print spooler on PRN01")
        mail = self.add_folder(globex, "Email")
        self.add_document(globex, "Recover a deleted Exchange Online mailbox", folder_id=mail)
        self.add_document(initech, "Restart the TPS report server")
        servers = self.add_folder(initech, "Servers")
        racks = self.add_folder(initech, "Rack B", parent_id=servers)
        self.add_document(initech, "Badge system outage", folder_id=racks)
        self.add_document(initech, "Old fax server notes", archived=True)

    def demo_connection(self, base_url: str) -> dict[str, Any]:
        return {"vendor": "itglue", "base_url": base_url, "settings": {}, "secrets": {API_KEY_SETTING: self.api_key}}

    # -- inspection ------------------------------------------------------------------------

    def organization_id(self, name: str) -> int:
        """The id of the organization called ``name``."""
        with self.lock:
            return next(i for i, o in self.organizations.items() if o["name"] == name)

    def document_ids(self, org_id: int, *, archived: bool | None = None) -> list[int]:
        """Ids of the organization's documents, in every folder (``archived`` filters)."""
        with self.lock:
            return [
                i
                for i, d in self.documents.items()
                if d["organization-id"] == org_id and (archived is None or d["archived"] == archived)
            ]

    # -- the vendor's shapes -----------------------------------------------------------------

    def error_response(self, status: int, message: str) -> tuple[int, bytes, dict[str, str]]:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        body = msgspec.json.encode({"errors": [{"status": status, "title": title, "detail": message}]})
        return status, body, {"content-type": MEDIA_TYPE}

    @staticmethod
    def _resource(kind: str, record_id: int, attributes: dict[str, Any]) -> dict[str, Any]:
        # JSON:API: ids are strings, attributes kebab-case.
        return {"id": str(record_id), "type": kind, "attributes": attributes}

    def _org_json(self, org_id: int, host: str) -> dict[str, Any]:
        account = self.account_url or host
        attributes = {**self.organizations[org_id], "resource-url": f"{account}/{org_id}"}
        return self._resource("organizations", org_id, attributes)

    def _document_json(self, document_id: int, host: str) -> dict[str, Any]:
        account = self.account_url or host
        doc = self.documents[document_id]
        org = self.organizations.get(doc["organization-id"], {})
        attributes = {
            **doc,
            "organization-name": org.get("name"),
            "resource-url": f"{account}/{doc['organization-id']}/docs/{document_id}",
        }
        return self._resource("documents", document_id, attributes)

    def _folder_json(self, folder_id: int, host: str) -> dict[str, Any]:
        folder = self.folders[folder_id]
        ancestors = []
        parent = folder["parent-id"]
        while parent is not None:
            ancestors.insert(0, parent)
            parent = self.folders[parent]["parent-id"]
        attributes = {**folder, "ancestor-ids": ancestors}
        return self._resource("document-folders", folder_id, attributes)

    @staticmethod
    def _page(request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
        number = _int_param(request, "page[number]", 1) or 1
        size = _int_param(request, "page[size]", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        if number < 1 or size < 1:
            raise SimError(400, "page[number] and page[size] must be positive")
        size = min(size, MAX_PAGE_SIZE)
        total_pages = max(1, math.ceil(len(rows) / size))
        start = (number - 1) * size
        base = str(request.url).split("?", 1)[0]
        others = [(k, v) for k, v in request.query_params.items() if not k.startswith("page[")]

        def link(page: int) -> str:
            return base + "?" + urlencode([*others, ("page[number]", page), ("page[size]", size)])

        links = {"self": link(number), "first": link(1), "last": link(total_pages)}
        if number > 1:
            links["prev"] = link(min(number - 1, total_pages))
        if number < total_pages:
            links["next"] = link(number + 1)
        return {
            "data": rows[start : start + size],
            "meta": {
                "current-page": number,
                "next-page": number + 1 if number < total_pages else None,
                "prev-page": number - 1 if number > 1 else None,
                "total-pages": total_pages,
                "total-count": len(rows),
                "filters": {k[len("filter[") : -1]: v for k, v in others if k.startswith("filter[")},
            },
            "links": links,
        }

    # -- routes ----------------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        sim = self

        def answer(value: Any, status: int = 200) -> Response[bytes]:
            return Response(content=msgspec.json.encode(value), status_code=status, media_type=MEDIA_TYPE)

        def error(status: int, detail: str) -> Response[bytes]:
            code, body, headers = sim.error_response(status, detail)
            return Response(content=body, status_code=code, headers=headers, media_type=MEDIA_TYPE)

        def host_of(request: Request) -> str:
            return str(request.base_url).rstrip("/")

        def gate(request: Request) -> Response[bytes] | None:
            if request.headers.get(API_KEY_HEADER, "") not in sim.api_keys:
                sim.count("forbidden")
                return error(403, "Invalid or missing API key")
            content_type = request.headers.get("content-type")
            if content_type and content_type.split(";")[0].strip().lower() != MEDIA_TYPE:
                sim.count("unsupported_media_type")
                return error(415, f"Content-Type must be {MEDIA_TYPE}")
            return None

        def organization_or_404(org_id: int) -> dict[str, Any]:
            org = sim.organizations.get(org_id)
            if org is None:
                raise SimError(404, "Record not found")
            return org

        @get("/organizations", sync_to_thread=False)
        def list_organizations(request: Request) -> Response[bytes]:
            query = request.query_params
            psa_id = query.get("filter[psa_id]")
            psa_type = query.get("filter[psa_integration_type]")
            if psa_id is not None and psa_type is None:
                raise SimError(400, "filter[psa_id] must be accompanied by filter[psa_integration_type]")
            with sim.lock:
                rows = sorted(sim.organizations.items())
                if query.get("filter[id]"):
                    wanted = {s.strip() for s in query["filter[id]"].split(",")}
                    rows = [(i, o) for i, o in rows if str(i) in wanted]
                if query.get("filter[name]"):
                    rows = [(i, o) for i, o in rows if o["name"] == query["filter[name]"]]
                if query.get("filter[organization_type_id]"):
                    rows = [(i, o) for i, o in rows if str(o["organization-type-id"]) == query["filter[organization_type_id]"]]
                if psa_type is not None:
                    rows = [(i, o) for i, o in rows if o["psa-integration"] == psa_type]
                if psa_id is not None:
                    rows = [(i, o) for i, o in rows if o["psa-id"] == psa_id]
                page = sim._page(request, [sim._org_json(i, host_of(request)) for i, _ in rows])
            return answer(page)

        @get("/organizations/{org_id:int}", sync_to_thread=False)
        def show_organization(request: Request, org_id: FromPath[int]) -> Response[bytes]:
            with sim.lock:
                organization_or_404(org_id)
                return answer({"data": sim._org_json(org_id, host_of(request))})

        @get("/organizations/{org_id:int}/relationships/documents", sync_to_thread=False)
        def list_documents(request: Request, org_id: FromPath[int]) -> Response[bytes]:
            folder_filter = request.query_params.get("filter[document_folder_id]")
            with sim.lock:
                organization_or_404(org_id)
                if folder_filter in (None, "", "null"):
                    folder: int | None = None
                else:
                    folder = _int_param(request, "filter[document_folder_id]", None)
                rows = [
                    sim._document_json(i, host_of(request))
                    for i, d in sorted(sim.documents.items())
                    if d["organization-id"] == org_id and d["document-folder-id"] == folder
                ]
                page = sim._page(request, rows)
            return answer(page)

        @get("/organizations/{org_id:int}/relationships/documents/{document_id:int}", sync_to_thread=False)
        def show_org_document(request: Request, org_id: FromPath[int], document_id: FromPath[int]) -> Response[bytes]:
            with sim.lock:
                organization_or_404(org_id)
                doc = sim.documents.get(document_id)
                if doc is None or doc["organization-id"] != org_id:
                    raise SimError(404, "Record not found")
                return answer({"data": sim._document_json(document_id, host_of(request))})

        @get("/documents/{document_id:int}", sync_to_thread=False)
        def show_document(request: Request, document_id: FromPath[int]) -> Response[bytes]:
            with sim.lock:
                if document_id not in sim.documents:
                    raise SimError(404, "Record not found")
                return answer({"data": sim._document_json(document_id, host_of(request))})

        @get("/organizations/{org_id:int}/relationships/document_folders", sync_to_thread=False)
        def list_folders(request: Request, org_id: FromPath[int]) -> Response[bytes]:
            parent = request.query_params.get("filter[parent_id]")
            with sim.lock:
                organization_or_404(org_id)
                rows = [
                    sim._folder_json(i, host_of(request))
                    for i, f in sorted(sim.folders.items())
                    if f["organization-id"] == org_id and (parent is None or str(f["parent-id"] or 0) == parent)
                ]
                page = sim._page(request, rows)
            return answer(page)

        return [
            Router(
                path="/",
                route_handlers=[
                    list_organizations,
                    show_organization,
                    list_documents,
                    show_org_document,
                    show_document,
                    list_folders,
                ],
                before_request=gate,
                exception_handlers={SimError: lambda _request, exc: error(exc.status, exc.detail)},
            )
        ]
