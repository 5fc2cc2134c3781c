"""Reading Autotask's error bodies.

Autotask answers a failed call with ``{"errors": ["Field Title is required", ...]}``: a list of
strings (some clients also meet ``{"message": ...}`` objects in the list). An empty or HTML body
(a gateway in front of the API) falls back to the start of the text.

Autotask also answers refused credentials with a 500 and such a body; ``classify`` turns
those into ``VendorAuthFailed`` so the gateway does not retry them as a server fault.
"""

from __future__ import annotations

import httpx

from gateway.errors import VendorAuthFailed, VendorError
from gateway_autotask.constants import AUTH_FAILURE_MESSAGES

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


def refuses_credentials(response: httpx.Response) -> bool:
    """Whether a 500 is Autotask refusing the credentials (an unknown UserName or
    ApiIntegrationCode, or a zone lookup for an unknown user) rather than a server fault."""
    if response.status_code != 500:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return False
    texts = [_message(e).casefold() for e in errors]
    return any(known.casefold() in text for known in AUTH_FAILURE_MESSAGES for text in texts)


def classify(error: VendorError, response: httpx.Response) -> VendorError:
    """``error`` as the gateway should treat it: an authentication failure is not transient."""
    if refuses_credentials(response):
        return VendorAuthFailed(
            f"{error} (Autotask refused the credentials: check UserName, Secret and ApiIntegrationCode)",
            connection=error.connection,
            status=error.status,
            body=error.body,
        )
    return error
