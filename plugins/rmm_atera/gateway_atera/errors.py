"""Atera's error bodies, read into the one-line detail of the gateway's errors.

Atera answers errors in two ways (contract section 4 and the spec's responses):

- a missing or refused API key: **401 with an empty body** and no ``WWW-Authenticate``;
- everything the spec documents (400 on a resolve, 404 on an alert read): ASP.NET
  ``ProblemDetails`` ``{"type", "title", "status", "detail", "instance"}``.

``VendorHTTP`` puts what ``error_detail`` returns into the ``gateway.errors.VendorError`` it
raises, so a dead letter says what Atera refused. Which statuses are retried is decided once,
in ``gateway.errors``.
"""

from __future__ import annotations

import httpx

from gateway.vendor_http import default_error_detail

REFUSED_KEY = (
    "the API key was refused (401 with an empty body): check the key, its expiry (at most a "
    "year), its IP allowlist and its permissions; trial accounts have no API access"
)


def error_detail(response: httpx.Response) -> str:
    """``title: detail`` of a ProblemDetails body; a named cause for the bare 401."""
    if response.status_code == 401 and not response.content.strip():
        return REFUSED_KEY
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        title = body.get("title") if isinstance(body.get("title"), str) else ""
        detail = body.get("detail") if isinstance(body.get("detail"), str) else ""
        text = f"{title}: {detail}" if title and detail and detail != title else title or detail
        errors = body.get("errors")  # ASP.NET validation problems: {"field": ["message", ...]}
        if isinstance(errors, dict) and errors:
            field, messages = next(iter(errors.items()))
            first = messages[0] if isinstance(messages, list) and messages else messages
            text = f"{text} ({field}: {first})" if text else f"{field}: {first}"
        if text:
            return text
    return default_error_detail(response)
