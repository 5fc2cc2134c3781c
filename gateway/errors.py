"""The gateway's typed errors, and the one table that decides what is retried.

::

    GatewayError
     ├── NotSupported            the vendor cannot do this (501)
     ├── BadSignature            an inbound webhook failed its signature check
     ├── ConfigError             bad configuration, found at start-up
     └── VendorError             a vendor call failed (connection, status, vendor's message)
          ├── VendorRejected     4xx the vendor means: fix the request (dead-letter at once)
          │    └── VendorAuthFailed   the vendor refused the connection's credentials: the
          │                           connection is marked ``auth_failed``; never retried
          ├── VendorUnavailable  5xx, 408, 409-busy: transient, retry with backoff
          ├── VendorRateLimited  429 or our own budget: wait ``retry_after`` seconds
          ├── VendorUnreachable  the request never reached the vendor: safe to resend
          └── VendorAmbiguous    sent, but no answer: reconcile before resending

Messages never contain secrets: vendor bodies are scrubbed by ``gateway.redact`` before
they are put in an error.
"""

from __future__ import annotations

import enum
from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Configuration that cannot work; the message names the field."""


class NotSupported(GatewayError):
    """The vendor (or this plugin) cannot do what was asked; the message says why."""

    def __init__(self, vendor: str, capability: str, reason: str = "") -> None:
        self.vendor = vendor
        self.capability = capability
        self.reason = reason or f"{vendor} does not support {capability}"
        super().__init__(self.reason)


class WriteRefused(Exception):
    """A write that fails validation at accept: ``status`` is the HTTP status to answer with,
    ``action`` what the caller can do about it."""

    def __init__(self, status: int, title: str, detail: str, *, action: str = "fix the request and send it again",
                 **extra: Any) -> None:  # fmt: skip
        self.status = status
        self.title = title
        self.detail = detail
        self.action = action
        self.extra = extra
        super().__init__(detail)


class BadSignature(GatewayError):
    """An inbound webhook whose signature is missing or does not match."""


class VendorError(GatewayError):
    """A vendor call that failed. ``status`` is the HTTP status, ``None`` when there was none."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        connection: str = "",
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.connection = connection
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(message)


class VendorRejected(VendorError):
    """The vendor refused the request as wrong (400, 401, 403, 404, 422...): do not retry."""


class VendorAuthFailed(VendorRejected):
    """The vendor refused the connection's credentials (a 401, or a vendor's own way of saying
    so, such as Autotask's 500 for an unknown user). A configuration fault, not a transient one:
    retrying spends attempts for nothing, so the write is dead-lettered with this cause and the
    connection is marked ``auth_failed`` until a call on it succeeds again."""


class VendorUnavailable(VendorError):
    """A transient failure at the vendor: retry with backoff."""

    retryable = True


class VendorRateLimited(VendorError):
    """Over the vendor's (or our own) budget: retry after ``retry_after`` seconds.

    ``booked`` is true when our own limiter booked the slot for the next try (it is paid for).
    """

    retryable = True

    def __init__(self, message: str, *, booked: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.booked = booked


class VendorUnreachable(VendorError):
    """The request did not reach the vendor (connect failure): resending cannot double it."""

    retryable = True


class VendorAmbiguous(VendorError):
    """The request was sent but no answer came: the vendor may have applied it."""

    retryable = True


class Action(enum.Enum):
    RETRY = "retry"
    FAIL = "fail"
    WAIT = "wait"


class Cause(enum.Enum):
    TRANSIENT = "transient"
    CONFIGURATION = "configuration"
    REQUEST = "request"
    RATE_LIMIT = "rate_limit"


# One table from HTTP status to what the gateway does about it (Airbyte's shape).
STATUS_POLICY: dict[int, tuple[Action, Cause]] = {
    400: (Action.FAIL, Cause.REQUEST),
    401: (Action.FAIL, Cause.CONFIGURATION),
    403: (Action.FAIL, Cause.CONFIGURATION),
    404: (Action.FAIL, Cause.REQUEST),
    405: (Action.FAIL, Cause.CONFIGURATION),
    408: (Action.RETRY, Cause.TRANSIENT),
    409: (Action.RETRY, Cause.TRANSIENT),
    413: (Action.FAIL, Cause.REQUEST),
    422: (Action.FAIL, Cause.REQUEST),
    429: (Action.WAIT, Cause.RATE_LIMIT),
}


def policy_for(status: int) -> tuple[Action, Cause]:
    """What to do about an HTTP status: the table, then 5xx retry, then other 4xx fail."""
    if status in STATUS_POLICY:
        return STATUS_POLICY[status]
    if status >= 500:
        return Action.RETRY, Cause.TRANSIENT
    return Action.FAIL, Cause.REQUEST


def error_for_status(
    status: int, message: str, *, connection: str, body: str, retry_after: float | None
) -> VendorError:
    """Build the typed error for a failed vendor response."""
    action, _cause = policy_for(status)
    cls: type[VendorError]
    if status == 401:
        cls = VendorAuthFailed
    elif action is Action.WAIT:
        cls = VendorRateLimited
    elif action is Action.RETRY:
        cls = VendorUnavailable
    else:
        cls = VendorRejected
    return cls(message, connection=connection, status=status, body=body, retry_after=retry_after)
