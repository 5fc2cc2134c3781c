"""Console sessions and cross-site request forgery checks.

Signing in with an API key that has the ``admin`` scope opens a session: a random token in an
HttpOnly, SameSite=Strict cookie (Secure over https) that expires after ``SESSION_SECONDS``.
Redis keeps ``console:session:{sha256 of the token}`` (so a copy of Redis holds no live
cookie) with the key's digest, never the key: each request looks the digest up in the key ring
again, so a revoked key or a removed scope ends its sessions at once.

Every form carries the session's CSRF token and every POST is checked twice: the token must
match (compared in constant time) and a browser's ``Origin``/``Sec-Fetch-Site`` must not name
another origin. The sign-in form, before any session, uses a token in its own cookie
(double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import msgspec
import redis
from litestar import Request

from gateway.api.auth import KeyRing, Principal

SESSION_COOKIE = "gateway_console"
SIGN_IN_COOKIE = "gateway_console_signin"
SESSION_SECONDS = 8 * 3600
COOKIE_PATH = "/console"


class ConsoleSession(msgspec.Struct):
    """What Redis keeps of one signed-in browser."""

    key_digest: str
    csrf: str
    opened_at: float


class CrossSiteRequest(Exception):
    """A form post without this session's CSRF token, or from another origin."""


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(ConsoleSession)


def _redis_key(token: str) -> str:
    return "console:session:" + hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Open, find and close console sessions."""

    def __init__(self, client: redis.Redis, keyring: KeyRing) -> None:
        self.redis = client
        self.keyring = keyring

    def open(self, key_digest: str) -> str:
        """A new session for the key with ``key_digest``; returns the cookie's token."""
        token = secrets.token_urlsafe(32)
        session = ConsoleSession(key_digest, secrets.token_urlsafe(32), time.time())
        self.redis.set(_redis_key(token), _enc.encode(session), ex=SESSION_SECONDS)
        return token

    def find(self, request: Request) -> tuple[ConsoleSession, Principal] | None:
        """The request's session and its principal, if the session is live and its key still
        has the ``admin`` scope."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 200:
            return None
        raw = self.redis.get(_redis_key(token))
        if raw is None:
            return None
        session = _dec.decode(raw)
        principal = self.keyring.holder(session.key_digest)
        if principal is None or "admin" not in principal.scopes:
            return None
        return session, principal

    def close(self, request: Request) -> None:
        token = request.cookies.get(SESSION_COOKIE)
        if token and len(token) <= 200:
            self.redis.delete(_redis_key(token))


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def cookie_options(request: Request, max_age: int) -> dict[str, object]:
    """The attributes every console cookie gets."""
    return {"httponly": True, "samesite": "strict", "secure": is_https(request), "path": COOKIE_PATH,
            "max_age": max_age}


def check_same_origin(request: Request) -> None:
    """Refuse a browser request another origin made (``Origin`` or ``Sec-Fetch-Site``)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site and fetch_site not in {"same-origin", "none"}:
        raise CrossSiteRequest(f"the form was sent from another site ({fetch_site})")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise CrossSiteRequest("the form was sent from another origin")
    elif origin == "null":
        raise CrossSiteRequest("the form was sent from an opaque origin")


def check_token(expected: str | None, sent: object) -> None:
    """Refuse a form whose CSRF token is missing or wrong."""
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CrossSiteRequest("the form's CSRF token is missing or does not match this session")
