"""Redis key names shared between modules, built in one place.

Two families, and why they differ:

- **Caches** (``cache:{ws}:...``): facts read from vendors and kept a few minutes. They belong
  to a workspace and carry it as a hash tag (``{ws}``), so a cluster would keep a workspace's
  caches on one slot. A cache may be renamed freely: an old name is a miss that expires.
- **Durable state** (write records, dedup keys, chains, claims, dead letters, the event log,
  subscriptions, sync state, links): names unchanged from the first release. Renaming one would
  orphan records a running system holds (a write's dedup key, its chain position), so a hash tag
  for them waits for a migration that moves the data; until then these builders only make the
  names the modules spelled themselves before.

Keys used by one module only stay in that module, listed in its docstring: a write's record,
dedup key, chain, claims and blobs in ``writes.py``, the ticket store's ``tk:``/``ix:`` names in
``store.py``, the scheduler's ``{sched}:`` names in ``scheduler.py``, the rate limiter's ``rl:``
names in ``ratelimit.py``, the audit chain's in ``audit_chain.py``.
"""

from __future__ import annotations

from typing import Literal


def _tag(workspace: str) -> str:
    return "{" + workspace + "}"


# --------------------------------------------------------------------------- caches


# What each cache holds: ``ticket`` (a ticket's facts for validating a write; a landed write
# and a sync fetch drop it), ``statuses`` (one board's, or ``-``), ``form`` (a PSA connection's
# new-ticket form), ``device`` (an RMM device read), ``ci-device`` (the RMM device a PSA
# configuration item resolves to), ``customers`` (the workspace's customer map, by a digest of
# its config) and ``runbooks`` (one documentation tool's runbooks of one company).
CacheKind = Literal["ticket", "statuses", "form", "device", "ci-device", "customers", "runbooks"]


def cache(workspace: str, kind: CacheKind, *parts: str) -> str:
    """``cache:{ws}:<kind>:<parts...>``."""
    return ":".join((f"cache:{_tag(workspace)}", kind, *parts))


def ticket_cache(workspace: str, ref: str) -> str:
    """The ticket cache (intake reads it; the hub, sync and the console drop or read it)."""
    return cache(workspace, "ticket", ref)


# --------------------------------------------------------------------------- writes (durable)

# Unfinished writes by when something should next happen to them (``WriteStore``, the sweeper).
ACTIVE_WRITES = "writes:active"


def auth_failed(connection: str) -> str:
    """Set while a connection's credentials are refused (``Hub.call``)."""
    return f"conn:{connection}:auth_failed"


# --------------------------------------------------------------------------- sync (durable)

SYNC_DELAYED = "sync:delayed"


# A connection's sync keys besides its state: ``lock`` (one step at a time), ``alive`` (a step
# ran lately; else ``keep_alive`` starts one), ``seen`` (refs a running backfill has seen: the
# rest are gone at the vendor), ``refresh`` (tickets waiting to be fetched again, as
# ``action|ticket id``) and ``refreshing`` (held while its refresh job is queued or running).
SyncPart = Literal["lock", "alive", "seen", "refresh", "refreshing"]


def sync_state(connection: str) -> str:
    """Where a connection's sync stands (``SyncState``)."""
    return f"sync:{connection}"


def sync_key(connection: str, part: SyncPart) -> str:
    return f"sync:{connection}:{part}"


# --------------------------------------------------------------------------- events and deliveries

DELIVERIES_PENDING = "deliveries:pending"
DELIVERIES_DELAYED = "deliveries:delayed"
DELIVERIES_SWEEP = "deliveries:sweep"


def event_stream(workspace: str) -> str:
    return f"events:{workspace}"


def subscriptions(workspace: str) -> str:
    return f"subs:{workspace}"


def active_subscriptions(workspace: str) -> str:
    """Subscriptions of the workspace that are not disabled (the event append nudges them)."""
    return f"subs:{workspace}:active"


def subscription_state(sid: str) -> str:
    return f"sub:{sid}:state"


def subscription_lock(sid: str) -> str:
    return f"sub:{sid}:lock"
