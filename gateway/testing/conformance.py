"""The conformance suite every PSA plugin runs against its own simulator.

Use it by subclassing in the plugin's tests::

    from gateway.testing.conformance import ConformanceSuite
    from gateway_acme.simulator import AcmeSimulator

    class TestAcmeConformance(ConformanceSuite):
        simulator_class = AcmeSimulator

Each test drives the real pipeline: the HTTP API (in-process), a real redis-server, rq jobs and
the plugin, calling the simulator over loopback HTTP. Effects are checked in the simulator's
own records through its inspection methods, so a plugin cannot pass by agreeing with itself.
Tests for capabilities the vendor does not list are skipped, and the suite checks that such
writes are refused with 501 instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import redis
from litestar.testing import TestClient

from gateway.core import Gateway
from gateway.models import Capability
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config
from gateway.testing.simulator import Faults, RunningServer, Simulator
from gateway.testing.workers import drain, sync_until_idle


@dataclass
class Env:
    """One gateway wired to one simulator, for one test."""

    sim: Simulator
    gw: Gateway
    api: TestClient
    key: str
    connection: str
    server: RunningServer

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def ref(self, ticket_id: str) -> str:
        return f"{self.connection}:{ticket_id}"

    def post(self, path: str, body: Any = None, key: str | None = None, **kwargs: Any) -> Any:
        headers = dict(self.headers)
        if key:
            headers["Idempotency-Key"] = key
        return self.api.post(path, json=body, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.api.get(path, headers=self.headers, **kwargs)

    def drain(self, timeout: float = 60.0) -> None:
        assert drain(self.gw, timeout=timeout), "writes did not finish in time"

    def sync(self) -> None:
        """Fill the ticket store from the simulator (backfill, or one incremental pull)."""
        sync_until_idle(self.gw, self.connection)

    def write(self, write_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/writes/{write_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def capable(self, capability: Capability) -> bool:
        return self.gw.capable(self.connection, capability)


def build_env(
    sim: Simulator,
    redis_client: redis.Redis,
    *,
    connection: str = "conf",
    workspace: dict[str, Any] | None = None,
    gateway: dict[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[Env]:
    """Serve ``sim``, assemble a gateway pointing at it and yield an ``Env``; clean up after.

    ``workspace`` and ``gateway`` add settings to those tables; ``overrides`` to the connection.
    """
    server = sim.serve_in_thread()
    key = new_api_key()
    conn = connection_config(connection, sim.demo_connection(server.base_url), **overrides)
    settings = settings_from({
        "gateway": {"retry_base_seconds": 0.01, "max_attempts": 8, **(gateway or {})},
        "workspaces": [workspace_config("conformance", [conn], {key: ALL_SCOPES}, **(workspace or {}))],
    })
    gw = Gateway(settings, redis_client)
    from gateway.api.app import create_app

    try:
        with TestClient(create_app(gw)) as api:
            yield Env(sim, gw, api, key, connection, server)
    finally:
        gw.close()
        server.stop()


class _Suite:
    """What every suite shares: a gateway around a freshly seeded ``simulator_class``."""

    simulator_class: ClassVar[type[Simulator]]
    connection_overrides: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def env(self, redis_client: redis.Redis) -> Iterator[Env]:
        sim = self.simulator_class()
        sim.seed_demo()
        yield from build_env(sim, redis_client, **self.connection_overrides)


class ConformanceSuite(_Suite):
    """For PSA plugins. Subclass and set ``simulator_class`` (and ``connection_overrides``)."""

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _notes_with(env: Env, ticket_id: str, text: str) -> list[dict[str, Any]]:
        return [n for n in env.sim.ticket_notes(ticket_id) if text in (n.get("text") or "")]

    @staticmethod
    def _other_status(env: Env, ticket_id: str) -> str:
        current = env.sim.ticket_status_id(ticket_id)
        return next(s for s in env.sim.valid_status_ids(ticket_id) if s != current)

    # -- replies and notes --------------------------------------------------------------------

    def test_reply_lands_once_and_is_public(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "conformance public reply"})
        assert response.status_code == 202, response.text
        env.drain()
        notes = self._notes_with(env, ticket, "conformance public reply")
        assert len(notes) == 1 and notes[0]["internal"] is False
        assert env.write(response.json()["write_id"])["status"] == "succeeded"

    def test_internal_note_is_internal_at_the_vendor(self, env: Env) -> None:
        if not env.capable(Capability.INTERNAL_NOTE):
            pytest.skip("vendor has no internal notes")
        ticket = env.sim.sample_ticket_id()
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "conformance internal", "internal": True})
        assert response.status_code == 202, response.text
        env.drain()
        notes = self._notes_with(env, ticket, "conformance internal")
        assert len(notes) == 1 and notes[0]["internal"] is True

    def test_same_idempotency_key_is_one_write_and_one_note(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        path = f"/v1/tickets/{env.ref(ticket)}/replies"
        first = env.post(path, {"text": "conformance idempotent"}, key="conf-key-1")
        second = env.post(path, {"text": "conformance idempotent"}, key="conf-key-1")
        assert first.status_code == second.status_code == 202
        assert first.json()["write_id"] == second.json()["write_id"]
        assert second.json()["duplicate"] is True
        env.drain()
        third = env.post(path, {"text": "conformance idempotent"}, key="conf-key-1")
        assert third.json()["write_id"] == first.json()["write_id"]
        env.drain()
        assert len(self._notes_with(env, ticket, "conformance idempotent")) == 1

    def test_same_key_with_another_body_is_refused(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        path = f"/v1/tickets/{env.ref(ticket)}/replies"
        assert env.post(path, {"text": "one body"}, key="conf-key-2").status_code == 202
        refused = env.post(path, {"text": "another body"}, key="conf-key-2")
        assert refused.status_code == 422
        assert "Idempotency-Key" in refused.json()["title"]

    # -- status -------------------------------------------------------------------------------

    def test_status_change_applies(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        target = self._other_status(env, ticket)
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/status", {"status_id": target})
        assert response.status_code == 202, response.text
        env.drain()
        assert env.sim.ticket_status_id(ticket) == target

    def test_status_outside_the_psa_list_is_refused_with_the_valid_ones(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/status", {"status_id": "no-such-status-999"})
        assert response.status_code == 422
        valid = {s["id"] for s in response.json()["extra"]["valid_statuses"]}
        assert valid == set(env.sim.valid_status_ids(ticket))

    def test_reply_with_status_lands_both_in_order(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        target = self._other_status(env, ticket)
        response = env.post(
            f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "conformance with status", "status_id": target}
        )
        assert response.status_code == 202, response.text
        env.drain()
        assert len(self._notes_with(env, ticket, "conformance with status")) == 1
        assert env.sim.ticket_status_id(ticket) == target

    # -- create -------------------------------------------------------------------------------

    def test_create_ticket_with_the_form(self, env: Env) -> None:
        if not env.capable(Capability.CREATE_TICKET):
            pytest.skip("vendor cannot create tickets")
        form = env.get(f"/v1/connections/{env.connection}/ticket-form")
        assert form.status_code == 200, form.text
        fields = env.sim.minimal_create_fields()
        body = {"connection": env.connection, "summary": "conformance new ticket", "fields": fields}
        response = env.post("/v1/tickets", body, key="conf-create-1")
        assert response.status_code == 202, response.text
        env.drain()
        write = env.write(response.json()["write_id"])
        assert write["status"] == "succeeded", write
        assert write["result_ref"].startswith(f"{env.connection}:")
        assert len(env.sim.tickets_created_with("conf-create-1")) == 1

    def test_create_without_a_required_field_is_refused(self, env: Env) -> None:
        if not env.capable(Capability.CREATE_TICKET):
            pytest.skip("vendor cannot create tickets")
        form = env.get(f"/v1/connections/{env.connection}/ticket-form").json()
        required = [f["name"] for f in form["fields"] if f.get("required") and f["name"] != "summary"]
        if not required:
            pytest.skip("the form has no required field besides the summary")
        fields = {k: v for k, v in env.sim.minimal_create_fields().items() if k != required[0]}
        response = env.post("/v1/tickets", {"connection": env.connection, "summary": "x", "fields": fields})
        assert response.status_code == 422
        assert required[0] in response.json()["detail"]

    # -- time and attachments -----------------------------------------------------------------

    def test_time_entry_lands_once(self, env: Env) -> None:
        if not env.capable(Capability.TIME_ENTRY):
            pytest.skip("vendor has no time entries")
        ticket = env.sim.sample_ticket_id()
        before = len(env.sim.time_entries(ticket))
        body = {"minutes": 30, "notes": "conformance time", "started_at": "2026-01-05T14:00:00Z"}
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/time-entries", body)
        assert response.status_code == 202, response.text
        env.drain()
        entries = env.sim.time_entries(ticket)
        assert len(entries) == before + 1
        assert any(e["minutes"] == 30 and "conformance time" in (e.get("notes") or "") for e in entries)

    def test_attachment_under_the_cap_lands_and_over_it_is_413_naming_the_cap(self, env: Env) -> None:
        if not env.capable(Capability.ATTACHMENT):
            pytest.skip("vendor takes no attachments")
        ticket = env.sim.sample_ticket_id()
        cap = env.gw.connection(env.connection).attachment_cap_bytes
        assert cap, "a vendor with attachments must declare its cap"
        path = f"/v1/tickets/{env.ref(ticket)}/replies"
        small = env.api.post(path, headers=env.headers, data={"text": "conformance attachment"},
                             files={"files": ("small.txt", b"x" * 1024, "text/plain")})
        assert small.status_code == 202, small.text
        big = env.api.post(path, headers=env.headers, data={"text": "too big"},
                           files={"files": ("big.bin", b"x" * (cap + 1), "application/octet-stream")})
        assert big.status_code == 413
        assert f"{cap:,}" in big.json()["detail"]
        env.drain()
        assert [a for a in env.sim.attachments(ticket) if a["filename"] == "small.txt"]

    def test_the_ticket_shows_time_and_files_and_the_gateway_serves_a_file(self, env: Env) -> None:
        if not (env.capable(Capability.TIME_ENTRY) and env.capable(Capability.ATTACHMENT)):
            pytest.skip("vendor takes no time entries or no attachments")
        ref = env.ref(env.sim.sample_ticket_id())
        data = b"boot log\nline 2\n"
        time_entry = env.post(f"/v1/tickets/{ref}/time-entries", {"minutes": 30, "notes": "Detail time"})
        files = {"files": ("boot.log", data, "text/plain")}
        reply = env.api.post(f"/v1/tickets/{ref}/replies", headers=env.headers, data={"text": "Log attached"}, files=files)
        assert (time_entry.status_code, reply.status_code) == (202, 202), (time_entry.text, reply.text)
        env.drain()

        ticket = env.get(f"/v1/tickets/{ref}").json()
        assert [e["minutes"] for e in ticket["time_entries"] if e["notes"] == "Detail time"] == [30]
        (listed,) = [a for a in ticket["attachments"] if a["filename"] == "boot.log"]
        served = env.get(f"/v1/tickets/{ref}/attachments/{listed['id']}")

        assert served.status_code == 200, served.text
        assert served.content == data
        assert served.headers["content-type"].startswith("text/plain")
        assert 'filename="boot.log"' in served.headers["content-disposition"]
        assert env.get(f"/v1/tickets/{ref}/attachments/999999").status_code == 404

    # -- faults -------------------------------------------------------------------------------

    def test_429_with_retry_after_is_honoured_and_nothing_is_lost(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        env.sim.set_faults(Faults(throttle_rate=0.3, retry_after=1, writes_only=True, seed=7))
        ids = [env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": f"conformance throttled {i}"}).json()["write_id"]
               for i in range(6)]
        env.drain(timeout=90)
        env.sim.set_faults(Faults())
        for i in range(6):
            assert len(self._notes_with(env, ticket, f"conformance throttled {i}")) == 1
        assert env.sim.stats["throttled"] > 0
        assert all(env.write(w)["status"] == "succeeded" for w in ids)

    def test_commit_then_drop_never_doubles(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        env.sim.set_faults(Faults(drop_after_commit_rate=0.5, seed=11))
        for i in range(8):
            env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": f"conformance dropped {i}"})
        env.drain(timeout=90)
        env.sim.set_faults(Faults())
        assert env.sim.stats["dropped_after_commit"] > 0
        for i in range(8):
            assert len(self._notes_with(env, ticket, f"conformance dropped {i}")) == 1

    def test_5xx_is_retried_without_doubling(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        env.sim.set_faults(Faults(error_rate=0.4, error_status=503, seed=5))
        for i in range(6):
            env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": f"conformance 5xx {i}"})
        env.drain(timeout=90)
        env.sim.set_faults(Faults())
        for i in range(6):
            assert len(self._notes_with(env, ticket, f"conformance 5xx {i}")) == 1

    def test_vendor_400_dead_letters_and_retry_lands_once(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        env.sim.set_faults(Faults(error_rate=1.0, error_status=400, writes_only=True))
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "conformance dead letter"})
        write_id = response.json()["write_id"]
        env.drain()
        letter = env.get(f"/v1/admin/dead-letters/{write_id}")
        assert letter.status_code == 200, letter.text
        attempts = letter.json()["write"]["attempts"]
        assert attempts[-1]["status"] == 400 and attempts[-1]["outcome"] == "rejected"
        env.sim.set_faults(Faults())
        retry = env.post(f"/v1/admin/dead-letters/{write_id}/retry")
        assert retry.status_code == 202
        env.drain()
        assert env.write(write_id)["status"] == "succeeded"
        assert len(self._notes_with(env, ticket, "conformance dead letter")) == 1

    def test_every_vendor_call_is_audited_without_secrets(self, env: Env) -> None:
        ticket = env.sim.sample_ticket_id()
        write_id = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "conformance audit"}).json()["write_id"]
        env.drain()
        records = env.get("/v1/admin/audit", params={"write_id": write_id}).json()
        calls = [r for r in records if r["kind"] == "vendor_call"]
        assert calls and all("http.response.status_code" in r["attributes"] for r in calls)
        text = str(records)
        for secret in env.gw.connection(env.connection).secrets.values():
            assert secret not in text


# --------------------------------------------------------------------------- RMM and docs


DEMO_CUSTOMERS = ("Acme Corp", "Globex", "Initech")


class _ReadOnlySuite(_Suite):
    def test_demo_customers_are_listed_with_references(self, env: Env) -> None:
        customers = env.gw.call(env.connection, "gateway_customer_list")
        names = {c.name for c in customers}
        assert set(DEMO_CUSTOMERS) <= names, "seed_demo must hold Acme Corp, Globex and Initech"
        assert all(c.ref.startswith(f"{env.connection}:") for c in customers)

    def test_vendor_calls_are_audited_without_secrets(self, env: Env) -> None:
        env.gw.call(env.connection, "gateway_customer_list")
        records = env.get("/v1/admin/audit").json()
        assert any(r["kind"] == "vendor_call" and r["attributes"]["gateway.connection"] == env.connection for r in records)
        for secret in env.gw.connection(env.connection).secrets.values():
            assert secret not in str(records)


class DocsConformanceSuite(_ReadOnlySuite):
    """For documentation plugins: customers, runbooks with absolute URLs, audit."""

    def test_a_customers_runbooks_have_titles_and_absolute_urls(self, env: Env) -> None:
        customers = env.gw.call(env.connection, "gateway_customer_list")
        acme = next(c for c in customers if c.name == "Acme Corp")
        runbooks = env.gw.call(env.connection, "gateway_runbook_list", customer_id=acme.ref.split(":", 1)[1])
        assert runbooks, "seed_demo must give Acme Corp runbooks"
        assert all(r.title and r.url.startswith(("http://", "https://")) for r in runbooks)

    def test_an_unknown_customer_has_no_runbooks(self, env: Env) -> None:
        assert env.gw.call(env.connection, "gateway_runbook_list", customer_id="987654321") == []


class RmmConformanceSuite(_ReadOnlySuite):
    """For RMM plugins: customers, alerts, device links and alert actions through the write
    pipeline (exactly once, also when the vendor's answer is lost)."""

    def test_alerts_are_listed_and_read_back(self, env: Env) -> None:
        alerts = env.gw.call(env.connection, "gateway_alert_list", customer_id=None)
        assert alerts and all(a.ref.startswith(f"{env.connection}:") for a in alerts)
        first = alerts[0]
        assert env.gw.call(env.connection, "gateway_alert_get", alert_id=first.ref.split(":", 1)[1]).ref == first.ref

    def test_an_alerts_device_has_a_console_link(self, env: Env) -> None:
        if not env.capable(Capability.DEVICE_LINK):
            pytest.skip("vendor has no device links")
        alert = next(a for a in env.gw.call(env.connection, "gateway_alert_list", customer_id=None) if a.device_ref)
        device = env.gw.call(env.connection, "gateway_device_get", device_id=alert.device_ref.split(":", 1)[1])
        assert device is not None and device.url and device.url.startswith(("http://", "https://"))

    def test_resolving_an_alert_applies_once_even_when_the_answer_is_lost(self, env: Env) -> None:
        if not env.capable(Capability.ALERT_RESOLVE):
            pytest.skip("vendor cannot resolve alerts")
        alert_id = env.sim.sample_alert_id()
        env.sim.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))
        path = f"/v1/alerts/{env.ref(alert_id)}/actions"
        first = env.post(path, {"action": "resolve"}, key="conf-resolve")
        again = env.post(path, {"action": "resolve"}, key="conf-resolve")
        assert first.status_code == again.status_code == 202
        assert first.json()["write_id"] == again.json()["write_id"]
        env.drain()
        env.sim.set_faults(Faults())
        assert env.write(first.json()["write_id"])["status"] == "succeeded"
        assert not env.sim.alert_exists(alert_id)
        assert env.sim.alert_resolve_count(alert_id) == 1

    def test_acknowledge_works_or_is_refused_with_a_reason(self, env: Env) -> None:
        alert_id = env.sim.sample_alert_id()
        response = env.post(f"/v1/alerts/{env.ref(alert_id)}/actions", {"action": "acknowledge"})
        if env.capable(Capability.ALERT_ACKNOWLEDGE):
            assert response.status_code == 202
            env.drain()
            assert env.write(response.json()["write_id"])["status"] == "succeeded"
        else:
            assert response.status_code == 501
            problem = response.json()
            assert problem["extra"]["capability"] == "alert_acknowledge" and len(problem["detail"]) > 20
