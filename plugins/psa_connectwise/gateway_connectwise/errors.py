"""ConnectWise's error body, read into the one-line detail of the gateway's errors.

ConnectWise answers errors as::

    {"code": "InvalidObject", "message": "ticket object is invalid",
     "errors": [{"code": "InvalidField", "message": "...", "resource": "ticket", "field": "status"}]}

``VendorHTTP`` puts what ``error_detail`` returns into the ``VendorError`` message, so an
operator reading a dead letter sees which field ConnectWise refused and why.
"""

from __future__ import annotations

import httpx


def error_detail(response: httpx.Response) -> str:
    """``code: message (resource.field: message; ...)``, or the start of a non-JSON body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return response.text[:500]
    detail = body["message"]
    if body.get("code"):
        detail = f"{body['code']}: {detail}"
    problems = []
    for item in body.get("errors") or []:
        if not isinstance(item, dict):
            continue
        where = ".".join(str(item[k]) for k in ("resource", "field") if item.get(k))
        message = item.get("message") or item.get("code") or ""
        problems.append(f"{where}: {message}" if where else str(message))
    if problems:
        detail += " (" + "; ".join(problems) + ")"
    return detail
