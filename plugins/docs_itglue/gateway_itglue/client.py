"""``ITGlueClient``: one connection's calls to the IT Glue API, each a small method.

Every call goes through ``gateway.vendor_http.VendorHTTP`` (rate budget, audit span, typed
errors). IT Glue-specific behaviour lives here:

- the API host is chosen by data center (``settings.api_root``);
- requests and answers are JSON:API (``application/vnd.api+json``); lists are paged with
  ``page[number]`` and ``page[size]`` and finish when ``meta.next-page`` is null. The client
  builds each page's request itself and never follows a URL from ``links``, so the key only
  ever goes to the configured host;
- an organization's document list holds only its root documents unless asked for a folder
  (``filter[document_folder_id]``), so folder documents are listed folder by folder;
- a record that is not there is a 404, read as ``None`` / empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import msgspec

from gateway.errors import ConfigError, VendorError, VendorRejected
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP
from gateway_itglue.auth import ITGlueApiKey
from gateway_itglue.constants import (
    API_KEY_SETTING,
    ID_SHAPE,
    MAX_PAGES,
    MEDIA_TYPE,
    REGION_HOSTS,
    RETRY_AFTER_FALLBACK_SECONDS,
    VENDOR,
)
from gateway_itglue.errors import error_detail_for
from gateway_itglue.mapping import (
    Document,
    DocumentFolder,
    ListDocument,
    Organization,
    Resource,
    ShowDocument,
)
from gateway_itglue.settings import ITGlueSettings, api_root, coerce_settings

A = TypeVar("A")

_REGION_HINT = "EU accounts use {eu}, AU accounts {au}".format(**REGION_HOSTS)


def itglue_id(value: str | int) -> str | None:
    """A record id as IT Glue's numeric string, or ``None`` when ``value`` cannot be one
    (so a bad id never reaches a URL path)."""
    text = str(value).strip()
    return text if ID_SHAPE.as_int(text) is not None else None


class ITGlueClient:
    """The client object ``gateway_connect`` returns for one IT Glue connection.

    :param connection: ``base_url`` is the API host (or the account address, or a proxy),
        ``secrets["api_key"]`` the API key, ``settings`` an ``ITGlueSettings`` table.
    :param transport: an httpx transport for narrow unit tests.
    """

    def __init__(self, connection: Connection, *, transport: httpx.BaseTransport | None = None) -> None:
        api_key = connection.secrets.get(API_KEY_SETTING)
        if not api_key:
            raise ConfigError(f"{connection.id}: the itglue secret {API_KEY_SETTING!r} is not set")
        self.connection = connection
        self.settings: ITGlueSettings = coerce_settings(connection.settings)
        self.api_root = api_root(connection.base_url, self.settings.region)
        self.http = VendorHTTP(
            connection,
            base_url=self.api_root,
            auth=ITGlueApiKey(api_key),
            # The docs require the JSON:API media type on every request.
            headers={"accept": MEDIA_TYPE, "content-type": MEDIA_TYPE},
            error_detail=error_detail_for(self.api_root, _REGION_HINT),
            retry_after=lambda _response: RETRY_AFTER_FALLBACK_SECONDS,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    # -- organizations --------------------------------------------------------------------

    def organizations(self, **filters: str | int) -> Iterator[Resource[Organization]]:
        """Every organization matching the filters (``name``, ``organization_type_id``,
        ``psa_id`` with ``psa_integration_type``...), across all pages."""
        params = {f"filter[{name}]": value for name, value in filters.items()}
        return self._pages("/organizations", params, Organization)

    def organizations_in_psa(self, integration_type: str, psa_id: str | int) -> list[Resource[Organization]]:
        """The organizations synced from PSA record ``psa_id`` (``integration_type``: ``manage``,
        ``autotask``...); the docs require both filters together."""
        return list(self.organizations(psa_integration_type=integration_type, psa_id=str(psa_id)))

    def organization(self, org_id: str | int) -> Resource[Organization] | None:
        """One organization, or ``None`` when IT Glue has none with that id."""
        number = itglue_id(org_id)
        if number is None:
            return None
        return self._show(f"/organizations/{number}", Organization)

    # -- documents --------------------------------------------------------------------------

    def root_documents(self, org_id: str | int) -> Iterator[Resource[Document]]:
        """The organization's documents outside any folder (what IT Glue lists unfiltered)."""
        return self._pages(f"/organizations/{org_id}/relationships/documents", {}, Document)

    def folder_documents(self, org_id: str | int, folder_id: str | int) -> Iterator[Resource[Document]]:
        """The documents in one document folder of the organization."""
        params = {"filter[document_folder_id]": str(folder_id)}
        return self._pages(f"/organizations/{org_id}/relationships/documents", params, Document)

    def document_folders(self, org_id: str | int) -> Iterator[Resource[DocumentFolder]]:
        """Every document folder of the organization, nested ones included."""
        return self._pages(f"/organizations/{org_id}/relationships/document_folders", {}, DocumentFolder)

    def documents(self, org_id: str | int, *, include_folders: bool = True) -> list[Resource[Document]]:
        """The organization's documents: root ones, then (``include_folders``) folder by folder.

        Empty when the organization does not exist (404). A key that may not list folders
        (403/404 on the folder list) still gets the root documents.
        """
        number = itglue_id(org_id)
        if number is None:
            return []
        seen: dict[str, Resource[Document]] = {}
        try:
            for doc in self.root_documents(number):
                seen.setdefault(doc.key, doc)
        except VendorRejected as exc:
            if exc.status == 404:
                return []
            raise
        if include_folders:
            try:
                folders = [folder.key for folder in self.document_folders(number)]
            except VendorRejected as exc:
                if exc.status not in (403, 404):
                    raise
                folders = []
            for folder_id in folders:
                for doc in self.folder_documents(number, folder_id):
                    seen.setdefault(doc.key, doc)
        return list(seen.values())

    def document(self, doc_id: str | int, org_id: str | int | None = None) -> Resource[Document] | None:
        """One document (through the organization's route when ``org_id`` is given), or ``None``."""
        number = itglue_id(doc_id)
        if number is None:
            return None
        if org_id is None:
            return self._show(f"/documents/{number}", Document)
        org = itglue_id(org_id)
        if org is None:
            return None
        return self._show(f"/organizations/{org}/relationships/documents/{number}", Document)

    # -- paging and decoding --------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any], attributes: type[A]) -> Iterator[Resource[A]]:
        """Every row of a paged list. IT Glue's ``meta.next-page`` says which page comes next
        (null on the last); ``links.next`` or ``meta.total-pages`` stand in when it is missing."""
        doc_type: Any = ListDocument[attributes]  # type: ignore[valid-type]
        seen: set[str] = set()
        page = 1
        for _ in range(MAX_PAGES):
            query = {**params, "page[number]": page, "page[size]": self.settings.page_size}
            answer: ListDocument[A] = self._decode(self.http.get(path, params=query), doc_type, path)
            fresh = [row for row in answer.data if row.key not in seen]
            seen.update(row.key for row in fresh)
            yield from fresh
            following = self._next_page(answer, page)
            if following is None or not fresh:
                return
            page = following
        raise VendorError(
            f"{self.connection.id}: {path} still had pages after {MAX_PAGES}",
            connection=self.connection.id,
        )

    @staticmethod
    def _next_page(answer: ListDocument[Any], page: int) -> int | None:
        meta = answer.meta
        following = meta.next_page if meta is not None else msgspec.UNSET
        if following is not msgspec.UNSET:
            # An explicit null next-page is IT Glue saying this was the last page.
            return following if following is not None and following > page else None
        if meta is not None and meta.total_pages is not None:
            return page + 1 if page < meta.total_pages else None
        if answer.links and answer.links.get("next"):
            return page + 1
        return None

    def _show(self, path: str, attributes: type[A]) -> Resource[A] | None:
        try:
            response = self.http.get(path)
        except VendorRejected as exc:
            if exc.status == 404:
                return None
            raise
        doc_type: Any = ShowDocument[attributes]  # type: ignore[valid-type]
        answer: ShowDocument[A] = self._decode(response, doc_type, path)
        return answer.data

    def _decode(self, response: httpx.Response, type_: Any, what: str) -> Any:
        try:
            return msgspec.json.decode(response.content, type=type_)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise VendorError(
                f"{VENDOR} answered {what} with an unexpected body: {exc}",
                connection=self.connection.id,
                status=response.status_code,
            ) from None
