"""``python -m bench [--quick] [--only NAMES]``: run the figures, print one line each, write
results.json.

Order matters on a two-core machine: the figures that need workers run first (3, 6, 1, 2), the
workers' memory is read, the workers stop, the queue is read (5), the ticket store's memory is
measured by deleting it, the queue's growth is measured on generated tickets (5b), Redis is
emptied, and the API's write path is measured alone (4); the audit chain's verification (8) needs
only Redis; a gateway of its own with many connections (9) runs last.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    fig_api_cost, fig_audit, fig_events, fig_fairness, fig_isolation, fig_memory, fig_overhead, fig_queue,
    fig_ratelimit, fig_scale,
)
from bench.context import Context, Options
from bench.report import Figure, machine, write_results
from bench.rig import Rig, free_port

HERE = Path(__file__).resolve().parent


def _restrict_cpus(count: int) -> None:
    """Keep the benchmark and everything it starts on ``count`` CPUs (when there are more)."""
    if count <= 0 or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > count:
        os.sched_setaffinity(0, cpus[:count])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts: finishes in under a minute")
    parser.add_argument("--rate", type=int, default=20, help="R, calls a second on rate-limited connections")
    parser.add_argument("--workers", type=int, default=4, help="gateway worker processes")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs to run on (0: all); figure 4 is defined on 2")
    parser.add_argument("--profile", action="store_true",
                        help="sample the API and workers in each measured window; write bench/profiles.md")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, config)")
    parser.add_argument("--only", type=lambda v: set(v.split(",")), default=None, metavar="NAMES",
                        help=f"run only these steps (comma-separated: {', '.join(STEPS)}); "
                             "'growth' alone starts only Redis and the API; 'api-cost' alone runs figure 4 and its durability modes on a rig with just the API")
    parser.add_argument("--sizes", type=lambda v: tuple(int(n) for n in v.split(",")), default=None,
                        help="ticket counts for the growth figures (default 10000, or 10000,100000,1000000 in a full run)")
    args = parser.parse_args(argv)
    _restrict_cpus(args.cpus)

    options = Options(quick=args.quick, rate=args.rate, workers=args.workers, profile=args.profile)
    started = time.time()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="msp-bench-"))
    profile_dir = workdir / "profiles" if args.profile else None
    if profile_dir:
        profile_dir.mkdir()
    rig = Rig(workdir, profile_dir=profile_dir)
    ctx = Context(rig, options)
    figures: list[Figure] = []
    info = machine()
    print(f"bench: {'quick' if args.quick else 'full'} run on {info['nproc']} CPUs ({info['cpu']}), "
          f"{info['memory_gib']} GiB, Python {info['python']}, load average {load_before[0]:.1f}", flush=True)

    timings: dict[str, float] = {}

    only = args.only
    api_cost_alone = only == {"api-cost"}
    if api_cost_alone:
        only = {"api_cost", "api_cost_modes"}
    if only and not only <= set(STEPS):
        parser.error(f"--only takes {', '.join(STEPS)}, or api-cost alone")

    def record(name: str, step: Callable[[Context], list[Figure]], *, printed: bool = False) -> None:
        if only and name not in only:
            return
        began = time.monotonic()
        try:
            results = step(ctx)
        except Exception as exc:  # one broken figure must not hide the others
            traceback.print_exc()
            results = [Figure(name=name, error=f"{type(exc).__name__}: {exc}")]
        timings[name] = round(time.monotonic() - began, 1)
        for figure in results:
            if not printed or figure.error:
                print(figure.line(), flush=True)
            figures.append(figure)

    code = 0
    try:
        began = time.monotonic()
        gc.disable()  # setup makes 100,000 simulated tickets: no collector passes meanwhile
        try:
            if api_cost_alone:
                setup_api_cost(ctx)
            else:
                setup(ctx, light=bool(only) and only <= {"growth"})
        except Exception as exc:
            traceback.print_exc()
            figure = Figure(name="setup", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            print(figure.line(), flush=True)
            figures.append(figure)
            raise _SetupFailed from None
        timings["setup"] = round(time.monotonic() - began, 1)
        # The simulators keep every ticket in this process: leave them out of the cyclic
        # collector, whose full passes over 100,000 tickets would stall the simulators' answers.
        gc.collect()
        gc.freeze()
        gc.enable()
        if api_cost_alone:
            record("api_cost", fig_api_cost.run)
            record("api_cost_modes", fig_api_cost.run_modes)
            raise _Done
        record("write_overhead", fig_overhead.run)
        began = time.monotonic()
        rig.wait_quiet()
        timings["wait_quiet_after_write_overhead"] = round(time.monotonic() - began, 1)
        record("freshness", fig_queue.run_freshness)
        if not only or {"isolation", "isolation_trouble"} & only:  # both take this idle baseline
            fig_isolation.measure_idle(ctx)
        record("rate_limit_utilisation", fig_ratelimit.run)
        # Each landed write makes its ticket be fetched again within the connection's budget; at
        # 20 calls a second figure 1's 2,000 fetches take over ten minutes (two calls each, and a
        # fetch refused its second call starts again). That tail is not figure 2's load: drop it.
        ctx.shared["fetches_dropped_after_figure_1"] = rig.drop_fetches(fig_ratelimit.CONNECTION)
        began = time.monotonic()
        ctx.shared["quiet_before_isolation"] = rig.wait_quiet(timeout=10 if options.quick else 120)
        timings["wait_quiet_before_isolation"] = round(time.monotonic() - began, 1)
        record("isolation", fig_isolation.run)
        record("isolation_trouble", fig_fairness.run)
        record("halo_reads_budget", fig_fairness.run_halo_budget)
        began = time.monotonic()
        # Bounded: figure 2b's paused connection keeps its backlog parked for the vendor's 60 s
        # Retry-After, so a quick run is never quiet here (every quick run waited its whole bound).
        rig.wait_quiet(timeout=1 if options.quick else 60)
        timings["wait_quiet_before_events"] = round(time.monotonic() - began, 1)
        record("events", fig_events.run)
        fig_memory.measure_workers(ctx)
        rig.stop_workers()
        record("queue_reads", fig_queue.run_reads)
        fig_memory.measure_api(ctx)
        fig_memory.measure_store(ctx)
        record("growth", lambda c: fig_queue.run_growth(c, args.sizes), printed=True)  # prints each size's lines
        rig.redis.flushall(asynchronous=True)  # type: ignore[union-attr]  # a million keys outlast a socket timeout
        rig.wait_settled()  # figure 4 must not share the CPUs with the freeing
        record("api_cost", fig_api_cost.run)
        record("api_cost_modes", fig_api_cost.run_modes)
        record("memory", fig_memory.run)
        record("audit_verify", fig_audit.run)
        record("scale", fig_scale.run)  # a gateway of its own, with many connections
    except _SetupFailed:
        code = 1
    except _Done:
        pass
    finally:
        rig.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"bench: work directory kept at {workdir}", flush=True)
    extra = {
        "options": vars(options),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": timings,
    }
    write_results(args.out, figures, mode="quick" if args.quick else "full", started=started, extra=extra)
    if ctx.profiles:
        mode = "--quick --profile" if args.quick else "--profile"
        (HERE / "profiles.md").write_text(
            f"# Profiles of the last `python -m bench {mode}` run ({time.strftime('%Y-%m-%d', time.gmtime(started))})\n\n"
            "Wall-clock samples of every thread of the API and worker processes in each measured window\n"
            "(`bench/sampler.py`); *busy* leaves out threads waiting for work. `redis` and `vendor` are\n"
            "threads waiting on a Redis reply or a vendor's answer; `python` is running Python or waiting\n"
            "for the GIL.\n\n" + "\n".join(ctx.profiles.values())
        )
    missed = [f.name for f in figures if f.met is False]
    print(f"bench: {len(figures)} figures in {time.time() - started:.0f} s; "
          f"{'missed: ' + ', '.join(missed) if missed else 'every target met'}; wrote {args.out}", flush=True)
    return code


STEPS = ("write_overhead", "freshness", "rate_limit_utilisation", "isolation", "isolation_trouble",
         "halo_reads_budget", "events", "queue_reads", "growth", "api_cost", "api_cost_modes", "memory",
         "audit_verify", "scale")


class _SetupFailed(Exception):
    """The rig did not come up; the figures cannot run."""


class _Done(Exception):
    """``--only``: the chosen figures ran."""


def setup_api_cost(ctx: Context) -> None:
    """``--only api-cost``: Redis, the API's simulator, the API and the bare baseline; no workers."""
    rig = ctx.rig
    rig.start_redis()
    rig.add_vendor(fig_api_cost.CONNECTION, rate=None, tickets=fig_api_cost.tickets_for(ctx.options.quick))
    rig.write_config()
    rig.start_api()
    bare_port = free_port()
    ctx.shared["bare_api"] = (rig.spawn_other("bare", "--port", str(bare_port)), bare_port)
    rig.wait_ready()


def setup(ctx: Context, *, light: bool = False) -> None:
    """Redis, simulators, config, then the API and worker processes (started together).
    ``light``: Redis and the API only (the growth figures bring their own tickets)."""
    rig, options = ctx.rig, ctx.options
    quick = options.quick
    rig.start_redis()
    if light:
        fig_queue.add_vendors(rig, quick, per_psa=0, freshness=False)  # the connections the queries name
        rig.write_config()
        rig.start_api()
        rig.wait_ready()
        return
    rig.add_vendor(fig_ratelimit.CONNECTION, rate=options.rate,
                   tickets=fig_ratelimit.writes_for(quick))
    rig.add_vendor(fig_isolation.BUSY, rate=options.rate, tickets=fig_isolation.backlog_for(quick))
    rig.add_vendor(fig_isolation.OTHER, rate=None, tickets=500 if quick else 2000)
    rig.add_vendor(fig_api_cost.CONNECTION, rate=None, tickets=fig_api_cost.tickets_for(quick))
    fig_fairness.add_vendors(rig, quick)
    if fig_queue.queue_ready():
        fig_queue.add_vendors(rig, quick)
    rig.write_config()
    rig.start_api()
    rig.start_workers(options.workers)
    ctx.shared["bare_worker"] = rig.spawn_other("bare-worker")
    bare_port = free_port()  # figure 4's baseline server starts now and idles until then
    ctx.shared["bare_api"] = (rig.spawn_other("bare", "--port", str(bare_port)), bare_port)
    rig.wait_ready()
    ctx.shared["synced"] = rig.wait_synced(timeout=120 if quick else 1200)


if __name__ == "__main__":
    sys.exit(main())
