"""Entry points of the processes a benchmark starts: ``python -m bench.proc ROLE ...``.

- ``serve --config C --port P``: the gateway API, exactly as ``gateway --config C serve`` runs it;
- ``worker --config C``: one gateway write worker, as ``gateway --config C worker`` runs it;
- ``bare --port P``: the bare Litestar endpoint of figure 4, in the same uvicorn setup;
- ``bare-worker``: an rq ``SimpleWorker`` on an empty queue (the memory baseline of workers);
- ``bare-drain``: an rq ``SimpleWorker`` that runs figure 9's baseline jobs until none is left;
- ``sqlite --db D --port P``: figure 5's baseline, the tickets in SQLite behind Litestar.

With ``BENCH_PROFILE_DIR`` set, a paused sampling profiler (``bench.sampler``) rides along.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal


def _die_with_parent() -> None:
    """Ask Linux to end this process when the benchmark that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def main() -> None:
    _die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m bench.proc")
    parser.add_argument("role", choices=["serve", "worker", "bare", "bare-worker", "bare-drain", "sqlite"])
    parser.add_argument("--db")
    parser.add_argument("--config")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if os.environ.get("BENCH_PROFILE_DIR"):
        from bench import sampler

        sampler.install(args.role)
    if args.role == "serve":
        from gateway.cli import main as gateway_main

        gateway_main(["--config", args.config, "serve", "--host", "127.0.0.1", "--port", str(args.port)])
    elif args.role == "worker":
        from gateway.cli import main as gateway_main

        gateway_main(["--config", args.config, "worker"])
    elif args.role == "bare":
        import uvicorn

        from bench.bare_app import create_bare_app

        # The arguments of gateway.cli's ``serve``: one process, default loop and protocol.
        uvicorn.run(create_bare_app(), host="127.0.0.1", port=args.port, log_level="warning", workers=1)
    elif args.role == "sqlite":
        import uvicorn

        from bench.sqlite_app import create_sqlite_app

        uvicorn.run(create_sqlite_app(args.db), host="127.0.0.1", port=args.port, log_level="warning", workers=1)
    else:
        import redis
        from rq import Queue, SimpleWorker

        from bench import bare_jobs

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        drain = args.role == "bare-drain"
        queue = Queue(bare_jobs.QUEUE if drain else "bench-idle", connection=client)
        worker = SimpleWorker([queue], connection=client)
        worker.work(burst=drain, logging_level="WARNING", with_scheduler=False)


if __name__ == "__main__":
    main()
