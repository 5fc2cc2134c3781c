"""Template Vendor's authentication as an ``httpx.Auth``.

The generated plugin sends an API key in one header (``constants.API_KEY_HEADER``). Replace
this class with the vendor's real scheme; a scheme with tokens that expire refreshes them here,
once, on a 401 (see the NinjaOne and HaloPSA plugins for OAuth client credentials).
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from gateway_templatevendor.constants import API_KEY_HEADER


class TemplateVendorApiKey(httpx.Auth):
    """Sends the connection's API key in ``API_KEY_HEADER`` on every request (never in a URL)."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self._api_key
        yield request

    def __repr__(self) -> str:  # never show the key, even in a debugger
        return "TemplateVendorApiKey(<key hidden>)"
