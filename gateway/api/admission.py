"""What every request passes before a handler (or Litestar's body parsing) reads it.

1. **The API key.** Every route needs a valid bearer key unless it is declared public
   (``opt={"public": True}``: ``/health``, vendor webhooks, whose signature is the credential)
   or serves the OpenAPI document. Litestar decodes a handler's ``data`` before the handler
   runs, so a key checked only inside handlers let anyone make the gateway parse a body.
   The scope (read, write, admin) is still checked by each handler.
2. **JSON nesting depth.** A body nested deeper than ``MAX_JSON_DEPTH`` is a 400 naming the
   limit. Decoders recurse once per level, so a thousand ``[`` raised ``RecursionError`` (a 500)
   wherever a body was decoded. Litestar decodes a JSON body whatever its ``Content-Type``
   says, so every body is checked except multipart bodies sent to a route that reads a form
   (``opt={"form": True}``), which never decodes them as JSON.

The body read here is cached on the request's scope, so handlers read it again for free.
"""

from __future__ import annotations

import re
from itertools import accumulate

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.api.auth import PRINCIPAL
from gateway.api.problems import ApiError

MAX_JSON_DEPTH = 64
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # brackets inside strings do not nest
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether any array or object in ``body`` (JSON, or what claims to be) sits more than
    ``limit`` levels deep. Linear in the body and never recursive; it stops at the first level
    past the limit."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: too few openings to go that deep
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET)
    depths = accumulate(map(_STEP.__getitem__, brackets))
    return next(filter(limit.__lt__, depths), None) is not None


class Admission(ASGIMiddleware):
    """The API key, then the body's nesting depth, for every HTTP route (see the module)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, openapi_path: str) -> None:
        self.openapi_path = openapi_path.rstrip("/")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        opt = scope["route_handler"].opt
        if not (opt.get("public") or self._serves_openapi(scope["path"])):
            keyring = scope["litestar_app"].state.keyring
            scope[PRINCIPAL] = keyring.authenticate_header(_header(scope, b"authorization"))  # type: ignore[literal-required]
        if scope["method"] not in BODYLESS_METHODS and not (opt.get("form") and _is_multipart(scope)):
            body = await Request(scope, receive, send).body()  # kept on the scope: handlers read it free
            if nested_deeper_than(body, MAX_JSON_DEPTH):
                raise ApiError(400, "Body nested too deeply",
                               f"arrays and objects may nest at most {MAX_JSON_DEPTH} levels deep",
                               "flatten the request body", max_depth=MAX_JSON_DEPTH)
        await next_app(scope, receive, send)

    def _serves_openapi(self, path: str) -> bool:
        return path == self.openapi_path or path.startswith(self.openapi_path + "/")


def _header(scope: Scope, name: bytes) -> str:
    """One request header (``name`` lowercase, as ASGI gives them), '' when absent."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _is_multipart(scope: Scope) -> bool:
    return _header(scope, b"content-type").lower().startswith("multipart/")
