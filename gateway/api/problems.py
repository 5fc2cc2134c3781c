"""One JSON problem shape for every error: status, title, detail, and what the caller can do."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import redis
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException

from gateway.durability import NotReplicated
from gateway.errors import ConfigError, NotSupported, VendorError, VendorRateLimited, VendorRejected, WriteRefused
from gateway.models import BadReference

log = logging.getLogger("gateway.api")
STORAGE_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError,
                redis.exceptions.BusyLoadingError)


class Problem(msgspec.Struct, omit_defaults=True):
    status: int
    title: str
    detail: str
    action: str = ""
    extra: dict[str, Any] = {}


# How much of a caller's value an error may quote, and how long a whole detail may be: a 5 MB
# field must not come back as a 10 MB error (the field is named; its value is cut).
QUOTE_LIMIT = 200
DETAIL_LIMIT = 1000
LIST_LIMIT = 20


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and its end (where msgspec
    and Litestar name the field: ``... - at `$.action```)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}…[{len(text) - head - tail:,} characters cut]…{text[-tail:]}"


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A caller's value as an error quotes it: its ``repr``, cut to ``limit`` characters."""
    return clip(repr(value), limit)


def _clipped(value: Any) -> Any:
    """Every string inside an error's ``extra`` cut, and long lists shortened."""
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, dict):
        return {clip(str(k)): _clipped(v) for k, v in list(value.items())[:LIST_LIMIT]}
    if isinstance(value, (list, tuple)):
        kept = [_clipped(v) for v in value[:LIST_LIMIT]]
        if len(value) > LIST_LIMIT:
            kept.append(f"…and {len(value) - LIST_LIMIT:,} more")
        return kept
    return value


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str, action: str = "", **extra: Any) -> None:
        self.problem = Problem(status, title, detail, action, extra)
        super().__init__(detail)


# The problem answers every route can give, for handlers' ``responses=`` so the OpenAPI
# document declares them (schemathesis checks every answer against it).
PROBLEM_STATUSES = {
    400: "Malformed JSON, wrong types, unknown fields, a bad reference or Idempotency-Key",
    401: "No API key, or an unknown or revoked one",
    403: "The API key lacks the scope",
    404: "No such record in the key's workspace (another workspace's records look the same)",
    409: "An admin action on a write in the wrong state; a resync of a connection that keeps no tickets",
    413: "A body or attachment over the limit (names the PSA's cap)",
    422: "A status or form value the PSA does not allow; an Idempotency-Key reused with another body",
    501: "The vendor lacks the capability",
    502: "A read through the vendor failed",
    503: "A read through the vendor is over its rate limit, Redis is unreachable (a failover), or the Redis "
         "replicas did not confirm a write (Retry-After)",
}


def problem_responses(*statuses: int) -> dict[int, Any]:
    """``responses=`` for a route handler: the problem shape for each status (all by default)."""
    from litestar.openapi.datastructures import ResponseSpec

    return {
        status: ResponseSpec(data_container=Problem, description=PROBLEM_STATUSES[status],
                             media_type="application/problem+json")
        for status in (statuses or tuple(PROBLEM_STATUSES))
    }


def not_found(what: str) -> ApiError:
    return ApiError(404, "Not found", f"no {what}", "check the reference; it may belong to another workspace")


def _respond(problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    problem = Problem(problem.status, clip(problem.title, QUOTE_LIMIT), clip(problem.detail, DETAIL_LIMIT),
                      clip(problem.action, QUOTE_LIMIT), _clipped(problem.extra))
    return Response(problem, status_code=problem.status, media_type="application/problem+json", headers=headers)


def handle(request: Request, exc: Exception) -> Response[Problem]:
    """Map every exception to a problem response; never leak internals or secrets."""
    redactor = getattr(request.app.state, "redactor", None)
    scrub = redactor.scrub if redactor else (lambda s: s)
    if isinstance(exc, ApiError):
        return _respond(exc.problem)
    if isinstance(exc, WriteRefused):
        return _respond(Problem(exc.status, exc.title, scrub(exc.detail), exc.action, exc.extra))
    if isinstance(exc, (msgspec.DecodeError, msgspec.ValidationError)):
        return _respond(Problem(400, "Invalid request", clip(str(exc)), "send a JSON body of the documented shape"))
    if isinstance(exc, BadReference):
        return _respond(Problem(400, "Bad reference", clip(str(exc)), "references look like connection:vendor_id"))
    if isinstance(exc, NotSupported):
        return _respond(Problem(501, "Not supported by this vendor", scrub(exc.reason), "this vendor cannot do it",
                                {"vendor": exc.vendor, "capability": exc.capability}))
    if isinstance(exc, VendorRateLimited):
        retry = max(1, round(exc.retry_after or 1))
        return _respond(Problem(503, "Vendor rate limit", scrub(str(exc)), f"retry after {retry} s"),
                        headers={"Retry-After": str(retry)})
    if isinstance(exc, VendorRejected):
        return _respond(Problem(502, "Vendor refused the request", scrub(str(exc)), "check the connection's configuration",
                                {"vendor_status": exc.status}))
    if isinstance(exc, VendorError):
        return _respond(Problem(502, "Vendor unavailable", scrub(str(exc)), "retry later"))
    if isinstance(exc, NotReplicated):
        key = exc.idempotency_key
        return _respond(Problem(503, "Write not confirmed by the Redis replicas", str(exc),
                                f"send the same request again with Idempotency-Key: {key} (that key never makes a second write)",
                                {"idempotency_key": key, "replicas": exc.replicas, "confirmed": exc.confirmed,
                                 "withdrawn": exc.withdrawn}),
                        headers={"Retry-After": "1"})
    if isinstance(exc, STORAGE_DOWN):
        # A Redis restart or a Sentinel failover: nothing was half-done (the accept is one script).
        return _respond(Problem(503, "Storage unavailable", "the gateway cannot reach its Redis primary right now",
                                "retry in a moment with the same Idempotency-Key"), headers={"Retry-After": "1"})
    if isinstance(exc, ConfigError):
        return _respond(Problem(500, "Configuration error", scrub(str(exc)), "fix the gateway configuration"))
    if isinstance(exc, NotAuthorizedException):
        return _respond(Problem(401, "Unauthorized", str(exc.detail), "send Authorization: Bearer <api key>"),
                        headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PermissionDeniedException):
        return _respond(Problem(403, "Forbidden", str(exc.detail), "use a key with the needed scope"))
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        # Name each field and cut what is quoted of its value (the detail Litestar writes
        # carries the whole URL, query string included).
        parts = [f"{clip(str(e.get('key', 'body')))}: {clip(str(e.get('message', '')))}"
                 for e in errors[:LIST_LIMIT] if isinstance(e, dict)]
        detail = "; ".join(parts) or clip(str(exc.detail))
        return _respond(Problem(400, "Invalid request", detail, "fix the request body or parameters",
                                {"errors": errors} if errors else {}))
    if isinstance(exc, HTTPException):
        detail = str(exc.detail)
        if exc.status_code == 413:
            detail = "the request body is larger than the gateway accepts"
        return _respond(Problem(exc.status_code, detail, detail))
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(Problem(500, "Internal error", "the gateway failed; the error is logged", "retry later"))
