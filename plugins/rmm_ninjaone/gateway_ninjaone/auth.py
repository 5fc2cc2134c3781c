"""NinjaOne OAuth2: one client-credentials token per connection, shared by every worker.

``POST {host}/ws/oauth/token`` with a form body (``grant_type=client_credentials``,
``client_id``, ``client_secret``, ``scope``) answers ``{access_token, token_type, expires_in,
scope}``; the token lasts 3600 s and comes without a refresh token, so "refresh" means running
the grant again.

Where the token lives:

- with a runtime, in Redis under ``plugin:{connection}:token``, expiring a little before the
  vendor's ``expires_in`` so it is replaced before its hour is up. A short Redis lock
  (``plugin:{connection}:token:lock``) lets one worker fetch while the others wait for its
  token, so a fleet of workers never stampedes the token endpoint;
- without one (narrow unit tests), in this process.

``NinjaOneAuth`` puts ``Authorization: Bearer`` on every request and, on a 401, drops that
token (only if it is still the current one), fetches or picks up a fresh one, and retries once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Generator
from typing import Any, Protocol

import httpx

from gateway.errors import VendorRejected
from gateway.vendor_http import VendorHTTP
from gateway_ninjaone.constants import TOKEN_LOCK_SECONDS, TOKEN_REFRESH_MARGIN, TOKEN_WAIT_POLL


def token_ttl(expires_in: float) -> float:
    """How long to keep a token: ``expires_in`` less a margin (2 minutes, or a tenth)."""
    return max(0.5, expires_in - min(TOKEN_REFRESH_MARGIN, expires_in / 10))


class ClientCredentials:
    """Runs the client-credentials grant against the tenant's token endpoint."""

    def __init__(self, http: VendorHTTP, path: str, client_id: str, client_secret: str, scope: str) -> None:
        self.http = http
        self.path = path
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }

    def fetch(self) -> tuple[str, float]:
        """Return a new access token and its lifetime in seconds."""
        # ``data=`` keeps the secret out of the audit span: VendorHTTP records JSON bodies only.
        response = self.http.post(self.path, data=self._form, headers={"Accept": "application/json"})
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            # A 200 without a token is a login page or a proxy: the host or token_path is wrong.
            raise VendorRejected(
                f"{self.http.connection.vendor} token endpoint {self.path} answered without an access_token: "
                "check base_url and token_path",
                connection=self.http.connection.id,
                status=response.status_code,
            )
        return str(token), float(body.get("expires_in") or 3600)


class TokenCache(Protocol):
    """Where the current token is kept, and the lock that serialises fetching a new one."""

    def get(self) -> str | None: ...

    def put(self, token: str, ttl: float) -> None: ...

    def discard(self, token: str) -> None: ...

    def try_lock(self) -> str | None: ...

    def unlock(self, holder: str) -> None: ...


_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTokenCache:
    """The token in Redis, seen by every worker of every process."""

    def __init__(self, client: Any, connection_id: str) -> None:
        self.redis = client
        self.key = f"plugin:{connection_id}:token"
        self.lock_key = f"plugin:{connection_id}:token:lock"
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def get(self) -> str | None:
        value = self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def put(self, token: str, ttl: float) -> None:
        self.redis.set(self.key, token, px=max(1, int(ttl * 1000)))

    def discard(self, token: str) -> None:
        self._delete_if_equal(keys=[self.key], args=[token])

    def try_lock(self) -> str | None:
        holder = uuid.uuid4().hex
        if self.redis.set(self.lock_key, holder, nx=True, px=int(TOKEN_LOCK_SECONDS * 1000)):
            return holder
        return None

    def unlock(self, holder: str) -> None:
        self._delete_if_equal(keys=[self.lock_key], args=[holder])


class MemoryTokenCache:
    """The token in this process only (no runtime: narrow unit tests)."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> str | None:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        return None

    def put(self, token: str, ttl: float) -> None:
        self._token, self._expires_at = token, time.monotonic() + ttl

    def discard(self, token: str) -> None:
        if self._token == token:
            self._token = None

    def try_lock(self) -> str | None:
        return "local" if self._lock.acquire(blocking=False) else None

    def unlock(self, holder: str) -> None:
        self._lock.release()


class SharedToken:
    """The connection's current access token: cached, fetched once when missing or stale."""

    def __init__(self, credentials: ClientCredentials, cache: TokenCache) -> None:
        self.credentials = credentials
        self.cache = cache

    def current(self) -> str:
        """The cached token, or a new one when there is none."""
        return self.cache.get() or self.refresh()

    def refresh(self, stale: str | None = None) -> str:
        """A token other than ``stale`` (the one the vendor just refused), fetching one if no
        other worker already has."""
        if stale:
            self.cache.discard(stale)
        deadline = time.monotonic() + 2 * TOKEN_LOCK_SECONDS
        while True:
            holder = self.cache.try_lock()
            if holder is not None:
                try:
                    return self._fresh(stale) or self._fetch()
                finally:
                    self.cache.unlock(holder)
            fresh = self._fresh(stale)
            if fresh:
                return fresh
            if time.monotonic() > deadline:
                # The lock expires on its own, so this only happens when Redis misbehaves.
                return self._fetch()
            time.sleep(TOKEN_WAIT_POLL)

    def _fresh(self, stale: str | None) -> str | None:
        token = self.cache.get()
        return token if token and token != stale else None

    def _fetch(self) -> str:
        token, expires_in = self.credentials.fetch()
        self.cache.put(token, token_ttl(expires_in))
        return token


class NinjaOneAuth(httpx.Auth):
    """Bearer auth with the shared token; one refresh and retry on a 401.

    Sync only: fetching a token is a blocking call (the gateway's ``VendorHTTP`` is sync).
    """

    def __init__(self, token: SharedToken) -> None:
        self.token = token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        access = self.token.current()
        request.headers["Authorization"] = f"Bearer {access}"
        response = yield request
        if response.status_code == 401:
            access = self.token.refresh(stale=access)
            request.headers["Authorization"] = f"Bearer {access}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> Any:  # pragma: no cover
        raise RuntimeError("NinjaOneAuth is sync only; use it with VendorHTTP")
        yield request  # makes this an async generator, as httpx expects
