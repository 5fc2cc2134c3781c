"""The fair scheduler: which write run a free worker takes next.

rq stays the job machinery (each run becomes an rq ``Job`` when a worker takes it, and rq
executes, times out and registers it), but write runs do not wait in rq's one ``writes`` list, where a write on an idle connection
queued behind another connection's 10,000-write backlog. They wait per connection, and a free
worker asks this module for the next one:

- **Per connection, a list** of run ids (``{sched}:list:{connection}``), oldest first; a run that
  was deferred or retried goes back to the *front* of its own connection's list.
- **Ready sets, two levels.** Workspaces with runnable work sit in ``{sched}:ws``; each
  workspace's runnable connections in ``{sched}:ready:{workspace}``. Both are sorted by a
  virtual time that grows by one each time a member is served, and a member that becomes
  runnable enters at the virtual time of the last one served. A pick takes the least-served
  workspace, then its least-served connection: every workspace gets an equal share of free
  workers, and inside it every connection, however long anyone's backlog is. A connection that
  was idle is served at the next free worker.
- **Parked connections** (``{sched}:parked``, until a time): a vendor 429 with Retry-After, or
  our own limiter saying the next slot is later. A parked connection's runs are not picked, so
  a paused connection holds no worker and nothing spins: the run that found the pause goes back
  to the front of its list, and the connection returns to the ready sets when the time comes.
- **A cap of running runs per connection** (``{sched}:run:{connection}``, run id -> lease end):
  a connection whose vendor hangs until the client timeout holds at most its cap of workers.
  Leases are short (``LEASE_SECONDS``) and renewed by the worker process holding them while it
  lives (``gateway.jobs.renew_held``), so a worker killed mid-run frees its slot within seconds.
- **Delayed runs** (``{sched}:delayed``, float seconds): retries with backoff. They join the
  front of their connection's list when due.

Every decision is one Lua script (``pick``, ``push``, ``finish``, ``park``), so processes never
disagree. A worker that finds nothing blocks on ``{sched}:bell`` (rung by every push that makes
work runnable) and on rq's other queues, until the next parked or delayed moment at the latest.
Keys carry the ``{sched}`` hash tag so that the scripts stay on one shard of a Redis Cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

PREFIX = "{sched}:"
BELL = PREFIX + "bell"
DELAYED = PREFIX + "delayed"
PARKED = PREFIX + "parked"
# How long a picked run holds its connection's slot unless its worker process renews it (every
# ``RENEW_SECONDS``, from the process's housekeeping thread).
LEASE_SECONDS = 30.0
RENEW_SECONDS = 5.0

# Helpers every script shares. ``activate`` puts a connection into the ready sets when it has
# runs waiting, is not parked and is under its cap; ``deactivate`` takes it out.
SCHEDULER_LIB = """
local P = '{sched}:'
local function deactivate(conn)
  local ws = redis.call('HGET', P .. 'wsof', conn) or '-'
  local ready = P .. 'ready:' .. ws
  redis.call('ZREM', ready, conn)
  if redis.call('ZCARD', ready) == 0 then redis.call('ZREM', P .. 'ws', ws) end
end
local function activate(conn, now)
  if redis.call('LLEN', P .. 'list:' .. conn) == 0 then return 0 end
  if redis.call('ZSCORE', P .. 'parked', conn) then return 0 end
  local run = P .. 'run:' .. conn
  redis.call('ZREMRANGEBYSCORE', run, '-inf', now)
  local cap = tonumber(redis.call('HGET', P .. 'cap', conn) or '1')
  if redis.call('ZCARD', run) >= cap then
    local first = redis.call('ZRANGE', run, 0, 0, 'WITHSCORES')
    redis.call('ZADD', P .. 'leases', first[2], conn)
    deactivate(conn)
    return 0
  end
  redis.call('ZREM', P .. 'leases', conn)
  local ws = redis.call('HGET', P .. 'wsof', conn) or '-'
  local ready = P .. 'ready:' .. ws
  if not redis.call('ZSCORE', ready, conn) then
    redis.call('ZADD', ready, tonumber(redis.call('HGET', P .. 'vt', 'ws:' .. ws) or '0'), conn)
  end
  if not redis.call('ZSCORE', P .. 'ws', ws) then
    redis.call('ZADD', P .. 'ws', tonumber(redis.call('HGET', P .. 'vt', 'all') or '0'), ws)
  end
  return 1
end
local function ring()
  redis.call('LPUSH', P .. 'bell', '1')
  redis.call('LTRIM', P .. 'bell', 0, 255)
end
local function enlist(conn, run, front)
  if front then
    redis.call('LPUSH', P .. 'list:' .. conn, run)
  else
    redis.call('RPUSH', P .. 'list:' .. conn, run)
  end
end
"""

# ARGV: connection, workspace, cap, run id, front (0/1), now
_PUSH = SCHEDULER_LIB + """
local conn = ARGV[1]
redis.call('HSET', P .. 'wsof', conn, ARGV[2])
redis.call('HSET', P .. 'cap', conn, ARGV[3])
enlist(conn, ARGV[4], ARGV[5] == '1')
if activate(conn, tonumber(ARGV[6])) == 1 then ring() end
return 1
"""

# ARGV: connection, workspace, cap, run id, front (0/1), due time
_DEFER = SCHEDULER_LIB + """
redis.call('HSET', P .. 'wsof', ARGV[1], ARGV[2])
redis.call('HSET', P .. 'cap', ARGV[1], ARGV[3])
redis.call('ZADD', P .. 'delayed', ARGV[6], ARGV[1] .. '|' .. ARGV[5] .. '|' .. ARGV[4])
redis.call('HINCRBY', P .. 'ndelayed', ARGV[1], 1)
return 1
"""

# ARGV: now, lease seconds. Returns {run id, connection} or {false, seconds until something is due}.
_PICK = SCHEDULER_LIB + """
local now = tonumber(ARGV[1])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 200)) do
  redis.call('ZREM', P .. 'delayed', member)
  local conn, front, run = string.match(member, '^(.*)|([01])|([^|]+)$')
  redis.call('HINCRBY', P .. 'ndelayed', conn, -1)
  enlist(conn, run, front == '1')
  activate(conn, now)
end
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', P .. 'parked', '-inf', now, 'LIMIT', 0, 200)) do
  redis.call('ZREM', P .. 'parked', conn)
  activate(conn, now)
end
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, 200)) do
  redis.call('ZREM', P .. 'leases', conn)
  activate(conn, now)
end
for _ = 1, 64 do
  local w = redis.call('ZRANGE', P .. 'ws', 0, 0, 'WITHSCORES')
  if #w == 0 then break end
  local ws, wscore = w[1], w[2]
  local ready = P .. 'ready:' .. ws
  local c = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
  if #c == 0 then
    redis.call('ZREM', P .. 'ws', ws)
  else
    local conn, cscore = c[1], c[2]
    local list = P .. 'list:' .. conn
    local run = redis.call('LPOP', list)
    if not run then
      deactivate(conn)
    else
      redis.call('ZADD', P .. 'run:' .. conn, now + tonumber(ARGV[2]), run)
      redis.call('HSET', P .. 'vt', 'ws:' .. ws, cscore, 'all', wscore)
      redis.call('ZINCRBY', ready, 1, conn)
      redis.call('ZINCRBY', P .. 'ws', 1, ws)
      if redis.call('LLEN', list) == 0 then deactivate(conn) else activate(conn, now) end
      return {run, conn}
    end
  end
end
local wake = false
for _, key in ipairs({'delayed', 'parked', 'leases'}) do
  local first = redis.call('ZRANGE', P .. key, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local at = tonumber(first[2]) - now
    if not wake or at < wake then wake = at end
  end
end
if wake then return {false, tostring(math.max(0, wake))} end
return {false, false}
"""

# ARGV: connection, run id, now
_FINISH = SCHEDULER_LIB + """
redis.call('ZREM', P .. 'run:' .. ARGV[1], ARGV[2])
if activate(ARGV[1], tonumber(ARGV[3])) == 1 then ring() end
return 1
"""

# ARGV: connection, until, the finished run id, a run id to put back at the front ('' for none), now
_PARK = SCHEDULER_LIB + """
local conn = ARGV[1]
redis.call('ZREM', P .. 'run:' .. conn, ARGV[3])
local current = tonumber(redis.call('ZSCORE', P .. 'parked', conn) or '0')
if tonumber(ARGV[2]) > current then redis.call('ZADD', P .. 'parked', ARGV[2], conn) end
if ARGV[4] ~= '' then enlist(conn, ARGV[4], true) end
deactivate(conn)
return 1
"""


@dataclass(frozen=True)
class Picked:
    """A run a worker should execute now (``run_id``), or when to look again (``wake_in``)."""

    run_id: str | None
    connection: str | None
    wake_in: float | None


@dataclass(frozen=True)
class ConnectionLoad:
    """What the scheduler holds for one connection (for ``GET /v1/connections``)."""

    queued: int
    delayed: int
    running: int
    parked_for: float | None


class Scheduler:
    """The fair scheduler's operations; every one is a single Redis script."""

    def __init__(self, client: redis.Redis, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self.redis = client
        self.lease_seconds = lease_seconds
        self._push = client.register_script(_PUSH)
        self._defer = client.register_script(_DEFER)
        self._pick = client.register_script(_PICK)
        self._finish = client.register_script(_FINISH)
        self._park = client.register_script(_PARK)

    def push(self, connection: str, workspace: str, cap: int, run_id: str, *, front: bool = False,
             client: redis.client.Pipeline | None = None) -> None:
        """Queue a run on its connection (at the front for a run that was already waiting)."""
        self._push(args=[connection, workspace, cap, run_id, int(front), time.time()], client=client)

    def defer(self, connection: str, workspace: str, cap: int, run_id: str, at: float, *,
              client: redis.client.Pipeline | None = None) -> None:
        """Queue a run for ``at`` (epoch seconds); it joins the front of its connection then."""
        self._defer(args=[connection, workspace, cap, run_id, 1, at], client=client)

    def pick(self) -> Picked:
        """Take the next run fairly; or say how long until a delayed or parked one is due."""
        run, value = self._pick(args=[time.time(), self.lease_seconds])
        if run:
            return Picked(run.decode(), value.decode(), None)
        return Picked(None, None, float(value) if value else None)

    def finish(self, connection: str, run_id: str) -> None:
        """A run ended: free its slot and make the connection's next run pickable."""
        self._finish(args=[connection, run_id, time.time()])

    def renew(self, connection: str, run_id: str) -> None:
        """Extend a running run's lease (its worker is alive); a lease already freed stays free."""
        self.redis.zadd(f"{PREFIX}run:{connection}", {run_id: time.time() + self.lease_seconds}, xx=True)

    def park(self, connection: str, until: float, run_id: str, *, requeue: str | None = None) -> None:
        """Hold every run of ``connection`` until ``until``; ``requeue`` goes back in front."""
        self._park(args=[connection, until, run_id, requeue or "", time.time()])

    def wait_for_work(self, seconds: float, extra_keys: list[str]) -> tuple[str, str] | None:
        """Block until the bell rings or an rq list in ``extra_keys`` has a job (at most
        ``seconds``). Returns ``(key, value)`` popped, or ``None`` on timeout."""
        popped = self.redis.blpop([BELL, *extra_keys], timeout=max(0.001, seconds))
        if popped is None:
            return None
        key, value = popped
        return key.decode(), value.decode()

    def has_ready(self) -> bool:
        """Whether some connection has a run that may be picked now."""
        return bool(self.redis.zcard(PREFIX + "ws"))

    def next_due_in(self) -> float | None:
        """Seconds until the next delayed, parked or leased run is due (``None``: none)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in (DELAYED, PARKED, PREFIX + "leases"):
            pipe.zrange(key, 0, 0, withscores=True)
        firsts = [found[0][1] for found in pipe.execute() if found]
        return max(0.0, min(firsts) - time.time()) if firsts else None

    # -- what operators see ----------------------------------------------------------------

    def load(self, connection: str) -> ConnectionLoad:
        """Queued, delayed and running runs of a connection, and its parking."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(f"{PREFIX}list:{connection}")
        pipe.zcount(f"{PREFIX}run:{connection}", now, "+inf")
        pipe.zscore(PARKED, connection)
        pipe.hget(f"{PREFIX}ndelayed", connection)
        queued, running, parked, delayed = pipe.execute()
        parked_for = round(float(parked) - now, 3) if parked and float(parked) > now else None
        return ConnectionLoad(int(queued), int(delayed or 0), int(running), parked_for)
