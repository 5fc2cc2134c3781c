"""``Hub``: settings, plugins, connections and the stores, one per process.

Services take a ``Hub`` (as ``gw``) and reach the stores and the vendors through it; the hub
never calls up into them. What must happen when a write lands (the ticket store refetches the
ticket, links are recorded) is a listener a service registers in ``write_listeners``: the
assembly (``gateway.core.Gateway``) registers them, once per process.

Connections are checked against their vendor's plugin at start-up (vendor installed, settings
convert to the plugin's settings type) so bad config fails with one message naming the field. Vendor clients are created lazily, one per
connection, and closed with the gateway.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import redis
import rq
from redis.asyncio.sentinel import Sentinel as AsyncSentinel

from gateway import audit, keys
from gateway.aio import Channel, Target
from gateway.errors import ConfigError, NotSupported, VendorAuthFailed
from gateway.events import ConnectionWatch, EventLog
from gateway.models import Capability, Connection, RateLimitPolicy, RateLimitWindow
from gateway.plugins import LoadedPlugins, Vendor, Vendors, load_plugins
from gateway.ratelimit import RateLimiter
from gateway.scheduler import Scheduler
from gateway.redact import Redactor, install_log_redaction
from gateway.runtime import Runtime
from gateway.settings import ConnectionConfig, Settings, WorkspaceConfig, secret_values
from gateway.store import TicketStore
from gateway.writes import WriteStore

if TYPE_CHECKING:
    from gateway.writes import WriteRecord

WRITE_QUEUE = "writes"
# What the API's hot-path connection takes over from the process's client (``Hub.async_redis``).
_ASYNC_OPTIONS = {"host", "port", "db", "path", "username", "password", "socket_timeout", "socket_connect_timeout",
                  "socket_keepalive", "client_name", "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs",
                  "ssl_ca_data", "ssl_check_hostname"}
# How often a process that sees calls succeed clears an ``auth_failed`` mark another left.
AUTH_MARK_RECHECK_SECONDS = 30.0


class Hub:
    """Everything a request handler or a job needs, built from ``Settings``."""

    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis,
        *,
        plugins: LoadedPlugins | None = None,
        service: str = "msp-gateway",
    ) -> None:
        self.settings = settings
        self.redis = redis_client
        self.plugins = plugins or load_plugins()
        self.vendors = Vendors(self.plugins)
        self.redactor = Redactor(secret_values(settings))
        install_log_redaction(self.redactor)
        self.tracer_provider = audit.build_tracer_provider(
            redis_client, self.redactor, service, keep_records=settings.gateway.audit_keep_records
        )
        self.tracer = audit.tracer(self.tracer_provider)
        self.limiter = RateLimiter(redis_client)
        self.events = EventLog(redis_client, self.redactor,
                               retention_seconds=settings.gateway.events_retention_days * 86400)  # fmt: skip
        self.runtime = Runtime(redis_client, self.limiter, self.redactor, self.tracer, ConnectionWatch(self.events))
        self.writes = WriteStore(
            redis_client, idempotency_seconds=int(settings.gateway.idempotency_hours * 3600)
        )
        self.queue = rq.Queue(WRITE_QUEUE, connection=redis_client)
        self.scheduler = Scheduler(redis_client)
        self.store = TicketStore(redis_client, events=self.events)
        self.connections: dict[str, Connection] = {}
        self.workspace_of: dict[str, WorkspaceConfig] = {}
        # Connections whose plugin failed to load: (workspace, why). The rest keep working.
        self.unavailable: dict[str, tuple[str, str]] = {}
        broken = {b.name: b.error for b in self.plugins.broken}
        for w_index, workspace in enumerate(settings.workspaces):
            for c_index, conn in enumerate(workspace.connections):
                where = f"workspaces[{w_index}].connections[{c_index}]"
                if conn.vendor not in self.plugins.vendors and conn.vendor in broken:
                    reason = f"the {conn.vendor} plugin failed to load: {broken[conn.vendor]}"
                    self.unavailable[conn.id] = (workspace.id, self.redactor.scrub(reason))
                    continue
                self.connections[conn.id] = self._connection(workspace, conn, where)
                self.workspace_of[conn.id] = workspace
        self._clients: dict[str, Any] = {}
        self._caps: dict[str, int] = {}
        # Facts that change rarely, held in this process a short while: key -> (until, value)
        # (``intake.cached_statuses``).
        self.held: dict[str, tuple[float, Any]] = {}
        # Connections this process marked ``auth_failed``, and when a success here next clears
        # a mark another process left (``call``).
        self._auth_marked: set[str] = set()
        self._auth_recheck: dict[str, float] = {}
        self._lock = threading.Lock()
        self.retry_base_seconds = settings.gateway.retry_base_seconds
        # Called with each write that succeeded, in order (services register here).
        self.write_listeners: list[Callable[[WriteRecord], None]] = []

    def after_write(self, record: WriteRecord) -> None:
        """Tell listeners a write landed; drop cached ticket facts it made stale."""
        if record.target:
            self.redis.delete(keys.ticket_cache(record.workspace, record.target))
        for listener in self.write_listeners:
            listener(record)

    def _connection(self, workspace: WorkspaceConfig, conn: ConnectionConfig, where: str) -> Connection:
        if conn.vendor not in self.plugins.vendors:
            raise ConfigError(f"{where}.vendor: no plugin is installed for {conn.vendor!r}")
        info = self.plugins.vendors[conn.vendor]
        settings: Any = dict(conn.settings)
        if info.settings_type is not None:
            try:
                settings = msgspec.convert(conn.settings, info.settings_type)
            except msgspec.ValidationError as exc:
                raise ConfigError(f"{where}.settings: {exc}") from None
        secrets = {name: os.environ[env] for name, env in conn.secrets.items() if env in os.environ}
        missing = [s for s in info.secret_settings if s not in secrets]
        if missing:
            raise ConfigError(f"{where}.secrets: {conn.vendor} needs {', '.join(missing)}")
        policy = info.default_rate_limit
        if conn.rate_limit is not None:
            windows = tuple(RateLimitWindow(r.requests, r.per_seconds) for r in conn.rate_limit)
            policy = msgspec.structs.replace(policy, windows=windows)
        if conn.concurrency is not None:
            policy = msgspec.structs.replace(policy, concurrency=conn.concurrency)
        if conn.rate_limit_headroom is not None:
            policy = msgspec.structs.replace(policy, headroom=conn.rate_limit_headroom)
        if conn.read_share is not None:
            policy = msgspec.structs.replace(policy, read_share=conn.read_share)
        cap = info.attachment_cap_bytes
        if conn.attachment_cap_mb is not None:
            cap = int(conn.attachment_cap_mb * 1024 * 1024)
        return Connection(
            id=conn.id,
            workspace=workspace.id,
            vendor=conn.vendor,
            base_url=conn.base_url.rstrip("/"),
            settings=settings,
            secrets=secrets,
            timeout_seconds=conn.timeout_seconds,
            rate_limit=policy,
            attachment_cap_bytes=cap,
            runtime=self.runtime,
        )

    # -- connections and calls ----------------------------------------------------------------

    def connection(self, connection_id: str) -> Connection:
        try:
            return self.connections[connection_id]
        except KeyError:
            raise KeyError(f"no connection {connection_id!r}") from None

    def client(self, connection_id: str) -> Any:
        """The plugin's client object for a connection, created on first use."""
        client = self._clients.get(connection_id)
        if client is None:
            with self._lock:
                client = self._clients.get(connection_id)
                if client is None:
                    conn = self.connection(connection_id)
                    client = self.vendors.connect(conn.vendor, connection=conn)
                    if client is None:
                        raise NotSupported(conn.vendor, "connect", f"{conn.vendor} returned no client")
                    self._clients[connection_id] = client
        return client

    def vendor(self, connection_id: str) -> Vendor:
        """The typed facade over the plugin of the connection (``Vendor``): the way the gateway
        calls a vendor."""
        return Vendor(lambda spec, **kwargs: self.call(connection_id, spec.__name__, **kwargs))

    def call(self, connection_id: str, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` (by name) of the plugin owning the connection, with its client. A
        refusal of the connection's credentials marks it ``auth_failed``; a later success
        clears the mark. ``vendor(connection_id)`` is the typed form over this."""
        conn = self.connection(connection_id)
        try:
            result = self.vendors.call(conn.vendor, hook, client=self.client(connection_id), **kwargs)
        except VendorAuthFailed as exc:
            self._auth_marked.add(connection_id)
            mark = {"since": str(time.time()), "cause": str(exc), "credentials": self._credentials_digest(conn)}
            self.redis.hset(keys.auth_failed(connection_id), mapping=mark)
            raise
        now = time.monotonic()
        if connection_id in self._auth_marked or now >= self._auth_recheck.get(connection_id, 0.0):
            # The credentials work: clear the mark (ours at once, another process's within a
            # recheck period, so a success costs no Redis call in between).
            self._auth_marked.discard(connection_id)
            self._auth_recheck[connection_id] = now + AUTH_MARK_RECHECK_SECONDS
            self.redis.delete(keys.auth_failed(connection_id))
        return result

    def auth_failure(self, connection_id: str) -> tuple[float, str] | None:
        """``(since, cause)`` while the connection's credentials are refused, else ``None``. A
        mark left by other credentials (changed in config since) no longer counts."""
        raw = self.redis.hgetall(keys.auth_failed(connection_id))
        if not raw:
            return None
        mark = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                for k, v in raw.items()}
        if mark.get("credentials") != self._credentials_digest(self.connection(connection_id)):
            return None
        return float(mark.get("since") or 0), mark.get("cause", "")

    @staticmethod
    def _credentials_digest(conn: Connection) -> str:
        # Tells credentials apart without storing them: a short salted digest.
        material = "\0".join(f"{k}={v}" for k, v in sorted(conn.secrets.items()))
        return hashlib.sha256(f"auth-mark\0{conn.id}\0{material}".encode()).hexdigest()[:16]

    def capable(self, connection_id: str, capability: Capability) -> bool:
        return self.vendors.has(self.connection(connection_id).vendor, capability)

    def connection_cap(self, connection_id: str) -> int:
        """How many runs of this connection's writes may run at once."""
        cap = self._caps.get(connection_id)
        if cap is None:
            found = self.settings.connection(connection_id)
            conn = self.connections.get(connection_id)
            if found is not None and found[1].max_running is not None:
                cap = found[1].max_running
            elif conn is not None and conn.rate_limit.concurrency:
                cap = conn.rate_limit.concurrency
            else:
                cap = self.settings.gateway.writes_per_connection
            cap = self._caps[connection_id] = max(1, cap)
        return cap

    def rate_policy(self, connection_id: str) -> RateLimitPolicy:
        return self.connection(connection_id).rate_limit

    def async_redis(self) -> Channel:
        """A new pipelined connection to the same Redis (Sentinel's primary when configured),
        for the API's hot paths (``gateway.aio``); the caller owns it (the API opens one per
        event loop)."""
        config = self.settings.gateway
        if config.redis_sentinels:
            addresses = [(host, int(port)) for host, _, port in (a.rpartition(":") for a in config.redis_sentinels)]
            sentinel = AsyncSentinel(addresses, socket_timeout=2, socket_connect_timeout=2)
            return Channel(Target(sentinel=sentinel, master_name=config.redis_master_name, timeout=10,
                                  connect_timeout=2))
        pool = self.redis.connection_pool
        options = {k: v for k, v in pool.connection_kwargs.items() if k in _ASYNC_OPTIONS}
        return Channel(Target.of_pool(options, tls=issubclass(pool.connection_class, redis.SSLConnection)))

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if callable(close):
                close()
        self._clients.clear()
        self.tracer_provider.shutdown()


# --------------------------------------------------------------------------- the process's hub

_bound: Hub | None = None


def bind(hub: Hub | None) -> None:
    """Make ``hub`` the one this process's rq jobs use (a worker does this at start-up; rq
    job functions take plain arguments, so they find their hub here)."""
    global _bound
    _bound = hub


def bound() -> Hub:
    """The hub ``bind`` gave this process."""
    if _bound is None:
        raise RuntimeError("no gateway bound in this worker process (gateway.hub.bind)")
    return _bound
