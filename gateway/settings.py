"""Configuration: one TOML file of workspaces, their connections and their API keys.

Read from ``--config`` or ``GATEWAY_CONFIG``. Secrets are never in the file: a connection's
``secrets`` table maps each secret setting to the *name* of an environment variable. API keys
are stored as SHA-256 hex digests (``gateway hash-key`` prints one). Anything wrong raises one
``ConfigError`` naming the field, at start-up. See ``docs/configuration.md`` for the format.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from gateway.errors import ConfigError

Scope = Literal["tickets:read", "tickets:write", "events:read", "admin"]
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class RateLimitConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    requests: int
    per_seconds: float = 1.0


class ConnectionConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    vendor: str
    base_url: str
    settings: dict[str, Any] = {}
    # secret setting name -> environment variable name holding its value
    secrets: dict[str, str] = {}
    rate_limit: list[RateLimitConfig] | None = None
    concurrency: int | None = None
    rate_limit_headroom: float | None = None
    # Share of each rate window that reads (sync, cache refreshes, detail views) may use; the
    # rest is kept for writes. Default: the vendor plugin's.
    read_share: float | None = None
    # Writes of this connection running at once, at most (a hanging vendor holds no more
    # workers than this). Default: the vendor's concurrency, else ``gateway.writes_per_connection``.
    max_running: int | None = None
    attachment_cap_mb: float | None = None
    timeout_seconds: float = 30.0
    webhook_secret_env: str | None = None
    # Sync: seconds between incremental pulls (vendor webhooks also trigger a fetch).
    poll_seconds: float = 30.0
    # Sync: how far back each incremental pull reaches before its watermark.
    poll_overlap_seconds: float = 120.0


class ApiKeyConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    sha256: str
    scopes: list[Scope]
    revoked: bool = False


class CustomerLink(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A customer across tools, set by hand: its records per connection (``refs``, e.g.
    ``"cw-main:250"``). Config wins over automatic matching: a connection named here is never
    matched automatically for this customer, and a record named here belongs to no other.
    ``exclude`` names records automatic matching must never attach to this customer."""

    id: str
    name: str
    refs: list[str] = []
    exclude: list[str] = []


class WorkspaceConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    name: str = ""
    connections: list[ConnectionConfig] = []
    api_keys: list[ApiKeyConfig] = []
    customers: list[CustomerLink] = []
    # How long the computed cross-tool customer map is cached (``GET /v1/customers?refresh=true``
    # recomputes it at once).
    customer_map_seconds: float = 600.0
    # Move a ticket from its "new" status to an in-progress one on the first public reply.
    first_reply_sets_in_progress: bool = False


Durability = Literal["fsync", "replicated", "everysec"]


class GatewayConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    redis_url: str | None = None
    # Redis Sentinel ("host:port" each) and the name of the master they watch; wins over redis_url.
    redis_sentinels: list[str] = []
    redis_master_name: str = "gateway"
    data_dir: str = ".gateway"
    # When a write answered 202 is safe (docs/operations.md#durability): "fsync" (on disk before
    # the 202), "replicated" (on ``replicas`` replicas before the 202), "everysec" (may lose the
    # last second of writes to a crash of the Redis machine).
    durability: Durability = "fsync"
    replicas: int = 1
    replica_timeout_ms: int = 500
    # How long dedup keys (Idempotency-Key) are remembered.
    idempotency_hours: float = 24.0
    max_attempts: int = 8
    # First retry delay; doubles per failure (with jitter) up to two minutes.
    retry_base_seconds: float = 1.0
    # Writes of one connection running at once, unless the connection says otherwise.
    writes_per_connection: int = 2
    # Audit retention: the newest records kept in each workspace's audit chain (0: keep all).
    audit_keep_records: int = 200_000
    # Events (docs/events.md): how long the log keeps them, the stream's heartbeat, and webhook
    # delivery: per-attempt timeout, first retry delay (doubles with jitter up to 5 minutes),
    # and how long a subscription may fail before it is disabled.
    events_retention_days: float = 7.0
    events_heartbeat_seconds: float = 15.0
    delivery_timeout_seconds: float = 5.0
    delivery_retry_base_seconds: float = 1.0
    subscription_disable_after_hours: float = 24.0


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    gateway: GatewayConfig = GatewayConfig()
    workspaces: list[WorkspaceConfig] = []

    def workspace(self, workspace_id: str) -> WorkspaceConfig | None:
        return next((w for w in self.workspaces if w.id == workspace_id), None)

    def connection(self, connection_id: str) -> tuple[WorkspaceConfig, ConnectionConfig] | None:
        for workspace in self.workspaces:
            for conn in workspace.connections:
                if conn.id == connection_id:
                    return workspace, conn
        return None


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is configured."""
    return hashlib.sha256(key.encode()).hexdigest()


def _check(settings: Settings) -> None:
    if settings.gateway.writes_per_connection < 1:
        raise ConfigError("gateway.writes_per_connection: must be at least 1")
    if settings.gateway.audit_keep_records < 0:
        raise ConfigError("gateway.audit_keep_records: must be 0 (keep all) or more")
    for name in ("events_retention_days", "events_heartbeat_seconds", "delivery_timeout_seconds",
                 "delivery_retry_base_seconds", "subscription_disable_after_hours"):  # fmt: skip
        if getattr(settings.gateway, name) <= 0:
            raise ConfigError(f"gateway.{name}: must be more than 0")
    gateway = settings.gateway
    if gateway.replicas < 1:
        raise ConfigError("gateway.replicas: must be 1 or more")
    if gateway.replica_timeout_ms < 1:
        raise ConfigError("gateway.replica_timeout_ms: must be 1 or more")
    for index, address in enumerate(gateway.redis_sentinels):
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"gateway.redis_sentinels[{index}]: {address!r} is not host:port")
    seen: set[str] = set()
    for w_index, workspace in enumerate(settings.workspaces):
        where = f"workspaces[{w_index}]"
        if not ID.match(workspace.id):
            raise ConfigError(f"{where}.id: {workspace.id!r} must be lower-case letters, digits, - or _")
        for c_index, conn in enumerate(workspace.connections):
            at = f"{where}.connections[{c_index}]"
            if not ID.match(conn.id):
                raise ConfigError(f"{at}.id: {conn.id!r} must be lower-case letters, digits, - or _")
            if conn.id in seen:
                raise ConfigError(f"{at}.id: connection id {conn.id!r} is used twice")
            seen.add(conn.id)
            if conn.read_share is not None and not 0 < conn.read_share <= 1:
                raise ConfigError(f"{at}.read_share: {conn.read_share} must be more than 0 and at most 1")
            if conn.max_running is not None and conn.max_running < 1:
                raise ConfigError(f"{at}.max_running: must be at least 1")
            if not conn.base_url.startswith(("http://", "https://")):
                raise ConfigError(f"{at}.base_url: {conn.base_url!r} must be an http(s) URL")
            for name, env in conn.secrets.items():
                if not os.environ.get(env):
                    raise ConfigError(f"{at}.secrets.{name}: environment variable {env} is not set")
            if conn.webhook_secret_env and not os.environ.get(conn.webhook_secret_env):
                raise ConfigError(
                    f"{at}.webhook_secret_env: environment variable {conn.webhook_secret_env} is not set"
                )
        for k_index, key in enumerate(workspace.api_keys):
            if not re.fullmatch(r"[0-9a-f]{64}", key.sha256):
                raise ConfigError(f"{where}.api_keys[{k_index}].sha256: not a SHA-256 hex digest")
        _check_customers(workspace, where)


def _check_customers(workspace: WorkspaceConfig, where: str) -> None:
    """Customer ids are unique ids; every ref names a connection of this workspace; no record
    is given to two customers."""
    connection_ids = {c.id for c in workspace.connections}
    if workspace.customer_map_seconds <= 0:
        raise ConfigError(f"{where}.customer_map_seconds: must be more than 0")
    ids: set[str] = set()
    owner: dict[str, str] = {}
    for index, customer in enumerate(workspace.customers):
        at = f"{where}.customers[{index}]"
        if not ID.match(customer.id):
            raise ConfigError(f"{at}.id: {customer.id!r} must be lower-case letters, digits, - or _")
        if customer.id in ids:
            raise ConfigError(f"{at}.id: customer id {customer.id!r} is used twice")
        ids.add(customer.id)
        for field, refs in (("refs", customer.refs), ("exclude", customer.exclude)):
            for r_index, ref in enumerate(refs):
                connection_id, sep, vendor_id = ref.partition(":")
                if not sep or not vendor_id:
                    raise ConfigError(f"{at}.{field}[{r_index}]: {ref!r} is not a reference (connection:id)")
                if connection_id not in connection_ids:
                    raise ConfigError(f"{at}.{field}[{r_index}]: no connection {connection_id!r} in this workspace")
        for r_index, ref in enumerate(customer.refs):
            if ref in owner and owner[ref] != customer.id:
                raise ConfigError(f"{at}.refs[{r_index}]: {ref} is already a record of customer {owner[ref]!r}")
            owner[ref] = customer.id


def parse_settings(text: str, source: str = "config") -> Settings:
    """Parse and check TOML text; raise ``ConfigError`` naming the first bad field."""
    try:
        settings = msgspec.toml.decode(text.encode(), type=Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    _check(settings)
    return settings


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load the config file named by ``path`` or ``GATEWAY_CONFIG``; empty settings if neither."""
    path = path or os.environ.get("GATEWAY_CONFIG")
    if not path:
        return Settings()
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    return parse_settings(file.read_text(), source=str(file))


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret's value, for the redactor."""
    values = []
    for workspace in settings.workspaces:
        for conn in workspace.connections:
            for env in conn.secrets.values():
                if os.environ.get(env):
                    values.append(os.environ[env])
            if conn.webhook_secret_env and os.environ.get(conn.webhook_secret_env):
                values.append(os.environ[conn.webhook_secret_env])
    return values
