"""The ``gateway`` command: ``serve``, ``worker``, ``demo``, ``simulator``, ``hash-key``,
``plugin new`` and ``audit verify`` / ``audit checkpoint``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import redis

from gateway import logs
from gateway.core import build_gateway, redis_url_for
from gateway.embedded_redis import EmbeddedRedis
from gateway.errors import ConfigError
from gateway.settings import hash_key, load_settings

log = logging.getLogger("gateway")


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.api.app import create_app
    from gateway.api.events import SHUTDOWN_GRACE_SECONDS

    gw = build_gateway(args.config, args.started, service="msp-gateway-api")
    # uvicorn re-raises SIGTERM after shutting down; exit through Python so an embedded
    # redis-server this process started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # With JSON logs, uvicorn's loggers go through the root handler (JSON, redacted).
        log_config = None if logs.is_json() else uvicorn.config.LOGGING_CONFIG
        uvicorn.run(create_app(gw), host=args.host, port=args.port, log_level="warning", workers=1,
                    log_config=log_config, timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    finally:
        gw.close()


def _worker(args: argparse.Namespace) -> None:
    from gateway.worker import run_worker, supervise

    if args.processes > 1:
        # Resolve (and if need be start) Redis once, so every child shares it.
        settings = load_settings(args.config)
        if not settings.gateway.redis_sentinels:
            os.environ.setdefault("REDIS_URL", redis_url_for(settings, args.started))
        supervise(args.config, args.processes)
        return
    gw = build_gateway(args.config, args.started, service="msp-gateway-worker")
    try:
        run_worker(gw, burst=args.burst)
    finally:
        gw.close()


def _demo(args: argparse.Namespace) -> None:
    from gateway.demo import run_demo

    run_demo(port=args.port, workers=args.workers, data_dir=Path(args.data_dir))


def _simulator(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.plugins import simulator_factories

    factories = simulator_factories()
    if args.vendor not in factories:
        raise ConfigError(f"no simulator for {args.vendor!r}; installed: {', '.join(sorted(factories)) or 'none'}")
    sim = factories[args.vendor]()
    sim.seed_demo()
    base = f"http://{args.host}:{args.port}"
    conn = sim.demo_connection(base)
    print(f"{args.vendor} simulator on {base}; connection base_url {conn['base_url']}", flush=True)
    for name, value in conn.get("secrets", {}).items():
        print(f"  secret {name} = {value}", flush=True)
    uvicorn.run(sim.app, host=args.host, port=args.port, log_level="warning")


def _hash_key(args: argparse.Namespace) -> None:
    print(hash_key(args.key))


def _plugin_new(args: argparse.Namespace) -> None:
    from gateway.plugin_kit import PluginKitError, new_plugin, next_steps

    try:
        plugin = new_plugin(
            args.kind, args.vendor, into=args.into, title=args.title, class_prefix=args.class_prefix,
            template=args.template,
        )
    except PluginKitError as exc:
        print(f"gateway plugin new: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(next_steps(plugin))


def _audit_client(args: argparse.Namespace) -> redis.Redis:
    return redis.Redis.from_url(redis_url_for(load_settings(args.config), args.started))


def _audit_checkpoint(args: argparse.Namespace) -> None:
    from gateway import audit_chain

    client = _audit_client(args)
    workspaces = [args.workspace] if args.workspace else audit_chain.chains(client)
    checkpoints = [c for c in (audit_chain.checkpoint(client, w) for w in workspaces) if c is not None]
    if args.workspace and not checkpoints:
        print(f"gateway audit checkpoint: workspace {args.workspace!r} has no audit records", file=sys.stderr)
        raise SystemExit(2)
    data = audit_chain.write_checkpoints(Path(args.out) if args.out else None, checkpoints)
    if args.out:
        print(f"wrote {len(checkpoints)} checkpoint(s) to {args.out}")
    else:
        sys.stdout.write(data.decode())


def _audit_verify(args: argparse.Namespace) -> None:
    from gateway import audit, audit_chain

    client = _audit_client(args)
    checkpoints = {}
    if args.checkpoint:
        try:
            checkpoints = {c.workspace: c for c in audit_chain.read_checkpoints(Path(args.checkpoint))}
        except (OSError, ValueError) as exc:  # msgspec's decode errors are ValueErrors
            print(f"gateway audit verify: cannot read checkpoint {args.checkpoint}: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    if args.workspace:
        workspaces = [args.workspace]
    else:
        workspaces = sorted(set(audit_chain.chains(client)) | set(checkpoints))
    broken = 0
    for workspace in workspaces:
        report = audit_chain.verify(client, workspace, checkpoints.get(workspace), copies=audit.AUDIT_ALL)
        print(report.describe(), flush=True)
        broken += not report.ok
    if not workspaces:
        print("no audit records")
    if broken:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    parser.add_argument("--config", default=None, help="TOML config file (default: $GATEWAY_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run write workers")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(func=_worker)

    demo = sub.add_parser("demo", help="embedded Redis + simulators + API + workers on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--data-dir", default=".gateway/demo")
    demo.set_defaults(func=_demo)

    sim = sub.add_parser("simulator", help="run one vendor simulator standalone")
    sim.add_argument("vendor")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, required=True)
    sim.set_defaults(func=_simulator)

    hk = sub.add_parser("hash-key", help="print the sha256 under which an API key is configured")
    hk.add_argument("key")
    hk.set_defaults(func=_hash_key)

    plugin = sub.add_parser("plugin", help="vendor plugin tools")
    plugin_sub = plugin.add_subparsers(dest="plugin_command", required=True)
    new = plugin_sub.add_parser(
        "new", help="create plugins/KIND_VENDOR/ from the plugin template (docs/plugins.md)",
        description="Copy the plugin template to INTO/KIND_VENDOR/ with package gateway_VENDOR, "
        "distribution msp-gateway-VENDOR and a working simulator stub.",
    )
    new.add_argument("kind", choices=["psa", "rmm", "docs"])
    new.add_argument("vendor", help="the vendor name used in config, lower-case letters and digits (acme)")
    new.add_argument("--title", default=None, help="the vendor's display name (default: the vendor name capitalised)")
    new.add_argument("--class-prefix", default=None, help="class-name prefix (default: from the title, 'IT Glue' -> ITGlue)")
    new.add_argument("--into", default="plugins", help="folder to create KIND_VENDOR/ in (default: ./plugins)")
    new.add_argument("--template", default=None, help="the template folder (default: this source tree's plugins/_template)")
    new.set_defaults(func=_plugin_new)

    audit = sub.add_parser("audit", help="verify the audit hash chains; export checkpoints")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="report the first audit record edited, removed or reordered (exit 1 if any)",
        description="Walk each workspace's audit chain (or one) and name the first record that was edited, "
        "removed or reordered. With --checkpoint, also prove the chain still holds the records the checkpoint "
        "vouched for, which catches a cut tail. Exit status 1 when a chain is broken.",
    )
    verify.add_argument("--workspace", default=None, help="verify this workspace's chain only (default: every chain)")
    verify.add_argument("--checkpoint", default=None, metavar="FILE", help="a file written by 'gateway audit checkpoint'")
    verify.set_defaults(func=_audit_verify)
    export = audit_sub.add_parser(
        "checkpoint", help="export each chain's head (workspace, seq, digest, time) as JSON",
        description="Write the head of each audit chain (or one) as JSON; keep it outside Redis and pass it "
        "to 'gateway audit verify --checkpoint' later.",
    )
    export.add_argument("--workspace", default=None, help="this workspace's chain only (default: every chain)")
    export.add_argument("--out", default=None, metavar="FILE", help="write here (default: standard output)")
    export.set_defaults(func=_audit_checkpoint)

    args = parser.parse_args(argv)
    # Embedded redis-servers this process starts live until the command is done.
    started: list[EmbeddedRedis] = []
    args.started = started
    logs.configure()  # GATEWAY_LOG_FORMAT=json: one JSON object per line
    try:
        args.func(args)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass
    finally:
        for server in started:
            server.stop()


if __name__ == "__main__":
    main()
