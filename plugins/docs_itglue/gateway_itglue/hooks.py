"""The IT Glue plugin's hook implementations (entry point ``msp_gateway: itglue``).

IT Glue is a documentation tool: it has customers (organizations) and runbooks (documents,
each opened at its ``resource-url``). The plugin reads only, so it takes no writes and has
nothing to reconcile.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.models import Capability, Connection, Customer, RunbookLink, VendorInfo, VendorKind
from gateway_itglue.client import ITGlueClient, itglue_id
from gateway_itglue.constants import API_KEY_SETTING, DEFAULT_RATE_LIMIT, ID_SHAPE, TITLE, VENDOR
from gateway_itglue.mapping import document_url, to_customer, to_runbook
from gateway_itglue.settings import ITGlueSettings

VENDOR_INFO = VendorInfo(
    name=VENDOR,
    kind=VendorKind.DOCS,
    capabilities=frozenset({Capability.CUSTOMER_READ, Capability.RUNBOOK}),
    title=TITLE,
    default_rate_limit=DEFAULT_RATE_LIMIT,
    settings_type=ITGlueSettings,
    secret_settings=(API_KEY_SETTING,),
    id_shape=ID_SHAPE,
)


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """IT Glue: a docs vendor that lists customers and their runbooks."""
    return [VENDOR_INFO]


@hookimpl
def gateway_connect(connection: Connection) -> ITGlueClient:
    """An ``ITGlueClient`` for the connection (the API host is resolved here)."""
    return ITGlueClient(connection)


@hookimpl
def gateway_customer_list(client: ITGlueClient) -> list[Customer]:
    """IT Glue organizations (only the configured ``organization_types`` when set), each with
    its PSA id under the PSA's gateway vendor name when IT Glue syncs it from one."""
    settings = client.settings
    wanted = {t.casefold() for t in settings.organization_types}
    return [
        to_customer(client.connection.id, VENDOR, org, settings.psa_vendors)
        for org in client.organizations()
        if not wanted or (org.attributes.organization_type_name or "").casefold() in wanted
    ]


@hookimpl
def gateway_runbook_list(client: ITGlueClient, customer_id: str) -> list[RunbookLink]:
    """The organization's documents with the link that opens each; empty for an unknown one.

    Archived documents are left out unless the connection asks for them, and so is a document
    IT Glue answers without a link (when no ``web_url`` is set to build one).
    """
    org_id = itglue_id(customer_id)
    if org_id is None:
        return []
    settings = client.settings
    links = []
    for doc in client.documents(org_id, include_folders=settings.include_folders):
        owner = doc.attributes.organization_id
        # Check again here: a list that ignored the organization must not leak another's docs.
        if owner is not None and str(owner) != org_id:
            continue
        if doc.attributes.archived and not settings.include_archived:
            continue
        url = document_url(doc, org_id, settings.web_url)
        if url is not None:
            links.append(to_runbook(client.connection.id, doc, org_id, url))
    return links
