"""The published ``halopsa`` client (PyPI ``halopsa``) against the simulator over loopback.

The library hard-codes ``https://{tenant}.halopsa.com``; the session below sends what it asks
of that host to the simulator instead. The library's own code builds every request (token form,
paths, query parameters) and reads every answer, its error handling included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

HaloPSA = pytest.importorskip("HaloPSA", reason="the halopsa plugin's [test] extra")
from HaloPSA import Halo  # noqa: E402

from gateway.testing.simulator import RunningServer  # noqa: E402

from gateway_halopsa.simulator import HaloSimulator  # noqa: E402

TENANT = "simulated"
VENDOR_ROOT = f"https://{TENANT}.halopsa.com"


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch, sim: HaloSimulator, running: RunningServer) -> Iterator[None]:
    class LoopbackSession(requests.Session):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            if url.startswith(VENDOR_ROOT):
                url = running.base_url + url[len(VENDOR_ROOT) :]
            return super().request(method, url, *args, **kwargs)

    monkeypatch.setattr(requests, "Session", LoopbackSession)
    yield


@pytest.fixture
def halo(loopback: None, sim: HaloSimulator) -> Halo:
    return Halo(tenant=TENANT, clientid=sim.client_id, secret=sim.client_secret)


def test_tickets_actions_and_statuses_read_back(halo: Halo, sim: HaloSimulator) -> None:
    ticket_id = sim.add_ticket("Printer offline", client_id=sim.add_client("Contoso"))
    public = sim.add_action(ticket_id, "We are on it", hiddenfromuser=False)
    private = sim.add_action(ticket_id, "Spooler restarted", hiddenfromuser=True)

    ticket = halo.Tickets.get(id=ticket_id)
    assert (ticket["id"], ticket["summary"]) == (ticket_id, "Printer offline")
    listed = halo.Tickets.search()
    assert ticket_id in [t["id"] for t in listed["tickets"]]

    actions = halo.Actions.search(ticket_id=ticket_id)
    assert {a["id"] for a in actions["actions"]} == {public["id"], private["id"]}
    one = halo.Actions.get(id=private["id"], ticket_id=ticket_id)
    assert (one["id"], one["ticket_id"], one["hiddenfromuser"]) == (private["id"], ticket_id, True)

    statuses = halo.Status.search()
    assert {s["id"] for s in statuses} >= {1, 2, 9}
    status = halo.Status.get(id=sim.tickets[ticket_id]["status_id"])
    assert status["id"] == sim.tickets[ticket_id]["status_id"]
    assert status["name"] == sim._status_name(status["id"])


def test_an_action_of_another_ticket_is_not_found(halo: Halo, sim: HaloSimulator) -> None:
    first, second = sim.add_ticket("One"), sim.add_ticket("Two")
    action = sim.add_action(first, "Only on the first")
    with pytest.raises(Exception, match="404"):
        halo.Actions.get(id=action["id"], ticket_id=second)


def test_a_wrong_secret_is_reported_from_the_oauth_error_body(loopback: None, sim: HaloSimulator) -> None:
    # The library reads ``error`` and ``error_description`` of a 401 (RFC 6749 section 5.2);
    # a body without them would surface as a KeyError instead of its message.
    with pytest.raises(ValueError, match="Client authentication failed. Make sure your client ID and secret"):
        Halo(tenant=TENANT, clientid=sim.client_id, secret="not-the-secret")
    assert sim.stats["tokens_issued"] == 0
