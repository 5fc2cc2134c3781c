"""pyconnectwise (HealthITAU's published client, PyPI ``pyconnectwise``) against the simulator.

The library builds ``https://{manage_url}`` URLs; the subclass below changes only the scheme so
it reaches the simulator on plain loopback HTTP. Everything else (codebase discovery, the
credentials, its endpoints, its pydantic models and its ``Link``-header paging) is the library's
own code.
"""

from __future__ import annotations

import pytest

pyconnectwise = pytest.importorskip("pyconnectwise", reason="the connectwise plugin's [test] extra")
from pyconnectwise import ConnectWiseManageAPIClient  # noqa: E402

from gateway_connectwise.simulator import ConnectWiseSimulator  # noqa: E402


class LoopbackManageClient(ConnectWiseManageAPIClient):
    """pyconnectwise's Manage client, on ``http://`` instead of ``https://``."""

    def _get_url(self) -> str:
        return "http" + super()._get_url().removeprefix("https")

    def _try_get_codebase_from_api(self, manage_url: str, company_name: str, headers: dict[str, str]) -> str:
        response = self._make_request("GET", f"http://{manage_url}/login/companyinfo/{company_name}", headers=headers)
        return response.json().get("Codebase")


@pytest.fixture
def cw(sim: ConnectWiseSimulator) -> LoopbackManageClient:
    return LoopbackManageClient(
        company_name=sim.company_id,
        manage_url=sim.base_url.removeprefix("http://"),
        client_id=sim.client_id,
        public_key=sim.public_key,
        private_key=sim.private_key,
    )


def test_it_discovers_the_codebase_and_reads_a_ticket(cw: LoopbackManageClient, sim: ConnectWiseSimulator) -> None:
    assert cw.codebase == "v4_6_release/"
    ticket_id = int(sim.sample_ticket_id())
    ticket = cw.service.tickets.id(ticket_id).get()
    assert ticket.id == ticket_id
    assert ticket.summary == sim.tickets[ticket_id]["summary"]
    assert ticket.board.id == sim.tickets[ticket_id]["board"]["id"]


def test_paging_through_every_ticket_stops_at_the_last_page(cw: LoopbackManageClient, sim: ConnectWiseSimulator) -> None:
    before = sim.stats["requests"]
    pages = cw.service.tickets.paginated(1, 7)
    seen = [t.id for t in pages.all()]
    assert sorted(seen) == sorted(sim.tickets)
    # One request per page: with a Link header on the last page too, the library does not ask
    # for a page past the end (without one it guesses there is a next page).
    assert sim.stats["requests"] - before == -(-len(sim.tickets) // 7)


def test_notes_all_notes_and_time_entries_written_and_read_back(
    cw: LoopbackManageClient, sim: ConnectWiseSimulator
) -> None:
    ticket_id = int(sim.add_ticket("Printer jam"))
    tickets = cw.service.tickets.id(ticket_id)
    note = tickets.notes.post(data={"text": "Rebooted the print spooler", "detailDescriptionFlag": True})
    entry = cw.time.entries.post(
        data={
            "chargeToId": ticket_id,
            "chargeToType": "ServiceTicket",
            "timeStart": "2024-05-01T14:00:00Z",
            "timeEnd": "2024-05-01T14:30:00Z",
            "notes": "Replaced toner",
            "addToInternalAnalysisFlag": True,
        }
    )

    assert [(n.id, n.text) for n in tickets.notes.get()] == [(note.id, "Rebooted the print spooler")]
    everything = {n.id: n for n in tickets.all_notes.get()}
    assert everything[note.id].note_type == "TicketNote"
    assert everything[entry.id].note_type == "TimeEntryNote"
    assert everything[entry.id].text == "Replaced toner"
    assert everything[entry.id].internal_analysis_flag is True

    read = cw.time.entries.id(entry.id).get()
    assert (read.id, read.charge_to_id, read.notes, read.actual_hours) == (entry.id, ticket_id, "Replaced toner", 0.5)
    listed = cw.time.entries.get(params={"conditions": f"chargeToId = {ticket_id}"})
    assert [e.id for e in listed] == [entry.id]


def test_an_unknown_time_entry_is_connectwise_s_404(cw: LoopbackManageClient) -> None:
    from pyconnectwise.exceptions import NotFoundException

    with pytest.raises(NotFoundException):
        cw.time.entries.id(999_999).get()


def test_a_status_patch_with_a_string_value_as_the_spec_types_it(
    cw: LoopbackManageClient, sim: ConnectWiseSimulator
) -> None:
    ticket_id = int(sim.add_ticket("Patch me"))
    target = next(s for s in sim.valid_status_ids(str(ticket_id)) if s != sim.ticket_status_id(str(ticket_id)))
    cw.service.tickets.id(ticket_id).patch(data=[{"op": "replace", "path": "status/id", "value": target}])
    assert sim.ticket_status_id(str(ticket_id)) == target
