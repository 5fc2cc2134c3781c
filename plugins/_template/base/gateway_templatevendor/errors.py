"""Template Vendor's error body, read into the one-line detail of the gateway's errors.

The simulator answers errors as ``{"error": {"code": "invalid", "message": "...",
"field": "summary"}}``. ``VendorHTTP`` puts what ``error_detail`` returns into the
``gateway.errors.VendorError`` it raises, so an operator reading a dead letter sees what the
vendor refused and why. Which statuses are retried is decided once, in ``gateway.errors``.
"""

from __future__ import annotations

import httpx


def error_detail(response: httpx.Response) -> str:
    """``code: message (field)``, or the start of a body that is not the vendor's JSON."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return response.text[:500]
    detail = error["message"]
    if error.get("code"):
        detail = f"{error['code']}: {detail}"
    if error.get("field"):
        detail += f" ({error['field']})"
    return detail
