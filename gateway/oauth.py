"""OAuth 2.0 client credentials for vendor plugins: one token per connection, shared by every
worker of every process, fetched by one of them at a time.

::

    BearerAuth (httpx.Auth)        ``Authorization: Bearer`` on each call; on a 401 it drops that
     └── SharedToken               token and retries once with a fresh one
          ├── TokenEndpoint        ``POST`` the client-credentials form (RFC 6749 section 4.4)
          │                        through ``VendorHTTP``: rate-limited and audited like any call
          └── TokenCache           where the token lives until shortly before it expires
               ├── RedisTokenCache ``plugin:{connection}:token`` (TTL under ``expires_in``); the
               │                   refresh runs under redis-py's ``Lock`` (owner-checked release)
               └── MemoryTokenCache the same in one process (no runtime: narrow unit tests)

A vendor plugin builds one ``SharedToken`` per connection with ``shared_token`` and hands
``BearerAuth(token)`` to its ``VendorHTTP``. The token value never leaves these objects except
in the ``Authorization`` header: no repr, message or span attribute holds it; the client secret
goes as a form field, which the audit span does not record.

A token endpoint that refuses the client (``invalid_client``, ``unauthorized_client``: RFC 6749
section 5.2) raises ``VendorAuthFailed``: a configuration fault, never retried.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import msgspec
import redis
from redis.exceptions import LockError

from gateway.errors import (
    VendorAmbiguous,
    VendorAuthFailed,
    VendorRejected,
    VendorUnavailable,
    VendorUnreachable,
)
from gateway.models import Connection
from gateway.vendor_http import VendorHTTP

TOKEN_KEY = "plugin:{connection}:token"
LOCK_KEY = "plugin:{connection}:token:lock"
POLL_SECONDS = 0.02
# A token request is safe to repeat (a second token is simply issued): transient failures are
# retried here, briefly, before the API call that needed the token gives up.
FETCH_ATTEMPTS = 3
FETCH_RETRY_SECONDS = 0.2
# RFC 6749 section 5.2 errors that mean the credentials themselves are wrong.
CLIENT_REFUSED = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class TokenGrant:
    """An access token and how many seconds the vendor says it lasts."""

    access_token: str = field(repr=False)
    expires_in: float

    def keep_seconds(self, margin: float) -> float:
        """How long to keep the token: ``expires_in`` less ``margin`` (at most a tenth of it)."""
        return max(0.5, self.expires_in - min(margin, self.expires_in / 10))


def token_http(connection: Connection, **kwargs: Any) -> VendorHTTP:
    """A ``VendorHTTP`` for the token endpoint (and any discovery before it). It spends the
    connection's rate windows but takes no in-flight slot: a refresh runs inside an API call's
    auth flow, which may hold the connection's only slot."""
    policy = msgspec.structs.replace(connection.rate_limit, concurrency=None)
    return VendorHTTP(msgspec.structs.replace(connection, rate_limit=policy), **kwargs)


class TokenEndpoint:
    """Runs the client-credentials grant.

    :param http: the ``VendorHTTP`` that sends it (see ``token_http``).
    :param url: the token endpoint, or a function that finds it (Halo discovers it).
    :param client_id: the client id; ``client_secret`` its secret; ``scope`` the scope asked.
    :param params: query parameters of the token request (Halo's ``tenant``).
    """

    def __init__(
        self,
        http: VendorHTTP,
        url: str | Callable[[], str],
        *,
        client_id: str,
        client_secret: str,
        scope: str,
        params: dict[str, str] | None = None,
    ) -> None:
        self.http = http
        self._url = url
        self.params = params
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }

    def __repr__(self) -> str:
        return f"TokenEndpoint({self.http.connection.id!r})"

    def fetch(self) -> TokenGrant:
        """A new token. Transport failures and 5xx are retried briefly; a refused client is
        ``VendorAuthFailed``; an answer without a token is ``VendorRejected`` (wrong URL)."""
        vendor, connection = self.http.connection.vendor, self.http.connection.id
        for attempt in range(FETCH_ATTEMPTS):
            try:
                url = self._url() if callable(self._url) else self._url
                # ``data=`` keeps the secret out of the audit span: VendorHTTP records JSON bodies only.
                response = self.http.post(url, params=self.params, data=self._form, headers={"Accept": "application/json"})
                break
            except VendorRejected as exc:
                if not isinstance(exc, VendorAuthFailed) and _oauth_error(exc.body) in CLIENT_REFUSED:
                    raise VendorAuthFailed(str(exc), connection=exc.connection, status=exc.status, body=exc.body) from None
                raise
            except (VendorAmbiguous, VendorUnavailable, VendorUnreachable) as exc:
                if attempt + 1 == FETCH_ATTEMPTS:
                    # Not a write: an unanswered token request is simply unavailable.
                    raise VendorUnavailable(
                        f"{vendor}: no token from the authorisation server ({type(exc).__name__})",
                        connection=connection,
                        status=exc.status,
                    ) from None
                time.sleep(FETCH_RETRY_SECONDS * (attempt + 1))
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            # A 200 without a token is a login page or a proxy: the host or token path is wrong.
            raise VendorRejected(
                f"{vendor} token endpoint {url} answered without an access_token: check base_url and the token path",
                connection=connection,
                status=response.status_code,
            )
        try:
            expires_in = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        return TokenGrant(token, expires_in)


def _oauth_error(body: str) -> str | None:
    try:
        decoded = msgspec.json.decode(body or b"null")
    except msgspec.DecodeError:
        return None
    return decoded.get("error") if isinstance(decoded, dict) else None


class TokenCache(Protocol):
    """Where the current token lives, and the lock that lets one caller refresh it."""

    def get(self) -> str | None: ...

    def put(self, token: str, seconds: float) -> None: ...

    def discard(self, token: str) -> None:
        """Forget ``token`` if it is still the current one (a newer one is kept)."""

    def try_lock(self) -> Any | None:
        """Take the refresh lock without waiting; return its handle, or ``None`` if held."""

    def unlock(self, handle: Any) -> None: ...


class RedisTokenCache:
    """The token in Redis, shared by every process serving the connection."""

    def __init__(self, client: redis.Redis, connection_id: str, lock_seconds: float) -> None:
        self.redis = client
        self.key = TOKEN_KEY.format(connection=connection_id)
        self.lock_key = LOCK_KEY.format(connection=connection_id)
        self.lock_seconds = max(1.0, lock_seconds)
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def __repr__(self) -> str:
        return f"RedisTokenCache({self.key!r})"

    def get(self) -> str | None:
        value = self.redis.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def put(self, token: str, seconds: float) -> None:
        self.redis.set(self.key, token, px=max(1, int(seconds * 1000)))

    def discard(self, token: str) -> None:
        self._delete_if_equal(keys=[self.key], args=[token])

    def try_lock(self) -> Any | None:
        lock = self.redis.lock(self.lock_key, timeout=self.lock_seconds, blocking=False)
        return lock if lock.acquire(blocking=False, token=uuid.uuid4().hex) else None

    def unlock(self, handle: Any) -> None:
        try:
            handle.release()
        except LockError:  # it expired and another worker holds it now: theirs to release
            pass


class MemoryTokenCache:
    """The token in this process only (no runtime: narrow tests, one-off scripts)."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._until = 0.0
        self._guard = threading.Lock()
        self._refresh = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryTokenCache()"

    def get(self) -> str | None:
        with self._guard:
            if self._token is not None and time.monotonic() < self._until:
                return self._token
            return None

    def put(self, token: str, seconds: float) -> None:
        with self._guard:
            self._token, self._until = token, time.monotonic() + seconds

    def discard(self, token: str) -> None:
        with self._guard:
            if self._token == token:
                self._token, self._until = None, 0.0

    def try_lock(self) -> Any | None:
        return self._refresh if self._refresh.acquire(blocking=False) else None

    def unlock(self, handle: Any) -> None:
        handle.release()


class SharedToken:
    """The connection's current access token: cached, fetched once (for everyone) when missing.

    :param endpoint: fetches a new token (``TokenEndpoint``, or any ``fetch() -> TokenGrant``).
    :param cache: where the token is shared.
    :param wait_seconds: how long a caller waits for another worker's fetch to finish.
    :param refresh_margin: seconds before ``expires_in`` at which a token is dropped.
    """

    def __init__(self, endpoint: Any, cache: TokenCache, *, wait_seconds: float, refresh_margin: float = 60.0) -> None:
        self.endpoint = endpoint
        self.cache = cache
        self.wait_seconds = wait_seconds
        self.refresh_margin = refresh_margin
        self.fetches = 0  # tokens this object fetched (tests and status pages)

    def __repr__(self) -> str:
        return f"SharedToken({self.cache!r})"

    def current(self) -> str:
        """The cached token, or a new one when there is none."""
        return self.cache.get() or self.refresh()

    def refresh(self, stale: str | None = None) -> str:
        """A token other than ``stale`` (one the vendor just refused): another worker's newer
        one, or one fetched here under the lock while the others wait."""
        if stale:
            self.cache.discard(stale)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            fresh = self._fresh(stale)
            if fresh:
                return fresh
            handle = self.cache.try_lock()
            if handle is not None:
                try:
                    return self._fresh(stale) or self._fetch()  # stored while we took the lock?
                finally:
                    self.cache.unlock(handle)
            if time.monotonic() >= deadline:
                raise VendorUnavailable("timed out waiting for another worker's token refresh")
            time.sleep(POLL_SECONDS)

    def _fresh(self, stale: str | None) -> str | None:
        token = self.cache.get()
        return token if token and token != stale else None

    def _fetch(self) -> str:
        grant = self.endpoint.fetch()
        self.fetches += 1
        self.cache.put(grant.access_token, grant.keep_seconds(self.refresh_margin))
        return grant.access_token


def shared_token(connection: Connection, endpoint: Any, *, refresh_margin: float = 60.0) -> SharedToken:
    """The ``SharedToken`` of ``connection``: in Redis when the gateway runs, else in-process."""
    lock_seconds = connection.timeout_seconds + 5
    runtime = connection.runtime
    cache: TokenCache
    if runtime is not None and getattr(runtime, "redis", None) is not None:
        cache = RedisTokenCache(runtime.redis, connection.id, lock_seconds)
    else:
        cache = MemoryTokenCache()
    return SharedToken(endpoint, cache, wait_seconds=2 * lock_seconds, refresh_margin=refresh_margin)


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; on a 401, one retry with a fresh token.

    The retry lives here, once, so every call (reads and writes) gets it; a 401 means the
    vendor did not act on the request, so sending it again cannot double a write. Sync only:
    ``VendorHTTP`` is a synchronous client.
    """

    def __init__(self, token: SharedToken) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"BearerAuth({self.token!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        access = self.token.current()
        request.headers["Authorization"] = f"Bearer {access}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.token.refresh(stale=access)}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> Any:  # pragma: no cover - sync only
        raise RuntimeError("BearerAuth is for the synchronous httpx.Client (VendorHTTP) only")
        yield request
