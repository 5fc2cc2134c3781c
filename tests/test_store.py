"""The ticket store answers every filter combination exactly as a brute-force scan does,
pages with a stable cursor, and counts facets for the current filter."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
import redis

from gateway.models import NamedRef, StatusCategory, Ticket, TicketStatus
from gateway.store import TicketFilter, TicketStore, index_fields

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
CATEGORIES = list(StatusCategory)
STATUSES = [("1", "New", "new"), ("2", "In Progress", "in_progress"), ("3", "Waiting on Customer", "awaiting_customer"),
            ("4", "Resolved", "resolved"), ("5", "Closed", "closed")]
WORDS = ["printer", "email", "vpn", "laptop", "backup", "password", "server"]


def make_tickets(n: int, seed: int = 1) -> list[Ticket]:
    rng = random.Random(seed)
    tickets = []
    for i in range(n):
        conn = rng.choice(["cw", "at", "halo"])
        sid, name, cat = rng.choice(STATUSES)
        created = BASE + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        updated = created + timedelta(minutes=rng.randrange(0, 60 * 24 * 5))
        customer = rng.choice(["Acme", "Globex", "Initech", None])
        tickets.append(Ticket(
            ref=f"{conn}:{i}", connection=conn, vendor={"cw": "connectwise", "at": "autotask", "halo": "halopsa"}[conn],
            vendor_id=str(i), summary=f"{rng.choice(WORDS)} {rng.choice(WORDS)} issue {i}",
            status=TicketStatus(sid, name, StatusCategory(cat)),
            customer=NamedRef(id=customer, name=customer, ref=f"{conn}:{customer}") if customer else None,
            assignee=NamedRef(id=rng.choice(["jo", "sam", "lee"]), name=rng.choice(["Jo", "Sam", "Lee"])) if rng.random() < 0.8 else None,
            priority=NamedRef(id=str(rng.randrange(1, 4)), name=rng.choice(["Low", "Medium", "High"])),
            board=NamedRef(id="b", name=rng.choice(["Help Desk", "Projects"])),
            created_at=created, updated_at=updated,
        ))
    return tickets


def brute(tickets: list[Ticket], f: TicketFilter, sort: str, order: str) -> list[str]:
    def ok(t: Ticket) -> bool:
        fields = index_fields(t, "w")
        checks = [
            (f.status, fields["status"]), ([v.lower() for v in f.status_name], fields["sname"]),
            (f.category, fields["cat"]), (f.customer, fields["customer"]), ([v.lower() for v in f.assignee], fields["assignee"]),
            (f.connection, fields["conn"]), (f.vendor, fields["vendor"]), ([v.lower() for v in f.priority], fields["priority"]),
            ([v.lower() for v in f.board], fields["board"]),
        ]
        if any(values and value not in values for values, value in checks):
            return False
        if f.text and f.text.lower() not in t.summary.lower():
            return False
        if f.created_after and t.created_at < f.created_after or f.created_before and t.created_at > f.created_before:
            return False
        if f.updated_after and t.updated_at < f.updated_after or f.updated_before and t.updated_at > f.updated_before:
            return False
        return True

    key = (lambda t: (t.created_at, t.ref)) if sort in ("created", "age") else (lambda t: (t.updated_at, t.ref))
    desc = (order == "desc") if sort != "age" else (order != "desc")
    return [t.ref for t in sorted(filter(ok, tickets), key=key, reverse=desc)]


def every_page(store: TicketStore, f: TicketFilter, sort: str, order: str, limit: Callable[[], int]) -> list[str]:
    """The refs of every page of a query, followed by cursor, each page ``limit()`` long."""
    got, cursor = [], None
    while True:
        page = store.query("w", f, sort=sort, order=order, limit=limit(), cursor=cursor)
        got += [t.ref for t in page.tickets]
        cursor = page.next_cursor
        if not cursor:
            return got


def random_filter(rng: random.Random) -> TicketFilter:
    f = TicketFilter()
    if rng.random() < 0.4:
        f.category = rng.sample([c.value for c in CATEGORIES], rng.randrange(1, 3))
    if rng.random() < 0.3:
        f.customer = [f"{rng.choice(['cw', 'at', 'halo'])}:{rng.choice(['Acme', 'Globex'])}"]
    if rng.random() < 0.3:
        f.assignee = [rng.choice(["Jo", "sam"])]
    if rng.random() < 0.3:
        f.connection = [rng.choice(["cw", "at", "halo"])]
    if rng.random() < 0.2:
        f.vendor = ["halopsa"]
    if rng.random() < 0.2:
        f.priority = [rng.choice(["low", "High"])]
    if rng.random() < 0.2:
        f.board = ["help desk"]
    if rng.random() < 0.2:
        f.status_name = ["in progress"]
    if rng.random() < 0.15:
        f.status = ["cw:2", "at:3"]
    if rng.random() < 0.25:
        f.text = rng.choice(WORDS)
    if rng.random() < 0.25:
        f.created_after = BASE + timedelta(days=rng.randrange(0, 40))
    if rng.random() < 0.15:
        f.updated_before = BASE + timedelta(days=rng.randrange(20, 60))
    return f


@pytest.fixture
def store(redis_client: redis.Redis) -> TicketStore:
    return TicketStore(redis_client)


def test_every_filter_combination_matches_a_brute_force_scan_across_all_pages(store: TicketStore) -> None:
    tickets = make_tickets(1500)
    for t in tickets:
        store.upsert(t, "w")
    rng = random.Random(7)
    for _ in range(120):
        f = random_filter(rng)
        sort = rng.choice(["updated", "created", "age"])
        order = rng.choice(["desc", "asc"])
        got = every_page(store, f, sort, order, lambda: rng.choice([7, 50, 200]))
        assert got == brute(tickets, f, sort, order), (f, sort, order)


def test_pages_merging_many_small_status_indexes_match_a_brute_force_scan(store: TicketStore) -> None:
    """A workspace of many connections whose PSAs use some statuses for a handful of tickets,
    imported in the same few seconds (ties): a category page merges a status index of each,
    most read from their start and skipped up to the cursor, and must still page exactly."""
    rng = random.Random(11)
    tickets = []
    for c in range(12):
        conn = f"c{c}"
        for sid, name, cat in STATUSES:
            for i in range(200 if sid == "1" and c < 2 else rng.randrange(0, 12)):
                at = BASE + timedelta(seconds=rng.randrange(0, 4))
                tickets.append(Ticket(
                    ref=f"{conn}:{sid}-{i}", connection=conn, vendor="connectwise", vendor_id=f"{sid}-{i}",
                    summary=f"{rng.choice(WORDS)} {i}", status=TicketStatus(sid, name, StatusCategory(cat)),
                    created_at=at, updated_at=at + timedelta(seconds=rng.randrange(0, 3)),
                ))
    store.upsert_many(tickets, "w")
    for _ in range(60):
        f = TicketFilter(category=rng.sample([cat for _, _, cat in STATUSES], rng.randrange(1, 3)))
        if rng.random() < 0.3:
            f.connection = rng.sample([f"c{c}" for c in range(12)], 3)
        if rng.random() < 0.3:
            f.updated_before = BASE + timedelta(seconds=rng.randrange(1, 5))
        if rng.random() < 0.2:
            f.text = rng.choice(WORDS)
        sort, order = rng.choice(["updated", "created", "age"]), rng.choice(["desc", "asc"])
        got = every_page(store, f, sort, order, lambda: rng.choice([3, 7, 50]))
        assert got == brute(tickets, f, sort, order), (f, sort, order)


def test_facets_count_the_whole_filter_on_every_page(store: TicketStore) -> None:
    tickets = make_tickets(800, seed=3)
    for t in tickets:
        store.upsert(t, "w")
    f = TicketFilter(connection=["cw"], text="printer")
    expected = brute(tickets, f, "updated", "desc")
    first = store.query("w", f, limit=5, facets=True)
    second = store.query("w", f, limit=5, facets=True, cursor=first.next_cursor)
    assert first.total == second.total == len(expected)
    assert first.facets == second.facets
    by_cat: dict[str, int] = {}
    for ref in expected:
        cat = next(t for t in tickets if t.ref == ref).status.category.value
        by_cat[cat] = by_cat.get(cat, 0) + 1
    assert first.facets["cat"] == by_cat


def test_unfiltered_facets_come_from_running_counts(store: TicketStore) -> None:
    tickets = make_tickets(300, seed=4)
    for t in tickets:
        store.upsert(t, "w")
    result = store.query("w", TicketFilter(), limit=1, facets=True)
    assert result.total == 300
    assert sum(result.facets["cat"].values()) == 300


def test_an_update_moves_a_ticket_between_indexes_and_records_the_status_change(store: TicketStore) -> None:
    import msgspec

    ticket = msgspec.structs.replace(make_tickets(1)[0], status=TicketStatus("2", "In Progress", StatusCategory.IN_PROGRESS))
    store.upsert(ticket, "w")
    closed = msgspec.structs.replace(
        ticket, status=TicketStatus("5", "Closed", StatusCategory.CLOSED), updated_at=ticket.updated_at + timedelta(hours=1)
    )
    assert store.upsert(closed, "w") is True
    assert [t.ref for t in store.query("w", TicketFilter(category=["closed"])).tickets] == [ticket.ref]
    assert store.query("w", TicketFilter(category=["in_progress"])).tickets == []
    assert [h.status.name for h in store.status_history(ticket.ref)] == ["Closed", "In Progress"]
    assert store.upsert(closed, "w") is False  # the same status again is no change


def test_a_deleted_ticket_leaves_every_view(store: TicketStore) -> None:
    tickets = make_tickets(20, seed=9)
    for t in tickets:
        store.upsert(t, "w")
    store.delete(tickets[0].ref)
    assert tickets[0].ref not in [t.ref for t in store.query("w", TicketFilter(), limit=100).tickets]
    assert store.get(tickets[0].ref) is None
    assert store.query("w", TicketFilter(), facets=True).total == 19


def test_a_cursor_from_another_sort_or_forged_is_refused(store: TicketStore) -> None:
    for t in make_tickets(10):
        store.upsert(t, "w")
    cursor = store.query("w", TicketFilter(), limit=2).next_cursor
    with pytest.raises(ValueError):
        store.query("w", TicketFilter(), sort="created", cursor=cursor)
    with pytest.raises(ValueError):
        store.query("w", TicketFilter(), cursor="garbage")


def test_a_page_is_the_stored_json_spliced_exactly_as_the_struct_would_encode(store: TicketStore) -> None:
    import msgspec

    from gateway.api.queue import Facets, TicketPage, page_json

    tickets = make_tickets(40, seed=11)
    store.upsert_many(tickets, "w")
    for flt, facets in ((TicketFilter(), True), (TicketFilter(connection=["cw"]), True), (TicketFilter(), False)):
        raw = store.page("w", flt, limit=7, facets=facets)
        decoded = store.query("w", flt, limit=7, facets=facets)
        counts = msgspec.convert(decoded.facets, Facets) if decoded.facets is not None else None
        expected = msgspec.json.encode(TicketPage(decoded.tickets, decoded.next_cursor, decoded.total, counts))
        assert page_json(raw) == expected
        assert [t.ref for t in decoded.tickets] == brute(tickets, flt, "updated", "desc")[:7]


def test_leftovers_of_the_old_format_are_never_served_and_are_swept(store: TicketStore, redis_client: redis.Redis) -> None:
    import msgspec

    old, kept = make_tickets(2, seed=12)
    # What the previous format wrote for a ticket: JSON record, field hash, history, indexes, counts.
    redis_client.set(f"tk:{old.ref}", msgspec.json.encode(old))
    redis_client.hset(f"tf:{old.ref}", mapping={"ws": "w", "cat": "new", "updated": "1"})
    redis_client.lpush(f"th:{old.ref}", b"{}")
    redis_client.zadd("ix:w:all:u", {old.ref: 1.0})
    redis_client.zadd("ix:w:cat:new:u", {old.ref: 1.0})
    redis_client.hset("cnt:w:cat", "new", 5)
    store.upsert(kept, "w")
    assert [t.ref for t in store.query("w", TicketFilter(), limit=10).tickets] == [kept.ref]
    assert store.query("w", TicketFilter(), facets=True).total == 1
    assert store.get(old.ref) is None and store.status_history(old.ref) == []
    assert store.drop_old_format() == 6
    assert not redis_client.exists(f"tk:{old.ref}", f"tf:{old.ref}", f"th:{old.ref}", "ix:w:all:u", "ix:w:cat:new:u", "cnt:w:cat")
    assert store.get(kept.ref) == kept and store.count("w") == 1
    store.upsert(old, "w")  # a resync stores it again, in the new format
    assert sorted(t.ref for t in store.query("w", TicketFilter(), limit=10).tickets) == sorted([old.ref, kept.ref])


def all_refs(store: TicketStore, f: TicketFilter, sort: str = "updated", order: str = "desc", limit: int = 3) -> list[str]:
    got, cursor = [], None
    while True:
        page = store.query("w", f, sort=sort, order=order, limit=limit, cursor=cursor)
        got += [t.ref for t in page.tickets]
        cursor = page.next_cursor
        if not cursor:
            return got


def test_a_new_summary_is_what_text_search_finds_and_the_ticket_is_listed_once(store: TicketStore) -> None:
    import msgspec

    tickets = make_tickets(30, seed=13)
    store.upsert_many(tickets, "w")
    renamed = msgspec.structs.replace(tickets[0], summary="Toner low on the 3rd floor")
    store.upsert(renamed, "w")
    for f in (TicketFilter(text="toner"), TicketFilter(text="toner", category=[renamed.status.category.value]),
              TicketFilter(text="toner", customer=[renamed.customer.ref] if renamed.customer else [])):
        assert all_refs(store, f) == [renamed.ref], f
    old_word = tickets[0].summary.split()[0]
    expected = brute([renamed, *tickets[1:]], TicketFilter(text=old_word), "updated", "desc")
    assert all_refs(store, TicketFilter(text=old_word)) == expected
    assert all_refs(store, TicketFilter(), limit=7).count(renamed.ref) == 1
    assert store.query("w", TicketFilter(text="toner"), facets=True).total == 1
    store.delete(renamed.ref)
    assert all_refs(store, TicketFilter(text="toner")) == []
    assert store.count("w") == 29


def test_text_search_with_nul_and_control_bytes_matches_a_brute_force_scan(store: TicketStore) -> None:
    import msgspec

    summaries = ["vpn\x00down", "vpn\x01down", "vpn down", "a\x00b\x00c", "\x01\x01", "plain printer"]
    tickets = [msgspec.structs.replace(t, summary=s) for t, s in zip(make_tickets(len(summaries), seed=14), summaries)]
    store.upsert_many(tickets, "w")
    for text in ("\x00", "\x01", "n\x00d", "n\x01d", "vpn", "b\x00c", "printer"):
        for extra in ({}, {"category": [c.value for c in CATEGORIES]}, {"customer": ["cw:Acme", "at:Acme", "halo:Acme",
                                                                                       "cw:Globex", "at:Globex", "halo:Globex",
                                                                                       "cw:Initech", "at:Initech", "halo:Initech"]}):
            f = TicketFilter(text=text, **extra)
            for sort in ("updated", "created"):
                assert all_refs(store, f, sort=sort) == brute(tickets, f, sort, "desc"), (text, extra, sort)


def test_a_reference_with_a_nul_is_refused(store: TicketStore) -> None:
    import msgspec

    ticket = msgspec.structs.replace(make_tickets(1)[0], ref="cw:1\x002")
    with pytest.raises(ValueError):
        store.upsert(ticket, "w")
    assert store.count("w") == 0


def test_leftovers_of_the_second_format_are_never_served_and_are_swept(store: TicketStore, redis_client: redis.Redis) -> None:
    old, kept = make_tickets(2, seed=15)
    # What the second format wrote: a record with version byte 2, untagged indexes and counts.
    second = [f"tk:{old.ref}", "ix:w:updated", "ix:w:created", "ix:w:st:cw:1", "ix:w:cu:cw:Acme", "ix:w:sd",
              "cnt:w:facet:cat"]
    redis_client.set(second[0], b"\x02" + bytes(12))
    for key in second[1:5]:
        redis_client.zadd(key, {old.ref: 1.0})
    redis_client.hset("ix:w:sd", "combo", 1)
    redis_client.hset("cnt:w:facet:cat", "new", 1)
    store.upsert(kept, "w")
    assert all_refs(store, TicketFilter()) == [kept.ref]
    assert store.query("w", TicketFilter(), facets=True).total == 1
    assert store.get(old.ref) is None
    assert store.drop_old_format() == len(second)
    assert not redis_client.exists(*second)
    assert store.get(kept.ref) == kept and all_refs(store, TicketFilter(text=kept.summary.split()[0])) == [kept.ref]
    assert store.drop_old_format() == 0  # the current format's keys are never taken for old ones


def test_a_value_held_by_another_field_or_a_longer_value_is_no_match(store: TicketStore) -> None:
    import msgspec

    base = make_tickets(6, seed=16)
    shapes = [("Jo", "Help Desk", "Low"), ("Joe", "Help Desk", "Low"), ("Sam", "Jo", "Jo"), (None, "Jo", "High"),
              ("jo", "Projects", "High"), ("Jo ", "Projects", "Low")]
    tickets = [
        msgspec.structs.replace(t, assignee=NamedRef(id=a, name=a) if a else None, board=NamedRef(id="b", name=b),
                                priority=NamedRef(id="p", name=p))
        for t, (a, b, p) in zip(base, shapes)
    ]
    store.upsert_many(tickets, "w")
    for f in (TicketFilter(assignee=["jo"]), TicketFilter(assignee=["JO", "sam"]), TicketFilter(board=["jo"]),
              TicketFilter(priority=["jo"]), TicketFilter(assignee=["jo"], priority=["low"])):
        assert all_refs(store, f) == brute(tickets, f, "updated", "desc"), f
        assert all_refs(store, f), f  # each of these matches something


def test_a_gateway_that_drops_an_old_format_resyncs_every_psa_connection(redis_client: redis.Redis) -> None:
    import rq
    from gateway_connectwise.simulator import ConnectWiseSimulator

    from gateway import keys, sync
    from gateway.core import Gateway
    from gateway.store import FORMAT_KEY
    from gateway.testing.harness import connection_config, settings_from, workspace_config

    conn = ConnectWiseSimulator().demo_connection("http://127.0.0.1:9")  # never called here
    settings = settings_from({"workspaces": [workspace_config("w", [connection_config("cw", conn)], {"k": ["tickets:read"]})]})
    redis_client.delete(FORMAT_KEY)
    redis_client.set("tk:cw:1", b"\x02" + bytes(12))  # a record of the second format
    redis_client.set(keys.sync_state("cw"), b"{}")  # its backfill was done, in the old format
    queued = rq.Queue(sync.SYNC_QUEUE, connection=redis_client)

    Gateway(settings, redis_client).close()

    assert not redis_client.exists("tk:cw:1", keys.sync_state("cw"))
    assert [job.args for job in queued.get_jobs()] == [("cw",)]  # a fresh backfill is on its way
    Gateway(settings, redis_client).close()  # the next process finds the format current
    assert len(queued.get_jobs()) == 1


def test_pages_through_thousands_of_tickets_with_one_timestamp_are_exact(store: TicketStore, redis_client: redis.Redis) -> None:
    import msgspec

    # A PSA's import gives many tickets the same second: the cursor's place in such a tie is
    # found without reading the tie (a binary search), and the pages are exactly the scan's.
    rng = random.Random(21)
    stamps = [BASE, BASE + timedelta(seconds=1), BASE + timedelta(seconds=2)]
    tickets = [msgspec.structs.replace(t, updated_at=stamp, created_at=stamp)
               for t in make_tickets(900, seed=21) for stamp in [rng.choice(stamps)]]
    store.upsert_many(tickets, "w", announce=False)
    filters = [TicketFilter(), TicketFilter(category=["new", "closed"]), TicketFilter(customer=["cw:Acme"]),
               TicketFilter(text="printer"), TicketFilter(connection=["at"], category=["in_progress"])]
    for f in filters:
        for sort, order in (("updated", "desc"), ("updated", "asc"), ("created", "desc"), ("age", "desc")):
            assert all_refs(store, f, sort, order, limit=37) == brute(tickets, f, sort, order), (f, sort, order)
    first = store.page("w", TicketFilter(), limit=400)  # ends inside the second second's tie
    redis_client.config_resetstat()
    second = store.page("w", TicketFilter(), limit=50, cursor=first.next_cursor)
    # One read of the page's records (51, from the cursor on), not a walk through the tie.
    assert redis_client.info("commandstats")["cmdstat_mget"]["calls"] == 1
    assert [t["ref"] for t in msgspec.json.decode(b"[" + second.tickets + b"]")] == brute(
        tickets, TicketFilter(), "updated", "desc")[400:450]
