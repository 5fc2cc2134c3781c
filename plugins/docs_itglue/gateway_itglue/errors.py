"""IT Glue's error bodies, read into the one-line detail of the gateway's errors.

IT Glue answers errors as JSON:API error objects, seen live as
``{"errors": [{"status": 401, "title": "Unauthorized", "detail": "Unauthorized resource
access", "source": {"pointer": "id"}}]}`` (itglue/automation issue #4). A 403 from its edge
has also been seen as ``{"message": "Forbidden"}`` (itglue/powershellwrapper issue #108).
Both shapes are read here; which statuses are retried is decided once, in ``gateway.errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


def _describe(error: Any) -> str | None:
    """One JSON:API error object as ``title: detail (pointer)``."""
    if not isinstance(error, dict):
        return str(error) if error else None
    texts = [error[k] for k in ("title", "detail") if isinstance(error.get(k), str) and error[k]]
    text = ": ".join(dict.fromkeys(texts))
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    if pointer:
        text = f"{text} ({pointer})" if text else str(pointer)
    return text or None


def error_detail(response: httpx.Response) -> str:
    """``title: detail (pointer)`` of each JSON:API error, ``message`` of an edge error, or the
    start of a body that is neither."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            described = [d for d in (_describe(e) for e in errors[:5]) if d]
            if described:
                return "; ".join(described)
        if isinstance(body.get("message"), str):
            return body["message"]
    return response.text[:500]


def error_detail_for(api_root: str, region_hint: str) -> Callable[[httpx.Response], str]:
    """``error_detail`` that, on 401/403, says which API host the key was sent to: IT Glue
    refuses a key sent to another data center's host, and the message should say so."""

    def detail(response: httpx.Response) -> str:
        text = error_detail(response)
        if response.status_code in (401, 403):
            text += f" (the key was sent to {api_root}; {region_hint})"
        return text

    return detail
