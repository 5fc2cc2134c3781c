"""Template Vendor's authentication as an ``httpx.Auth``.

The generated plugin sends an API key in one header (``constants.API_KEY_HEADER``). Replace
this class with the vendor's real scheme. A vendor with OAuth 2.0 client credentials needs no
class of its own: ``oauth_client_credentials`` below returns the gateway's shared-token auth
(``gateway.oauth``: one token per connection shared by every worker through Redis, refreshed
under one lock, the token call audited, one retry on a 401), as the HaloPSA and NinjaOne
plugins use it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from gateway.models import Connection
from gateway.oauth import BearerAuth, TokenEndpoint, shared_token, token_http
from gateway.vendor_http import VendorHTTP
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


def oauth_client_credentials(
    connection: Connection, token_url: str, *, client_id: str, client_secret: str, scope: str, **http: Any
) -> tuple[BearerAuth, VendorHTTP]:
    """OAuth 2.0 client credentials for ``connection``: the ``httpx.Auth`` to give the API's
    ``VendorHTTP``, and the ``VendorHTTP`` the token requests go through (close it with the
    client). ``token_url`` is relative to ``connection.base_url`` or absolute; ``http`` goes to
    that ``VendorHTTP`` (``error_detail``, ``transport``)."""
    tokens = token_http(connection, **http)
    endpoint = TokenEndpoint(tokens, token_url, client_id=client_id, client_secret=client_secret, scope=scope)
    return BearerAuth(shared_token(connection, endpoint)), tokens
