"""The ticket store: every synced ticket of a workspace, indexed in Redis for the queue.

It is a cache of the PSAs: wiping it and resyncing rebuilds it. Keys, per workspace ``ws``
(index and count keys carry the format, ``INDEX_TAG``):

- ``tk:{ref}``: the ticket's record, one string: a version byte, the filter fields (times as
  doubles, values length-prefixed), the ``Ticket`` JSON exactly as a page serves it, and the
  status changes the store has seen, newest first (``RECORD``, ``_Seen``). A page splices the JSON.
- ``ix:{ws}:3:updated`` / ``ix:{ws}:3:created``: every ticket, scored by updated / created time.
- ``ix:{ws}:3:st:{connection}:{status id}``: the tickets in that status, scored by updated time.
  Status, status name, category, connection and vendor filters walk these: ``ix:{ws}:3:sd``
  counts the tickets of each (status, name, category, connection, vendor) combination seen, so
  a query knows which status indexes hold its category or vendor.
- ``ix:{ws}:3:cu:{customer ref}``: the customer's tickets, scored by updated time.
- ``cnt:{ws}:3:facet:{dim}``: counts per value, for unfiltered facets.

The members of the indexes by update and by status are ``{ref}\\0{summary}`` (the summary
lowercased, its NULs made ``\\x01``), those of the others the ref: a text filter is checked on
the member and only the tickets it keeps are read (reading a record costs the script several
times what checking a member does), for about 25 bytes a ticket. A reference holds no NUL.

These are the indexes the SQLite baseline has (updated; category; customer; connection and
vendor by category): each index entry costs a Redis sorted-set node (about 115 bytes), so
assignee, priority, board and dates are checked per ticket on the walk of the most selective
index, as an SQL engine checks a WHERE clause on its index walk. A query is one Lua script, one
round trip, that answers the page's JSON. Its cost is interpreted Lua per ticket walked, so it
reads an index a chunk at a time (members only: Redis would format each score as text, and the
record holds it as a double), the chunk's records in one ``MGET``, merges several indexes over
arrays, and unpacks a record only as far as a check needs (``bench/profile_store.py`` measures
it query by query).

``upsert`` and ``delete`` are single scripts, so a ticket is never half-indexed. Each returns
the ticket as it was, so the store announces what changed (``ticket.created``,
``ticket.updated``, ``ticket.deleted`` in ``gateway.events``) exactly when it changes it. Keys of
the formats before this one are never read: the first's (JSON in ``tk:``, fields in ``tf:``,
history in ``th:``, per-dimension indexes), the second's (records of version 2, the same
indexes untagged, members all refs). ``drop_old_format`` removes them once, by name and by
record version, and a resync rebuilds the store.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec
import redis

from gateway import events as event_log
from gateway.aio import Channel, run_script
from gateway.models import StatusCategory, StatusChange, Ticket, TicketStatus


def record_key(ref: str) -> str:
    """The key of a ticket's record."""
    return f"tk:{ref}"


def _key(value: str) -> str:
    # Index keys hold values; keep them to one line and free of the separator's surprises.
    return value.replace("\n", " ").strip()


def _customer_ref(ticket: Ticket) -> str:
    if ticket.customer is None:
        return ""
    return ticket.customer.ref or f"{ticket.connection}:{ticket.customer.id}"


def _named(ref: Any) -> str:
    return _key((ref.name or ref.id).lower()) if ref else ""


@dataclass(frozen=True)
class Dimension:
    """A filter field: its index name, the ``TicketFilter`` attribute naming its values, and its
    value in a ticket as the index holds it. ``folded``: compared lowercased."""

    name: str
    filter: str
    of: Callable[[Ticket], str]
    folded: bool = False


# The filter fields in the record's order (the status first: a category or vendor query walks
# status indexes).
DIMENSION_OF_TICKET = (
    Dimension("status", "status", lambda t: f"{t.connection}:{t.status.id}"),
    Dimension("sname", "status_name", lambda t: _key(t.status.name.lower()), folded=True),
    Dimension("cat", "category", lambda t: t.status.category.value),
    Dimension("customer", "customer", _customer_ref),
    Dimension("assignee", "assignee", lambda t: _named(t.assignee), folded=True),
    Dimension("conn", "connection", lambda t: t.connection),
    Dimension("vendor", "vendor", lambda t: t.vendor),
    Dimension("priority", "priority", lambda t: _named(t.priority), folded=True),
    Dimension("board", "board", lambda t: _named(t.board), folded=True),
)
# The filter fields a query can name, in the record's order: the one list of them (the record
# layout, the scripts' field positions, filters and the old format's clean-up all read it).
DIMENSIONS = tuple(d.name for d in DIMENSION_OF_TICKET)
FACETS = ("status", "cat", "customer", "assignee")
# The record's length-prefixed strings, in order (after the created and updated doubles).
RECORD = ("summary", "ws", *DIMENSIONS)
RECORD_VERSION = b"\x03"
# Index and count keys carry the format in their names, so an older format's are told apart.
INDEX_TAG = "3"
HISTORY_LIMIT = 100
FORMAT_KEY = "tk:format"  # set once the old format's keys are gone

# Shared by the scripts: the record's layout (see ``_record``) and small helpers.
# Lua positions of fields in the unpacked record: created, updated, then RECORD's strings.
_POSITIONS = ", ".join(f"{name} = {index + 3}" for index, name in enumerate(RECORD))
_LUA_RECORD = f"""
local FIELDS = '>dd' .. string.rep('I4c0', {len(RECORD)})
local POS = {{{_POSITIONS}}}
local ST, CU = POS.status, POS.customer
local FACETS = {{{", ".join(repr(name) for name in FACETS)}}}
""" + """
local COMBO = '>' .. string.rep('I4c0', 5)
local VERSION = %(version)d
-- the keys of a workspace's indexes and of its facet counts
local function ix(ws) return 'ix:' .. ws .. ':%(tag)s:' end
local function cnt(ws, dim) return 'cnt:' .. ws .. ':%(tag)s:facet:' .. dim end
-- record: the version byte, then lengths of fields, body, history (I4 each), then the three parts
local function parts(rec)
  if not rec or string.byte(rec, 1) ~= VERSION then return nil end
  return struct.unpack('>I4I4I4', rec, 2)
end
local function fields_of(rec)
  local f = {struct.unpack(FIELDS, rec, 14)}
  f[14] = nil
  return f
end
local function lp(s) return struct.pack('>I4', #s) .. s end
local function combo(f)
  return lp(f[ST]) .. lp(f[POS.sname]) .. lp(f[POS.cat]) .. lp(f[POS.conn]) .. lp(f[POS.vendor])
end
local function dec(key, member)
  if redis.call('HINCRBY', key, member, -1) <= 0 then redis.call('HDEL', key, member) end
end
-- a ticket's member of the indexes by update and by status: its ref, a NUL, its summary as
-- the fields hold it (lowercased) with any NUL made \\1, so a text filter reads it there
local function joined(ref, f) return ref .. '\\0' .. (string.gsub(f[POS.summary], '%%z', '\\1')) end
""" % {"version": RECORD_VERSION[0], "tag": INDEX_TAG}

# ARGV: ref, ws, fields (packed), body (JSON), status seen (``_Seen``), updated score, created score
_UPSERT = _LUA_RECORD + """
local ref, ws, fields, body, seen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local su, sc = ARGV[6], ARGV[7]
local key = 'tk:' .. ref
local old = redis.call('GET', key)
local new = {struct.unpack(FIELDS, fields)}
new[14] = nil
local prev, hist, before = nil, '', ''
local flen, blen, hlen = parts(old)
if flen then
  prev = fields_of(old)
  before = string.sub(old, 14 + flen, 13 + flen + blen)
  hist = string.sub(old, 14 + flen + blen, 13 + flen + blen + hlen)
else
  redis.call('DEL', 'tf:' .. ref, 'th:' .. ref)  -- the old format's, if any
end
if prev and prev[POS.ws] ~= ws then
  return redis.error_reply('ticket moved workspace')
end
local p = ix(ws)
local member, was_member = joined(ref, new), prev and joined(ref, prev)
if was_member and was_member ~= member then redis.call('ZREM', p .. 'updated', was_member) end
redis.call('ZADD', p .. 'updated', su, member)
redis.call('ZADD', p .. 'created', sc, ref)
if prev and (prev[ST] ~= new[ST] or was_member ~= member) then
  redis.call('ZREM', p .. 'st:' .. prev[ST], was_member)
end
redis.call('ZADD', p .. 'st:' .. new[ST], su, member)
if prev and prev[CU] ~= '' and prev[CU] ~= new[CU] then redis.call('ZREM', p .. 'cu:' .. prev[CU], ref) end
if new[CU] ~= '' then redis.call('ZADD', p .. 'cu:' .. new[CU], su, ref) end
local was_combo, now_combo = prev and combo(prev), combo(new)
if was_combo ~= now_combo then
  if was_combo then dec(p .. 'sd', was_combo) end
  redis.call('HINCRBY', p .. 'sd', now_combo, 1)
end
for _, dim in ipairs(FACETS) do
  local was, now = prev and prev[POS[dim]], new[POS[dim]]
  if was ~= now then
    if was and was ~= '' then dec(cnt(ws, dim), was) end
    if now ~= '' then redis.call('HINCRBY', cnt(ws, dim), now, 1) end
  end
end
local changed = prev ~= nil and prev[ST] ~= new[ST]
if changed or prev == nil then
  hist = lp(seen) .. hist
  local pos, count = 1, 0
  while pos <= #hist and count < %(limit)d do
    pos = pos + 4 + struct.unpack('>I4', hist, pos)
    count = count + 1
  end
  hist = string.sub(hist, 1, pos - 1)
end
redis.call('SET', key, string.char(VERSION) .. struct.pack('>I4I4I4', #fields, #body, #hist) .. fields .. body .. hist)
-- The ticket as it was, for the event log ('=': stored exactly as it was; '': new).
if before == body then before = '=' end
return {changed and 1 or 0, before}
""" % {"limit": HISTORY_LIMIT}

_DELETE = _LUA_RECORD + """
local ref = ARGV[1]
local key = 'tk:' .. ref
local old = redis.call('GET', key)
redis.call('DEL', key, 'tf:' .. ref, 'th:' .. ref)
local flen, blen = parts(old)
if not flen then return '' end
local prev = fields_of(old)
local ws = prev[POS.ws]
local p = ix(ws)
local member = joined(ref, prev)
redis.call('ZREM', p .. 'updated', member)
redis.call('ZREM', p .. 'created', ref)
redis.call('ZREM', p .. 'st:' .. prev[ST], member)
if prev[CU] ~= '' then redis.call('ZREM', p .. 'cu:' .. prev[CU], ref) end
dec(p .. 'sd', combo(prev))
for _, dim in ipairs(FACETS) do
  local was = prev[POS[dim]]
  if was ~= '' then dec(cnt(ws, dim), was) end
end
return {ws, string.sub(old, 14 + flen, 13 + flen + blen)}
"""

# ARGV[1]: MessagePack of the arguments: ws, sort ('u'|'c'), desc (1|0), limit, cursor score, cursor ref, ranges (4: cmin cmax umin umax),
#       text, facets ('0' none, '1' counted over the filter, '2' the running counts), ndims,
#       then per dim: name, nvalues, values...
# Returns: more (1|0), total (-1: not asked), facets JSON ('': not asked), the last ticket's ref
# and score (for the cursor), and the page's tickets as stored, comma-separated: the inside of a
# JSON array (one reply to parse, not one per ticket).
_QUERY = _LUA_RECORD + """
local ARGV = cmsgpack.unpack(ARGV[1])  -- the arguments come packed: one for Redis to read
local ws = ARGV[1]
local p = ix(ws)
local sort = ARGV[2]
local desc = ARGV[3] == '1'
local limit = tonumber(ARGV[4])
local cur_score = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil
local cur_ref = ARGV[6]
local cmin, cmax, umin, umax = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local text = ARGV[11]
local facet_mode = ARGV[12]
local want_all = facet_mode == '1'  -- facets count the whole filter: walk all of it
local dims, by_name = {}, {}
local pos = 14
for i = 1, tonumber(ARGV[13]) do
  local name, nv = ARGV[pos], tonumber(ARGV[pos + 1])
  local set = {}
  for j = 1, nv do set[ARGV[pos + 1 + j]] = true end
  pos = pos + 2 + nv
  local values = {unpack(ARGV, pos - nv, pos - 1)}
  -- each value as the record's fields hold it (length-prefixed): found in a record's bytes or not
  local needles = {}
  for j, v in ipairs(values) do needles[j] = struct.pack('>I4', #v) .. v end
  dims[i] = {name = name, pos = POS[name], set = set, values = values, needles = needles}
  by_name[name] = dims[i]
end

local function fmt(x) return string.format('%.17g', x) end

-- the indexes that hold every match: a status-driven or customer-driven set, else everything
local function total_of(keys)
  local n = 0
  for _, k in ipairs(keys) do n = n + redis.call('ZCARD', k) end
  return n
end
local drivers = {}
if by_name.status or by_name.sname or by_name.cat or by_name.conn or by_name.vendor then
  local names = {'status', 'sname', 'cat', 'conn', 'vendor'}
  local filtered = {}
  for _, name in ipairs(names) do if by_name[name] then filtered[#filtered + 1] = by_name[name] end end
  -- A workspace of many connections holds a hundred combinations and more, most of which the
  -- filter refuses: one whose bytes hold none of a filter's values (length-prefixed, as the
  -- combination holds them) is refused with a search in C, and only its status is unpacked.
  local combos = redis.call('HKEYS', p .. 'sd')
  local keys, matched, missed = {}, {}, {}
  for i = 1, #combos do
    local combo, ok, status = combos[i], true, nil
    for _, d in ipairs(filtered) do
      local held = false
      for _, needle in ipairs(d.needles) do
        if string.find(combo, needle, 1, true) then held = true; break end
      end
      if not held then ok = false; break end
    end
    if ok then
      local c = {struct.unpack(COMBO, combo)}
      status = c[1]
      for j, name in ipairs(names) do
        local d = by_name[name]
        if d and not d.set[c[j]] then ok = false; break end
      end
    else
      status = struct.unpack('>I4c0', combo)
    end
    if ok and not matched[status] then matched[status] = true; keys[#keys + 1] = p .. 'st:' .. status end
    if not ok then missed[status] = true end
  end
  -- exact when no status it walks also holds tickets of a combination the filter refuses
  local exact = true
  for status in pairs(matched) do if missed[status] then exact = false end end
  drivers[#drivers + 1] = {keys = keys, covers = names, exact = exact}
end
if by_name.customer and not by_name.customer.set[''] then
  local keys = {}
  for _, v in ipairs(by_name.customer.values) do keys[#keys + 1] = p .. 'cu:' .. v end
  drivers[#drivers + 1] = {keys = keys, covers = {'customer'}, exact = true}
end
local keys, total_keys, driver = nil, nil, nil
if #drivers == 1 and sort == 'u' then
  keys, driver = drivers[1].keys, drivers[1]  -- nothing to compare: no need to count
else
  for _, candidate in ipairs(drivers) do
    local n = total_of(candidate.keys)
    if keys == nil or n < total_keys then keys, total_keys, driver = candidate.keys, n, candidate end
  end
end
local ordered = true
if keys == nil then
  keys = {p .. (sort == 'u' and 'updated' or 'created')}
elseif sort == 'c' then
  if total_keys > 20000 then keys, driver = {p .. 'created'}, nil else ordered = false end
end
-- the filters the walked index does not answer exactly are checked per ticket; when there are
-- none, the walk reads only the page's records
local covered, unanswered = {}, {}
if driver and driver.exact then for _, name in ipairs(driver.covers) do covered[name] = true end end
for _, d in ipairs(dims) do if not covered[d.name] then unanswered[#unanswered + 1] = d end end
-- Per ticket walked, interpreted Lua is the cost (a Redis command's share is small): the walk
-- reads records a chunk at a time, unpacks only what a check needs and keeps the page's bodies.
local byte, find, sub, unpack_ = string.byte, string.find, string.sub, struct.unpack
-- the sort key's double in a record (created, updated lead the fields)
local SCORE_AT = sort == 'u' and 22 or 14
local dated = cmin > -math.huge or cmax < math.huge or umin > -math.huge or umax < math.huge
-- the fields a check or a facet reads: unpacked up to the last of them, not further
local last_field = 0
for _, d in ipairs(unanswered) do last_field = math.max(last_field, d.pos) end
if want_all then for _, name in ipairs(FACETS) do last_field = math.max(last_field, POS[name]) end end
local SOME_FIELDS = '>dd' .. string.rep('I4c0', last_field - 2)
-- The indexes by update and by status hold each ticket as its ref, a NUL and its summary: a
-- text filter is checked on the member, and only the tickets it keeps are read. (Exact when
-- the text has no NUL and no \\1: the member's summary has its NULs made \\1.)
local by_member = text ~= '' and not find(text, '[%z\\1]')
local function joined_key(k) return k == p .. 'updated' or sub(k, 1, #p + 3) == p .. 'st:' end
-- the refs of a chunk of an index's members, less those whose member refuses the text
local function refs_of(members, joined)
  if not joined then return members end
  local refs = {}
  if not by_member then
    for i = 1, #members do
      local m = members[i]
      refs[i] = sub(m, 1, (find(m, '\\0', 1, true) or 0) - 1)
    end
    return refs
  end
  for i = 1, #members do
    local m = members[i]
    local at = find(m, text, 1, true)  -- most members refuse the text: one find for them
    if at then
      local z = find(m, '\\0', 1, true) or 0
      if at < z then at = find(m, text, z + 1, true) end
      if at then refs[#refs + 1] = sub(m, 1, z - 1) end
    end
  end
  return refs
end

-- whether a record (of this format) matches: its fields up to the last one needed (true: none
-- needed), or nil. ``texted``: the text filter was checked on the index member.
local function check(rec, texted)
  if dated then
    local created, updated = unpack_('>dd', rec, 14)
    if created < cmin or created > cmax or updated < umin or updated > umax then return nil end
  end
  -- the summary is the first string after the times: cut it only for a text filter
  if text ~= '' and not texted and not find(unpack_('>I4c0', rec, 30), text, 1, true) then return nil end
  if last_field == 0 then return true end
  -- A record whose bytes (after the times) hold none of a filter's values, length-prefixed,
  -- does not match: one search in C instead of unpacking the fields, for most records a
  -- filter refuses. A record that holds one is unpacked and checked field by field.
  for _, d in ipairs(unanswered) do
    local held = false
    for _, needle in ipairs(d.needles) do
      if find(rec, needle, 30, true) then held = true; break end
    end
    if not held then return nil end
  end
  local f = {unpack_(SOME_FIELDS, rec, 14)}
  for _, d in ipairs(unanswered) do
    if not d.set[f[d.pos]] then return nil end
  end
  return f
end
-- whether check has anything to do for a walk of a source whose members did (or did not) check
-- the text
local function checking(texted) return dated or last_field > 0 or (text ~= '' and not texted) end
-- the ticket JSON of a record
local function body(rec)
  local flen, blen = unpack_('>I4I4', rec, 2)
  return sub(rec, 14 + flen, 13 + flen + blen)
end

local function after_cursor(score, ref)
  if cur_score == nil then return true end
  if desc then return score < cur_score or (score == cur_score and ref < cur_ref) end
  return score > cur_score or (score == cur_score and ref > cur_ref)
end

-- the records of refs, in order (false for a ref without one): one MGET per 512
local function records(refs)
  local keys = {}
  for i = 1, #refs do keys[i] = 'tk:' .. refs[i] end
  if #keys <= 512 then return #keys > 0 and redis.call('MGET', unpack(keys)) or {} end
  local recs = {}
  for i = 1, #keys, 512 do
    local got = redis.call('MGET', unpack(keys, i, math.min(#keys, i + 511)))
    for j = 1, #got do recs[i + j - 1] = got[j] end
  end
  return recs
end

local bodies, more, counts, total = {}, false, {}, 0
local last_ref, last_score = '', nil
for _, name in ipairs(FACETS) do counts[name] = {} end
local function count_facets(f)
  total = total + 1
  for _, name in ipairs(FACETS) do
    local c, value = counts[name], f[POS[name]]
    c[value] = (c[value] or 0) + 1
  end
end

if ordered then
  local lo, hi
  if sort == 'u' then lo, hi = umin, umax else lo, hi = cmin, cmax end
  -- facets count the whole filter, so they walk from the top; a bare page starts at the cursor
  local top, bottom = hi, lo
  if cur_score and not want_all then
    if desc then top = math.min(hi, cur_score) else bottom = math.max(lo, cur_score) end
  end
  -- The rank in index k of the first member after the cursor, given ``rank``, the first with
  -- the cursor's score: members of one score are in member order (the ref leads the member), so
  -- a binary search over the tie finds it in a few reads, however many tickets share the score
  -- (a PSA's import can give thousands the same second).
  local function past_ties(k, rank, joined)
    local ties = redis.call('ZCOUNT', k, fmt(cur_score), fmt(cur_score))
    local first, last = rank, rank + ties
    while first < last do
      local mid = math.floor((first + last) / 2)
      local m = (desc and redis.call('ZREVRANGE', k, mid, mid) or redis.call('ZRANGE', k, mid, mid))[1]
      local ref = joined and sub(m, 1, (find(m, '\\0', 1, true) or 0) - 1) or m
      if (desc and ref < cur_ref) or (not desc and ref > cur_ref) then last = mid else first = mid + 1 end
    end
    return first
  end
  -- An index of a few tickets (a status a PSA rarely uses) is read from its start: the tickets
  -- before the cursor or the range are skipped as they are visited, which costs less than
  -- finding its place (ZCOUNTs and a binary search over a tie).
  local SMALL = 8
  local sources = {}
  for i, k in ipairs(keys) do
    local rank = 0
    local joined = joined_key(k)
    local placed = (desc and top < math.huge) or (not desc and bottom > -math.huge)
    if placed and #keys > 1 and redis.call('ZCARD', k) <= SMALL then placed = false end
    if placed then
      if desc then
        rank = redis.call('ZCOUNT', k, '(' .. fmt(top), '+inf')
      else
        rank = redis.call('ZCOUNT', k, '-inf', '(' .. fmt(bottom))
      end
      if cur_score and not want_all and ((desc and top == cur_score) or (not desc and bottom == cur_score)) then
        rank = past_ties(k, rank, joined)
      end
    end
    local texted = joined and by_member
    sources[i] = {key = k, rank = rank, n = 0, at = 1, done = false, joined = joined, texted = texted,
                  checks = checking(texted), scanned = 0, kept = 0}
  end
  -- Each source is read a chunk at a time: its members (no scores: Redis would format each as
  -- text; the record holds it as a double), then the records of those the member does not
  -- refuse, one MGET. The first chunk is the page (one source) or about the source's share of
  -- it (several: a share and a margin); later ones are sized by how many of the source's
  -- members read so far the walk kept. A chunk is kept as arrays (score, ref, record) of the
  -- tickets in range.
  local share = (limit + 1) / #sources
  local first = #sources == 1 and limit + 1 or math.ceil(share + math.sqrt(share)) + 1
  local function refill(s)
    local want
    if want_all then
      want = s.want and math.min(s.want * 2, 1024) or 256
    elseif s.want == nil then
      want = first
    else
      want = math.ceil((limit + 1 - #bodies) * (s.scanned + 1) / (s.kept + 1) / #sources * 1.1) + 2
      want = math.max(8, math.min(want, 256))
    end
    s.want = want
    local members
    if desc then
      members = redis.call('ZREVRANGE', s.key, s.rank, s.rank + want - 1)
    else
      members = redis.call('ZRANGE', s.key, s.rank, s.rank + want - 1)
    end
    s.rank = s.rank + #members
    s.scanned = s.scanned + #members
    if #members < want then s.done = true end
    local refs = refs_of(members, s.joined)
    local recs = records(refs)
    local sc, rf, rc, n = {}, {}, {}, 0
    for i = 1, #refs do
      local rec = recs[i]
      if rec and byte(rec, 1) == VERSION then
        local score = unpack_('>d', rec, SCORE_AT)
        if (desc and score < lo) or (not desc and score > hi) then s.done = true; break end
        n = n + 1
        sc[n], rf[n], rc[n] = score, refs[i], rec
      end
    end
    s.sc, s.rf, s.rc, s.n, s.at = sc, rf, rc, n, 1
  end
  -- whether the source has a next ticket (at s.at), reading its next chunk if need be
  local function ready(s)
    while s.at > s.n do
      if s.done then return false end
      refill(s)
    end
    return true
  end
  -- a ticket in sort order, from source s: true once the walk has what it needs
  local function visit(s, ref, score, rec)
    local later = after_cursor(score, ref)
    if not (later or want_all) then return false end
    local f = true
    if s.checks then
      f = check(rec, s.texted)
      if not f then return false end
    end
    s.kept = s.kept + 1
    if want_all then count_facets(f) end
    if later then
      if #bodies < limit then
        bodies[#bodies + 1] = body(rec)
        last_ref, last_score = ref, score
      else
        more = true
        return not want_all
      end
    end
    return false
  end
  if #sources == 1 then
    local s, stop = sources[1], false
    while not stop and ready(s) do
      local sc, rf, rc = s.sc, s.rf, s.rc
      for i = s.at, s.n do
        if visit(s, rf[i], sc[i], rc[i]) then stop = true; break end
      end
      s.at = s.n + 1
    end
  else
    -- merged in sort order: the live sources and their next tickets' scores and refs
    local live, hs, hr, n = {}, {}, {}, 0
    for _, s in ipairs(sources) do
      if ready(s) then n = n + 1; live[n], hs[n], hr[n] = s, s.sc[s.at], s.rf[s.at] end
    end
    while n > 0 do
      local b, bs, br = 1, hs[1], hr[1]
      if desc then
        for i = 2, n do
          local x = hs[i]
          if x > bs or (x == bs and hr[i] > br) then b, bs, br = i, x, hr[i] end
        end
      else
        for i = 2, n do
          local x = hs[i]
          if x < bs or (x == bs and hr[i] < br) then b, bs, br = i, x, hr[i] end
        end
      end
      local s = live[b]
      local rec = s.rc[s.at]
      s.at = s.at + 1
      if ready(s) then
        hs[b], hr[b] = s.sc[s.at], s.rf[s.at]
      else
        live[b], hs[b], hr[b] = live[n], hs[n], hr[n]
        live[n], hs[n], hr[n] = nil, nil, nil
        n = n - 1
      end
      if visit(s, br, bs, rec) then break end
    end
  end
else
  local found = {}
  for _, k in ipairs(keys) do
    local joined = joined_key(k)
    local refs = refs_of(redis.call('ZRANGE', k, 0, -1), joined)
    local recs = records(refs)
    for i, ref in ipairs(refs) do
      local rec = recs[i]
      local f
      if rec and byte(rec, 1) == VERSION then f = check(rec, joined and by_member) end
      if f then
        if want_all then count_facets(f) end
        local score = unpack_('>d', rec, SCORE_AT)
        if after_cursor(score, ref) then found[#found + 1] = {ref, score, rec} end
      end
    end
  end
  table.sort(found, function(a, b)
    if a[2] == b[2] then if desc then return a[1] > b[1] else return a[1] < b[1] end end
    if desc then return a[2] > b[2] end
    return a[2] < b[2]
  end)
  for i = 1, math.min(limit, #found) do
    local item = found[i]
    bodies[i] = body(item[3])
    last_ref, last_score = item[1], item[2]
  end
  more = #found > limit
end

local facets_json = ''
if facet_mode == '2' then
  for _, name in ipairs(FACETS) do
    local pairs_ = redis.call('HGETALL', cnt(ws, name))
    for i = 1, #pairs_, 2 do counts[name][pairs_[i]] = tonumber(pairs_[i + 1]) end
  end
  total = redis.call('ZCARD', p .. 'updated')
end
if facet_mode ~= '0' then
  -- cjson writes an empty table as an object; Python reads it as one
  facets_json = cjson.encode(counts)
end
return {more and 1 or 0, facet_mode ~= '0' and total or -1, facets_json, last_ref,
        last_score and fmt(last_score) or '', table.concat(bodies, ',')}
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
        """``(dimension, values)`` for each dimension this filter names, values as indexed."""
        pairs = [(d, getattr(self, d.filter)) for d in DIMENSION_OF_TICKET]
        return [(d.name, [v.lower() for v in values] if d.folded else values) for d, values in pairs if values]


@dataclass
class QueryResult:
    tickets: list[Ticket]
    next_cursor: str | None
    facets: dict[str, dict[str, int]] | None = None
    total: int | None = None


@dataclass
class RawPage:
    """A page as stored: its tickets' JSON, comma-separated, ready to splice into an array."""

    tickets: bytes
    next_cursor: str | None
    facets: dict[str, dict[str, int]] | None = None
    total: int | None = None


def _ix(workspace: str) -> str:
    """The prefix of a workspace's index keys."""
    return f"ix:{workspace}:{INDEX_TAG}:"


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def index_fields(ticket: Ticket, workspace: str) -> dict[str, str]:
    """The filter fields of a ticket, as the indexes hold them."""
    return {
        "ws": workspace,
        **{d.name: d.of(ticket) for d in DIMENSION_OF_TICKET},
        "created": repr(_ts(ticket.created_at or ticket.updated_at)),
        "updated": repr(_ts(ticket.updated_at or ticket.created_at)),
        "summary": ticket.summary.lower(),
    }


def _packed_fields(fields: dict[str, str]) -> bytes:
    """The record's filter fields: created and updated as doubles, then ``RECORD``'s strings."""
    out = [struct.pack(">dd", float(fields["created"]), float(fields["updated"]))]
    for name in RECORD:
        value = fields[name].encode()
        out += [struct.pack(">I", len(value)), value]
    return b"".join(out)


def _record_parts(raw: bytes | None) -> tuple[bytes, bytes] | None:
    """The body (ticket JSON) and history of a record, or None for none or an old-format one."""
    if not raw or raw[:1] != RECORD_VERSION:
        return None
    flen, blen, hlen = struct.unpack_from(">III", raw, 1)
    start = 13 + flen
    return raw[start:start + blen], raw[start + blen:start + blen + hlen]


class _Seen(msgspec.Struct, array_like=True):
    """A status change as a record keeps it: ``StatusChange`` flattened into a MessagePack array
    (about 30 bytes; the JSON form is about 95, and every ticket has at least one)."""

    id: str
    name: str
    category: StatusCategory
    scope: str | None
    closed: bool
    changed_at: datetime | None
    by: str | None

    @classmethod
    def of(cls, change: StatusChange) -> _Seen:
        s = change.status
        return cls(s.id, s.name, s.category, s.scope, s.closed, change.changed_at, change.by)

    def change(self) -> StatusChange:
        status = TicketStatus(self.id, self.name, self.category, self.scope, self.closed)
        return StatusChange(status=status, changed_at=self.changed_at, by=self.by)


_seen_encoder = msgspec.msgpack.Encoder()
_packer = msgspec.msgpack.Encoder()
_seen_decoder = msgspec.msgpack.Decoder(_Seen)
_ticket_encoder = msgspec.json.Encoder()
_ticket_decoder = msgspec.json.Decoder(Ticket)
_tickets_decoder = msgspec.json.Decoder(list[Ticket])
_facets_decoder = msgspec.json.Decoder(dict[str, dict[str, int]])


def encode_cursor(score: str, ref: str, sort: str, desc: bool) -> str:
    raw = json.dumps([score, ref, sort, desc]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def decode_cursor(cursor: str) -> tuple[str, str, str, bool]:
    """The cursor's score (a finite number, written exactly), ref, sort and direction.

    Raise ``ValueError`` for anything this store did not make: not base64 or JSON, another
    shape, a score that is not a finite number (``nan``, ``inf``), a ref that is not text."""
    try:
        if len(cursor) > 4096:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        score, ref, sort, desc = json.loads(raw, parse_constant=_refuse_constant)
        value = float(score) if isinstance(score, str) else math.nan
        if not math.isfinite(value) or not isinstance(ref, str) or sort not in ("u", "c") or not isinstance(desc, bool):
            raise ValueError
        return repr(value), ref, sort, desc
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
        # Keys of an earlier format this process dropped at start-up: its tickets must be synced
        # again (``gateway.core.Gateway`` starts a resync of every PSA connection).
        self.dropped_old_format = 0
        try:
            self.dropped_old_format = self.drop_old_format_once()
        except redis.RedisError:  # Redis not up yet: the next process to start does it
            pass

    @staticmethod
    def _upsert_args(ticket: Ticket, workspace: str) -> list[Any]:
        if "\0" in ticket.ref:  # an index member is the ref, a NUL and the summary
            raise ValueError(f"a ticket reference holds no NUL: {ticket.ref!r}")
        slim = msgspec.structs.replace(ticket, thread=(), time_entries=(), status_history=(), attachments=())
        fields = index_fields(ticket, workspace)
        seen = _seen_encoder.encode(_Seen.of(StatusChange(status=ticket.status, changed_at=ticket.updated_at)))
        return [ticket.ref, workspace, _packed_fields(fields), _ticket_encoder.encode(slim), seen,
                fields["updated"], fields["created"]]

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
        return self.decode(self.redis.get(record_key(ref)))

    @staticmethod
    def decode(record: bytes | None) -> Ticket | None:
        """The ticket of a stored record (``tk:{ref}``), or ``None`` for none."""
        parts = _record_parts(record)
        return _ticket_decoder.decode(parts[0]) if parts else None

    def status_history(self, ref: str) -> list[StatusChange]:
        parts = _record_parts(self.redis.get(f"tk:{ref}"))
        history, changes, at = parts[1] if parts else b"", [], 0
        while at < len(history):
            (size,) = struct.unpack_from(">I", history, at)
            changes.append(_seen_decoder.decode(history[at + 4:at + 4 + size]).change())
            at += 4 + size
        return changes

    def count(self, workspace: str) -> int:
        return int(self.redis.zcard(f"{_ix(workspace)}updated"))

    def refs_of_connection(self, workspace: str, connection: str) -> set[str]:
        refs: set[str] = set()
        for combo in self.redis.hkeys(f"{_ix(workspace)}sd"):
            status, _, _, conn, _ = _unpack_strings(combo, 5)
            if conn == connection:
                members = self.redis.zrange(f"{_ix(workspace)}st:{status}", 0, -1)
                refs |= {m.partition(b"\0")[0].decode() for m in members}
        return refs

    def page(
        self,
        workspace: str,
        flt: TicketFilter,
        *,
        sort: str = "updated",
        order: str = "desc",
        limit: int = 50,
        cursor: str | None = None,
        facets: bool = False,
    ) -> RawPage:
        """One page of matching tickets in the requested order, as their stored JSON, plus
        facet counts if asked: one script, one round trip.

        ``sort`` is ``updated``, ``created`` or ``age`` (oldest created first unless ``order``
        says otherwise); ``cursor`` is the ``next_cursor`` of the page before. Raise
        ``ValueError`` for a cursor this store did not make, or made for another order.
        """
        args, read = self._page_call(workspace, flt, sort=sort, order=order, limit=limit, cursor=cursor, facets=facets)
        return read(self._query(args=args))

    async def page_async(self, client: Channel, workspace: str, flt: TicketFilter, **options: Any) -> RawPage:
        """``page`` on an asyncio client (the API's event loop); the same options."""
        args, read = self._page_call(workspace, flt, **options)
        return read(await run_script(client, self._query, (), args))

    @staticmethod
    def _page_call(
        workspace: str, flt: TicketFilter, *, sort: str = "updated", order: str = "desc", limit: int = 50,
        cursor: str | None = None, facets: bool = False,
    ) -> tuple[list[bytes], Callable[[list[Any]], RawPage]]:
        """The query script's argument for a page (all of them, packed), and what reads its answer."""
        key = "c" if sort in ("created", "age") else "u"
        desc = order == "desc" if sort != "age" else order != "desc"
        if sort == "age" and order not in ("asc", "desc"):
            desc = False
        cur_score, cur_ref = "", ""
        if cursor:
            cur_score, cur_ref, cur_sort, cur_desc = decode_cursor(cursor)
            if cur_sort != key or cur_desc != desc:
                raise ValueError("the cursor belongs to another sort order")
        dims = flt.dimensions()
        unfiltered = not dims and not flt.text and not any(
            (flt.created_after, flt.created_before, flt.updated_after, flt.updated_before)
        )
        facet_mode = "0" if not facets else "2" if unfiltered else "1"
        args: list[Any] = [
            workspace, key, "1" if desc else "0", limit, cur_score, cur_ref,
            repr(_ts(flt.created_after)) if flt.created_after else "-inf",
            repr(_ts(flt.created_before)) if flt.created_before else "+inf",
            repr(_ts(flt.updated_after)) if flt.updated_after else "-inf",
            repr(_ts(flt.updated_before)) if flt.updated_before else "+inf",
            flt.text.lower(), facet_mode, len(dims),
        ]
        for name, values in dims:
            args += [name, len(values), *[_key(v) for v in values]]

        packed = _packer.encode([a if isinstance(a, str) else repr(a) for a in args])  # as Redis would read them

        def read(answer: list[Any]) -> RawPage:
            more, total, facets_json, last_ref, last_score, tickets = answer
            next_cursor = None
            if more and last_ref:
                next_cursor = encode_cursor(last_score.decode(), last_ref.decode(), key, desc)
            counts = None
            if facets:
                found = _facets_decoder.decode(facets_json) if facets_json else {}
                counts = {f: {k: v for k, v in found.get(f, {}).items() if k != "" and v > 0} for f in FACETS}
            return RawPage(tickets, next_cursor, counts, int(total) if facets else None)

        return [packed], read

    def query(self, workspace: str, flt: TicketFilter, **options: Any) -> QueryResult:
        """``page`` with its tickets decoded (same options)."""
        raw = self.page(workspace, flt, **options)
        tickets = _tickets_decoder.decode(b"[" + raw.tickets + b"]")
        return QueryResult(tickets, raw.next_cursor, raw.facets, raw.total)

    def drop_old_format(self, batch: int = 1000) -> int:
        """Delete what the store's earlier formats left (records, fields, histories, indexes and
        counts under their old names); return how many keys went. Safe to run at any time and
        more than once: it recognises only the old formats' keys (index and count keys by
        name, records by their first byte)."""
        dropped = 0
        first_dims = {*DIMENSIONS, "all"}  # the first format: an index per value of each
        second = {"updated", "created", "sd", "st", "cu"}  # the second: these, untagged

        def doomed(key: bytes, pattern: str) -> bool:
            parts = key.decode(errors="replace").split(":")
            if pattern in ("tf:*", "th:*"):
                return True
            if pattern == "ix:*":
                return len(parts) >= 3 and (parts[2] in second or parts[2] in first_dims and parts[-1] in ("u", "c"))
            return len(parts) >= 3 and (parts[2] == "facet" or len(parts) == 3 and parts[2] in DIMENSIONS)

        for pattern in ("tf:*", "th:*", "ix:*", "cnt:*", "tk:*"):
            for keys in _batches(self.redis.scan_iter(match=pattern, count=batch), batch):
                if pattern == "tk:*":  # a record of another format: its first byte says so
                    with self.redis.pipeline(transaction=False) as pipe:
                        for key in keys:
                            pipe.getrange(key, 0, 0)
                        firsts = pipe.execute()
                    gone = [k for k, first in zip(keys, firsts) if first != RECORD_VERSION and k != FORMAT_KEY.encode()]
                else:
                    gone = [k for k in keys if doomed(k, pattern)]
                if gone:
                    dropped += int(self.redis.unlink(*gone))
        self.redis.set(FORMAT_KEY, RECORD_VERSION)
        return dropped

    def drop_old_format_once(self) -> int:
        """``drop_old_format`` unless it has run on this Redis (cheap to call at start-up);
        how many keys it dropped."""
        if self.redis.get(FORMAT_KEY) != RECORD_VERSION:
            return self.drop_old_format()
        return 0


def _batches(keys: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _unpack_strings(raw: bytes, count: int) -> list[str]:
    out, at = [], 0
    for _ in range(count):
        (size,) = struct.unpack_from(">I", raw, at)
        out.append(raw[at + 4:at + 4 + size].decode())
        at += 4 + size
    return out


def history_entry(status: TicketStatus, at: datetime | None = None) -> StatusChange:
    return StatusChange(status=status, changed_at=at or datetime.now(timezone.utc))
