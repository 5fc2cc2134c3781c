"""Hudu's API-key scheme: one ``x-api-key`` header on every request."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from gateway_hudu.constants import API_KEY_HEADER


class HuduApiKey(httpx.Auth):
    """Sends the connection's API key in the ``x-api-key`` header (never in the URL).

    Hudu keys do not expire or refresh, so a 401 is final: the key is wrong, revoked, or not
    allowed from this IP.
    """

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self._api_key
        yield request

    def __repr__(self) -> str:
        return "HuduApiKey(***)"
