"""Reading Autotask's error bodies.

Autotask answers a failed call with ``{"errors": ["Field Title is required", ...]}``: a list of
strings (some clients also meet ``{"message": ...}`` objects in the list). An empty or HTML body
(a gateway in front of the API) falls back to the start of the text.
"""

from __future__ import annotations

import httpx

MAX_DETAIL = 500


def error_detail(response: httpx.Response) -> str:
    """Every message of an Autotask error body, joined with ``"; "``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_DETAIL] or response.reason_phrase
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(_message(e) for e in errors)[:MAX_DETAIL]
        for key in ("message", "Message", "error"):
            if isinstance(body.get(key), str):
                return body[key][:MAX_DETAIL]
    return response.text[:MAX_DETAIL]


def _message(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)
