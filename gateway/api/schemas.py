"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal

import msgspec

from gateway.models import Capability, RateLimitPolicy, VendorKind
from gateway.sync import SyncStatus

# The write bodies are declared with their write kinds.
from gateway.writekinds import (
    AlertActionBody as AlertActionBody,
    Id as Id,
    ReplyCreate as ReplyCreate,
    StatusUpdate as StatusUpdate,
    Text as Text,
    TicketCreateBody as TicketCreateBody,
    TimeEntryBody as TimeEntryBody,
)

IDEMPOTENCY_KEY_MAX_LENGTH = 255  # an Idempotency-Key is 1 to this many characters


class WriteAccepted(msgspec.Struct):
    """The answer to every write: its id (poll ``GET /v1/writes/{id}``) and dedup key;
    ``duplicate`` is true when an Idempotency-Key matched an earlier write (this is that write)."""

    write_id: str
    status: str
    dedup_key: str
    duplicate: bool = False


class ResyncStarted(msgspec.Struct):
    """The answer to a resync: the connection's tickets are being fetched again."""

    connection: str
    status: Literal["resyncing"]


class PluginView(msgspec.Struct, omit_defaults=True):
    vendor: str
    kind: VendorKind
    title: str
    capabilities: list[Capability]
    default_rate_limit: RateLimitPolicy
    attachment_cap_bytes: int | None = None


class BrokenPluginView(msgspec.Struct):
    name: str
    error: str


class PluginList(msgspec.Struct):
    plugins: list[PluginView]
    broken: list[BrokenPluginView]


class WriteBacklog(msgspec.Struct):
    """A connection's writes as the scheduler sees them."""

    unfinished: int  # accepted and not yet succeeded, dead or discarded (waiting in chains too)
    queued: int  # runs ready for a worker
    delayed: int  # runs waiting for a retry's backoff
    running: int  # runs a worker is on now (at most ``max_running``)
    max_running: int
    oldest_age_seconds: float | None  # since the oldest unfinished write was accepted
    parked_seconds: float | None  # how long the connection's runs are held (429 pause, budget)


class BudgetWindow(msgspec.Struct):
    """Calls booked in one rate window, by reads and by writes; reads stop at ``read_limit``."""

    requests: int
    per_seconds: float
    reads: int
    writes: int
    read_limit: int


class ConnectionView(msgspec.Struct, omit_defaults=True):
    id: str
    vendor: str
    kind: VendorKind
    capabilities: list[Capability]
    rate_limit: RateLimitPolicy
    attachment_cap_bytes: int | None = None
    paused_seconds: float = 0.0
    calls_last_minute: int = 0
    sync: SyncStatus | None = None  # PSA connections: where the ticket store's sync stands
    writes: WriteBacklog | None = None
    budget: list[BudgetWindow] = []
    # "auth_failed" while the vendor refuses the connection's credentials: writes to it are
    # dead-lettered at once with ``auth_error`` as the cause, not retried.
    state: Literal["ok", "auth_failed"] = "ok"
    auth_failed_since: float | None = None
    auth_error: str | None = None


class Health(msgspec.Struct):
    status: Literal["ok", "degraded"]
    redis: bool
    broken_plugins: list[str]
    active_writes: int
    # Connections that cannot work because their plugin failed to load.
    unavailable_connections: list[str] = []
