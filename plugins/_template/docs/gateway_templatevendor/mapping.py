"""Template Vendor's records as Structs, and their translation into canonical models."""

from __future__ import annotations

from datetime import datetime

import msgspec
from gateway import models
from gateway.models import make_ref

from gateway_templatevendor.constants import VENDOR


class Company(msgspec.Struct, frozen=True):
    id: int
    name: str
    # The company's ids in other tools, by tool name ({"connectwise": "250"}), for matching.
    external_ids: dict[str, str] = {}


class Article(msgspec.Struct, frozen=True):
    id: int
    title: str
    url: str
    company_id: int | None = None
    archived: bool = False
    updated_at: datetime | None = None


def customer(company: Company, connection_id: str) -> models.Customer:
    return models.Customer(
        ref=make_ref(connection_id, company.id),
        name=company.name,
        vendor=VENDOR,
        integration_ids={VENDOR: str(company.id), **company.external_ids},
    )


def runbook(article: Article, connection_id: str, web_url: str) -> models.RunbookLink:
    """An article with the URL that opens it (a path from the vendor is joined to ``web_url``)."""
    url = article.url if article.url.startswith(("http://", "https://")) else web_url + "/" + article.url.lstrip("/")
    return models.RunbookLink(
        ref=make_ref(connection_id, article.id),
        title=article.title,
        url=url,
        customer_ref=make_ref(connection_id, article.company_id) if article.company_id is not None else None,
    )
