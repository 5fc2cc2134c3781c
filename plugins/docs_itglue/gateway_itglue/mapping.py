"""IT Glue's records as the API answers them (JSON:API), only the fields we read, and their
translation to the gateway's canonical models.

Every answer is a JSON:API document: ``{"data": ..., "meta": {...}, "links": {...}}``, each
resource ``{"id": "123", "type": "organizations", "attributes": {...}}`` with kebab-case
attribute names. Unknown fields are ignored, so IT Glue adding attributes breaks nothing.
"""

from __future__ import annotations

from typing import Generic, TypeVar
from urllib.parse import urlsplit

import msgspec

from gateway.models import Customer, RunbookLink, make_ref

A = TypeVar("A")


# --------------------------------------------------------------------------- JSON:API envelope


class Resource(msgspec.Struct, Generic[A], frozen=True):
    """One JSON:API resource object. IT Glue sends ids as strings (sometimes as numbers)."""

    id: str | int
    attributes: A
    type: str = ""

    @property
    def key(self) -> str:
        return str(self.id)


class PageMeta(msgspec.Struct, frozen=True, rename="kebab"):
    """``meta`` of a list: ``current-page``, ``next-page`` (null on the last page)..."""

    current_page: int | None = None
    # UNSET when the key is missing, None when IT Glue says null (the last page).
    next_page: int | None | msgspec.UnsetType = msgspec.UNSET
    prev_page: int | None = None
    total_pages: int | None = None
    total_count: int | None = None


class ListDocument(msgspec.Struct, Generic[A], frozen=True):
    """A list answer: ``{"data": [...], "meta": {...}, "links": {...}}``."""

    data: list[Resource[A]] = []
    meta: PageMeta | None = None
    links: dict[str, str | None] | None = None


class ShowDocument(msgspec.Struct, Generic[A], frozen=True):
    """A single-record answer: ``{"data": {...}}``."""

    data: Resource[A] | None = None


# --------------------------------------------------------------------------- attributes


def _text(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class Organization(msgspec.Struct, frozen=True, rename="kebab"):
    """An organization (a client company). ``psa-id`` and ``psa-integration`` are filled by
    IT Glue when the organization is synced from a PSA (the docs' "fields to identify when an
    object is related to ... PSA integration"); both are absent or null otherwise."""

    name: str = ""
    short_name: str | None = None
    organization_type_name: str | None = None
    organization_status_name: str | None = None
    primary: bool | None = None
    resource_url: str | None = None
    psa_id: str | int | None = None
    psa_integration: str | None = None
    psa_integration_type: str | None = None

    def psa_link(self) -> tuple[str, str] | None:
        """``(integration type, id in the PSA)``, or ``None`` when not synced from a PSA."""
        psa_id = _text(self.psa_id)
        kind = _text(self.psa_integration) or _text(self.psa_integration_type)
        if psa_id is None or kind is None:
            return None
        return kind.lower(), psa_id


class Document(msgspec.Struct, frozen=True, rename="kebab"):
    """A document. ``resource-url`` is the link that opens it in IT Glue (the docs list it
    among the attributes "the API populates automatically")."""

    name: str = ""
    organization_id: str | int | None = None
    document_folder_id: str | int | None = None
    resource_url: str | None = None
    archived: bool | None = False
    restricted: bool | None = None
    is_uploaded: bool | None = None


class DocumentFolder(msgspec.Struct, frozen=True, rename="kebab"):
    """A document folder; nested folders carry ``parent-id``."""

    name: str = ""
    organization_id: str | int | None = None
    parent_id: str | int | None = None


# --------------------------------------------------------------------------- canonical models


def to_customer(
    connection_id: str, vendor: str, org: Resource[Organization], psa_vendors: dict[str, str]
) -> Customer:
    """An organization as a ``Customer``; ``integration_ids`` holds its PSA id, keyed by the
    gateway vendor name its integration type maps to (``{"connectwise": "250"}``)."""
    ids: dict[str, str] = {}
    link = org.attributes.psa_link()
    if link is not None:
        kind, psa_id = link
        mapped = {k.lower(): v for k, v in psa_vendors.items()}.get(kind)
        if mapped:
            ids[mapped] = psa_id
    return Customer(
        ref=make_ref(connection_id, org.key),
        name=org.attributes.name,
        vendor=vendor,
        integration_ids=ids,
    )


def document_url(doc: Resource[Document], org_id: str, web_url: str | None) -> str | None:
    """The link that opens the document: its ``resource-url`` when that is an http(s) URL;
    else, when the connection names the account's ``web_url``, IT Glue's document path
    ``/<organization id>/docs/<document id>``; else ``None``."""
    url = _text(doc.attributes.resource_url)
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    if web_url:
        return f"{web_url.rstrip('/')}/{org_id}/docs/{doc.key}"
    return None


def to_runbook(connection_id: str, doc: Resource[Document], org_id: str, url: str) -> RunbookLink:
    """A document as a ``RunbookLink`` owned by the organization ``org_id``."""
    return RunbookLink(
        ref=make_ref(connection_id, doc.key),
        title=doc.attributes.name,
        url=url,
        customer_ref=make_ref(connection_id, org_id),
    )
