"""Hudu records translated into the gateway's canonical models."""

from __future__ import annotations

from gateway.models import Customer, RunbookLink, make_ref
from gateway_hudu.client import HuduClient
from gateway_hudu.constants import VENDOR
from gateway_hudu.records import Article, Company


def integration_ids(company: Company, vendors: dict[str, str]) -> dict[str, str]:
    """The company's ids in other tools, keyed by gateway vendor name (``{"ninjaone": "7"}``).

    ``vendors`` maps Hudu integration slugs to vendor names; other integrations are skipped.
    When a company is matched twice in one tool, the first match wins.
    """
    ids: dict[str, str] = {}
    for integration in company.integrations:
        slug = (integration.integrator_name or "").strip().lower()
        vendor = vendors.get(slug)
        external = integration.external_id()
        if vendor and external and vendor not in ids:
            ids[vendor] = external
    return ids


def to_customer(client: HuduClient, company: Company) -> Customer:
    """A Hudu company as a gateway ``Customer``."""
    vendors = {k.lower(): v for k, v in client.settings.integration_vendors.items()}
    return Customer(
        ref=make_ref(client.connection.id, company.id),
        name=company.name,
        vendor=VENDOR,
        integration_ids=integration_ids(company, vendors),
    )


def to_runbook(client: HuduClient, article: Article) -> RunbookLink | None:
    """An article as a ``RunbookLink``; ``None`` when Hudu gave it no link at all.

    The link is the article's ``url``; the public ``share_url`` is used only when ``url`` is
    empty and sharing is on.
    """
    url = client.absolute_url(article.url)
    if url is None and article.enable_sharing:
        url = client.absolute_url(article.share_url)
    if url is None:
        return None
    customer_ref = (
        make_ref(client.connection.id, article.company_id) if article.company_id is not None else None
    )
    return RunbookLink(
        ref=make_ref(client.connection.id, article.id),
        title=article.name,
        url=url,
        customer_ref=customer_ref,
    )
