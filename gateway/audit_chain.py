"""The audit hash chain: each workspace's audit records, linked so that tampering shows.

Every record joins its workspace's chain (records without a workspace join ``_unscoped``). The
stored bytes are the record's JSON with two fields in front::

    {"seq":42,"prev":"<sha256 hex of record 41's stored bytes>","trace_id":...}

so each record carries its own sequence number and the digest of the one before it; record 1's
``prev`` is 64 zeros. Redis layout, per workspace ``W``:

- ``audit:chain:W``  sorted set, member = stored bytes, score = seq
- ``audit:head:W``   hash ``seq``, ``digest``: the newest record and its digest
- ``audit:anchor:W`` hash ``seq``, ``prev``, ``at``: where retention last cut the chain (the
  first kept record's seq and the digest it must link to), so the rest verifies from there

One Lua script appends (compare-and-set on the head, so concurrent processes cannot fork the
chain), trims to the retention cap and fills the read-back lists in a single step. Redis Lua has
no SHA-256, so the digest is computed here and the script only accepts it if the head it was
computed against is still the head; otherwise it answers the current head and we try again.

``verify`` walks a chain in pages (no round trip per record) and names the first record that
was edited, removed or reordered; a ``Checkpoint`` exported earlier also catches a chain whose
tail was cut and whose head was rewound to match.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Literal

import msgspec
import redis

from gateway.settings import GatewayConfig

UNSCOPED = "_unscoped"  # the chain of records without a workspace (no workspace id starts with _)
GENESIS = "0" * 64
PAGE = 5000
LOOKAHEAD = 1000  # how far past a gap the verifier looks for a record that was moved
KEEP_RECORDS = GatewayConfig().audit_keep_records  # default retention per chain
_APPEND_TRIES = 1000  # each lost try means another writer's append landed
_packer = msgspec.msgpack.Encoder()


def chain_key(workspace: str) -> str:
    return f"audit:chain:{workspace}"


def head_key(workspace: str) -> str:
    return f"audit:head:{workspace}"


def anchor_key(workspace: str) -> str:
    return f"audit:anchor:{workspace}"


def entry_bytes(seq: int, prev: str, body: bytes) -> bytes:
    """A record's stored bytes: ``body`` (a JSON object) with ``seq`` and ``prev`` in front."""
    return b'{"seq":%d,"prev":"%s",%s' % (seq, prev.encode(), body[1:])


def digest(entry: bytes) -> str:
    """The digest the next record carries as its ``prev``."""
    return hashlib.sha256(entry).hexdigest()


# KEYS: chain, head, anchor, newest-first list, then every entry's index lists in order.
# ARGV: one MessagePack array (one argument for redis-py to encode, not three an entry): expected
#       seq, expected digest, keep (0: all), newest-first cap, index ttl seconds, now (ISO
#       time), the last entry's digest, then per entry: its text, how many index lists it has.
_APPEND = """
local ARGV = cmsgpack.unpack(ARGV[1])
local head = redis.call('HMGET', KEYS[2], 'seq', 'digest')
local seq = tonumber(head[1]) or 0
local last = head[2] or string.rep('0', 64)
if seq ~= tonumber(ARGV[1]) or last ~= ARGV[2] then
  return {0, seq, last}
end
local ttl, at = ARGV[5], 5
for i = 8, #ARGV, 2 do
  local entry = ARGV[i]
  seq = seq + 1
  redis.call('ZADD', KEYS[1], seq, entry)
  redis.call('LPUSH', KEYS[4], entry)
  for _ = 1, ARGV[i + 1] do
    redis.call('RPUSH', KEYS[at], entry)
    redis.call('EXPIRE', KEYS[at], ttl)
    at = at + 1
  end
end
last = ARGV[7]
redis.call('HSET', KEYS[2], 'seq', seq, 'digest', last)
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)
local keep = tonumber(ARGV[3])
if keep > 0 then
  local over = redis.call('ZCARD', KEYS[1]) - keep
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
    local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    local first_seq, first_prev = string.match(first, '^{"seq":(%d+),"prev":"(%x+)"')
    if first_seq then
      redis.call('HSET', KEYS[3], 'seq', first_seq, 'prev', first_prev, 'at', ARGV[6])
    end
  end
end
return {1, seq}
"""


class ChainContended(Exception):
    """The head moved under every one of our append attempts (other writers kept winning)."""


class AuditChain:
    """Appends records to their workspace's chain. Safe across threads and processes."""

    def __init__(self, client: redis.Redis, *, keep_records: int = KEEP_RECORDS) -> None:
        self.redis = client
        self.keep_records = keep_records
        self._script = client.register_script(_APPEND)
        # Last head we saw per chain: right unless another process appended since (then the
        # script answers the current head and we try again).
        self._heads: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def append(
        self, workspace: str, body: bytes, *, newest_first: str, newest_first_cap: int,
        indexes: Sequence[str] = (), index_ttl: int = 0,
    ) -> bytes:
        """Add ``body`` (a record's JSON) to ``workspace``'s chain; also push the stored bytes
        onto the ``newest_first`` list (capped) and each of ``indexes`` (expiring). Returns the
        stored bytes."""
        return self.append_many(workspace, [(body, indexes)], newest_first=newest_first,
                                newest_first_cap=newest_first_cap, index_ttl=index_ttl)[0]

    def append_many(
        self, workspace: str, items: Sequence[tuple[bytes, Sequence[str]]], *, newest_first: str,
        newest_first_cap: int, index_ttl: int = 0,
    ) -> list[bytes]:
        """``append`` for several records of one chain, in order, in one script call: each item
        is (body, its index lists). Returns the stored bytes of each."""
        keys = [chain_key(workspace), head_key(workspace), anchor_key(workspace), newest_first]
        for _, indexes in items:
            keys += indexes
        now = datetime.now(timezone.utc).isoformat()
        with self._lock:
            seq, prev = self._heads.get(workspace, (-1, GENESIS))
            for _ in range(_APPEND_TRIES):
                entries, args, last = [], [], prev
                for offset, (body, indexes) in enumerate(items, start=1):
                    entry = entry_bytes(seq + offset, last, body)
                    last = digest(entry)
                    entries.append(entry)
                    args += [entry.decode(), len(indexes)]  # text: Redis 6's cmsgpack reads no binary type
                packed = _packer.encode([seq, prev, self.keep_records, newest_first_cap, index_ttl, now, last, *args])
                answer = self._script(keys=keys, args=[packed])
                if int(answer[0]) == 1:
                    self._heads[workspace] = (seq + len(items), last)
                    return entries
                seq, prev = int(answer[1]), _text(answer[2])
            self._heads.pop(workspace, None)
        raise ChainContended(f"audit chain {workspace}: the head kept moving")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- checkpoints ---------------------------------------------------------------------------


class Checkpoint(msgspec.Struct):
    """A chain's head at one moment: keep it outside Redis, and later verification proves the
    chain still contains that exact record (catching a cut tail even when the head was rewound)."""

    workspace: str
    seq: int
    digest: str
    time: datetime


def chains(client: redis.Redis) -> list[str]:
    """Every workspace that has an audit chain (or a head or anchor left of one), sorted."""
    found: set[str] = set()
    for prefix in ("audit:chain:", "audit:head:", "audit:anchor:"):
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            found.add(_text(key)[len(prefix):])
    return sorted(found)


def checkpoint(client: redis.Redis, workspace: str) -> Checkpoint | None:
    """The chain's current head as a checkpoint; None when the chain has no records."""
    seq, head = client.hmget(head_key(workspace), ["seq", "digest"])
    if seq is None or head is None:
        return None
    return Checkpoint(workspace, int(seq), _text(head), datetime.now(timezone.utc))


def write_checkpoints(path: Path | None, checkpoints: list[Checkpoint]) -> bytes:
    """The checkpoints as a JSON array, written to ``path`` when given."""
    data = msgspec.json.format(msgspec.json.encode(checkpoints), indent=2) + b"\n"
    if path is not None:
        path.write_bytes(data)
    return data


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """Checkpoints from a file holding one checkpoint object or an array of them."""
    data = path.read_bytes()
    try:
        return msgspec.json.decode(data, type=list[Checkpoint])
    except msgspec.ValidationError:
        return [msgspec.json.decode(data, type=Checkpoint)]


# -- verification --------------------------------------------------------------------------

Breakage = Literal["edited", "removed", "reordered"]


class ChainBreak(msgspec.Struct, omit_defaults=True):
    """The first record that is not as it was appended."""

    seq: int
    what: Breakage
    detail: str
    trace_id: str | None = None
    span_id: str | None = None

    def describe(self) -> str:
        ids = f" (trace {self.trace_id}, span {self.span_id})" if self.trace_id else ""
        return f"seq {self.seq}{ids} {self.what}: {self.detail}"


class ChainReport(msgspec.Struct, omit_defaults=True):
    """What verifying one chain found."""

    workspace: str
    records: int = 0  # records checked
    first_seq: int | None = None
    last_seq: int | None = None
    trimmed_before: int | None = None  # retention cut the chain before this seq
    checkpoint: str | None = None  # what the checkpoint check concluded
    note: str | None = None  # why the walk could not finish (then not ok, though nothing is broken)
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None and self.note is None

    def describe(self) -> str:
        span = f"seq {self.first_seq}..{self.last_seq}" if self.records else "no records"
        trimmed = f", trimmed by retention before seq {self.trimmed_before}" if self.trimmed_before else ""
        cp = f"; checkpoint: {self.checkpoint}" if self.checkpoint else ""
        cp += f"; {self.note}" if self.note else ""
        if self.broken:
            return f"audit chain {self.workspace}: BROKEN at {self.broken.describe()}{cp}"
        if self.note:
            return f"audit chain {self.workspace}: NOT VERIFIED past seq {self.last_seq}{cp}"
        return f"audit chain {self.workspace}: {self.records} records verified ({span}{trimmed}){cp}"


class _Ids(msgspec.Struct):
    """The fields a break is named by."""

    seq: int | None = None
    prev: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


_ids_decoder = msgspec.json.Decoder(_Ids)
# What ``entry_bytes`` writes first; read without decoding the whole record.
_LINK = re.compile(rb'\{"seq":(\d{1,18}),"prev":"([0-9a-f]{64})",')


class _Record:
    """A stored record: its bytes, and the ``seq`` and ``prev`` it carries (None if unreadable)."""

    __slots__ = ("raw", "seq", "prev")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        found = _LINK.match(raw)
        if found:
            self.seq: int | None = int(found[1])
            self.prev: str | None = found[2].decode()
        else:  # fields reordered or the record mangled: decode it whole
            ids = self.ids()
            self.seq, self.prev = (ids.seq, ids.prev) if ids else (None, None)

    def ids(self) -> _Ids | None:
        try:
            return _ids_decoder.decode(self.raw)
        except msgspec.DecodeError:
            return None

    @property
    def trace_span(self) -> tuple[str | None, str | None]:
        ids = self.ids()
        return (ids.trace_id, ids.span_id) if ids else (None, None)


class _Snapshot(msgspec.Struct):
    """A chain's head, trim anchor and newest record's seq, read at one instant."""

    head_seq: int | None
    head_digest: str | None
    anchor_seq: int | None
    anchor_prev: str | None
    newest_seq: float | None


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None else None


def _str(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


class _Pages:
    """A chain's records in score order up to the head, ``PAGE`` at a time, with a look-ahead.
    Paging is by score (not rank), so retention trimming the front while we read shifts
    nothing; members sharing a score (only after tampering) are skipped by count."""

    def __init__(self, client: redis.Redis, workspace: str) -> None:
        self.client = client
        self.key = chain_key(workspace)
        self.workspace = workspace
        self._buffer: deque[bytes] = deque()
        self._score: float | None = None
        self._offset = 0
        self._done = False
        with client.pipeline(transaction=True) as pipe:  # the first page with the head it ends at
            self._snapshot_into(pipe)
            pipe.zrangebyscore(self.key, "-inf", "+inf", start=0, num=PAGE, withscores=True)
            *state, first = pipe.execute()
        self.first = self._snapshot(state)
        self.max_score = self.first.head_seq or 0
        below = [(raw, score) for raw, score in first if score <= self.max_score]
        self._take(below, done=len(below) < len(first))

    def _snapshot_into(self, pipe: redis.client.Pipeline) -> None:
        pipe.hmget(head_key(self.workspace), ["seq", "digest"])
        pipe.hmget(anchor_key(self.workspace), ["seq", "prev"])
        pipe.zrange(self.key, -1, -1, withscores=True)

    @staticmethod
    def _snapshot(state: list[list]) -> _Snapshot:  # type: ignore[type-arg]
        (seq, head), (anchor_seq, anchor_prev), newest = state
        return _Snapshot(_int(seq), _str(head), _int(anchor_seq), _str(anchor_prev),
                         newest[0][1] if newest else None)

    def now(self) -> _Snapshot:
        """The head, anchor and newest seq as they are now."""
        with self.client.pipeline(transaction=True) as pipe:
            self._snapshot_into(pipe)
            return self._snapshot(pipe.execute())

    def _take(self, page: list[tuple[bytes, float]], *, done: bool = False) -> None:
        self._done = done or len(page) < PAGE
        if page:
            last = page[-1][1]
            at_last = 0
            for _, score in reversed(page):
                if score != last:
                    break
                at_last += 1
            self._offset = self._offset + at_last if last == self._score else at_last
            self._score = last
        self._buffer.extend([raw for raw, _ in page])

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) < wanted and not self._done and self._score is not None:
            self._take(self.client.zrangebyscore(self.key, self._score, self.max_score, start=self._offset,
                                                 num=PAGE, withscores=True))

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self._fill(1)
            if not self._buffer:
                return
            while self._buffer:  # a page at a time, without a fill check per record
                yield self._buffer.popleft()

    def peek(self, count: int) -> list[_Record]:
        """Up to ``count`` records after the one last yielded."""
        self._fill(count)
        return [_Record(raw) for raw in islice(self._buffer, count)]


def verify(
    client: redis.Redis, workspace: str, checkpoint: Checkpoint | None = None, *, copies: str | None = None
) -> ChainReport:
    """Walk ``workspace``'s chain and report the first record edited, removed or reordered, and
    whether the chain still holds the record ``checkpoint`` vouches for. ``copies`` names a
    list holding copies of recent records (the read-back list): a removed record still there is
    named by its trace and span id."""
    pages = _Pages(client, workspace)
    snapshot = pages.first
    report = ChainReport(workspace)
    head_seq, head_digest = snapshot.head_seq, snapshot.head_digest
    expected_seq = snapshot.anchor_seq if snapshot.anchor_seq is not None else 1
    expected_prev = snapshot.anchor_prev or GENESIS
    if snapshot.anchor_seq is not None:
        report.trimmed_before = expected_seq
    if head_seq is None or head_digest is None:
        if snapshot.newest_seq is not None:
            seq = int(snapshot.newest_seq)
            report.broken = ChainBreak(seq + 1, "removed", f"the chain's head ({head_key(workspace)}) is missing "
                                       f"while records up to seq {seq} remain")
        elif checkpoint is not None:
            report.broken = ChainBreak(1, "removed", f"the chain is gone; the checkpoint of {checkpoint.time} "
                                       f"vouched for seq {checkpoint.seq}")
        return report
    first_seq = expected_seq
    previous: _Record | None = None
    previous_raw: bytes | None = None
    checkpoint_seq = checkpoint.seq if checkpoint else None
    checkpoint_digest = expected_prev if checkpoint_seq == expected_seq - 1 else None
    link = expected_prev.encode()
    sha256 = hashlib.sha256
    # The hot loop: an intact record starts with exactly the seq and link it should carry.
    for raw in pages:
        if not raw.startswith(b'{"seq":%d,"prev":"%s",' % (expected_seq, link)):
            record = _Record(raw)
            previous = _Record(previous_raw) if previous_raw is not None else None
            expected_prev = link.decode()
            if record.seq is None or record.prev is None:
                report.broken = ChainBreak(expected_seq, "edited", "the record in this place is no longer a "
                                           "readable chain record", *_trace_span(previous))
                break
            report.broken = _classify(record, previous, expected_seq, expected_prev, pages, head_seq, head_digest)
            if report.broken.what == "removed" and _trimmed_past(client, workspace, expected_seq):
                report.broken = None
                report.note = "retention trimmed the chain past the verifier while it read: run again"
            elif report.broken.what == "removed" and copies:
                _name_from_copy(client, copies, report.broken, expected_prev)
            break
        link = sha256(raw).hexdigest().encode()
        if expected_seq == checkpoint_seq:
            checkpoint_digest = link.decode()
        expected_seq += 1
        previous_raw = raw
    else:
        expected_prev = link.decode()
        previous = _Record(previous_raw) if previous_raw is not None else None
        if expected_seq <= head_seq:
            report.broken = ChainBreak(expected_seq, "removed", f"seq {expected_seq}..{head_seq} are missing from "
                                       f"the end (the head is seq {head_seq})", *_trace_span(previous))
        elif expected_prev != head_digest:
            report.broken = ChainBreak(head_seq, "edited", "the newest record no longer matches the head's digest",
                                       *_trace_span(previous))
        else:
            report.broken = _past_the_head(pages.now())
    if expected_seq > first_seq:
        report.records, report.first_seq, report.last_seq = expected_seq - first_seq, first_seq, expected_seq - 1
    if checkpoint is not None and report.broken is None:
        report.broken = _check_checkpoint(report, checkpoint, checkpoint_digest, head_seq)
    return report


def _past_the_head(now: _Snapshot) -> ChainBreak | None:
    """Records past the head (appends since the snapshot move the head with them): the head was
    rewound or removed and rebuilt."""
    head = now.head_seq or 0
    if now.newest_seq is None or now.newest_seq <= head:
        return None
    return ChainBreak(head, "edited", f"the head was rewound: records up to seq {int(now.newest_seq)} lie past it")


def _trace_span(record: _Record | None) -> tuple[str | None, str | None]:
    return record.trace_span if record else (None, None)


def _classify(
    record: _Record, previous: _Record | None, expected_seq: int, expected_prev: str, pages: _Pages,
    head_seq: int, head_digest: str,
) -> ChainBreak:
    """Name the break found at ``record``, the one after ``previous`` (None: the first)."""
    seq = record.seq
    assert seq is not None
    ids = record.trace_span
    if seq == expected_seq and record.prev == expected_prev:
        return ChainBreak(seq, "edited", "its stored form was rewritten", *ids)
    if seq == expected_seq:
        # In place, but its link does not match: either the record before was edited (then this
        # record is intact and the next one links to it) or this record's link itself was.
        after = pages.peek(1)
        mine = digest(record.raw)
        intact = after[0].prev == mine if after else (seq == head_seq and mine == head_digest)
        if previous is None:
            return ChainBreak(seq, "edited", "it no longer links to the trim anchor or the chain's start", *ids)
        if intact:
            return ChainBreak(expected_seq - 1, "edited", f"its content no longer matches the digest seq {seq} "
                              "recorded", *previous.trace_span)
        return ChainBreak(seq, "edited", f"its link to seq {expected_seq - 1} was changed", *ids)
    if record.prev == expected_prev:
        return ChainBreak(expected_seq, "edited", f"its sequence number was changed to {seq}", *ids)
    if seq > expected_seq:
        for later in pages.peek(LOOKAHEAD):
            if later.seq == expected_seq:
                return ChainBreak(expected_seq, "reordered", f"found after seq {seq}, out of its place",
                                  *later.trace_span)
        missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq}..{seq - 1}"
        after = f"seq {expected_seq - 1}" if expected_seq > 1 else "the chain's start"
        trace_id, span_id = ids
        return ChainBreak(expected_seq, "removed", f"{missing} missing: the record after {after} is seq {seq} "
                          f"(trace {trace_id}, span {span_id})")
    return ChainBreak(seq, "reordered", f"found again after seq {expected_seq - 1}, out of its place", *ids)


def _name_from_copy(client: redis.Redis, key: str, broken: ChainBreak, prev: str) -> None:
    """Fill in the removed record's ids from its copy in list ``key``, if one is left."""
    wanted = b'{"seq":%d,"prev":"%s",' % (broken.seq, prev.encode())
    for start in range(0, int(client.llen(key)), PAGE):
        for raw in client.lrange(key, start, start + PAGE - 1):
            if raw.startswith(wanted):
                broken.trace_id, broken.span_id = _Record(raw).trace_span
                broken.detail += f"; a copy in {key} remains"
                return


def _trimmed_past(client: redis.Redis, workspace: str, seq: int) -> bool:
    anchor = client.hget(anchor_key(workspace), "seq")
    return anchor is not None and int(anchor) > seq


def _check_checkpoint(report: ChainReport, checkpoint: Checkpoint, found: str | None, head_seq: int) -> ChainBreak | None:
    when = f"the checkpoint of {checkpoint.time.isoformat()}"
    if checkpoint.seq > head_seq:
        first_missing = head_seq + 1
        return ChainBreak(first_missing, "removed", f"seq {first_missing}..{checkpoint.seq} are missing from the end: "
                          f"{when} vouches for seq {checkpoint.seq}, the chain now ends at seq {head_seq}")
    if found is None:
        report.checkpoint = f"seq {checkpoint.seq} was trimmed by retention; nothing left to compare"
        return None
    if found != checkpoint.digest:
        return ChainBreak(checkpoint.seq, "edited", f"the chain up to this record was rewritten: its digest differs "
                          f"from {when}")
    report.checkpoint = f"seq {checkpoint.seq} matches {when}"
    return None
