"""Write records: what was accepted, its dedup key, its steps and every attempt.

A write is stored in Redis *before* the API answers 202. Keys:

- ``write:{id}``: the ``WriteRecord`` (JSON).
- ``dedup:{workspace}:{key}``: ``{write id} {body hash}``, kept ``idempotency_hours``. The same
  key with the same body is the same write; with another body it is refused.
- ``chain:{connection}:{ticket}``: write ids of one ticket in acceptance order. Only the head
  runs; when it finishes (or dead-letters) the next one is enqueued. This keeps a reply and a
  later status change from landing reversed, whatever order rq promotes jobs in.
- ``writes:open:{connection}``: a connection's unfinished writes by acceptance time.
- ``writes:active``: a sorted set of unfinished writes by last activity, which the sweeper
  walks to re-enqueue any write whose job was lost (crash between accept and enqueue, a worker
  killed mid-job, a Redis restart).
- ``deadletters:{workspace}``: dead-lettered write ids by time.
- ``claimed:{connection}:{ticket}:{step}``: vendor ids already produced by some write, so
  reconciliation never credits one write with another's effect.
- ``status:order:{connection}:{ticket}`` / ``status:of:{write}`` / ``status:landed:...``:
  status writes are numbered by the accept script (with their place in the chain); the highest
  number that reached the vendor is kept, so a retried older status write is skipped instead of
  moving the ticket back.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import redis

from gateway import entropy, keys
from gateway.aio import Channel, run_script
from gateway.locks import OwnedLock, try_lock
from gateway.models import Effect
from gateway.events import APPEND_LIB, Staged
from gateway.scheduler import SCHEDULER_LIB

WriteStatus = Literal["queued", "running", "succeeded", "dead", "discarded"]
StepState = Literal["pending", "sending", "done"]
TERMINAL = frozenset({"succeeded", "dead", "discarded"})


def now() -> datetime:
    return datetime.now(timezone.utc)


class WriteStep(msgspec.Struct):
    """One vendor effect of a write. ``sending`` means a call went out whose outcome is not
    known: the next attempt asks the plugin to reconcile before sending again."""

    name: str
    payload: dict[str, Any]
    state: StepState = "pending"
    effect: Effect | None = None
    started_at: datetime | None = None


class Attempt(msgspec.Struct, omit_defaults=True):
    at: datetime
    step: str
    outcome: str
    status: int | None = None
    error: str | None = None


class WriteRecord(msgspec.Struct, omit_defaults=True):
    id: str
    workspace: str
    connection: str
    vendor: str
    kind: str  # a declared write kind (``gateway.writekinds.KINDS``)
    dedup_key: str
    body_hash: str
    chain: str
    steps: list[WriteStep]
    # The accepted request, with attachment bytes replaced by their size.
    request: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: WriteStatus = "queued"
    target: str | None = None  # the ticket (or alert) reference written to
    attempts: list[Attempt] = []
    result_ref: str | None = None  # the ticket a create made
    error: str | None = None
    dead_at: datetime | None = None
    trace_context: dict[str, str] = {}

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class WriteView(msgspec.Struct, omit_defaults=True):
    """What ``GET /v1/writes/{id}`` shows a caller."""

    id: str
    kind: str
    status: str
    connection: str
    dedup_key: str
    created_at: datetime
    updated_at: datetime
    steps: list[WriteStep]
    attempts: list[Attempt]
    target: str | None = None
    result_ref: str | None = None
    error: str | None = None


class Accepted(msgspec.Struct, frozen=True):
    """The outcome of ``WriteStore.accept``: the write id that holds the dedup key."""

    write_id: str
    new: bool
    head: bool
    same_body: bool
    nudged: tuple[bytes, ...] = ()  # subscriptions the appended event nudged (``EventLog.appended``)
    known: bool = True  # false: none of the ``known`` keys existed, and nothing was stored


_enc = msgspec.json.Encoder()
_packer = msgspec.msgpack.Encoder()
_dec = msgspec.json.Decoder(WriteRecord)

# Accept atomically: claim the dedup key, store the record, join the ticket's chain and, when
# the write heads its chain and a run was prepared (ARGV[6..9]), queue that run in the fair
# scheduler: the caller's 202 costs one round trip. Returns {"new", "head"|"waiting", nudged
# subscriptions}, {"existing", "id hash"} or {"unknown"} (none of the keys that must exist does).
# The call comes packed: ARGV[1] is MessagePack of [keys, arguments] (one
# argument for Redis to read instead of thirty: the 202's hottest round trip).
# keys: dedup, record, chain, active writes, the connection's open writes, then the optional
# groups ARGV[10..13] say where they start (0: not given): the status order pair, the event's
# four keys (``APPEND_LIB``), the counter hash, the keys of which one must exist.
# arguments: id, body hash, idempotency seconds, record, now, run id ('' none), connection,
# workspace, cap, the four starts, then the event's four arguments, the counter's field and how
# many keys of which one must exist.
_ACCEPT = SCHEDULER_LIB + APPEND_LIB + """
local call = cmsgpack.unpack(ARGV[1])
local KEYS, ARGV = call[1], call[2]
local existing = redis.call('GET', KEYS[1])
if existing then
  return {'existing', existing}
end
local known_at = tonumber(ARGV[13])
if known_at > 0 and redis.call('EXISTS', unpack(KEYS, known_at, known_at + tonumber(ARGV[19]) - 1)) == 0 then
  return {'unknown'}  -- the write's ticket is neither in the store nor in the cache
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
local length = redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
local status_at, event_at, counter_at = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
if status_at > 0 then
  -- A status write: its number in the ticket's acceptance order, taken in the same step as its
  -- place in the chain, so the two orders agree.
  local order = redis.call('INCR', KEYS[status_at])
  redis.call('EXPIRE', KEYS[status_at], ARGV[3] * 7)
  redis.call('SET', KEYS[status_at + 1], order, 'EX', ARGV[3] * 7)
end
-- The write.accepted event and the accepted count: only for a write that is new.
local nudged = {}
if event_at > 0 then
  local e = event_at
  local _
  _, nudged = append_event(KEYS[e], KEYS[e + 1], KEYS[e + 2], KEYS[e + 3], ARGV[14], ARGV[15], ARGV[16], ARGV[17])
end
if counter_at > 0 then redis.call('HINCRBY', KEYS[counter_at], ARGV[18], 1) end
local place = 'waiting'
if length == 1 then
  place = 'head'
  if ARGV[6] ~= '' then
    local conn = ARGV[7]
    redis.call('HSET', P .. 'wsof', conn, ARGV[8])
    redis.call('HSET', P .. 'cap', conn, ARGV[9])
    enlist(conn, ARGV[6], false)
    if activate(conn, tonumber(ARGV[5])) == 1 then ring() end
  end
end
return {'new', place, nudged}
"""

# Finish the head of a chain: pop it if it is the head, return the next head (or nothing).
_ADVANCE = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head == ARGV[1] then
  redis.call('LPOP', KEYS[1])
end
return redis.call('LINDEX', KEYS[1], 0)
"""


# Keep the highest status order that landed on a ticket, with its write id.
_LANDED = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(string.match(current, '^(%d+)')) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
return 1
"""


def _accepted(record: WriteRecord, answer: list[Any]) -> Accepted:
    if answer[0] == b"unknown":
        return Accepted("", new=False, head=False, same_body=False, known=False)
    if answer[0] == b"existing":
        existing_id, existing_hash = answer[1].decode().split(" ", 1)
        return Accepted(existing_id, new=False, head=False, same_body=existing_hash == record.body_hash)
    return Accepted(record.id, new=True, head=answer[1] == b"head", same_body=True, nudged=tuple(answer[2]))


def dedup_key(workspace: str, key: str) -> str:
    """Which write holds an Idempotency-Key (or generated dedup key) in a workspace."""
    return f"dedup:{workspace}:{key}"


def open_key(connection: str) -> str:
    """Unfinished writes of one connection, scored by acceptance time (status pages)."""
    return f"writes:open:{connection}"


def body_hash(body: Any) -> str:
    """A stable hash of a request body, for telling a retry from a different write."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


class WriteStore:
    """Reads and writes write records, dedup keys, chains and dead letters."""

    def __init__(self, client: redis.Redis, *, idempotency_seconds: int = 24 * 3600) -> None:
        self.redis = client
        self.idempotency_seconds = idempotency_seconds
        self._accept = client.register_script(_ACCEPT)
        self._advance = client.register_script(_ADVANCE)
        self._landed = client.register_script(_LANDED)

    @staticmethod
    def new_id() -> str:
        return "w_" + entropy.token_hex(16)  # as random as uuid4, a fraction of its cost

    def accept(self, record: WriteRecord, *, run: tuple[str, int] | None = None,
               status_ticket: str | None = None, event: Staged | None = None,
               counter: tuple[str, str] | None = None, known: Sequence[str] = ()) -> Accepted:
        """Store a new write unless its dedup key is taken: one script, one round trip.

        ``run`` is ``(run id, connection cap)`` of the write's first run: queued in the fair
        scheduler by the same script when the write heads its chain. ``status_ticket`` (the
        ticket's vendor id) numbers a status-changing write in the ticket's acceptance order.
        ``event`` (``EventLog.stage``) is appended and ``counter`` (hash, field) counted in the
        same step, only if the write is new; pass ``Accepted.nudged`` to ``EventLog.appended``.
        ``known``: keys of which one must exist (the ticket in the store or the cache), else
        nothing is stored and ``Accepted.known`` is false.
        """
        packed = self._accept_call(record, run, status_ticket, event, counter, known)
        return _accepted(record, self._accept(args=[packed]))

    async def accept_async(self, client: Channel, record: WriteRecord, *, run: tuple[str, int] | None = None,
                           status_ticket: str | None = None, event: Staged | None = None,
                           counter: tuple[str, str] | None = None, known: Sequence[str] = ()) -> Accepted:
        """``accept`` on an asyncio client (the API's event loop)."""
        packed = self._accept_call(record, run, status_ticket, event, counter, known)
        return _accepted(record, await run_script(client, self._accept, (), (packed,)))

    def _accept_call(self, record: WriteRecord, run: tuple[str, int] | None, status_ticket: str | None,
                     event: Staged | None, counter: tuple[str, str] | None, known: Sequence[str]) -> bytes:
        names = [
            dedup_key(record.workspace, record.dedup_key),
            f"write:{record.id}",
            f"chain:{record.chain}",
            keys.ACTIVE_WRITES,
            open_key(record.connection),
        ]
        starts = [0, 0, 0, 0]
        if status_ticket is not None:
            starts[0] = len(names) + 1
            names += [f"status:order:{record.connection}:{status_ticket}", f"status:of:{record.id}"]
        if event is not None:
            starts[1] = len(names) + 1
            names += event.keys
        if counter is not None:
            starts[2] = len(names) + 1
            names.append(counter[0])
        if known:
            starts[3] = len(names) + 1
            names += known
        # As Redis would have read them: text (the JSON is UTF-8; Redis 6's cmsgpack reads no
        # binary type), numbers written exactly (``repr``), each converted by what it is.
        args = [record.id, record.body_hash, repr(self.idempotency_seconds), _enc.encode(record).decode(),
                repr(time.time())]
        args += ("", "", "", "") if run is None else (run[0], record.connection, record.workspace, repr(run[1]))
        args += map(repr, starts)
        if event is None:
            args += ("", "", "", "")
        else:
            trim_before, body, workspace, at = event.args
            args += (repr(trim_before), body.decode(), workspace, repr(at))
        args += (counter[1] if counter else "", repr(len(known)))
        return _packer.encode((names, args))

    def dedup(self, workspace: str, key: str) -> tuple[str, str] | None:
        """The write id and body hash holding a dedup key, if any."""
        raw = self.redis.get(dedup_key(workspace, key))
        if not raw:
            return None
        write_id, digest = raw.decode().split(" ", 1)
        return write_id, digest

    def get(self, write_id: str) -> WriteRecord | None:
        raw = self.redis.get(f"write:{write_id}")
        return _dec.decode(raw) if raw else None

    def save(self, record: WriteRecord, *, due: float | None = None) -> None:
        """Store the record. ``due`` is when its next job is scheduled: the sweeper leaves
        the write alone until then."""
        record.updated_at = now()
        with self.redis.pipeline() as pipe:
            pipe.set(f"write:{record.id}", _enc.encode(record))
            if record.terminal:
                pipe.zrem(keys.ACTIVE_WRITES, record.id)
                pipe.zrem(open_key(record.connection), record.id)
                pipe.expire(f"write:{record.id}", self.idempotency_seconds * 7)
            else:
                pipe.zadd(keys.ACTIVE_WRITES, {record.id: max(time.time(), due or 0)})
            if record.status == "dead":
                pipe.zadd(f"deadletters:{record.workspace}", {record.id: time.time()})
            else:
                pipe.zrem(f"deadletters:{record.workspace}", record.id)
            pipe.execute()

    def touch(self, write_id: str) -> None:
        """Mark an unfinished write as having activity now (the sweeper waits again)."""
        self.redis.zadd(keys.ACTIVE_WRITES, {write_id: time.time()}, xx=True)

    def chain_head(self, chain: str) -> str | None:
        head = self.redis.lindex(f"chain:{chain}", 0)
        return head.decode() if head else None

    def advance(self, record: WriteRecord) -> str | None:
        """Remove a finished write from the head of its chain; return the next write id."""
        return self.advance_chain(record.chain, record.id)

    def advance_chain(self, chain: str, write_id: str) -> str | None:
        """Pop ``write_id`` if it heads ``chain``; return the chain's head after that."""
        nxt = self._advance(keys=[f"chain:{chain}"], args=[write_id])
        return nxt.decode() if nxt else None

    def open_writes(self, connection: str) -> tuple[int, float | None]:
        """How many writes of ``connection`` are unfinished, and when the oldest was accepted."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(open_key(connection))
        pipe.zrange(open_key(connection), 0, 0, withscores=True)
        count, oldest = pipe.execute()
        return int(count), (oldest[0][1] if oldest else None)

    def rejoin(self, record: WriteRecord) -> bool:
        """Put a retried dead letter at the end of its chain; True if it is now the head."""
        self.redis.zadd(open_key(record.connection), {record.id: time.time()}, nx=True)
        return int(self.redis.rpush(f"chain:{record.chain}", record.id)) == 1

    def lock(self, write_id: str, seconds: int) -> OwnedLock | None:
        """The write's lock (one run at a time), or ``None`` when another run holds it."""
        return try_lock(self.redis, f"lock:write:{write_id}", seconds)

    @staticmethod
    def unlock(write_id: str, lock: OwnedLock) -> None:
        """Release the write's lock; one that lapsed and was taken by another run is left alone."""
        lock.release()

    def is_locked(self, write_id: str) -> bool:
        return bool(self.redis.exists(f"lock:write:{write_id}"))

    def stale_active(self, older_than: float) -> list[str]:
        """Unfinished writes with no activity for ``older_than`` seconds."""
        ids = self.redis.zrangebyscore(keys.ACTIVE_WRITES, "-inf", time.time() - older_than)
        return [i.decode() for i in ids]

    def active_count(self) -> int:
        return int(self.redis.zcard(keys.ACTIVE_WRITES))

    # -- status order ----------------------------------------------------------------------

    def status_order(self, write_id: str) -> int | None:
        """A status write's number in its ticket's acceptance order (``None`` for writes
        accepted before numbering, which are never skipped)."""
        raw = self.redis.get(f"status:of:{write_id}")
        return int(raw) if raw else None

    def status_landed(self, connection: str, ticket: str, order: int, write_id: str) -> None:
        """Record that status write number ``order`` reached the vendor (keeps the highest)."""
        self._landed(keys=[f"status:landed:{connection}:{ticket}"],
                     args=[order, write_id, self.idempotency_seconds * 7])

    def status_superseded(self, connection: str, ticket: str, order: int) -> str | None:
        """The id of a later status write to the ticket that already landed, if any."""
        raw = self.redis.get(f"status:landed:{connection}:{ticket}")
        if not raw:
            return None
        landed, write_id = raw.decode().split(" ", 1)
        return write_id if int(landed) > order else None

    def claimed(self, connection: str, ticket: str | None, step: str) -> frozenset[str]:
        members = self.redis.smembers(f"claimed:{connection}:{ticket}:{step}")
        return frozenset(m.decode() for m in members)

    def claim(self, connection: str, ticket: str | None, step: str, vendor_id: str) -> None:
        key = f"claimed:{connection}:{ticket}:{step}"
        self.redis.sadd(key, vendor_id)
        self.redis.expire(key, self.idempotency_seconds * 7)

    def dead_letters(self, workspace: str, limit: int = 100, offset: int = 0) -> list[WriteRecord]:
        # Redis takes 64-bit indexes only: a caller's huge offset is simply past the end.
        offset = max(0, min(offset, 2**40))
        ids = self.redis.zrevrange(f"deadletters:{workspace}", offset, offset + max(1, min(limit, 2**20)) - 1)
        records = [self.get(i.decode()) for i in ids]
        return [r for r in records if r is not None]

    # -- attachment bytes -----------------------------------------------------------------

    def put_blob(self, write_id: str, index: int, data: bytes) -> None:
        self.redis.set(f"blob:{write_id}:{index}", data, ex=self.idempotency_seconds * 7)

    def get_blob(self, write_id: str, index: int) -> bytes:
        data = self.redis.get(f"blob:{write_id}:{index}")
        if data is None:
            raise KeyError(f"attachment {index} of {write_id} is gone")
        return data

    def delete_blobs(self, write_id: str, count: int) -> None:
        if count:
            self.redis.delete(*[f"blob:{write_id}:{i}" for i in range(count)])
