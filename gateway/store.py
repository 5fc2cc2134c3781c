"""The ticket store: every synced ticket of a workspace, indexed in Redis for the queue.

It is a cache of the PSAs: wiping it and resyncing rebuilds it. Keys, per workspace ``ws``:

- ``tk:{ref}``: the canonical ``Ticket`` (JSON), as served.
- ``tf:{ref}``: a hash of the fields filters and facets read (lower-cased where they match text).
- ``ix:{ws}:all:u`` / ``ix:{ws}:all:c``: every ticket, scored by updated / created time.
- ``ix:{ws}:{dim}:{value}:u``: the tickets with that value, scored by updated time, for each
  filter dimension (``DIMENSIONS``). A query walks the most selective index in sort order and
  checks the other filters per ticket: the same plan an SQL engine runs on an index, here in
  one Lua script so a page costs one round trip.
- ``cnt:{ws}:{dim}``: counts per value, for unfiltered facets.
- ``th:{ref}``: status changes the store has seen, newest first.

``upsert`` and ``delete`` are single scripts, so a ticket is never half-indexed. Each returns
the ticket as it was, so the store announces what changed (``ticket.created``,
``ticket.updated``, ``ticket.deleted`` in ``gateway.events``) exactly when it changes it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec
import redis

from gateway import events as event_log
from gateway.models import StatusChange, Ticket, TicketStatus

DIMENSIONS = ("status", "sname", "cat", "customer", "assignee", "conn", "vendor", "priority", "board")
FACETS = ("status", "cat", "customer", "assignee")

_UPSERT = """
local ref = ARGV[1]
local ws = ARGV[2]
local body = ARGV[3]
local at = ARGV[4]
local n = tonumber(ARGV[5])
local tf = 'tf:' .. ref
local old = redis.call('HGETALL', tf)
local prev = {}
for i = 1, #old, 2 do prev[old[i]] = old[i + 1] end
local new = {}
for i = 0, n - 1 do new[ARGV[6 + i * 2]] = ARGV[7 + i * 2] end
local dims = {'status', 'sname', 'cat', 'customer', 'assignee', 'conn', 'vendor', 'priority', 'board'}
if prev['ws'] and prev['ws'] ~= ws then
  return redis.error_reply('ticket moved workspace')
end
local changed_status = prev['status'] ~= nil and prev['status'] ~= new['status']
local before = redis.call('GET', 'tk:' .. ref)
for _, d in ipairs(dims) do
  local was, now = prev[d], new[d]
  if was ~= nil and was ~= '' and was ~= now then
    redis.call('ZREM', 'ix:' .. ws .. ':' .. d .. ':' .. was .. ':u', ref)
    if redis.call('HINCRBY', 'cnt:' .. ws .. ':' .. d, was, -1) <= 0 then
      redis.call('HDEL', 'cnt:' .. ws .. ':' .. d, was)
    end
  end
  if now ~= nil and now ~= '' then
    redis.call('ZADD', 'ix:' .. ws .. ':' .. d .. ':' .. now .. ':u', new['updated'], ref)
    if was ~= now then redis.call('HINCRBY', 'cnt:' .. ws .. ':' .. d, now, 1) end
  end
end
redis.call('ZADD', 'ix:' .. ws .. ':all:u', new['updated'], ref)
redis.call('ZADD', 'ix:' .. ws .. ':all:c', new['created'], ref)
redis.call('DEL', tf)
local flat = {}
for k, v in pairs(new) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', tf, unpack(flat))
redis.call('SET', 'tk:' .. ref, body)
if changed_status then
  redis.call('LPUSH', 'th:' .. ref, at)
  redis.call('LTRIM', 'th:' .. ref, 0, 99)
elseif prev['status'] == nil then
  redis.call('LPUSH', 'th:' .. ref, at)
end
if before == body then before = '=' end
return {changed_status and 1 or 0, before or ''}
"""

_DELETE = """
local ref = ARGV[1]
local tf = 'tf:' .. ref
local old = redis.call('HGETALL', tf)
local before = redis.call('GET', 'tk:' .. ref) or ''
if #old == 0 then
  redis.call('DEL', 'tk:' .. ref)
  return ''
end
local prev = {}
for i = 1, #old, 2 do prev[old[i]] = old[i + 1] end
local ws = prev['ws']
local dims = {'status', 'sname', 'cat', 'customer', 'assignee', 'conn', 'vendor', 'priority', 'board'}
for _, d in ipairs(dims) do
  local was = prev[d]
  if was ~= nil and was ~= '' then
    redis.call('ZREM', 'ix:' .. ws .. ':' .. d .. ':' .. was .. ':u', ref)
    if redis.call('HINCRBY', 'cnt:' .. ws .. ':' .. d, was, -1) <= 0 then
      redis.call('HDEL', 'cnt:' .. ws .. ':' .. d, was)
    end
  end
end
redis.call('ZREM', 'ix:' .. ws .. ':all:u', ref)
redis.call('ZREM', 'ix:' .. ws .. ':all:c', ref)
redis.call('DEL', tf, 'tk:' .. ref, 'th:' .. ref)
return {ws, before}
"""

# ARGV: ws, sort ('u'|'c'), desc (1|0), limit, cursor score, cursor ref, ranges (4: cmin cmax umin umax),
#       text, facets (1|0), ndims, then per dim: name, nvalues, values...
_QUERY = """
local ws = ARGV[1]
local sort = ARGV[2]
local desc = ARGV[3] == '1'
local limit = tonumber(ARGV[4])
local cur_score = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil
local cur_ref = ARGV[6]
local cmin, cmax, umin, umax = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local text = ARGV[11]
local want_facets = ARGV[12] == '1'
local ndims = tonumber(ARGV[13])
local dims = {}
local pos = 14
for i = 1, ndims do
  local name = ARGV[pos]
  local nv = tonumber(ARGV[pos + 1])
  local values, set = {}, {}
  for j = 1, nv do values[j] = ARGV[pos + 1 + j]; set[ARGV[pos + 1 + j]] = true end
  pos = pos + 2 + nv
  local total = 0
  for _, v in ipairs(values) do total = total + redis.call('ZCARD', 'ix:' .. ws .. ':' .. name .. ':' .. v .. ':u') end
  dims[i] = {name = name, values = values, set = set, total = total}
end
local facet_names = {'status', 'cat', 'customer', 'assignee'}
local fields = {'created', 'updated', 'summary'}
for _, d in ipairs(dims) do fields[#fields + 1] = d.name end
for _, f in ipairs(facet_names) do fields[#fields + 1] = f end

local function check(ref, skip)
  local v = redis.call('HMGET', 'tf:' .. ref, unpack(fields))
  if not v[1] then return nil end
  local created, updated = tonumber(v[1]), tonumber(v[2])
  if created < cmin or created > cmax or updated < umin or updated > umax then return nil end
  if text ~= '' and not string.find(v[3], text, 1, true) then return nil end
  for i, d in ipairs(dims) do
    if d ~= skip and not d.set[v[3 + i] or ''] then return nil end
  end
  return v
end

local function after_cursor(score, ref)
  if cur_score == nil then return true end
  if desc then
    return score < cur_score or (score == cur_score and ref < cur_ref)
  end
  return score > cur_score or (score == cur_score and ref > cur_ref)
end

-- choose the driver: the global sort index, or the most selective single-value index
local driver, driver_key = nil, 'ix:' .. ws .. ':all:' .. sort
for _, d in ipairs(dims) do
  if driver == nil or d.total < driver.total then driver = d end
end
local ordered = true
if driver ~= nil then
  if #driver.values == 1 and sort == 'u' then
    driver_key = 'ix:' .. ws .. ':' .. driver.name .. ':' .. driver.values[1] .. ':u'
  elseif driver.total <= 20000 then
    ordered = false
  else
    driver = nil
  end
end

local page, scanned = {}, 0
local more = false
local counts = {}
local total = 0
local function count_facets(v)
  total = total + 1
  for i, f in ipairs(facet_names) do
    local value = v[3 + #dims + i] or ''
    local c = counts[f]
    if c == nil then c = {}; counts[f] = c end
    c[value] = (c[value] or 0) + 1
  end
end

if ordered then
  local lo, hi = '-inf', '+inf'
  if sort == 'u' then lo, hi = ARGV[9], ARGV[10] else lo, hi = ARGV[7], ARGV[8] end
  -- facets count the whole filter, so they scan from the top; a bare page starts at the cursor
  local bound = (cur_score and not want_facets) and tostring(cur_score) or nil
  local offset = 0
  local chunk = 256
  local done = false
  while not done do
    local batch
    if desc then
      batch = redis.call('ZREVRANGEBYSCORE', driver_key, bound or hi, lo, 'WITHSCORES', 'LIMIT', offset, chunk)
    else
      batch = redis.call('ZRANGEBYSCORE', driver_key, bound or lo, hi, 'WITHSCORES', 'LIMIT', offset, chunk)
    end
    if #batch == 0 then break end
    offset = offset + #batch / 2
    for i = 1, #batch, 2 do
      local ref, score = batch[i], tonumber(batch[i + 1])
      local later = after_cursor(score, ref)
      if later or want_facets then
        scanned = scanned + 1
        local v = check(ref, driver)
        if v then
          if want_facets then count_facets(v) end
          if later then
            if #page < limit then
              page[#page + 1] = {ref, score}
            else
              more = true
              if not want_facets then done = true; break end
            end
          end
        end
      end
    end
  end
else
  local found = {}
  local seen = {}
  for _, value in ipairs(driver.values) do
    local members = redis.call('ZRANGE', 'ix:' .. ws .. ':' .. driver.name .. ':' .. value .. ':u', 0, -1)
    for _, ref in ipairs(members) do
      if not seen[ref] then
        seen[ref] = true
        scanned = scanned + 1
        local v = check(ref, driver)
        if v then
          local score = sort == 'u' and tonumber(v[2]) or tonumber(v[1])
          if after_cursor(score, ref) then found[#found + 1] = {ref, score} end
          if want_facets then count_facets(v) end
        end
      end
    end
  end
  table.sort(found, function(a, b)
    if a[2] == b[2] then if desc then return a[1] > b[1] else return a[1] < b[1] end end
    if desc then return a[2] > b[2] end
    return a[2] < b[2]
  end)
  for i = 1, math.min(limit, #found) do page[i] = found[i] end
  more = #found > limit
end

local out_page = {}
for i, item in ipairs(page) do out_page[i] = {item[1], tostring(item[2])} end
local out = {page = out_page, more = more, scanned = scanned}
if want_facets then
  -- the cursor's own position is excluded from facets only on later pages; facets are
  -- for the whole filter, so recount from the start when paging
  out.facets = counts
  out.total = total
end
return cjson.encode(out)
"""


@dataclass
class TicketFilter:
    """What ``GET /v1/tickets`` filters on; every field combines with the others (AND), and
    several values of one field match any of them (OR)."""

    status: list[str] = field(default_factory=list)  # "{connection}:{status id}"
    status_name: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)  # customer references
    assignee: list[str] = field(default_factory=list)
    connection: list[str] = field(default_factory=list)
    vendor: list[str] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)
    board: list[str] = field(default_factory=list)
    text: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def dimensions(self) -> list[tuple[str, list[str]]]:
        pairs = [
            ("status", self.status), ("sname", [v.lower() for v in self.status_name]),
            ("cat", self.category), ("customer", self.customer), ("assignee", [v.lower() for v in self.assignee]),
            ("conn", self.connection), ("vendor", self.vendor), ("priority", [v.lower() for v in self.priority]),
            ("board", [v.lower() for v in self.board]),
        ]
        return [(name, values) for name, values in pairs if values]


@dataclass
class QueryResult:
    tickets: list[Ticket]
    next_cursor: str | None
    facets: dict[str, dict[str, int]] | None = None
    total: int | None = None


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def _key(value: str) -> str:
    # Index keys hold values; keep them to one line and free of the separator's surprises.
    return value.replace("\n", " ").strip()


def _customer_ref(ticket: Ticket) -> str:
    if ticket.customer is None:
        return ""
    return ticket.customer.ref or f"{ticket.connection}:{ticket.customer.id}"


def index_fields(ticket: Ticket, workspace: str) -> dict[str, str]:
    """The filter fields of a ticket, as the indexes hold them."""
    return {
        "ws": workspace,
        "status": f"{ticket.connection}:{ticket.status.id}",
        "sname": _key(ticket.status.name.lower()),
        "cat": ticket.status.category.value,
        "customer": _customer_ref(ticket),
        "assignee": _key((ticket.assignee.name or ticket.assignee.id).lower()) if ticket.assignee else "",
        "conn": ticket.connection,
        "vendor": ticket.vendor,
        "priority": _key((ticket.priority.name or ticket.priority.id).lower()) if ticket.priority else "",
        "board": _key((ticket.board.name or ticket.board.id).lower()) if ticket.board else "",
        "created": repr(_ts(ticket.created_at or ticket.updated_at)),
        "updated": repr(_ts(ticket.updated_at or ticket.created_at)),
        "summary": ticket.summary.lower(),
    }


_ticket_encoder = msgspec.json.Encoder()
_ticket_decoder = msgspec.json.Decoder(Ticket)


def encode_cursor(score: str, ref: str, sort: str, desc: bool) -> str:
    raw = json.dumps([score, ref, sort, desc]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, str, bool]:
    """Raise ``ValueError`` for a cursor this store did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, ref, sort, desc = json.loads(base64.urlsafe_b64decode(padded))
        float(score)
        if sort not in ("u", "c") or not isinstance(ref, str) or not isinstance(desc, bool):
            raise ValueError
        return score, ref, sort, desc
    except Exception:
        raise ValueError("not a cursor from this queue") from None


class TicketStore:
    """Upserts, deletes and queries synced tickets."""

    def __init__(self, client: redis.Redis, *, events: event_log.EventLog | None = None) -> None:
        self.redis = client
        self.events = events
        self._upsert = client.register_script(_UPSERT)
        self._delete = client.register_script(_DELETE)
        self._query = client.register_script(_QUERY)

    @staticmethod
    def _upsert_args(ticket: Ticket, workspace: str) -> list[Any]:
        slim = msgspec.structs.replace(ticket, thread=(), time_entries=(), status_history=(), attachments=())
        fields = index_fields(ticket, workspace)
        seen = msgspec.json.encode(StatusChange(status=ticket.status, changed_at=ticket.updated_at)).decode()
        args: list[Any] = [ticket.ref, workspace, _ticket_encoder.encode(slim), seen, len(fields)]
        for name, value in fields.items():
            args += [name, value]
        return args

    def upsert(self, ticket: Ticket, workspace: str, *, announce: bool = True) -> bool:
        """Store or replace a ticket (without its thread); True when its status changed.
        A new ticket or a changed one is announced unless ``announce`` is false."""
        changed, before = self._upsert(args=self._upsert_args(ticket, workspace))
        if announce:
            self._announce(ticket, workspace, before)
        return bool(changed)

    def upsert_many(self, tickets: list[Ticket], workspace: str, *, announce: bool = True) -> None:
        """``upsert`` for a page of tickets in one round trip (each still one atomic script).
        A backfill passes ``announce=False``: it loads what exists, it is no news."""
        with self.redis.pipeline(transaction=False) as pipe:
            for ticket in tickets:
                self._upsert(args=self._upsert_args(ticket, workspace), client=pipe)
            answers = pipe.execute()
        if announce:
            for ticket, (_changed, before) in zip(tickets, answers):
                self._announce(ticket, workspace, before)

    def _announce(self, ticket: Ticket, workspace: str, before: bytes) -> None:
        if self.events is None or before == b"=":  # "=": stored exactly as it was
            return
        old = _ticket_decoder.decode(before) if before else None
        event_log.ticket_stored(self.events, workspace, old, ticket)

    def delete(self, ref: str, *, announce: bool = True) -> bool:
        """Take a ticket out of the store; announced as deleted unless ``announce`` is false
        (a resync wiping the cache)."""
        answer = self._delete(args=[ref])
        if not answer:
            return False
        workspace, before = answer
        if announce and self.events is not None and before:
            event_log.ticket_deleted(self.events, workspace.decode(), _ticket_decoder.decode(before))
        return True

    def get(self, ref: str) -> Ticket | None:
        raw = self.redis.get(f"tk:{ref}")
        return _ticket_decoder.decode(raw) if raw else None

    def status_history(self, ref: str) -> list[StatusChange]:
        raw = self.redis.lrange(f"th:{ref}", 0, -1)
        return [msgspec.json.decode(r, type=StatusChange) for r in raw]

    def count(self, workspace: str) -> int:
        return int(self.redis.zcard(f"ix:{workspace}:all:u"))

    def refs_of_connection(self, workspace: str, connection: str) -> set[str]:
        return {m.decode() for m in self.redis.zrange(f"ix:{workspace}:conn:{connection}:u", 0, -1)}

    def query(
        self,
        workspace: str,
        flt: TicketFilter,
        *,
        sort: str = "updated",
        order: str = "desc",
        limit: int = 50,
        cursor: str | None = None,
        facets: bool = False,
    ) -> QueryResult:
        """One page of matching tickets in the requested order, plus facet counts if asked.

        ``sort`` is ``updated``, ``created`` or ``age`` (oldest created first unless ``order``
        says otherwise); ``cursor`` is the ``next_cursor`` of the page before.
        """
        key = "c" if sort in ("created", "age") else "u"
        desc = order == "desc" if sort != "age" else order != "desc"
        if sort == "age" and order not in ("asc", "desc"):
            desc = False
        cur_score, cur_ref = "", ""
        if cursor:
            cur_score, cur_ref, cur_sort, cur_desc = decode_cursor(cursor)
            if cur_sort != key or cur_desc != desc:
                raise ValueError("the cursor belongs to another sort order")
        args: list[Any] = [
            workspace, key, "1" if desc else "0", limit, cur_score, cur_ref,
            repr(_ts(flt.created_after)) if flt.created_after else "-inf",
            repr(_ts(flt.created_before)) if flt.created_before else "+inf",
            repr(_ts(flt.updated_after)) if flt.updated_after else "-inf",
            repr(_ts(flt.updated_before)) if flt.updated_before else "+inf",
            flt.text.lower(), "1" if facets else "0",
        ]
        dims = flt.dimensions()
        unfiltered = not dims and not flt.text and not any(
            (flt.created_after, flt.created_before, flt.updated_after, flt.updated_before)
        )
        if facets and unfiltered:
            args[11] = "0"  # unfiltered facets come from the running counts below
        args.append(len(dims))
        for name, values in dims:
            args += [name, len(values), *[_key(v) for v in values]]
        result = json.loads(self._query(args=args))
        page = result["page"] or []
        if isinstance(page, dict):  # cjson encodes an empty table as an object
            page = []
        refs = [item[0] for item in page]
        raw = self.redis.mget([f"tk:{r}" for r in refs]) if refs else []
        tickets = [_ticket_decoder.decode(b) for b in raw if b]
        next_cursor = encode_cursor(page[-1][1], page[-1][0], key, desc) if result["more"] and page else None
        facet_counts = None
        if facets and unfiltered:
            facet_counts = {
                f: {k.decode(): int(v) for k, v in self.redis.hgetall(f"cnt:{workspace}:{f}").items() if int(v) > 0}
                for f in FACETS
            }
            return QueryResult(tickets, next_cursor, facet_counts, self.count(workspace))
        if facets:
            facet_counts = {f: {} for f in FACETS}
            for name, values in (result.get("facets") or {}).items():
                if isinstance(values, dict):
                    facet_counts[name] = {k: int(v) for k, v in values.items() if k != ""}
        return QueryResult(tickets, next_cursor, facet_counts, result.get("total"))


def history_entry(status: TicketStatus, at: datetime | None = None) -> StatusChange:
    return StatusChange(status=status, changed_at=at or datetime.now(timezone.utc))
