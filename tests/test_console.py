"""The operator console over HTTP (in-process): sign-in, sessions, CSRF, workspace scoping,
escaping, the admin actions it shares with the API, and an API reference that needs no CDN.

The same flows run in a real browser in ``test_console_browser.py``."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator
from litestar.testing import TestClient

from gateway import audit, events
from gateway.api.app import create_app
from gateway.console import pages
from gateway.core import Gateway
from gateway.testing.harness import connection_config, settings_from, workspace_config
from gateway.testing.simulator import Faults, serve_asgi_in_thread
from gateway.testing.workers import drain

ADMIN, READER, OTHER = "console-admin-key", "console-reader-key", "console-other-admin-key"
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)> Printer jam'


@dataclass
class Console:
    gw: Gateway
    sim: ConnectWiseSimulator
    base_url: str

    def client(self, base_url: str | None = None) -> TestClient:
        return TestClient(create_app(self.gw), base_url=base_url or self.base_url)

    def api(self, client: TestClient, key: str = ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def console(redis_client: redis.Redis) -> Iterator[Console]:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    server = sim.serve_in_thread()
    conn = sim.demo_connection(server.base_url)
    tables = {
        "gateway": {"retry_base_seconds": 0.01, "max_attempts": 2, "events_heartbeat_seconds": 0.3},
        "workspaces": [
            workspace_config("alpha", [connection_config("cw-a", conn)],
                             {ADMIN: ["tickets:read", "tickets:write", "admin"], READER: ["tickets:read"]}),
            workspace_config("beta", [connection_config("cw-b", conn)], {OTHER: ["tickets:read", "tickets:write", "admin"]}),
        ],
    }
    gw = Gateway(settings_from(tables), redis_client)
    try:
        yield Console(gw, sim, "http://testserver.local")
    finally:
        gw.close()
        server.stop()


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    form = client.get("/console")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    return client.post("/console/sign-in", data={"key": key, "csrf": token.group(1), "next": "/console/dead-letters"},
                       follow_redirects=False)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def dead_letter(console: Console, client: httpx.Client, text: str = "console reply", *, summary: str | None = None) -> str:
    """A reply the simulator refuses (400 on every write): dead-lettered at once."""
    ticket = console.sim.sample_ticket_id()
    if summary is not None:
        console.sim.tickets[int(ticket)]["summary"] = summary
    console.sim.set_faults(Faults(error_rate=1.0, error_status=400, writes_only=True))
    answer = client.post(f"/v1/tickets/cw-a:{ticket}/replies", json={"text": text},
                         headers={**console.api(client), "Idempotency-Key": f"key-{text}"})
    assert answer.status_code == 202, answer.text
    assert drain(console.gw, timeout=30)
    write_id = answer.json()["write_id"]
    assert client.get(f"/v1/writes/{write_id}", headers=console.api(client)).json()["status"] == "dead"
    console.sim.set_faults(Faults())
    return write_id


def test_a_key_without_admin_is_refused_with_a_clear_message(console: Console) -> None:
    with console.client() as client:
        refused = sign_in(client, READER)
        assert refused.status_code == 403
        assert "does not have the admin scope" in refused.text
        assert "gateway_console=" not in refused.headers.get("set-cookie", "")
        unknown = sign_in(client, "not-a-key")
        assert unknown.status_code == 401 and "not valid" in unknown.text
        assert client.get("/console/dead-letters", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_strict_expiring_and_sign_out_ends_it(console: Console) -> None:
    with console.client() as client:
        answer = sign_in(client, ADMIN)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/dead-letters"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("gateway_console="))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "max-age", "path"} <= attributes and "secure" not in attributes
        assert "samesite=strict" in cookie.lower() and "max-age=28800" in cookie.lower()
        page = client.get("/console/dead-letters")
        assert page.status_code == 200 and "Dead letters" in page.text
        out = client.post("/console/sign-out", data={"csrf": csrf_of(page)}, follow_redirects=False)
        assert out.status_code == 303
        client.cookies.set("gateway_console", cookie.split(";")[0].split("=", 1)[1], path="/console")
        again = client.get("/console/dead-letters", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"].startswith("/console?next=")
    with console.client("https://testserver.local") as secure:
        cookie = next(c for c in sign_in(secure, ADMIN).headers.get_list("set-cookie") if c.startswith("gateway_console="))
        assert "secure" in cookie.lower()


def test_a_dead_letter_is_listed_with_ticket_and_cause_and_vendor_text_is_escaped(console: Console) -> None:
    with console.client() as client:
        write_id = dead_letter(console, client, summary=HOSTILE)
        sign_in(client, ADMIN)
        page = client.get("/console/dead-letters")
        assert write_id in page.text and "rejected" in page.text and "cw-a:" in page.text
        assert "<script>document.title" not in page.text and "onerror=alert" not in page.text.replace("onerror=alert(1)&gt;", "")
        assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        filtered = client.get("/console/dead-letters", params={"cause": "unavailable"})
        assert write_id not in filtered.text and "No dead letter matches" in filtered.text
        assert write_id in client.get("/console/dead-letters", params={"connection": "cw-a", "kind": "reply"}).text
        detail = client.get(f"/console/dead-letters/{write_id}")
        assert detail.status_code == 200
        assert detail.text.count('class="bar"') >= 3  # the API request, the job run, the vendor call
        assert "400" in detail.text and 'id="retry"' in detail.text


def test_retry_without_javascript_confirms_first_then_lands_once(console: Console) -> None:
    with console.client() as client:
        write_id = dead_letter(console, client, text="retried from the console")
        sign_in(client, ADMIN)
        csrf = csrf_of(client.get(f"/console/dead-letters/{write_id}"))
        ask = client.post(f"/console/dead-letters/{write_id}/retry", data={"csrf": csrf, "confirmed": ""})
        assert ask.status_code == 200 and "Are you sure?" in ask.text and 'name="confirmed" value="yes"' in ask.text
        assert client.get(f"/v1/writes/{write_id}", headers=console.api(client)).json()["status"] == "dead"
        done = client.post(f"/console/dead-letters/{write_id}/retry", data={"csrf": csrf, "confirmed": "yes"},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == f"/console/writes/{write_id}?done=retry"
        pending = client.get(done.headers["location"])
        assert "Retry sent" in pending.text and 'http-equiv="refresh"' in pending.text  # follows it without JS
        assert drain(console.gw, timeout=30)
        finished = client.get(f"/console/writes/{write_id}")
        assert "status-succeeded" in finished.text and 'http-equiv="refresh"' not in finished.text
        ticket = client.get(f"/v1/writes/{write_id}", headers=console.api(client)).json()["target"].split(":")[1]
        notes = [n for n in console.sim.ticket_notes(ticket) if "retried from the console" in (n.get("text") or "")]
        assert len(notes) == 1


def test_forms_without_the_session_token_or_from_another_origin_are_refused(console: Console) -> None:
    with console.client() as client:
        write_id = dead_letter(console, client)
        sign_in(client, ADMIN)
        csrf = csrf_of(client.get(f"/console/dead-letters/{write_id}"))
        url = f"/console/dead-letters/{write_id}/retry"
        for data, headers in (
            ({"confirmed": "yes"}, {}),
            ({"confirmed": "yes", "csrf": "guessed"}, {}),
            ({"confirmed": "yes", "csrf": csrf}, {"Origin": "http://evil.example"}),
            ({"confirmed": "yes", "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        ):
            refused = client.post(url, data=data, headers=headers, follow_redirects=False)
            assert refused.status_code == 403 and "Refused" in refused.text, (data, headers)
        assert client.get(f"/v1/writes/{write_id}", headers=console.api(client)).json()["status"] == "dead"
        bad_sign_in = client.post("/console/sign-in", data={"key": ADMIN, "csrf": "guessed"}, follow_redirects=False)
        assert bad_sign_in.status_code == 403


def test_another_workspace_sees_none_of_it(console: Console) -> None:
    with console.client() as client:
        write_id = dead_letter(console, client)
    with console.client() as other:
        sign_in(other, OTHER)
        listing = other.get("/console/dead-letters")
        assert write_id not in listing.text and "No dead letters" in listing.text
        assert other.get(f"/console/dead-letters/{write_id}").status_code == 404
        for query in (write_id, "key-console reply"):
            found = other.get("/console/writes", params={"q": query}).text
            assert f"/console/writes/{write_id}" not in found and "No write of this workspace" in found
        csrf = csrf_of(listing)
        refused = other.post(f"/console/dead-letters/{write_id}/retry", data={"csrf": csrf, "confirmed": "yes"})
        assert refused.status_code == 404
        assert "cw-a" not in other.get("/console/connections").text


class LiveStream:
    """The console's ``/console/events`` read as a browser's EventSource would, over real HTTP."""

    def __init__(self, client: httpx.Client, after: str) -> None:
        self._cm = client.stream("GET", "/console/events", params={"after": after})
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.lines = self.response.iter_lines()
        self.heartbeats = 0

    def frames(self, until: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Frames (``id``, ``event`` and ``data`` decoded) until ``until(frames)`` holds."""
        deadline, seen, frame = time.monotonic() + timeout, [], {}
        while not until(seen):
            assert time.monotonic() < deadline, seen
            line = next(self.lines)
            if line.startswith(": heartbeat"):
                self.heartbeats += 1
            elif line == "" and "data" in frame:
                seen.append({**frame, "data": json.loads(frame["data"])})
                frame = {}
            elif line and not line.startswith(":"):
                name, _, value = line.partition(":")
                frame[name] = value.removeprefix(" ")
        return seen

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def test_the_live_stream_tells_only_the_sessions_workspace_and_ends_with_the_session(console: Console) -> None:
    served = serve_asgi_in_thread(create_app(console.gw))
    alpha, beta = httpx.Client(base_url=served.base_url, timeout=10), httpx.Client(base_url=served.base_url, timeout=10)
    try:
        assert alpha.get("/console/events").status_code == 401  # no session, no stream
        sign_in(alpha, ADMIN)
        sign_in(beta, OTHER)
        page = alpha.get("/console/dead-letters")
        after = re.search(r'data-live="([^"]+)"', page.text)
        assert after, page.text
        ours, theirs = LiveStream(alpha, after.group(1)), LiveStream(beta, "0")
        write_id = dead_letter(console, alpha, text="told live")
        told = ours.frames(lambda seen: any(f["data"]["write"] == write_id for f in seen))
        frame = next(f for f in told if f["data"]["write"] == write_id)
        assert frame["event"] == "write.dead_lettered" and frame["data"] == {"write": write_id, "connection": "cw-a"}
        assert theirs.frames(lambda seen: theirs.heartbeats >= 2) == []  # beta heard nothing of alpha
        alpha.post("/console/sign-out", data={"csrf": csrf_of(page)})
        with pytest.raises(StopIteration):  # the stream ends with the session
            ours.frames(lambda seen: False)
        ours.close()
        theirs.close()
    finally:
        alpha.close()
        beta.close()
        served.stop()


def test_every_event_a_page_follows_is_an_event_type_the_console_streams() -> None:
    templates = Path(pages.__file__).parent / "templates"
    followed = {t for f in templates.glob("*.html") for m in re.findall(r'data-live-on="([^"]+)"', f.read_text())
                for t in m.split()}
    assert followed and followed <= pages.LIVE_TYPES <= set(events.EVENT_TYPES), followed - pages.LIVE_TYPES


def test_a_secret_pasted_into_a_write_is_not_shown(console: Console) -> None:
    secret = os.environ[console.gw.settings.workspaces[0].connections[0].secrets["private_key"]]
    with console.client() as client:
        write_id = dead_letter(console, client, text=f"the key is {secret}")
        sign_in(client, ADMIN)
        for path in (f"/console/dead-letters/{write_id}", "/console/dead-letters", "/console/connections",
                     f"/console/writes?q={write_id}"):
            page = client.get(path)
            assert page.status_code == 200 and secret not in page.text, path


def test_writes_are_found_by_id_idempotency_key_and_ticket(console: Console) -> None:
    with console.client() as client:
        write_id = dead_letter(console, client, text="look me up")
        record = console.gw.writes.get(write_id)
        sign_in(client, ADMIN)
        for query in (write_id, "key-look me up", record.target):
            page = client.get("/console/writes", params={"q": query})
            assert f"/console/writes/{write_id}" in page.text, query
        assert "No write of this workspace" in client.get("/console/writes", params={"q": "nothing-like-it"}).text


def test_discard_goes_through_the_admin_code_and_is_audited(console: Console) -> None:
    with console.client() as client:
        write_id = dead_letter(console, client, text="to discard")
        sign_in(client, ADMIN)
        csrf = csrf_of(client.get(f"/console/dead-letters/{write_id}"))
        client.post(f"/console/dead-letters/{write_id}/discard", data={"csrf": csrf, "confirmed": "yes"})
        assert client.get(f"/v1/writes/{write_id}", headers=console.api(client)).json()["status"] == "discarded"
        actions = [r.attributes.get("gateway.admin_action") for r in audit.read_audit(console.gw.redis, write_id=write_id)]
        assert "discard" in actions
        # Discarded twice is a conflict, shown as a page, not a stack trace.
        again = client.post(f"/console/dead-letters/{write_id}/discard", data={"csrf": csrf, "confirmed": "yes"})
        assert again.status_code == 409 and "Not a dead letter" in again.text


def test_connections_show_the_last_hour_of_calls_and_resync_after_confirmation(console: Console) -> None:
    with console.client() as client:
        dead_letter(console, client)  # a read (the ticket) and a refused write on cw-a
        sign_in(client, ADMIN)
        page = client.get("/console/connections")
        assert page.status_code == 200 and "connection-cw-a" in page.text
        used = re.search(r"(\d+) reads, (\d+) writes", page.text)
        assert used and int(used.group(1)) >= 1 and int(used.group(2)) >= 1, page.text
        assert 'class="write"' in page.text and 'class="read"' in page.text  # the chart's bars
        csrf = csrf_of(page)
        ask = client.post("/console/connections/cw-a/resync", data={"csrf": csrf})
        assert "Are you sure?" in ask.text
        done = client.post("/console/connections/cw-a/resync", data={"csrf": csrf, "confirmed": "yes"},
                           follow_redirects=False)
        assert done.status_code == 303 and "resynced=cw-a" in done.headers["location"]
        assert client.post("/console/connections/cw-b/resync", data={"csrf": csrf, "confirmed": "yes"}).status_code == 404


def test_the_vendor_call_sample_counts_reads_writes_and_429s(console: Console) -> None:
    with console.client() as client:
        dead_letter(console, client)
    keys = console.gw.redis.keys(audit.usage_key("cw-a", 0).rsplit(":", 1)[0] + ":*")
    counts: dict[str, int] = {}
    for key in keys:
        for field, value in console.gw.redis.hgetall(key).items():
            counts[field.decode()] = counts.get(field.decode(), 0) + int(value)
        assert 0 < console.gw.redis.ttl(key) <= audit.USAGE_KEEP_SECONDS
    assert counts.get("read", 0) >= 1 and counts.get("write", 0) >= 1


def test_the_api_reference_is_served_from_the_gateway(console: Console) -> None:
    with console.client() as client:
        for path in ("/schema", "/schema/swagger"):
            page = client.get(path)
            assert page.status_code == 200 and "SwaggerUIBundle" in page.text
            urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
            assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
            for url in urls:
                asset = client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 100, url
        assert "/v1/tickets" in client.get("/schema/openapi.json").json()["paths"]
