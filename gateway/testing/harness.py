"""Assemble a gateway around running simulators: used by the demo, the conformance suite,
the tests and the benchmarks, so all of them exercise the same wiring.

``connection_config`` turns a simulator's ``demo_connection`` into a connection table whose
secrets are put in environment variables (config names variables, never values);
``to_toml`` writes settings the ``--config`` flag reads back.
"""

from __future__ import annotations

import json
import os
import secrets as secrets_module
import socket
from typing import Any

import msgspec

from gateway.settings import Settings, hash_key, parse_settings

ALL_SCOPES = ["tickets:read", "tickets:write", "events:read", "admin"]


def connection_config(connection_id: str, sim_connection: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A connection table for ``sim_connection``, with its secrets moved to the environment."""
    secret_envs = {}
    for name, value in sim_connection.get("secrets", {}).items():
        env = f"GW_{connection_id.upper().replace('-', '_')}_{name.upper()}"
        os.environ[env] = str(value)
        secret_envs[name] = env
    table: dict[str, Any] = {
        "id": connection_id,
        "vendor": sim_connection["vendor"],
        "base_url": sim_connection["base_url"],
        "settings": sim_connection.get("settings", {}),
        "secrets": secret_envs,
    }
    if sim_connection.get("webhook_secret"):
        env = f"GW_{connection_id.upper().replace('-', '_')}_WEBHOOK"
        os.environ[env] = sim_connection["webhook_secret"]
        table["webhook_secret_env"] = env
    table.update(overrides)
    return table


def workspace_config(
    workspace_id: str, connections: list[dict[str, Any]], api_keys: dict[str, list[str]], **extra: Any
) -> dict[str, Any]:
    """A workspace table; ``api_keys`` maps each plain key to its scopes."""
    return {
        "id": workspace_id,
        "connections": connections,
        "api_keys": [
            {"name": f"key-{i}", "sha256": hash_key(key), "scopes": scopes}
            for i, (key, scopes) in enumerate(api_keys.items())
        ],
        **extra,
    }


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_api_key() -> str:
    return "gwk_" + secrets_module.token_urlsafe(24)


def settings_from(tables: dict[str, Any]) -> Settings:
    return parse_settings(to_toml(tables), source="generated config")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[ " + ", ".join(_value(v) for v in value) + " ]"
    if value is None:
        raise ValueError("TOML has no null")
    return _value(msgspec.to_builtins(value))


def to_toml(tables: dict[str, Any]) -> str:
    """TOML for a settings dict: ``gateway`` as a table, ``workspaces`` as an array of tables."""
    lines = []
    if tables.get("gateway"):
        lines.append("[gateway]")
        lines += [f"{k} = {_value(v)}" for k, v in tables["gateway"].items() if v is not None]
    for workspace in tables.get("workspaces", []):
        lines.append("\n[[workspaces]]")
        for key, value in workspace.items():
            if key in {"connections", "api_keys", "customers"}:
                cleaned = [{k: v for k, v in item.items() if v is not None} for item in value]
                lines.append(f"{key} = [\n  " + ",\n  ".join(_value(v) for v in cleaned) + "\n]")
            elif value is not None:
                lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"
