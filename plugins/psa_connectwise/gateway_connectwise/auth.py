"""ConnectWise API-member authentication as an ``httpx.Auth``.

Every call carries ``Authorization: Basic base64("{company_id}+{public_key}:{private_key}")``
and the integration's ``clientId`` header (required by ConnectWise since August 2019).
API keys do not expire and there is nothing to refresh, so a 401 is final.
"""

from __future__ import annotations

import base64
from collections.abc import Generator

import httpx


class ConnectWiseAuth(httpx.Auth):
    """Signs each request with the API member's keys and the integration's client id."""

    def __init__(self, company_id: str, public_key: str, private_key: str, client_id: str) -> None:
        token = base64.b64encode(f"{company_id}+{public_key}:{private_key}".encode()).decode()
        self._authorization = f"Basic {token}"
        self._client_id = client_id

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._authorization
        request.headers["clientId"] = self._client_id
        yield request

    def __repr__(self) -> str:  # never show the keys, even in a debugger
        return "ConnectWiseAuth(<keys hidden>)"
