"""Hypothesis strategies for the input classes that once reached a 500, shared by the bad-input
suite and the OpenAPI fuzz: bodies nested past any decoder's recursion limit, vendor ids past
Python's integer-string limit (4,300 digits), non-finite numbers (``nan``, ``inf``) in cursors
and numeric fields, and field values of up to a megabyte.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from gateway.store import encode_cursor

FIELD_NAMES = ["text", "internal", "status_id", "minutes", "notes", "started_at", "member", "billable", "connection",
               "summary", "description", "customer_id", "fields", "alert", "action"]


def nested(depth: int, kind: str) -> bytes:
    """A JSON body ``depth`` levels deep: arrays, objects, or a deep value inside a plausible body."""
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    half = depth // 2
    return b'{"text": "x", "fields": {"f": ' + b'[{"k":' * half + b"0" + b"}]" * half + b"}}"


HUGE_DIGITS = st.integers(4_301, 9_000).map(lambda n: "9" * n)
NON_FINITE = st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity", "1e309", "-1e400"])
HUGE_TEXT = st.integers(100_000, 1_000_000).map(lambda n: "x" * n)
REFERENCE_IDS = st.one_of(HUGE_DIGITS, NON_FINITE)
# Cursors as the queue makes them, with a non-finite score; and bare words.
CURSOR = st.one_of(NON_FINITE, st.builds(encode_cursor, NON_FINITE, st.just("cw:1"), st.sampled_from(["u", "c"]),
                                         st.booleans()))
QUERY_VALUE = st.one_of(NON_FINITE, HUGE_DIGITS, HUGE_TEXT.map(lambda s: s[:20_000]))  # httpx caps a URL at 64 kB
# JSON tokens, raw: numbers past every integer limit and the non-finite words JSON does not have.
TOKEN = st.one_of(HUGE_DIGITS, NON_FINITE, st.sampled_from(["1e400", "-0", '"nan"', '"inf"']),
                  HUGE_TEXT.map(json.dumps), st.integers(65, 3_000).map(lambda d: nested(d, "array").decode()))
FLAT_BODY = st.dictionaries(st.sampled_from(FIELD_NAMES), TOKEN, min_size=1, max_size=4).map(
    lambda fields: ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode())
DEEP_BODY = st.tuples(st.integers(65, 6_000), st.sampled_from(["array", "object", "mixed"])).map(lambda a: nested(*a))
BODY = st.one_of(FLAT_BODY, DEEP_BODY)
