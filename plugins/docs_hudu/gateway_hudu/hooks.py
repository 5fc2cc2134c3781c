"""The Hudu plugin's hook implementations (entry point ``msp_gateway: hudu``).

Hudu is a documentation tool: it has customers (companies) and runbooks (knowledge-base
articles). It takes no ticket writes, so there is nothing to reconcile.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.errors import VendorRejected
from gateway.models import Capability, Connection, Customer, RunbookLink, VendorInfo, VendorKind
from gateway_hudu.client import HuduClient, hudu_id
from gateway_hudu.constants import API_KEY_SETTING, DEFAULT_RATE_LIMIT, ID_SHAPE, TITLE, VENDOR
from gateway_hudu.mapping import to_customer, to_runbook
from gateway_hudu.settings import HuduSettings

VENDOR_INFO = VendorInfo(
    name=VENDOR,
    kind=VendorKind.DOCS,
    capabilities=frozenset({Capability.RUNBOOK, Capability.CUSTOMER_READ}),
    title=TITLE,
    default_rate_limit=DEFAULT_RATE_LIMIT,
    settings_type=HuduSettings,
    secret_settings=(API_KEY_SETTING,),
    id_shape=ID_SHAPE,
)


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """Hudu: a docs vendor that lists customers and their runbooks."""
    return [VENDOR_INFO]


@hookimpl
def gateway_connect(connection: Connection) -> HuduClient:
    """A ``HuduClient`` for the connection."""
    return HuduClient(connection)


@hookimpl
def gateway_customer_list(client: HuduClient) -> list[Customer]:
    """Hudu companies (archived ones only when the connection asks for them), each with its
    ids in linked integrations (``{"ninjaone": "<org id>"}``)."""
    include_archived = client.settings.include_archived
    return [
        to_customer(client, company)
        for company in client.companies()
        if include_archived or not company.archived
    ]


@hookimpl
def gateway_runbook_list(client: HuduClient, customer_id: str) -> list[RunbookLink]:
    """The company's knowledge-base articles with their links; empty for an unknown company.

    Global articles (no company) are not a customer's runbooks and are left out, as are
    drafts unless the connection asks for them.
    """
    company_id = hudu_id(customer_id)
    if company_id is None:
        return []
    try:
        articles = list(client.articles(company_id=company_id))
    except VendorRejected as exc:
        if exc.status == 404:
            return []
        raise
    links = []
    for article in articles:
        # Filter again here: a Hudu that ignored company_id must not leak other customers' docs.
        if article.company_id != company_id:
            continue
        if article.draft and not client.settings.include_drafts:
            continue
        link = to_runbook(client, article)
        if link is not None:
            links.append(link)
    return links
