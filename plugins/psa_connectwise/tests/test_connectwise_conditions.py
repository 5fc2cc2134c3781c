"""The ``conditions`` language: what the client writes and what the simulator reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_connectwise.conditions import ConditionsError, all_of, parse, quote, when

TICKET = {
    "id": 1001,
    "summary": 'Printer "HP 4000" offline',
    "closedFlag": False,
    "budgetHours": 1.5,
    "externalXRef": None,
    "status": {"id": 16, "name": "New"},
    "company": {"id": 250, "identifier": "AcmeCorp", "name": "Acme Corp"},
    "_info": {"lastUpdated": "2024-05-01T12:00:00Z"},
}


def matches(text: str, record: dict = TICKET) -> bool:
    return parse(text).matches(record)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id = 1001", True),
        ("id != 1001", False),
        ("id > 1000 and id < 1002", True),
        ("id >= 1001 and id <= 1001", True),
        ("budgetHours > 1", True),
        ("closedFlag = false", True),
        ("closedFlag = TRUE", False),
        ('company/name = "acme corp"', True),  # case-insensitive, as SQL Server compares
        ("company/name = 'Acme Corp'", True),
        ('company/identifier contains "corp"', True),
        ('summary like "Printer%offline"', True),
        ('summary like "Print_r%"', True),
        ('summary not like "Scanner%"', True),
        ('summary not contains "HP"', False),
        ("status/id in (16, 17)", True),
        ('status/name not in ("Closed", "Resolved")', True),
        ("lastUpdated > [2024-04-30T00:00:00Z]", True),
        ("_info/lastUpdated > [2024-04-30T00:00:00Z]", True),
        ("lastUpdated >= [2024-05-01T12:00:00Z] and lastUpdated < [2024-05-01T12:00:01Z]", True),
        ("externalXRef = null", True),
        ('externalXRef = "abc"', False),
        ('externalXRef != "abc"', False),  # a null field compares false, as in SQL
        ("nosuch/field = 1", False),
    ],
)
def test_comparisons(text, expected):
    assert matches(text) is expected


def test_and_binds_tighter_than_or():
    assert matches("id = 1 and id = 2 or closedFlag = false")
    assert not matches("id = 1 and (id = 2 or closedFlag = false)")
    assert matches('not (id = 1) AND (status/name = "New" OR status/name = "Open")')


def test_quoted_strings_keep_escaped_quotes():
    assert matches(f"summary = {quote(TICKET['summary'])}")
    assert matches(r'summary contains "\"HP 4000\""')


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_quoted_text_reads_back_as_itself(text):
    assert parse(f"summary = {quote(text)}").matches({"summary": text})


def test_built_clauses_combine():
    moment = datetime(2024, 5, 1, 14, 0, 30, 999, tzinfo=UTC)
    text = all_of(f"lastUpdated >= {when(moment)}", None, "id = 1 or id = 2")
    assert text == "lastUpdated >= [2024-05-01T14:00:30Z] and (id = 1 or id = 2)"
    assert parse(text).paths == ["lastUpdated", "id", "id"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "id =",
        "id 5",
        'summary = "unterminated',
        "(id = 1",
        "id = 1)",
        "id = 1 and",
        "lastUpdated > [yesterday]",
        "summary contains 5",
        "= 5",
        "id = 1 id = 2",
        "summary ~ 'x'",
    ],
)
def test_malformed_conditions_say_what_is_wrong(text):
    with pytest.raises(ConditionsError):
        parse(text)
