"""Hudu's records as the API answers them (spec ``definitions``), only the fields we read.

Unknown fields are ignored, so new Hudu versions adding fields do not break decoding.
"""

from __future__ import annotations

import msgspec


class CompanyIntegration(msgspec.Struct, frozen=True):
    """One PSA/RMM integration a company is matched to (spec ``Company_Integration``).

    ``integrator_name`` is the integration's slug (``ninja`` for NinjaOne); ``sync_id`` is the
    company's id in that tool when it is a number, ``identifier`` when it is a string.
    """

    integrator_name: str | None = None
    sync_id: int | str | None = None
    identifier: str | int | None = None
    name: str | None = None
    company_id: int | None = None

    def external_id(self) -> str | None:
        """The company's id in the integrated tool, or ``None`` when it has none."""
        for value in (self.sync_id, self.identifier):
            if value is not None and str(value).strip() not in ("", "0"):
                return str(value).strip()
        return None


class Company(msgspec.Struct, frozen=True):
    """A Hudu company (spec ``Company``)."""

    id: int
    name: str = ""
    slug: str | None = None
    archived: bool | None = False
    url: str | None = None
    full_url: str | None = None
    integrations: list[CompanyIntegration] = []


class Article(msgspec.Struct, frozen=True):
    """A knowledge-base article (spec ``Article``). ``company_id`` is null for global ones."""

    id: int
    name: str = ""
    slug: str | None = None
    url: str | None = None
    share_url: str | None = None
    enable_sharing: bool | None = False
    draft: bool | None = False
    company_id: int | None = None
    folder_id: int | None = None


class CompanyList(msgspec.Struct, frozen=True):
    """``GET /companies``: ``{"companies": [...]}``."""

    companies: list[Company] = []


class ArticleList(msgspec.Struct, frozen=True):
    """``GET /articles``: ``{"articles": [...]}``."""

    articles: list[Article] = []


class CompanyEnvelope(msgspec.Struct, frozen=True):
    """``GET /companies/{id}``: ``{"company": {...}}``."""

    company: Company | None = None


class ArticleEnvelope(msgspec.Struct, frozen=True):
    """``GET /articles/{id}``: ``{"article": {...}}``, or a bare ``null`` when it is missing."""

    article: Article | None = None
