"""When a write answered 202 is safe: the ``durability`` setting.

- ``fsync`` (default): the write record is on disk before the 202. Redis runs
  ``appendfsync always``: it fsyncs its AOF before it answers the accept script, once per event
  loop turn for every client served in that turn (a group commit). The embedded Redis is started
  so; an external one is checked at start-up and refused if it runs otherwise.
- ``replicated``: ``replicas`` replicas have the write before the 202. Right after the accept,
  ``WAIT`` asks for the replication offset of a marker written after it on this process's
  connection (replication is one ordered stream, so the replica that has the marker has the
  write). Not confirmed within ``replica_timeout_ms``: the write is *withdrawn* (record, dedup
  key, chain place, all or nothing) and the caller gets a 503 that says so and names the
  Idempotency-Key to send again with. A write a worker has already started on (it holds the
  lock, or saved a step) is not withdrawn: the 503 says it is on the primary only, and the resent
  key is answered 202 only once the replicas confirm (``confirm_resend``). Workers confirm the
  same way before each vendor call, so a step marked ``sending`` survives a failover and is
  reconciled rather than sent twice.
- ``everysec``: Redis fsyncs once a second; a crash of the Redis machine (not just of the
  process) can lose the last second of accepted writes.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, NoReturn

import anyio.to_thread
import msgspec
import redis

from gateway import keys
from gateway.aio import Channel
from gateway.errors import ConfigError
from gateway.writes import dedup_key, open_key

log = logging.getLogger("gateway.durability")
MARK = "durability:mark"


class NotReplicated(Exception):
    """The replicas did not confirm a write in time (answered 503)."""

    def __init__(self, replicas: int, confirmed: int, timeout_ms: int, idempotency_key: str | None, withdrawn: bool) -> None:
        self.replicas = replicas
        self.confirmed = confirmed
        self.timeout_ms = timeout_ms
        self.idempotency_key = idempotency_key
        self.withdrawn = withdrawn
        what = "the write was withdrawn and not queued" if withdrawn else "the write is stored on the primary only"
        super().__init__(
            f"{confirmed} of {replicas} Redis replica(s) confirmed the write within {timeout_ms} ms; {what}"
        )


def appendfsync_for(mode: str) -> str:
    """The ``appendfsync`` an embedded Redis runs with for a durability mode."""
    return "always" if mode == "fsync" else "everysec"


def check_server(client: redis.Redis, settings: Any) -> None:
    """At start-up: refuse ``fsync`` on a Redis that does not fsync every write; warn when
    ``replicated`` starts with fewer replicas connected than it needs."""
    config = settings.gateway
    if config.durability == "fsync":
        try:
            found = {**client.config_get("appendonly"), **client.config_get("appendfsync")}
        except redis.ResponseError:
            raise ConfigError(
                "gateway.durability: \"fsync\" needs a Redis whose CONFIG GET shows appendonly yes and "
                "appendfsync always, and this one refuses CONFIG; choose \"replicated\" or \"everysec\""
            ) from None
        if found.get("appendonly") != "yes" or found.get("appendfsync") != "always":
            raise ConfigError(
                f"gateway.durability: \"fsync\" needs Redis with appendonly yes and appendfsync always "
                f"(it runs appendonly {found.get('appendonly')}, appendfsync {found.get('appendfsync')}): "
                "set them in redis.conf, or choose \"replicated\" or \"everysec\""
            )
    elif config.durability == "replicated":
        connected = int(client.info("replication").get("connected_slaves", 0))
        if connected < config.replicas:
            log.warning("durability replicated needs %d replica(s); %d connected: writes answer 503 until they are",
                        config.replicas, connected)


def confirm(client: redis.Redis, replicas: int, timeout_ms: int) -> int:
    """Wait until ``replicas`` replicas have every write this process sent before the call;
    return how many confirmed (at most ``timeout_ms``)."""
    with client.pipeline(transaction=False) as pipe:
        # WAIT counts the writes of its own connection: write a marker on it, after the others.
        pipe.set(MARK, uuid.uuid4().hex)
        pipe.wait(replicas, timeout_ms)
        _, confirmed = pipe.execute()
    return int(confirmed)


# Take back a write the replicas did not confirm, unless a worker has started on it (holds its
# lock, or has saved it: the record is no longer the one accepted, ARGV[2]; a worker may even
# have finished it, and a resend must then find it, not send it again): all of it (dedup key if
# still ours, record, chain place, active entries) in one step. Its first run may already be
# queued in the scheduler: it finds no record and ends ("missing").
_WITHDRAW = """
if redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local dedup = redis.call('GET', KEYS[1])
if dedup and string.sub(dedup, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2])
redis.call('LREM', KEYS[3], 0, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
"""


def confirm_accept(gw: Any, record: Any, accepted: Any) -> None:
    """Right after ``WriteStore.accept``: under ``replicated``, return once the replicas have the
    write, or withdraw it (if it is new) and raise ``NotReplicated``. Other modes return."""
    config = gw.settings.gateway
    if config.durability != "replicated":
        return
    confirmed = confirm(gw.redis, config.replicas, config.replica_timeout_ms)
    if confirmed < config.replicas:
        withdraw_unconfirmed(gw, record, accepted, confirmed)


async def confirm_accept_async(gw: Any, client: Channel, record: Any, accepted: Any) -> None:
    """``confirm_accept`` on the API's event loop: the wait for the replicas holds no thread
    (a withdrawal, which only an unconfirmed write needs, runs in one)."""
    config = gw.settings.gateway
    if config.durability != "replicated":
        return
    # The marker is written after the accept on a connection of its own (WAIT holds the
    # connection it is sent on): replication is one ordered stream, so a replica that has the
    # marker has the write.
    _, confirmed = await client.execute_alone(["SET", MARK, uuid.uuid4().hex],
                                              ["WAIT", config.replicas, config.replica_timeout_ms])
    if int(confirmed) < config.replicas:
        await anyio.to_thread.run_sync(withdraw_unconfirmed, gw, record, accepted, int(confirmed))


def withdraw_unconfirmed(gw: Any, record: Any, accepted: Any, confirmed: int) -> NoReturn:
    """The replicas did not confirm ``record``'s accept: withdraw it if it is new, free this
    request's attachment bytes, and raise ``NotReplicated`` (a 503)."""
    config = gw.settings.gateway
    withdrawn = False
    if accepted.new:
        names = [dedup_key(record.workspace, record.dedup_key), f"write:{record.id}", f"chain:{record.chain}",
                keys.ACTIVE_WRITES, f"lock:write:{record.id}", open_key(record.connection)]
        withdrawn = bool(gw.redis.register_script(_WITHDRAW)(keys=names, args=[record.id, msgspec.json.encode(record)]))
    if withdrawn or not accepted.new:  # this request's attachment bytes belong to no write now
        gw.writes.delete_blobs(record.id, sum(1 for s in record.steps if s.name == "attachment"))
    log.warning("write %s not confirmed by replicas (%d of %d)", record.id, confirmed, config.replicas)
    raise NotReplicated(config.replicas, confirmed, config.replica_timeout_ms, record.dedup_key, withdrawn)


def confirm_resend(gw: Any, idempotency_key: str) -> None:
    """A resent Idempotency-Key found its write: under ``replicated``, answer 202 only once the
    replicas have it too. A write a worker had started on when its first answer was a 503 was
    not withdrawn and may still be on the primary only. Raises ``NotReplicated`` (a 503)."""
    config = gw.settings.gateway
    if config.durability != "replicated":
        return
    confirmed = confirm(gw.redis, config.replicas, config.replica_timeout_ms)
    if confirmed < config.replicas:
        log.warning("resent key not confirmed by replicas (%d of %d)", confirmed, config.replicas)
        raise NotReplicated(config.replicas, confirmed, config.replica_timeout_ms, idempotency_key, withdrawn=False)


def confirm_before_send(gw: Any) -> None:
    """In a worker, before a vendor call: under ``replicated``, the step's ``sending`` mark
    must be on the replicas, so that a failover reconciles the step instead of sending it
    again. Raises ``NotReplicated`` (the runner retries the write later)."""
    config = gw.settings.gateway
    if config.durability != "replicated":
        return
    confirmed = confirm(gw.redis, config.replicas, config.replica_timeout_ms)
    if confirmed < config.replicas:
        raise NotReplicated(config.replicas, confirmed, config.replica_timeout_ms, None, withdrawn=False)
