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


def _tag(workspace: str) -> str:
    return "{" + workspace + "}"


# --------------------------------------------------------------------------- caches


def ticket_cache(workspace: str, ref: str) -> str:
    """A ticket's facts for validating a write (``intake.cached_ticket``); a landed write and
    a sync fetch drop it."""
    return f"cache:{_tag(workspace)}:ticket:{ref}"


def statuses_cache(workspace: str, connection: str, board: str) -> str:
    """The statuses of one board (or ``-``) of a PSA connection."""
    return f"cache:{_tag(workspace)}:statuses:{connection}:{board}"


def form_cache(workspace: str, connection: str) -> str:
    """A PSA connection's new-ticket form."""
    return f"cache:{_tag(workspace)}:form:{connection}"


def device_cache(workspace: str, ref: str) -> str:
    """An RMM device read."""
    return f"cache:{_tag(workspace)}:device:{ref}"


def ci_device_cache(workspace: str, item_ref: str, digest: str) -> str:
    """The RMM device a PSA configuration item resolves to (``-`` when none matched)."""
    return f"cache:{_tag(workspace)}:ci-device:{item_ref}:{digest}"


def customer_map_cache(workspace: str, digest: str) -> str:
    """The workspace's customer map, computed from the config and connections ``digest`` names."""
    return f"cache:{_tag(workspace)}:customers:{digest}"


def runbooks_cache(workspace: str, company_ref: str) -> str:
    """One documentation tool's runbooks of one company."""
    return f"cache:{_tag(workspace)}:runbooks:{company_ref}"


# --------------------------------------------------------------------------- writes (durable)

# Unfinished writes by when something should next happen to them (``WriteStore``, the sweeper).
ACTIVE_WRITES = "writes:active"


def auth_failed(connection: str) -> str:
    """Set while a connection's credentials are refused (``Hub.call``)."""
    return f"conn:{connection}:auth_failed"


# --------------------------------------------------------------------------- sync (durable)

SYNC_DELAYED = "sync:delayed"


def sync_state(connection: str) -> str:
    return f"sync:{connection}"


def sync_lock(connection: str) -> str:
    return f"sync:{connection}:lock"


def sync_alive(connection: str) -> str:
    return f"sync:{connection}:alive"


def sync_seen(connection: str) -> str:
    """Ticket refs a running backfill has seen (the rest are gone at the vendor)."""
    return f"sync:{connection}:seen"


def sync_refresh(connection: str) -> str:
    """Tickets of the connection waiting to be fetched again (``action|ticket id``)."""
    return f"sync:{connection}:refresh"


def sync_refreshing(connection: str) -> str:
    """Held while a refresh job of the connection is queued or running (one at a time)."""
    return f"sync:{connection}:refreshing"


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
