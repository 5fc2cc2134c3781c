"""Where the queue page's time goes inside Redis: the store's query script, query by query.

``python -m bench.profile_store [--tickets N | --synced N [--others N]] [--calls N] [--rounds N]
[--facets]`` starts a redis-server (the embedded one), loads N generated tickets
(``bench.tickets``) through the store's own write path, or with ``--synced`` the tickets of
figure 5 (N a PSA, created in the three simulators by ``bench.fig_queue.add_vendors``, plus
``--others`` connections with a simulator's demo data, synced through each connection's own
sync), prints the store's bytes per ticket (``used_memory`` less what the
empty Redis used), and runs each query of figure 5's mix (``bench.fig_queue._queries``: the same filters,
the same page) ``--calls`` times through ``TicketStore.page``, one at a time, in ``--rounds``
rounds. Printed per query, from INFO commandstats (reset before each round) of the round whose
script time was lowest (the machine's other work only ever adds time):

- ``script``: microseconds inside Redis per call (EVALSHA ``usec_per_call``): the figure the
  queue's target turns on, without the API's own per-request cost;
- the Redis commands the script called, per call (how many and their microseconds): what the
  script spends outside its own Lua;
- ``lua``: the rest, the script's own interpreted work (with the conversion of each command's
  reply into Lua values);
- ``client``: the median wall time of ``TicketStore.page`` in this process (round trip, reply
  parsing) over every round, for scale.

Stdlib and the gateway only; nothing is kept.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def store_filter(params: dict[str, Any]) -> Any:
    """The ``TicketFilter`` of figure 5's query parameters (those ``_queries`` uses)."""
    from gateway.store import TicketFilter

    def values(name: str) -> list[str]:
        value = params.get(name, [])
        return value if isinstance(value, list) else [value]

    return TicketFilter(category=values("category"), connection=values("connection"), vendor=values("vendor"),
                        customer=values("customer"), text=str(params.get("q", "")).strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--synced", type=int, metavar="PER_PSA",
                        help="figure 5's tickets instead: this many in each PSA simulator, synced")
    parser.add_argument("--others", type=int, default=0, metavar="N",
                        help="with --synced: N more connections in the workspace, each with a ConnectWise "
                             "simulator's demo tickets (figure 5's rig has 9: the other figures' connections)")
    parser.add_argument("--calls", type=int, default=200, help="calls of each query in a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--facets", action="store_true", help="ask for facets too (counted over the filter)")
    args = parser.parse_args(argv)

    from bench.fig_queue import WORKSPACE, _queries, store_tickets
    from bench.rig import Rig
    from bench.tickets import generated, sample
    from gateway.store import TicketStore

    workdir = Path(tempfile.mkdtemp(prefix="msp-profile-store-"))
    rig = Rig(workdir)
    try:
        rig.start_redis()
        client = rig.redis
        assert client is not None
        empty = int(client.info("memory")["used_memory"])
        began = time.monotonic()
        if args.synced:
            store = _synced(rig, args.synced, args.others)
            count = store.count(WORKSPACE)
            mix = store_tickets(store)
        else:
            store = TicketStore(client)
            count = args.tickets
            for start in range(0, count, 1000):
                store.upsert_many(generated(start, min(count, start + 1000)), WORKSPACE, announce=False)
            mix = sample(min(count, 20_000))
        used = int(client.info("memory")["used_memory"]) - empty
        print(f"{count} tickets {'synced' if args.synced else 'loaded'} in {time.monotonic() - began:.1f} s; "
              f"store {used / count:.0f} bytes a ticket (Redis {client.info('server')['redis_version']})")
        print(f"{'query':30s} {'script':>9s} {'lua':>9s} {'client':>9s}  commands the script called (per call: count, us)")
        for label, params, pages in _queries(mix):
            flt = store_filter(params)
            cursor = None
            for _ in range(pages - 1):
                cursor = store.page(WORKSPACE, flt, limit=params["limit"], cursor=cursor).next_cursor
            walls: list[float] = []
            best: dict[str, Any] = {}
            for _ in range(args.rounds):
                client.config_resetstat()
                for _ in range(args.calls):
                    began = time.perf_counter()
                    store.page(WORKSPACE, flt, limit=params["limit"], cursor=cursor, facets=args.facets)
                    walls.append(time.perf_counter() - began)
                stats = client.info("commandstats")
                if not best or stats["cmdstat_evalsha"]["usec"] < best["cmdstat_evalsha"]["usec"]:
                    best = stats
            stats = best
            script = stats["cmdstat_evalsha"]
            inner = {name[len("cmdstat_"):]: stat for name, stat in stats.items()
                     if name not in ("cmdstat_evalsha", "cmdstat_config")}
            inner_usec = sum(int(stat["usec"]) for stat in inner.values())
            per_call = script["usec"] / args.calls
            commands = ", ".join(f"{name} {int(stat['calls']) / args.calls:.1f}x {int(stat['usec']) / args.calls:.0f}"
                                 for name, stat in sorted(inner.items(), key=lambda kv: -int(kv[1]["usec"])))
            print(f"{label:30s} {per_call:7.0f}us {per_call - inner_usec / args.calls:7.0f}us "
                  f"{statistics.median(walls) * 1e6:7.0f}us  {commands}")
    finally:
        rig.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _synced(rig: Any, per_psa: int, others: int) -> Any:
    """Figure 5's three PSA simulators with ``per_psa`` tickets each, and ``others`` ConnectWise
    connections with the simulator's demo data, synced into the store."""
    from bench.fig_queue import QUEUE_CONNECTIONS, add_vendors
    from gateway.testing.workers import sync_until_idle

    add_vendors(rig, False, per_psa=per_psa, freshness=False)
    extra = [f"demo-{i}" for i in range(others)]
    for name in extra:
        rig.add_vendor(name, rate=None)  # a ConnectWise simulator's demo tickets, a few a status
    rig.write_config()
    gw = rig.prep_gateway()
    for connection in [*QUEUE_CONNECTIONS, *extra]:
        sync_until_idle(gw, connection)
    return gw.store


if __name__ == "__main__":
    main()
