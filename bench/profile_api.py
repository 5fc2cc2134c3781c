"""Where the CPU of one API request goes: the profiles behind figures 4 and 5.

``python -m bench.profile_api reply [--requests N]`` sends N ``POST /v1/tickets/{ref}/replies``
(warm ticket cache, each to a new ticket); ``python -m bench.profile_api queue`` sends N
``GET /v1/tickets`` queries (the mix of figure 5) over tickets synced from a ConnectWise
simulator. Both build the API in this process around a real redis-server and call the ASGI app
directly, one request at a time, with the thread hops made inline so that one thread does all
the work. Printed: CPU and wall time per request without a profiler, the Redis time per request
(INFO commandstats), then a cProfile on a CPU clock (``time.process_time``, so time spent
waiting on Redis is not counted) by own and by cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio.to_thread


async def _inline(func: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs.pop("abandon_on_cancel", None)
    kwargs.pop("limiter", None)
    return func(*args, **kwargs)


def _redis_usec(client: Any) -> int:
    return sum(int(v["usec"]) for v in client.info("commandstats").values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_api", description=__doc__)
    parser.add_argument("route", choices=["reply", "queue"])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--tickets", type=int, default=20_000, help="tickets in the queue (queue route)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    from litestar.testing import AsyncTestClient

    from bench.rig import Rig, add_tickets
    from gateway.testing.workers import sync_until_idle
    from gateway.api.app import create_app
    from gateway.core import Gateway
    from gateway.testing.harness import settings_from

    workdir = Path(tempfile.mkdtemp(prefix="msp-bench-profile-"))
    rig = Rig(workdir)
    try:
        rig.start_redis()
        if args.route == "reply":
            vendor = rig.add_vendor("cw-api", rate=None, tickets=args.requests * 2 + 100)
        else:
            vendor = rig.add_vendor("cw-api", rate=None)
            import random

            rng = random.Random(5)
            words = ["printer", "vpn", "email", "laptop", "backup"]
            add_tickets(vendor.sim, args.tickets, prefix=rng.choice(words))
            for i, ticket in enumerate(list(vendor.sim.tickets.values())):  # vary the summaries
                ticket["summary"] = f"{rng.choice(words)} cw {i}"
        rig.write_config()
        gw = Gateway(settings_from(rig.tables), rig.redis, service="msp-gateway-api")
        if args.route == "reply":
            rig.warm_ticket_cache(vendor)
        else:
            sync_until_idle(gw, "cw-api")
        app = create_app(gw)
        anyio.to_thread.run_sync = _inline  # type: ignore[assignment]  # the reply route's hop
        import litestar.concurrency

        litestar.concurrency._run_sync_asyncio = _inline  # type: ignore[assignment]  # sync_to_thread routes
        base_headers = [(b"authorization", f"Bearer {rig.key}".encode()), (b"host", b"127.0.0.1")]
        body = b'{"text":"Benchmark API cost","internal":true}'
        queries = [b"limit=50&category=new", b"limit=50&customer=cw-api%3A250", b"limit=50&q=printer",
                   b"limit=50&category=new&category=in_progress"]

        async def one(i: int, refs: Any) -> int:
            if args.route == "reply":
                method, path, query = "POST", f"/v1/tickets/{next(refs)}/replies", b""
                headers = [*base_headers, (b"content-type", b"application/json")]
            else:
                method, path, query, headers = "GET", "/v1/tickets", queries[i % len(queries)], base_headers
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
                     "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
                     "root_path": "", "state": {}}
            sent = False
            status = 0

            async def receive() -> dict:
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": body if method == "POST" else b"", "more_body": False}

            async def send(message: dict) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]

            await app(scope, receive, send)
            return status

        expected = 202 if args.route == "reply" else 200

        async def drive() -> tuple[float, float, float, pstats.Stats]:
            refs = iter(vendor.refs)
            async with AsyncTestClient(app):  # runs the app's start-up
                for i in range(50):
                    assert await one(i, refs) == expected
                redis_before = _redis_usec(rig.redis)
                began, cpu = time.perf_counter(), time.process_time()
                for i in range(args.requests):
                    assert await one(i, refs) == expected
                wall, cpu = time.perf_counter() - began, time.process_time() - cpu
                redis_ms = (_redis_usec(rig.redis) - redis_before) / 1000
                profiler = cProfile.Profile(time.process_time)
                profiler.enable()
                for i in range(args.requests):
                    await one(i, refs)
                profiler.disable()
            return wall, cpu, redis_ms, pstats.Stats(profiler)

        wall, cpu, redis_ms, stats = asyncio.run(drive())
        n = args.requests
        print(f"{n} {args.route} requests in one thread: {1000 * cpu / n:.3f} ms CPU, {1000 * wall / n:.3f} ms wall "
              f"and {redis_ms / n:.3f} ms inside redis-server each")
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            stats.stream = out  # type: ignore[attr-defined]
            stats.sort_stats(order).print_stats(args.top)
            text = out.getvalue()
            print(f"\n--- cProfile (CPU clock), by {order} ---")
            print(text[text.find("ncalls"):].rstrip())
        gw.close()
    finally:
        rig.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
