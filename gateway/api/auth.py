"""Bearer API keys: 401 without a valid key, 403 without the scope.

Keys are configured as SHA-256 digests per workspace; a key sees only its own workspace's
records (another workspace's references answer 404, so existence does not leak).
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from gateway.settings import Settings, hash_key


@dataclass(frozen=True)
class Principal:
    workspace: str
    key_name: str
    scopes: frozenset[str]


KNOWN_KEYS_CAP = 1024
# Where the admission check leaves the caller's principal on the request's ASGI scope.
PRINCIPAL = "gateway.principal"


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self._keys: dict[str, Principal | None] = {}
        # Valid keys already hashed in this process (keys and revocations are configuration:
        # they change only with a restart), so a request does not hash its key again.
        self._known: dict[str, Principal] = {}
        for workspace in settings.workspaces:
            for key in workspace.api_keys:
                self._keys[key.sha256] = None if key.revoked else Principal(
                    workspace.id, key.name, frozenset(key.scopes)
                )

    def authenticate(self, request: Request) -> Principal:
        """The caller's key (401 without a valid one), whatever it may do."""
        return self.authenticate_header(request.headers.get("authorization", ""))

    def authenticate_header(self, header: str) -> Principal:
        """``authenticate`` given the ``Authorization`` header's value ('' when absent)."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("a bearer API key is required")
        token = token.strip()
        principal = self._known.get(token)
        if principal is None:
            principal = self._keys.get(hash_key(token))
            if principal is None:
                raise NotAuthorizedException("the API key is not valid")
            if len(self._known) >= KNOWN_KEYS_CAP:  # keys are few; a full map is just started again
                self._known.clear()
            self._known[token] = principal
        return principal

    def principal(self, request: Request, scope: str) -> Principal:
        """The caller's key, checked for ``scope`` (401 without a valid key, 403 without it)."""
        principal = request.scope.get(PRINCIPAL) or self.authenticate(request)  # type: ignore[call-overload]
        if scope not in principal.scopes:
            raise PermissionDeniedException(f"the API key lacks the {scope!r} scope")
        return principal

    def holder(self, digest: str) -> Principal | None:
        """The principal of a key by its SHA-256 digest (``None`` if unknown or revoked): the
        console keeps the digest in its session, so revoking the key ends the session."""
        return self._keys.get(digest)
