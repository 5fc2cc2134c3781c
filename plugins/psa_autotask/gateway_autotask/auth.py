"""Autotask's header authentication, sent only where it belongs.

Every API call carries three headers: ``ApiIntegrationCode`` (the integration's tracking
identifier), ``UserName`` and ``Secret`` (the API user's credentials), plus the optional
``ImpersonationResourceId``. Zone discovery needs none of them.

The headers go only to the *trusted origin*, the zone API host learned from
``zoneInformation``: a ``nextPageUrl`` (or a paging cursor handed back by an API caller) that
points anywhere else must never receive the credentials.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx


def origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a URL (the port made explicit for http and https)."""
    url = httpx.URL(str(url))
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), port


class AutotaskAuth(httpx.Auth):
    """Adds the Autotask credential headers to requests sent to ``trusted_origin``."""

    def __init__(
        self,
        username: str,
        secret: str,
        integration_code: str,
        *,
        impersonation_resource_id: int | None = None,
    ) -> None:
        self._headers = {"ApiIntegrationCode": integration_code, "UserName": username, "Secret": secret}
        if impersonation_resource_id is not None:
            self._headers["ImpersonationResourceId"] = str(impersonation_resource_id)
        # Set once the zone is known; until then no request gets credentials.
        self.trusted_origin: tuple[str, str, int | None] | None = None

    def trust(self, api_root: str) -> None:
        """Send credentials to ``api_root``'s origin from now on (and to no other)."""
        self.trusted_origin = origin(api_root)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.trusted_origin is not None and origin(request.url) == self.trusted_origin:
            request.headers.update(self._headers)
        yield request

    def __repr__(self) -> str:  # never show the secret, even in a debugger
        return f"AutotaskAuth(username={self._headers['UserName']!r}, trusted_origin={self.trusted_origin!r})"
