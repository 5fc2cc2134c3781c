"""The callers' contract: a client generated from the served ``/schema/openapi.json`` by
openapi-python-client drives the demo's main flows, with no hand-written HTTP.

A real stack runs as in the demo: the ConnectWise and NinjaOne simulators seeded with demo data
(in this process, so their own records can be read), the API (``gateway serve``) and a worker
(``gateway worker``) as subprocesses on a real redis-server. The client is generated into a
temporary folder and imported. Every write is checked at the simulator: it landed exactly once.

The generated client raises on any status the operation does not declare, and parses every
answer into the declared model, so a route whose behaviour leaves its declaration fails here.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator
from gateway_ninjaone.simulator import NinjaOneSimulator

from gateway.api.openapi import DEMO_ALERT, DEMO_STATUS, DEMO_TICKET
from gateway.demo import CONNECTION_IDS
from gateway.embedded_redis import EmbeddedRedis
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, to_toml, workspace_config
from gateway.testing.simulator import Faults, RunningServer

PACKAGE = "gateway_contract_client"
CW, NINJA = CONNECTION_IDS["connectwise"], CONNECTION_IDS["ninjaone"]
# Generated clients name their functions after these: renaming one breaks every caller.
STABLE_OPERATION_IDS = {
    "health", "listPlugins", "listConnections", "getTicketForm", "getTicket", "downloadAttachment",
    "listTicketStatuses", "createReply", "changeStatus", "createTimeEntry", "listTickets", "createTicket",
    "alertAction", "getWrite", "listDeadLetters", "getDeadLetter", "discardDeadLetter", "retryDeadLetter",
    "readAudit", "listCustomers", "getCustomer", "listCustomerRunbooks", "listCustomerAlerts", "getAlert",
    "listTicketRelated", "listTicketDevices", "listTicketRunbooks", "ticketAlertAction", "listCustomerTickets",
    "receiveWebhook", "resyncConnection",
}
# Every write outside these takes an Idempotency-Key (admin actions act on an existing write;
# webhooks are the vendor's own deliveries).
NOT_KEYED = ("/v1/admin/", "/v1/webhooks/")


@dataclass
class Stack:
    base: str
    key: str
    cw: ConnectWiseSimulator
    ninja: NinjaOneSimulator
    client: Any  # the generated AuthenticatedClient
    package: ModuleType
    document: dict[str, Any]  # the served OpenAPI document the client was generated from

    def op(self, name: str) -> ModuleType:
        """The generated module of one operation (``create_reply``...)."""
        return importlib.import_module(f"{PACKAGE}.api.default.{name}")

    @property
    def models(self) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.models")

    def call(self, name: str, **kwargs: Any) -> Any:
        """One operation through the client; the parsed answer and its status."""
        answer = self.op(name).sync_detailed(client=self.client, **kwargs)
        return answer.status_code, answer.parsed

    def accepted(self, name: str, **kwargs: Any) -> Any:
        status, parsed = self.call(name, **kwargs)
        assert status == 202, f"{name}: {status} {parsed}"
        assert isinstance(parsed, self.models.WriteAccepted), parsed
        return parsed

    def finished(self, write_id: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            status, write = self.call("get_write", write_id=write_id)
            assert status == 200 and isinstance(write, self.models.WriteView), write
            if write.status in ("succeeded", "dead", "discarded"):
                return write
            assert time.monotonic() < deadline, f"write {write_id} did not finish: {write.status}"
            time.sleep(0.05)


def _wait(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def _spawn(args: list[str], config: Path, redis_url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url}
    env.pop("GATEWAY_CONFIG", None)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def generate_client(document: Path, folder: Path) -> ModuleType:
    """openapi-python-client, offline (no formatter hooks), into ``folder``; import it."""
    config = folder / "generator.json"
    config.write_text(f'{{"post_hooks": [], "package_name_override": "{PACKAGE}", '
                      f'"project_name_override": "gateway-contract-client"}}')
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document), "--meta", "none",
         "--config", str(config), "--output-path", str(folder / PACKAGE), "--fail-on-warning"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, f"the generator failed:\n{done.stdout}\n{done.stderr}"
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("contract")
    server = EmbeddedRedis(folder / "redis").start()
    cw, ninja = ConnectWiseSimulator(), NinjaOneSimulator()
    running: list[RunningServer] = []
    procs: list[subprocess.Popen] = []
    saved_env = dict(os.environ)
    try:
        connections = []
        for conn_id, sim in ((CW, cw), (NINJA, ninja)):
            sim.seed_demo()
            running.append(sim.serve_in_thread())
            connections.append(connection_config(conn_id, sim.demo_connection(running[-1].base_url)))
        key = new_api_key()
        config = folder / "gateway.toml"
        config.write_text(to_toml({
            # The session's test Redis fsyncs once a second: the fsync default would refuse it.
            "gateway": {"retry_base_seconds": 0.05, "durability": "everysec"},
            "workspaces": [workspace_config("contract", connections, {key: ALL_SCOPES})],
        }))
        port = _free_port()
        procs.append(_spawn(["serve", "--port", str(port)], config, server.url, folder / "api.log"))
        procs.append(_spawn(["worker", "--processes", "1"], config, server.url, folder / "worker.log"))
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _answers(f"{base}/health") or (procs[0].poll() is not None and _fail(folder / "api.log")),
              "the API did not start")
        document = folder / "openapi.json"
        document.write_bytes(httpx.get(f"{base}/schema/openapi.json", timeout=10).raise_for_status().content)
        package = generate_client(document, folder)
        with package.AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True,
                                         timeout=httpx.Timeout(30.0)) as client:
            yield Stack(base, key, cw, ninja, client, package, json.loads(document.read_text()))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in running:
            handle.stop()
        server.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = [p for p in sys.path if p != str(folder)]
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _fail(log: Path) -> bool:
    raise AssertionError(f"the API exited:\n{log.read_text()[-3000:]}")


def _notes(sim: ConnectWiseSimulator, ref: str, text: str) -> list[dict[str, Any]]:
    return [n for n in sim.ticket_notes(ref.split(":", 1)[1]) if n["text"] == text]


# --------------------------------------------------------------------------- the declarations


def _keyed_writes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """operation id -> operation, for every write that should take an Idempotency-Key."""
    return {
        op["operationId"]: op
        for path, item in document["paths"].items() if not path.startswith(NOT_KEYED)
        for method, op in item.items() if method in ("post", "put", "patch")
    }


def _module(operation_id: str) -> str:
    """The generated module of an operation: its id in snake case."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation_id)


def _key_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    found = [p for p in operation.get("parameters", []) if p.get("in") == "header" and p["name"] == "Idempotency-Key"]
    return found[0]["schema"] if found else None


def test_every_write_takes_an_idempotency_key_and_declares_its_body_and_answer(stack: Stack) -> None:
    operation_ids = {op["operationId"] for item in stack.document["paths"].values() for op in item.values()}
    assert STABLE_OPERATION_IDS <= operation_ids, f"renamed: {STABLE_OPERATION_IDS - operation_ids}"
    writes = _keyed_writes(stack.document)
    assert {"createReply", "changeStatus", "createTimeEntry", "createTicket", "alertAction"} <= set(writes)
    for operation_id, operation in writes.items():
        assert _key_schema(operation), f"{operation_id} declares no Idempotency-Key"
        module = _module(operation_id)
        parameters = inspect.signature(stack.op(module).sync_detailed).parameters
        assert {"idempotency_key", "body"} <= set(parameters), f"the generated {module} cannot send them"
        accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]
        assert accepted == {"$ref": "#/components/schemas/WriteAccepted"}, operation_id
    reply_body = inspect.signature(stack.op("create_reply").sync_detailed).parameters["body"].annotation
    assert "CreateReplyJsonBody" in str(reply_body) and "CreateReplyFilesBody" in str(reply_body)


def test_the_idempotency_key_length_is_the_one_declared_and_enforced(stack: Stack) -> None:
    models = stack.models
    declared = {_key_schema(op)["maxLength"] for op in _keyed_writes(stack.document).values()}
    assert len(declared) == 1, declared
    longest_key = declared.pop()
    body = models.CreateReplyJsonBody(text="key at its longest")
    longest = stack.accepted("create_reply", ref=DEMO_TICKET, body=body, idempotency_key="k" * longest_key)
    status, problem = stack.call("create_reply", ref=DEMO_TICKET, body=models.CreateReplyJsonBody(text="too long"),
                                 idempotency_key="k" * (longest_key + 1))
    assert status == 400 and isinstance(problem, models.Problem) and "Idempotency-Key" in f"{problem.title} {problem.detail}"
    assert stack.finished(longest.write_id).status == "succeeded"
    assert len(_notes(stack.cw, DEMO_TICKET, "key at its longest")) == 1
    assert _notes(stack.cw, DEMO_TICKET, "too long") == []


def test_a_problem_answer_parses_as_the_declared_problem(stack: Stack) -> None:
    models = stack.models
    status, problem = stack.call("change_status", ref=DEMO_TICKET, body=models.StatusUpdate(status_id="99999"))
    assert status == 422 and isinstance(problem, models.Problem)
    assert DEMO_STATUS in {s["id"] for s in problem.extra["valid_statuses"]}
    status, problem = stack.call("get_ticket", ref=f"{CW}:999999")
    assert status == 404 and isinstance(problem, models.Problem)


# --------------------------------------------------------------------------- reads


def _queue(stack: Stack, **filters: Any) -> Any:
    status, page = stack.call("list_tickets", limit=500, **filters)
    assert status == 200 and isinstance(page, stack.models.TicketPage), page
    return page


def _cw_refs(stack: Stack, keep: Any) -> set[str]:
    """The ConnectWise simulator's own tickets that ``keep`` accepts, as references."""
    with stack.cw.lock:
        return {f"{CW}:{t['id']}" for t in stack.cw.tickets.values() if keep(t)}


def test_list_and_filter_the_queue_and_read_a_ticket(stack: Stack) -> None:
    # The store follows the PSA through the worker's sync: wait for it to agree with the
    # simulator's records (the other tests' writes may still be on their way).
    def agrees(filters: dict[str, Any], keep: Any) -> bool:
        return {t.ref for t in _queue(stack, **filters).tickets} == _cw_refs(stack, keep)

    _wait(lambda: agrees({"connection": [CW]}, lambda t: True), "the worker's sync did not fill the queue")
    page = _queue(stack, connection=[CW], facets=True)
    assert page.total == len(page.tickets) and sum(page.facets.cat.additional_properties.values()) == page.total
    _wait(lambda: agrees({"connection": [CW], "q": "printer"}, lambda t: "printer" in t["summary"].lower()),
          "q=printer does not match the PSA's printer tickets", timeout=10)
    _wait(lambda: agrees({"category": ["new"], "vendor": ["connectwise"]}, lambda t: t["status"]["name"] == "New"),
          "category=new does not match the PSA's New tickets", timeout=10)

    status, ticket = stack.call("get_ticket", ref=DEMO_TICKET)
    assert status == 200 and isinstance(ticket, stack.models.Ticket)
    vendor_id = DEMO_TICKET.split(":", 1)[1]
    assert ticket.summary == stack.cw.tickets[int(vendor_id)]["summary"]
    assert len(ticket.thread) == len(stack.cw.ticket_notes(vendor_id))


# --------------------------------------------------------------------------- writes


def test_a_reply_resent_with_its_idempotency_key_is_one_write_and_one_note(stack: Stack) -> None:
    body = stack.models.CreateReplyJsonBody(text="We are on it (contract)")
    first = stack.accepted("create_reply", ref=DEMO_TICKET, body=body, idempotency_key="contract-reply-1")
    again = stack.accepted("create_reply", ref=DEMO_TICKET, body=body, idempotency_key="contract-reply-1")
    assert again.write_id == first.write_id and again.duplicate and not first.duplicate
    assert stack.finished(first.write_id).status == "succeeded"
    notes = _notes(stack.cw, DEMO_TICKET, "We are on it (contract)")
    assert len(notes) == 1 and notes[0]["internal"] is False


def test_an_internal_note_with_a_status_change_lands_once(stack: Stack) -> None:
    body = stack.models.CreateReplyJsonBody(text="Checked the logs (contract)", internal=True, status_id=DEMO_STATUS)
    write = stack.accepted("create_reply", ref=DEMO_TICKET, body=body, idempotency_key="contract-note-1")
    assert stack.finished(write.write_id).status == "succeeded"
    notes = _notes(stack.cw, DEMO_TICKET, "Checked the logs (contract)")
    assert len(notes) == 1 and notes[0]["internal"] is True
    assert stack.cw.ticket_status_id(DEMO_TICKET.split(":", 1)[1]) == DEMO_STATUS


def test_a_reply_with_an_attachment_sends_the_file_once(stack: Stack) -> None:
    data = b"2024-05-01 12:00:01 spooler stopped\n" * 40
    attachment = stack.package.types.File(payload=io.BytesIO(data), file_name="spooler.log", mime_type="text/plain")
    body = stack.models.CreateReplyFilesBody(text="Log attached (contract)", files=[attachment])
    write = stack.accepted("create_reply", ref=DEMO_TICKET, body=body, idempotency_key="contract-file-1")
    assert stack.finished(write.write_id).status == "succeeded"
    vendor_id = DEMO_TICKET.split(":", 1)[1]
    files = [a for a in stack.cw.attachments(vendor_id) if a["filename"] == "spooler.log"]
    assert len(files) == 1 and files[0]["size"] == len(data)
    assert len(_notes(stack.cw, DEMO_TICKET, "Log attached (contract)")) == 1


def test_a_time_entry_lands_once(stack: Stack) -> None:
    body = stack.models.TimeEntryBody(minutes=15, notes="Replaced the toner (contract)")
    write = stack.accepted("create_time_entry", ref=DEMO_TICKET, body=body, idempotency_key="contract-time-1")
    assert stack.accepted("create_time_entry", ref=DEMO_TICKET, body=body, idempotency_key="contract-time-1").duplicate
    assert stack.finished(write.write_id).status == "succeeded"
    entries = [e for e in stack.cw.time_entries(DEMO_TICKET.split(":", 1)[1]) if e["notes"] == "Replaced the toner (contract)"]
    assert len(entries) == 1 and entries[0]["minutes"] == 15


def test_a_new_ticket_from_the_psa_form_is_created_once(stack: Stack) -> None:
    models = stack.models
    status, form = stack.call("get_ticket_form", connection_id=CW)
    assert status == 200 and isinstance(form, models.TicketForm)
    values = {f.name: f.options[0].id for f in form.fields if f.required and f.name != "summary" and f.options}
    assert values, "the form names no required picklist"
    fields = models.TicketCreateBodyFields.from_dict(values)
    body = models.TicketCreateBody(connection=CW, summary="Printer on 3rd floor jammed (contract)", fields=fields)
    write = stack.accepted("create_ticket", body=body, idempotency_key="contract-ticket-1")
    assert stack.accepted("create_ticket", body=body, idempotency_key="contract-ticket-1").write_id == write.write_id
    done = stack.finished(write.write_id)
    assert done.status == "succeeded" and done.result_ref
    assert stack.cw.tickets_created_with(write.dedup_key) == [done.result_ref.split(":", 1)[1]]
    status, ticket = stack.call("get_ticket", ref=done.result_ref)
    assert status == 200 and ticket.summary == "Printer on 3rd floor jammed (contract)"


def test_an_alert_action_resolves_the_alert_once(stack: Stack) -> None:
    uid = DEMO_ALERT.split(":", 1)[1]
    assert stack.ninja.alert_exists(uid), "the documented example alert is not in the demo"
    body = stack.models.AlertActionBody(action=stack.models.AlertActionBodyAction.RESOLVE)
    write = stack.accepted("alert_action", ref=DEMO_ALERT, body=body, idempotency_key="contract-resolve-1")
    assert stack.accepted("alert_action", ref=DEMO_ALERT, body=body, idempotency_key="contract-resolve-1").duplicate
    assert stack.finished(write.write_id).status == "succeeded"
    assert stack.ninja.alert_resolve_count(uid) == 1 and not stack.ninja.alert_exists(uid)


def test_an_admin_retries_a_dead_letter_and_it_lands_once(stack: Stack) -> None:
    models = stack.models
    body = models.CreateReplyJsonBody(text="Sent while ConnectWise refused (contract)")
    given_up = models.CreateReplyJsonBody(text="Never to be sent (contract)")
    stack.cw.set_faults(Faults(error_rate=1.0, error_status=400, writes_only=True))  # ConnectWise refuses writes
    try:
        write = stack.accepted("create_reply", ref=DEMO_TICKET, body=body, idempotency_key="contract-dead-1")
        discarded = stack.accepted("create_reply", ref=DEMO_TICKET, body=given_up, idempotency_key="contract-dead-2")
        assert stack.finished(write.write_id).status == stack.finished(discarded.write_id).status == "dead"
    finally:
        stack.cw.set_faults(Faults())
    assert _notes(stack.cw, DEMO_TICKET, body.text) == _notes(stack.cw, DEMO_TICKET, given_up.text) == []

    status, nothing = stack.call("discard_dead_letter", write_id=discarded.write_id)
    assert status == 204 and nothing is None
    assert stack.finished(discarded.write_id).status == "discarded"
    status, letters = stack.call("list_dead_letters")
    assert status == 200 and write.write_id in {d.write.id for d in letters}
    status, letter = stack.call("get_dead_letter", write_id=write.write_id)
    assert status == 200 and isinstance(letter, models.DeadLetter) and letter.request["text"] == body.text

    retried = stack.accepted("retry_dead_letter", write_id=write.write_id)
    assert retried.write_id == write.write_id and retried.dedup_key == write.dedup_key
    assert stack.finished(write.write_id).status == "succeeded"
    assert len(_notes(stack.cw, DEMO_TICKET, body.text)) == 1
    status, problem = stack.call("retry_dead_letter", write_id=write.write_id)
    assert status == 409 and isinstance(problem, models.Problem)
    assert _notes(stack.cw, DEMO_TICKET, given_up.text) == []


def test_an_admin_resync_rebuilds_the_queue(stack: Stack) -> None:
    status, started = stack.call("resync_connection", connection_id=CW)
    assert status == 202 and isinstance(started, stack.models.ResyncStarted) and started.connection == CW
    _wait(lambda: {t.ref for t in _queue(stack, connection=[CW]).tickets} == _cw_refs(stack, lambda t: True),
          "the resync did not bring every ticket back")


def test_the_documented_request_examples_work_against_the_demo(stack: Stack) -> None:
    """Every JSON request example of these writes, with the path examples, sent as a caller
    would copy it from the document: accepted, and landed once."""

    def landed(operation_id: str, ref: str, example: dict[str, Any], write: Any) -> bool:
        vendor_id = ref.partition(":")[2]
        if operation_id == "createReply":
            return len(_notes(stack.cw, ref, example["text"])) == 1
        if operation_id == "changeStatus":
            return stack.cw.ticket_status_id(vendor_id) == example["status_id"]
        if operation_id == "createTimeEntry":
            return [e["notes"] for e in stack.cw.time_entries(vendor_id)].count(example["notes"]) == 1
        return len(stack.cw.tickets_created_with(write.dedup_key)) == 1

    body_models = {"createReply": "CreateReplyJsonBody", "changeStatus": "StatusUpdate",
                   "createTimeEntry": "TimeEntryBody", "createTicket": "TicketCreateBody"}
    writes = _keyed_writes(stack.document)
    tried = []
    for operation_id, model_name in body_models.items():
        operation = writes[operation_id]
        path = {p["name"]: p["examples"]["demo"]["value"] for p in operation["parameters"] if p["in"] == "path"}
        model = getattr(stack.models, model_name)
        for name, example in operation["requestBody"]["content"]["application/json"]["examples"].items():
            write = stack.accepted(_module(operation_id), **path, body=model.from_dict(example["value"]),
                                   idempotency_key=f"example-{operation_id}-{name}")
            assert stack.finished(write.write_id).status == "succeeded", (operation_id, name)
            assert landed(operation_id, path.get("ref", ""), example["value"], write), (operation_id, name)
            tried.append(name)
    assert len(tried) >= 5, tried
