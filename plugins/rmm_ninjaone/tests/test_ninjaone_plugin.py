"""The NinjaOne plugin against its simulator over loopback: what a gateway user sees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from gateway.errors import NotSupported, VendorAmbiguous, VendorRateLimited, VendorRejected
from gateway.models import Capability, ReconcileContext, VendorKind
from gateway.plugins import load_plugins
from gateway.testing.simulator import Faults
from gateway_ninjaone import hooks
from gateway_ninjaone.client import NinjaOneClient
from gateway_ninjaone.simulator import NinjaOneSimulator

Connect = Callable[..., NinjaOneClient]


def alert_step(uid: str, action: str = "resolve", claimed: frozenset[str] = frozenset()) -> ReconcileContext:
    return ReconcileContext(
        step="alert",
        ticket_id=uid,
        payload={"action": action},
        dedup_key="dk-1",
        since=datetime.now(timezone.utc) - timedelta(minutes=1),
        claimed=claimed,
    )


# --------------------------------------------------------------------------- registration


def test_vendor_info_lists_what_ninjaone_can_do_and_not_acknowledge() -> None:
    (info,) = hooks.gateway_register_vendors()

    assert info.name == "ninjaone"
    assert info.kind is VendorKind.RMM
    assert info.capabilities == {
        Capability.ALERT_READ,
        Capability.ALERT_RESOLVE,
        Capability.DEVICE_READ,
        Capability.DEVICE_LINK,
        Capability.CUSTOMER_READ,
    }
    assert Capability.ALERT_ACKNOWLEDGE not in info.capabilities
    assert info.default_rate_limit.windows[0].requests == 100
    assert info.default_rate_limit.windows[0].per_seconds == 60.0
    assert info.secret_settings == ("client_secret",)


def test_plugin_loads_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "ninjaone")

    loaded = load_plugins()

    assert loaded.broken == []
    assert loaded.vendors["ninjaone"].kind is VendorKind.RMM


# --------------------------------------------------------------------------- customers


def test_customers_are_the_organizations_with_their_ninjaone_integration_id(client: NinjaOneClient) -> None:
    customers = hooks.gateway_customer_list(client)

    assert [c.name for c in customers] == ["Acme Corp", "Globex", "Initech"]
    assert [c.ref for c in customers] == ["nj-test:7", "nj-test:9", "nj-test:12"]
    assert customers[1].integration_ids == {"ninjaone": "9"}
    assert {c.vendor for c in customers} == {"ninjaone"}


def test_every_organization_is_read_across_pages(sim: NinjaOneSimulator, connect: Connect) -> None:
    for name in ("Hooli", "Umbrella", "Stark Industries"):
        sim.add_organization(name)

    customers = hooks.gateway_customer_list(connect(page_size=2))

    assert len(customers) == 6
    assert customers[-1].name == "Stark Industries"


# --------------------------------------------------------------------------- devices


def test_device_has_serial_host_name_customer_and_console_link(sim: NinjaOneSimulator, client: NinjaOneClient) -> None:
    device = hooks.gateway_device_get(client, "1001")

    assert device is not None
    assert device.ref == "nj-test:1001"
    assert device.name == "ACME-DC01"
    assert device.serial == "7XK2Q93"
    assert device.hostname == "ACME-DC01"
    assert device.customer_ref == "nj-test:7"
    assert device.online is True
    assert device.url == f"{sim.base_url}/#/deviceDashboard/1001/overview"


def test_device_link_uses_the_configured_console_host(connect: Connect) -> None:
    device = hooks.gateway_device_get(connect(web_url="https://eu.ninjarmm.com/"), "1003")

    assert device is not None
    assert device.url == "https://eu.ninjarmm.com/#/deviceDashboard/1003/overview"
    assert device.online is False


@pytest.mark.parametrize("device_id", ["999999", "not-a-number", "../organizations"])
def test_unknown_device_is_none(client: NinjaOneClient, device_id: str) -> None:
    assert hooks.gateway_device_get(client, device_id) is None


def test_device_is_found_by_serial_whatever_its_case(connect: Connect) -> None:
    # Two rows a page makes the search walk the report's cursor.
    device = hooks.gateway_device_find(connect(page_size=2), serial=" mxq9230f7k ", hostname=None)

    assert device is not None
    assert device.name == "GLOBEX-SQL01"
    assert device.serial == "MXQ9230F7K"
    assert device.customer_ref == "nj-test:9"


@pytest.mark.parametrize("hostname", ["initech-ws022", "INITECH-WS022.initech.lan"])
def test_device_is_found_by_host_name_or_dns_name(client: NinjaOneClient, hostname: str) -> None:
    device = hooks.gateway_device_find(client, serial=None, hostname=hostname)

    assert device is not None
    assert device.ref == "nj-test:1007"
    assert device.serial == "5CD2345LMN"
    assert device.url is not None and device.url.endswith("/#/deviceDashboard/1007/overview")


def test_host_name_search_does_not_take_a_partial_match(client: NinjaOneClient) -> None:
    assert hooks.gateway_device_find(client, serial=None, hostname="ACME-DC") is None


def test_serial_wins_over_host_name_and_host_name_backs_up_an_unknown_serial(client: NinjaOneClient) -> None:
    by_serial = hooks.gateway_device_find(client, serial="J8TQ2M3", hostname="ACME-FS01")
    fallback = hooks.gateway_device_find(client, serial="NO-SUCH-SERIAL", hostname="ACME-FS01")

    assert by_serial is not None and by_serial.name == "INITECH-APP01"
    assert fallback is not None and fallback.name == "ACME-FS01"


def test_nothing_found_is_none(client: NinjaOneClient) -> None:
    assert hooks.gateway_device_find(client, serial="NO-SUCH-SERIAL", hostname="nowhere-01") is None
    assert hooks.gateway_device_find(client, serial=None, hostname=None) is None


# --------------------------------------------------------------------------- alerts


def test_alerts_are_listed_for_everyone_or_one_organization(client: NinjaOneClient) -> None:
    everything = hooks.gateway_alert_list(client, None)
    globex = hooks.gateway_alert_list(client, "9")

    assert len(everything) == 6
    assert len(globex) == 2
    assert {a.customer_ref for a in globex} == {"nj-test:9"}
    assert {a.device_ref for a in globex} == {"nj-test:1004", "nj-test:1005"}
    sql = next(a for a in globex if a.device_ref == "nj-test:1004")
    assert sql.message == "Service MSSQLSERVER stopped"
    assert sql.severity == "MAJOR"
    assert sql.active
    assert sql.created_at is not None and sql.created_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - sql.created_at).total_seconds() - 1200) < 60


def test_alert_get_finds_an_active_alert(sim: NinjaOneSimulator, client: NinjaOneClient) -> None:
    uid = sim.sample_alert_id()

    alert = hooks.gateway_alert_get(client, uid)

    assert alert is not None and alert.ref == f"nj-test:{uid}"
    assert hooks.gateway_alert_get(client, "00000000-0000-0000-0000-000000000000") is None
    assert hooks.gateway_alert_get(client, "not-a-uid") is None


def test_resolve_resets_the_alert_and_it_is_gone(sim: NinjaOneSimulator, client: NinjaOneClient) -> None:
    uid = sim.sample_alert_id()

    effect = hooks.gateway_alert_action(client, uid, "resolve", "dk-1")

    assert effect.vendor_id == uid
    assert not sim.alert_exists(uid)
    assert sim.reset_count(uid) == 1
    assert hooks.gateway_alert_get(client, uid) is None
    assert uid not in {a.ref.split(":", 1)[1] for a in hooks.gateway_alert_list(client, None)}


def test_resolve_lost_in_transit_is_reconciled_and_not_applied_twice(
    sim: NinjaOneSimulator, client: NinjaOneClient
) -> None:
    uid = sim.sample_alert_id()
    assert hooks.gateway_alert_get(client, uid) is not None  # also gets the token first
    sim.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))

    with pytest.raises(VendorAmbiguous):
        hooks.gateway_alert_action(client, uid, "resolve", "dk-1")
    sim.set_faults(Faults())
    effect = hooks.gateway_reconcile(client, alert_step(uid))

    assert effect is not None and effect.vendor_id == uid
    assert sim.reset_count(uid) == 1
    # Had the pipeline sent it again anyway, NinjaOne refuses: the alert is already reset.
    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_alert_action(client, uid, "resolve", "dk-1")
    assert caught.value.status == 404
    assert sim.reset_count(uid) == 1


def test_reconcile_finds_nothing_while_the_alert_is_still_active(
    sim: NinjaOneSimulator, client: NinjaOneClient
) -> None:
    uid = sim.sample_alert_id()

    assert hooks.gateway_reconcile(client, alert_step(uid)) is None
    assert hooks.gateway_reconcile(client, alert_step(uid, action="acknowledge")) is None
    assert hooks.gateway_reconcile(client, alert_step("not-a-uid")) is None


def test_reconcile_never_returns_an_effect_another_write_claimed(
    sim: NinjaOneSimulator, client: NinjaOneClient
) -> None:
    uid = sim.sample_alert_id()
    hooks.gateway_alert_action(client, uid, "resolve", "dk-1")

    assert hooks.gateway_reconcile(client, alert_step(uid, claimed=frozenset({uid}))) is None


def test_acknowledge_is_refused_with_the_reason_and_no_vendor_call(
    sim: NinjaOneSimulator, client: NinjaOneClient
) -> None:
    uid = sim.sample_alert_id()
    before = sim.stats["requests"]

    with pytest.raises(NotSupported) as caught:
        hooks.gateway_alert_action(client, uid, "acknowledge", "dk-1")

    assert caught.value.vendor == "ninjaone"
    assert caught.value.capability == "alert_acknowledge"
    assert "no acknowledge" in caught.value.reason
    assert "reset" in caught.value.reason
    assert sim.stats["requests"] == before
    assert sim.alert_exists(uid)


def test_reset_needs_the_management_scope(sim: NinjaOneSimulator, connect: Connect) -> None:
    uid = sim.sample_alert_id()

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_alert_action(connect(scope="monitoring"), uid, "resolve", "dk-1")

    assert caught.value.status == 403
    assert "management" in str(caught.value)
    assert sim.alert_exists(uid)


# --------------------------------------------------------------------------- throttling


def test_throttling_surfaces_the_vendors_retry_after_and_pauses_the_connection(
    sim: NinjaOneSimulator, client: NinjaOneClient, runtime
) -> None:  # type: ignore[no-untyped-def]
    hooks.gateway_customer_list(client)  # token in hand, so the API call itself is throttled
    sim.set_faults(Faults(throttle_rate=1.0, retry_after=7))

    with pytest.raises(VendorRateLimited) as caught:
        hooks.gateway_alert_list(client, None)

    assert caught.value.retry_after == 7
    assert runtime.limiter.paused_for("nj-test") > 5
