"""Loading vendor plugins and calling their hooks.

``load_plugins`` reads the ``msp_gateway`` entry-point group, registers each plugin and checks
its hooks against the contract (``check_pending()``), so a misspelt hook shows at start-up
rather than at the first call. It is safe to call more than once (the API process and every
worker load plugins).
``GATEWAY_LOAD_PLUGINS`` (comma-separated entry-point names) loads only those; set it empty to
load none.

Isolation: a vendor package must never take the gateway down. Each entry point is loaded and
asked for its vendors on a daemon thread with a time limit (``GATEWAY_PLUGIN_LOAD_TIMEOUT``
seconds, default 10). A plugin that raises at import (a missing dependency included), hangs
past the limit, raises or hangs in ``gateway_register_vendors``, or implements a hook that is
not in the contract (``check_pending``, per plugin) is recorded in ``broken`` with the reason,
unregistered, and the rest of the gateway keeps working; ``GET /v1/plugins`` and ``/health``
report it. A hung import is remembered for the process, so later loads (every worker, every
test) report it at once instead of waiting again, and pick it up if it finishes after all.

``Vendors`` is the typed facade over ``pm.hook``: it routes each call to the one plugin that
registered the connection's vendor, and turns "no implementation" into ``NotSupported``.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.errors import ConfigError, NotSupported
from gateway.models import (  # the hooks' argument and answer types, for the typed facade
    Alert, Attachment, AttachmentUpload, Capability, Connection, Customer, Device, Effect, ReconcileContext,
    ReplyStep, RunbookLink, ThreadEntry, Ticket, TicketCreate, TicketForm, TicketPage, TicketQuery, TicketStatus,
    TimeEntry, TimeEntryCreate, VendorInfo,
)  # fmt: skip
from gateway.webhooks import WebhookDelivery, WebhookEvent

ENTRY_POINT_GROUP = "msp_gateway"
SIMULATOR_GROUP = "msp_gateway.simulators"


DEFAULT_LOAD_TIMEOUT = 10.0


@dataclass
class BrokenPlugin:
    """An entry point that could not be loaded, and why (shown in ``/v1/plugins`` and health)."""

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


def load_timeout() -> float:
    """Seconds one plugin may take to import and to answer ``gateway_register_vendors``."""
    raw = os.environ.get("GATEWAY_PLUGIN_LOAD_TIMEOUT")
    try:
        return max(0.01, float(raw)) if raw else DEFAULT_LOAD_TIMEOUT
    except ValueError:
        raise ConfigError(f"GATEWAY_PLUGIN_LOAD_TIMEOUT: {raw!r} is not a number of seconds") from None


class PluginTimeout(Exception):
    """A plugin did not finish importing or registering within the time limit."""


class PluginExited(Exception):
    """A plugin raised ``SystemExit`` (or another ``BaseException``) while loading."""


class _Call:
    """One plugin call on a daemon thread: a plugin that never returns cannot stall start-up,
    and cannot keep the process from exiting."""

    def __init__(self, fn: Callable[[], Any], what: str) -> None:
        self.what = what
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), name=f"plugin-load {what}", daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # SystemExit at import included: it must not end the gateway
            self.error = exc
        finally:
            self.done.set()

    def outcome(self, timeout: float) -> Any:
        if not self.done.wait(timeout):
            raise PluginTimeout(f"{self.what} did not finish within {timeout:g} s")
        if isinstance(self.error, KeyboardInterrupt):
            raise self.error
        if self.error is not None and not isinstance(self.error, Exception):
            raise PluginExited(f"{type(self.error).__name__}: {self.error}")  # never end the gateway
        if self.error is not None:
            raise self.error
        return self.result


# Imports still running after their time limit, by entry-point value: a second import of the
# same module would block on its import lock, so it is never started twice.
_stuck: dict[str, _Call] = {}
_stuck_lock = threading.Lock()


def load_entry_point(ep: importlib.metadata.EntryPoint, timeout: float | None = None) -> Any:
    """``ep.load()`` within ``timeout`` seconds; raise ``PluginTimeout`` when it hangs."""
    limit = load_timeout() if timeout is None else timeout
    with _stuck_lock:
        call = _stuck.get(ep.value)
        if call is None:
            call = _Call(ep.load, f"import of {ep.value}")
        elif not call.done.is_set():
            raise PluginTimeout(f"import of {ep.value} is still running (it hung at start-up)")
    try:
        return call.outcome(limit)
    except PluginTimeout:
        with _stuck_lock:
            _stuck[ep.value] = call
        raise
    finally:
        if call.done.is_set():
            with _stuck_lock:
                _stuck.pop(ep.value, None)  # finished: the next load imports (or fails) afresh


def describe(exc: BaseException, ep: importlib.metadata.EntryPoint | None = None) -> str:
    """The reason a plugin is broken, as an operator should read it."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        if ep is not None and (ep.module == exc.name or ep.module.startswith(exc.name + ".")):
            return f"the entry point names {ep.value!r}, and {exc.name!r} cannot be imported (ModuleNotFoundError)"
        return f"missing dependency: {exc.name!r} is not installed (ModuleNotFoundError: {exc})"
    if isinstance(exc, PluginTimeout):
        return f"hung: {exc}"
    if isinstance(exc, PluginExited):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def load_plugins(extra: list[object] | None = None) -> LoadedPlugins:
    """Build a plugin manager with every installed (or wanted) plugin, plus ``extra`` objects.

    Installed plugins are isolated (see the module docstring); ``extra`` objects are the
    caller's own code, so their errors propagate.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = LoadedPlugins(pm=pm)
    wanted = _wanted()
    timeout = load_timeout()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        plugin = None
        try:
            plugin = load_entry_point(ep, timeout)
            pm.register(plugin, name=ep.name)
            pm.check_pending()  # a hook outside the contract (misspelt) breaks this plugin only
            _register_vendors(loaded, plugin, ep.name, timeout=timeout)
        except Exception as exc:  # a broken vendor package must not take the gateway down
            if plugin is not None and pm.is_registered(plugin):
                pm.unregister(plugin)
            for vendor in [v for v, owner in loaded.owners.items() if owner is plugin]:
                del loaded.owners[vendor], loaded.vendors[vendor]
            loaded.broken.append(BrokenPlugin(ep.name, describe(exc, ep)))
    for plugin in extra or []:
        pm.register(plugin)
        _register_vendors(loaded, plugin, pm.get_name(plugin) or repr(plugin))
    pm.check_pending()
    return loaded


def _register_vendors(loaded: LoadedPlugins, plugin: object, name: str, *, timeout: float | None = None) -> None:
    caller = loaded.pm.subset_hook_caller(
        "gateway_register_vendors", remove_plugins=[p for p in loaded.pm.get_plugins() if p is not plugin]
    )
    # The call only reads the plugin manager, so a late answer after a timeout changes nothing.
    answers = caller() if timeout is None else _Call(caller, f"{name}'s gateway_register_vendors").outcome(timeout)
    for answer in answers:
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

    def connect(self, vendor: str, *, connection: Connection) -> Any:
        """The plugin's client object for ``connection`` (``gateway_connect``)."""
        return self.call(vendor, hookspecs.gateway_connect.__name__, connection=connection)

    def call(self, vendor: str, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` on the plugin owning ``vendor``; ``NotSupported`` if it has none. The
        gateway calls through ``Vendor`` (typed); this is the by-name form under it."""
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


class Vendor:
    """The typed facade over the plugin of one connection: one method per operation hook, with
    the hook's own arguments (the gateway supplies ``client``) and its return type.

    Built by ``Hub.vendor(connection_id)``; every call goes through the hub (the connection's
    client, marking refused credentials). A misspelt hook or argument is a type error here and
    a failing test (``tests/test_hook_docs.py`` checks each method against ``hookspecs``), not a
    customer's first write.
    """

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call  # (hook spec, **arguments) -> the owning plugin's answer

    # -- tickets: reads
    def ticket_list(self, *, query: TicketQuery) -> TicketPage:
        return self._call(hookspecs.gateway_ticket_list, query=query)

    def ticket_get(self, *, ticket_id: str) -> Ticket | None:
        return self._call(hookspecs.gateway_ticket_get, ticket_id=ticket_id)

    def ticket_thread(self, *, ticket_id: str) -> list[ThreadEntry]:
        return self._call(hookspecs.gateway_ticket_thread, ticket_id=ticket_id)

    def ticket_time_entries(self, *, ticket_id: str) -> list[TimeEntry]:
        return self._call(hookspecs.gateway_ticket_time_entries, ticket_id=ticket_id)

    def ticket_attachments(self, *, ticket_id: str) -> list[Attachment]:
        return self._call(hookspecs.gateway_ticket_attachments, ticket_id=ticket_id)

    def attachment_download(self, *, ticket_id: str, attachment_id: str) -> AttachmentUpload | None:
        return self._call(hookspecs.gateway_attachment_download, ticket_id=ticket_id, attachment_id=attachment_id)

    def ticket_statuses(self, *, ticket: Ticket) -> list[TicketStatus]:
        return self._call(hookspecs.gateway_ticket_statuses, ticket=ticket)

    def ticket_form(self) -> TicketForm:
        return self._call(hookspecs.gateway_ticket_form)

    # -- tickets: writes
    def reply(self, *, ticket_id: str, reply: ReplyStep, dedup_key: str) -> Effect:
        return self._call(hookspecs.gateway_reply, ticket_id=ticket_id, reply=reply, dedup_key=dedup_key)

    def status_change(self, *, ticket_id: str, status_id: str) -> Effect:
        return self._call(hookspecs.gateway_status_change, ticket_id=ticket_id, status_id=status_id)

    def ticket_create(self, *, ticket: TicketCreate, dedup_key: str) -> Effect:
        return self._call(hookspecs.gateway_ticket_create, ticket=ticket, dedup_key=dedup_key)

    def time_entry(self, *, ticket_id: str, entry: TimeEntryCreate, dedup_key: str) -> Effect:
        return self._call(hookspecs.gateway_time_entry, ticket_id=ticket_id, entry=entry, dedup_key=dedup_key)

    def attachment_add(self, *, ticket_id: str, attachment: AttachmentUpload, dedup_key: str) -> Effect:
        return self._call(hookspecs.gateway_attachment_add, ticket_id=ticket_id, attachment=attachment,
                          dedup_key=dedup_key)

    def alert_action(self, *, alert_id: str, action: str, dedup_key: str) -> Effect:
        return self._call(hookspecs.gateway_alert_action, alert_id=alert_id, action=action, dedup_key=dedup_key)

    def reconcile(self, *, context: ReconcileContext) -> Effect | None:
        return self._call(hookspecs.gateway_reconcile, context=context)

    # -- customers, RMM and documentation
    def customer_list(self) -> list[Customer]:
        return self._call(hookspecs.gateway_customer_list)

    def alert_list(self, *, customer_id: str | None) -> list[Alert]:
        return self._call(hookspecs.gateway_alert_list, customer_id=customer_id)

    def alert_get(self, *, alert_id: str) -> Alert | None:
        return self._call(hookspecs.gateway_alert_get, alert_id=alert_id)

    def device_get(self, *, device_id: str) -> Device | None:
        return self._call(hookspecs.gateway_device_get, device_id=device_id)

    def device_find(self, *, serial: str | None, hostname: str | None) -> Device | None:
        return self._call(hookspecs.gateway_device_find, serial=serial, hostname=hostname)

    def runbook_list(self, *, customer_id: str) -> list[RunbookLink]:
        return self._call(hookspecs.gateway_runbook_list, customer_id=customer_id)

    # -- inbound webhooks
    def webhook_parse(self, *, headers: dict[str, str], body: bytes,
                      secret: str | None) -> WebhookDelivery | list[WebhookEvent]:  # fmt: skip
        return self._call(hookspecs.gateway_webhook_parse, headers=headers, body=body, secret=secret)


def simulator_factories() -> dict[str, Any]:
    """Installed simulators by vendor name (``msp_gateway.simulators`` entry points)."""
    found: dict[str, Any] = {}
    wanted = _wanted()
    for ep in importlib.metadata.entry_points(group=SIMULATOR_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        try:
            found[ep.name] = load_entry_point(ep)
        except Exception:  # reported as a broken plugin by load_plugins
            continue
    return found
