"""OAuth2 client-credentials auth for Halo, with one token shared by every worker.

::

    HaloBearerAuth (httpx.Auth)      puts ``Authorization: Bearer`` on each API call; on a 401
     └── TokenSource                 drops that token and retries once with a fresh one
          ├── fetch()                ``GET /api/authinfo`` then ``POST {auth_url}/token``
          └── TokenStore             where the token lives until shortly before it expires
               ├── RedisTokenStore   ``plugin:{connection}:token`` (TTL under ``expires_in``)
               │                     + a short lock so one process fetches, others wait
               └── MemoryTokenStore  the same in one process (unit tests, no runtime)

The token value never leaves these objects except in the ``Authorization`` header: it is not
in any repr, message or span attribute.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from gateway.errors import VendorUnavailable

# A token is kept this much shorter than ``expires_in`` (but never less than 90 % of it), so
# it is refreshed before Halo stops accepting it.
EXPIRY_MARGIN_SECONDS = 60.0
EXPIRY_MARGIN_SHARE = 0.1
POLL_SECONDS = 0.02

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_DELETE_IF_EQUAL = _RELEASE_LOCK


@dataclass(frozen=True)
class TokenGrant:
    """An access token and how many seconds Halo says it lasts."""

    access_token: str = field(repr=False)
    expires_in: float

    def keep_seconds(self) -> float:
        """How long to keep the token: a bit under ``expires_in``."""
        margin = min(EXPIRY_MARGIN_SECONDS, self.expires_in * EXPIRY_MARGIN_SHARE)
        return max(0.5, self.expires_in - margin)


class TokenStore(Protocol):
    """Where the current token lives, and the lock that lets one caller refresh it."""

    def get(self) -> str | None: ...

    def put(self, token: str, seconds: float) -> None: ...

    def discard(self, token: str) -> None:
        """Forget ``token`` if it is still the current one (a newer one is kept)."""

    def try_lock(self) -> str | None:
        """Take the refresh lock without waiting; return its handle, or ``None`` if held."""

    def unlock(self, handle: str) -> None: ...


class RedisTokenStore:
    """The token in Redis, shared by every process serving the connection."""

    def __init__(self, client, token_key: str, lock_key: str, lock_seconds: float) -> None:
        self.redis = client
        self.token_key = token_key
        self.lock_key = lock_key
        self.lock_ms = max(1000, int(lock_seconds * 1000))
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def __repr__(self) -> str:
        return f"RedisTokenStore({self.token_key!r})"

    def get(self) -> str | None:
        value = self.redis.get(self.token_key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def put(self, token: str, seconds: float) -> None:
        self.redis.set(self.token_key, token, px=max(1, int(seconds * 1000)))

    def discard(self, token: str) -> None:
        self._delete_if_equal(keys=[self.token_key], args=[token])

    def try_lock(self) -> str | None:
        handle = uuid.uuid4().hex
        if self.redis.set(self.lock_key, handle, nx=True, px=self.lock_ms):
            return handle
        return None

    def unlock(self, handle: str) -> None:
        self._delete_if_equal(keys=[self.lock_key], args=[handle])


class MemoryTokenStore:
    """The token in this process only (no runtime: narrow tests, one-off scripts)."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._until = 0.0
        self._guard = threading.Lock()
        self._refresh = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryTokenStore()"

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

    def try_lock(self) -> str | None:
        return "local" if self._refresh.acquire(blocking=False) else None

    def unlock(self, handle: str) -> None:
        self._refresh.release()


class TokenSource:
    """Hands out the current token, fetching a new one (once, for everyone) when needed.

    :param fetch: asks Halo for a new token (``TokenGrant``); may raise ``VendorError``.
    :param store: where the token is shared.
    :param wait_seconds: how long a caller waits for another process's fetch to finish.
    """

    def __init__(self, fetch: Callable[[], TokenGrant], store: TokenStore, wait_seconds: float) -> None:
        self._fetch = fetch
        self.store = store
        self.wait_seconds = wait_seconds
        self.fetches = 0  # tokens this object fetched (for tests and status pages)

    def __repr__(self) -> str:
        return f"TokenSource({self.store!r})"

    def token(self) -> str:
        """The current token; fetch one if there is none (one fetcher, the others wait)."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            token = self.store.get()
            if token:
                return token
            handle = self.store.try_lock()
            if handle is not None:
                try:
                    token = self.store.get()  # stored while we were taking the lock
                    if token:
                        return token
                    grant = self._fetch()
                    self.fetches += 1
                    self.store.put(grant.access_token, grant.keep_seconds())
                    return grant.access_token
                finally:
                    self.store.unlock(handle)
            if time.monotonic() >= deadline:
                raise VendorUnavailable("halopsa: timed out waiting for another worker's token refresh")
            time.sleep(POLL_SECONDS)

    def reject(self, token: str) -> None:
        """Halo answered 401 to ``token``: stop handing it out."""
        self.store.discard(token)


class HaloBearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; on a 401, one retry with a fresh token.

    The retry lives here, once, so every call (reads and writes) gets it; a 401 means Halo
    did not act on the request, so sending it again cannot double a write.
    """

    def __init__(self, tokens: TokenSource) -> None:
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"HaloBearerAuth({self.tokens!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.tokens.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        self.tokens.reject(token)
        retry = self.tokens.token()
        request.headers["Authorization"] = f"Bearer {retry}"
        yield request

    async def async_auth_flow(self, request: httpx.Request):  # pragma: no cover - sync only
        raise RuntimeError("HaloBearerAuth is for the synchronous httpx.Client only")
        yield request
