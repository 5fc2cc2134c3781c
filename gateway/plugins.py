"""Loading vendor plugins and calling their hooks.

``load_plugins`` reads the ``msp_gateway`` entry-point group, registers each plugin, then runs
``check_pending()`` so a misspelt hook fails at start-up rather than at the first call. It is
safe to call more than once (the API process and every worker load plugins).
``GATEWAY_LOAD_PLUGINS`` (comma-separated entry-point names) loads only those; set it empty to
load none. A plugin that fails to import or register is recorded in ``broken`` and the rest of
the gateway keeps working.

``Vendors`` is the typed facade over ``pm.hook``: it routes each call to the one plugin that
registered the connection's vendor, and turns "no implementation" into ``NotSupported``.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.errors import ConfigError, NotSupported
from gateway.models import Capability, VendorInfo

ENTRY_POINT_GROUP = "msp_gateway"
SIMULATOR_GROUP = "msp_gateway.simulators"


@dataclass
class BrokenPlugin:
    name: str
    error: str


@dataclass
class LoadedPlugins:
    pm: pluggy.PluginManager
    vendors: dict[str, VendorInfo] = field(default_factory=dict)
    owners: dict[str, object] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)


def _wanted() -> set[str] | None:
    raw = os.environ.get("GATEWAY_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def load_plugins(extra: list[object] | None = None) -> LoadedPlugins:
    """Build a plugin manager with every installed (or wanted) plugin, plus ``extra`` objects."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm=pm)
    wanted = _wanted()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        plugin = None
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            _register_vendors(loaded, plugin, ep.name)
        except Exception as exc:  # a broken vendor package must not take the gateway down
            if plugin is not None and pm.is_registered(plugin):
                pm.unregister(plugin)
            for vendor in [v for v, owner in loaded.owners.items() if owner is plugin]:
                del loaded.owners[vendor], loaded.vendors[vendor]
            loaded.broken.append(BrokenPlugin(ep.name, f"{type(exc).__name__}: {exc}"))
    for plugin in extra or []:
        pm.register(plugin)
        _register_vendors(loaded, plugin, pm.get_name(plugin) or repr(plugin))
    pm.check_pending()
    return loaded


def _register_vendors(loaded: LoadedPlugins, plugin: object, name: str) -> None:
    caller = loaded.pm.subset_hook_caller(
        "gateway_register_vendors", remove_plugins=[p for p in loaded.pm.get_plugins() if p is not plugin]
    )
    for answer in caller():
        for info in answer or []:
            if info.name in loaded.vendors:
                raise ConfigError(f"vendor {info.name!r} is registered by two plugins")
            loaded.vendors[info.name] = info
            loaded.owners[info.name] = plugin


class Vendors:
    """Typed calls into the plugin that owns a vendor."""

    def __init__(self, loaded: LoadedPlugins) -> None:
        self.loaded = loaded
        self._callers: dict[tuple[str, str], Any] = {}

    def info(self, vendor: str) -> VendorInfo:
        try:
            return self.loaded.vendors[vendor]
        except KeyError:
            raise ConfigError(f"no plugin is installed for vendor {vendor!r}") from None

    def has(self, vendor: str, capability: Capability) -> bool:
        return capability in self.info(vendor).capabilities

    def require(self, vendor: str, capability: Capability) -> None:
        """Raise ``NotSupported`` (with the plugin's reason, if it gave one) when lacking."""
        info = self.info(vendor)
        if capability not in info.capabilities:
            reason = info.unsupported.get(capability) or f"{vendor} does not support {capability.value}"
            raise NotSupported(vendor, capability.value, reason)

    def implements(self, vendor: str, hook: str) -> bool:
        owner = self.loaded.owners.get(vendor)
        impls = getattr(self.loaded.pm.hook, hook).get_hookimpls()
        return any(impl.plugin is owner for impl in impls)

    def call(self, vendor: str, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the plugin owning ``vendor``; ``NotSupported`` if it has none."""
        key = (vendor, hook)
        caller = self._callers.get(key)
        if caller is None:
            owner = self.loaded.owners.get(vendor)
            if owner is None:
                raise ConfigError(f"no plugin is installed for vendor {vendor!r}")
            if not self.implements(vendor, hook):
                raise NotSupported(vendor, hook.removeprefix("gateway_"))
            caller = self.loaded.pm.subset_hook_caller(
                hook, remove_plugins=[p for p in self.loaded.pm.get_plugins() if p is not owner]
            )
            self._callers[key] = caller
        return caller(**kwargs)


def simulator_factories() -> dict[str, Any]:
    """Installed simulators by vendor name (``msp_gateway.simulators`` entry points)."""
    found: dict[str, Any] = {}
    wanted = _wanted()
    for ep in importlib.metadata.entry_points(group=SIMULATOR_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        try:
            found[ep.name] = ep.load()
        except Exception:  # reported as a broken plugin by load_plugins
            continue
    return found
