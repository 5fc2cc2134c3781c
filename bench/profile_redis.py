"""What one Redis command costs the API's event loop: redis-py's asyncio client against the
hot paths' pipelined connection (``gateway.aio.Channel``).

``python -m bench.profile_redis [--commands N]`` starts the embedded redis-server and, on
uvloop as the API runs, sends ``EVALSHA`` of a script that returns its argument (100 bytes):
N one at a time on each client, then N in groups of 16 at once (16 requests in flight, as
figure 4's load has). Printed per command: this process's CPU time and the wall time.
Both clients against the same server in the same run; nothing is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

SCRIPT = "return ARGV[1]"
PAYLOAD = b"x" * 100


async def _measure(label: str, call: Callable[[], Awaitable[Any]], commands: int, together: int) -> None:
    for _ in range(200):
        await call()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(commands // together):
        await asyncio.gather(*(call() for _ in range(together)))
    done = commands // together * together
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:44s} {cpu / done * 1e6:7.1f} us CPU {wall / done * 1e6:7.1f} us wall a command", flush=True)


async def _run(url: str, port: int, commands: int) -> None:
    import redis.asyncio as aioredis

    from gateway.aio import Channel, Target

    client = aioredis.Redis.from_url(url)
    channel = Channel(Target(host="127.0.0.1", port=port))
    sha = await client.script_load(SCRIPT)
    for together in (1, 16):
        await _measure(f"redis-py asyncio client, {together} at a time",
                       lambda: client.evalsha(sha, 0, PAYLOAD), commands, together)
        await _measure(f"gateway.aio.Channel, {together} at a time",
                       lambda: channel.evalsha(sha, 0, PAYLOAD), commands, together)
    await client.aclose()
    await channel.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_redis", description=__doc__)
    parser.add_argument("--commands", type=int, default=5000)
    args = parser.parse_args(argv)

    import uvloop

    from gateway.embedded_redis import EmbeddedRedis

    workdir = Path(tempfile.mkdtemp(prefix="msp-bench-redis-"))
    server = EmbeddedRedis(workdir / "redis").start()
    try:
        uvloop.run(_run(server.url, server.port, args.commands))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
