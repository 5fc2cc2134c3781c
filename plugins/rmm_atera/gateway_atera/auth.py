"""Atera's API-key scheme: one ``X-API-KEY`` header on every request.

The spec file declares a Bearer JWT scheme, but Atera's own sample script and every maintained
client send ``X-API-KEY`` (contract section 4). Keys do not refresh: a 401 is final (the key is
wrong, expired, outside its IP allowlist, or the account is on a trial without API access).
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from gateway_atera.constants import API_KEY_HEADER


class AteraApiKey(httpx.Auth):
    """Sends the connection's API key in ``X-API-KEY`` on every request (never in a URL)."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self._api_key
        yield request

    def __repr__(self) -> str:  # never show the key, even in a debugger
        return "AteraApiKey(<key hidden>)"
