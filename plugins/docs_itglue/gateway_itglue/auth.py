"""IT Glue's API-key scheme as an ``httpx.Auth``: one ``x-api-key`` header on every request."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from gateway_itglue.constants import API_KEY_HEADER


class ITGlueApiKey(httpx.Auth):
    """Sends the connection's key (``ITG.xxxx``) in ``x-api-key``, never in a URL.

    IT Glue keys do not expire or refresh (they are revoked after 90 days unused, and can be
    revoked by an admin), so a 401 or 403 is final: nothing to retry here.
    """

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self._api_key
        yield request

    def __repr__(self) -> str:  # never show the key, even in a debugger
        return "ITGlueApiKey(<key hidden>)"
