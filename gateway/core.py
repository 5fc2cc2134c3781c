"""``Gateway``: the hub with every service's listeners registered, assembled once per process.

The API process and every worker build one (``build_gateway`` from a config file, or
``Gateway(settings, redis)``). ``gateway.hub.Hub`` holds settings, plugins, connections and the
stores; this class adds what the services do when things happen: a landed write refetches its
ticket (``sync``) and records ticket-alert links (``links``), an event queues deliveries to the
subscriptions it concerns (``delivery``). The hub below never imports the services.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
import redis
from redis.sentinel import Sentinel

from gateway import delivery, durability, links, logs, sync
from gateway.embedded_redis import EmbeddedRedis
from gateway.hub import WRITE_QUEUE, Hub
from gateway.plugins import LoadedPlugins
from gateway.settings import Settings, load_settings

log = logging.getLogger("gateway.core")

__all__ = ["WRITE_QUEUE", "Gateway", "build_gateway", "redis_client_for", "redis_url_for"]


class Gateway(Hub):
    """Everything a request handler or a job needs, built from ``Settings``, with the services'
    listeners registered."""

    def __init__(self, settings: Settings, redis_client: redis.Redis, *,
                 plugins: LoadedPlugins | None = None, service: str = "msp-gateway") -> None:  # fmt: skip
        super().__init__(settings, redis_client, plugins=plugins, service=service)
        sync.install(self)
        links.install(self)
        delivery.install(self)
        if self.store.dropped_old_format:
            # The ticket store changed format and this process dropped the old one: every PSA
            # connection's tickets are synced again, so the queue is whole without an operator.
            log.warning("the ticket store's format changed: %d old keys dropped; resyncing every PSA connection",
                        self.store.dropped_old_format)
            for connection in sync.synced_connections(self):
                sync.resync(self, connection)


def redis_url_for(settings: Settings, started: list[EmbeddedRedis]) -> str:
    """``REDIS_URL``, else the config's ``redis_url``, else the embedded redis-server (started
    once per data directory and shared by the API and worker processes, fsyncing every write
    under ``durability = "fsync"``). A server started here is appended to ``started``: the
    caller stops it when the process is done with it."""
    url = os.environ.get("REDIS_URL") or settings.gateway.redis_url
    if url:
        return url
    data_dir = Path(settings.gateway.data_dir)
    url_file = data_dir / "redis.url"
    appendfsync = durability.appendfsync_for(settings.gateway.durability)
    if url_file.is_file():
        url = url_file.read_text().strip()
        try:
            embedded = redis.Redis.from_url(url, socket_connect_timeout=1)
            embedded.config_set("appendfsync", appendfsync)  # ours: it follows this config
            return url
        except redis.RedisError:
            pass
    server = EmbeddedRedis(data_dir / "redis", appendfsync=appendfsync).start()
    url_file.write_text(server.url)
    started.append(server)
    return server.url


def redis_client_for(settings: Settings, started: list[EmbeddedRedis]) -> redis.Redis:
    """The Redis primary: through Sentinel when ``redis_sentinels`` is set (it follows a
    failover), else at ``redis_url_for``."""
    config = settings.gateway
    if config.redis_sentinels:
        addresses = [(host, int(port)) for host, _, port in (a.rpartition(":") for a in config.redis_sentinels)]
        sentinel = Sentinel(addresses, socket_timeout=2, socket_connect_timeout=2)
        return sentinel.master_for(config.redis_master_name, socket_timeout=10, socket_connect_timeout=2)
    return redis.Redis.from_url(redis_url_for(settings, started))


def build_gateway(config_path: str | None, started: list[EmbeddedRedis], *, service: str = "msp-gateway") -> Gateway:
    """The ``Gateway`` a config file describes (``started`` as for ``redis_url_for``)."""
    logs.ensure_configured()  # before the gateway attaches its redaction filter to the handlers
    settings = load_settings(config_path)
    client = redis_client_for(settings, started)
    durability.check_server(client, settings)
    return Gateway(settings, client, service=service)
