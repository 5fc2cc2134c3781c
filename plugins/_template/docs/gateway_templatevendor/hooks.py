"""The Template Vendor plugin: hook implementations, in the order of ``gateway.hookspecs``.

A documentation tool: companies are the customers (with their ids in other tools, so the
gateway can match one customer across tools) and knowledge-base articles are their runbooks.
It takes no writes, so there is nothing to reconcile.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.models import Capability, Connection, Customer, RunbookLink, VendorInfo, VendorKind

from gateway_templatevendor import mapping
from gateway_templatevendor.client import TemplateVendorClient
from gateway_templatevendor.constants import API_KEY_SETTING, DEFAULT_RATE_LIMIT, TITLE, VENDOR
from gateway_templatevendor.settings import TemplateVendorSettings

CAPABILITIES = frozenset({Capability.CUSTOMER_READ, Capability.RUNBOOK})


@hookimpl
def gateway_register_vendors() -> list[VendorInfo]:
    """Template Vendor: a documentation tool with companies and their runbooks."""
    return [
        VendorInfo(
            name=VENDOR,
            kind=VendorKind.DOCS,
            title=TITLE,
            capabilities=CAPABILITIES,
            default_rate_limit=DEFAULT_RATE_LIMIT,
            settings_type=TemplateVendorSettings,
            secret_settings=(API_KEY_SETTING,),
        )
    ]


@hookimpl
def gateway_connect(connection: Connection) -> TemplateVendorClient:
    """A ``TemplateVendorClient`` for the connection."""
    return TemplateVendorClient(connection)


@hookimpl
def gateway_customer_list(client: TemplateVendorClient) -> list[Customer]:
    return [mapping.customer(company, client.connection.id) for company in client.companies()]


@hookimpl
def gateway_runbook_list(client: TemplateVendorClient, customer_id: str) -> list[RunbookLink]:
    """The company's articles with their links; archived ones and other companies' are left out,
    and an id that is not a company's gives an empty list."""
    if not customer_id.isdigit():
        return []
    company_id = int(customer_id)
    return [
        mapping.runbook(article, client.connection.id, client.web_url)
        for article in client.articles(company_id)
        # Filter again: a vendor that ignored the filter must not leak another customer's docs.
        if article.company_id == company_id and not article.archived
    ]
