"""Per-call context: which write a vendor call belongs to, for audit spans and the limiter.

The worker sets it around a job; ``VendorHTTP`` reads it for every request it sends.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field


@dataclass
class CallContext:
    write_id: str | None = None
    dedup_key: str | None = None
    workspace: str | None = None
    ticket_ref: str | None = None
    # A rate-limit slot booked earlier, when the job was deferred: the next call spends it.
    prepaid: bool = False
    # Rate-limit waits are raised (job deferred) in workers, slept in API reads.
    defer_on_limit: bool = False
    # Book a future slot when over budget (writes); sync only takes budget that is free now.
    book_ahead: bool = True
    # Why the call is made, when not for a write ("sync"): shown in audit records.
    purpose: str | None = None
    calls: list[int] = field(default_factory=list)
    # Requests handed to the transport in this context, answered or not.
    requests: int = 0


current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "gateway_call_context", default=None
)


def get() -> CallContext:
    """The current context, or an empty one outside any write."""
    return current.get() or CallContext()
