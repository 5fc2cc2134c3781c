"""The operator console in a real browser (Debian's chromium, headless, through Playwright).

The gateway runs as an operator runs it: ``gateway serve`` and ``gateway worker`` processes
over a generated config, a real redis-server, the ConnectWise simulator over loopback HTTP.
Set ``CONSOLE_SCREENSHOTS=<dir>`` to keep a screenshot of each page (docs/console.md uses them).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator

from gateway.embedded_redis import EmbeddedRedis
from gateway.testing.browser import ensure_chromium
from gateway.testing.harness import connection_config, free_port, to_toml, workspace_config
from gateway.testing.simulator import Faults

playwright_api = pytest.importorskip("playwright.sync_api")

ADMIN = "browser-admin-key"
HOSTILE = '<script>document.title="pwned"</script> Printer on fire'
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


@dataclass
class Live:
    base: str
    sim: ConnectWiseSimulator
    api: httpx.Client
    gateway: list[str]  # the gateway's command line, up to the subcommand
    env: dict[str, str]

    def dead_letter(self, text: str) -> tuple[str, str]:
        """A reply the simulator refuses with 400 (dead-lettered at once); the fault is then cleared."""
        ticket = self.sim.sample_ticket_id()
        self.sim.set_faults(Faults(error_rate=1.0, error_status=400, writes_only=True))
        try:
            answer = self.api.post(f"/v1/tickets/cw-main:{ticket}/replies", json={"text": text},
                                   headers={"Idempotency-Key": text})
            assert answer.status_code == 202, answer.text
            write_id = answer.json()["write_id"]
            assert self.wait(write_id, {"dead"}) == "dead"
        finally:
            self.sim.set_faults(Faults())
        return write_id, ticket

    def wait(self, write_id: str, statuses: set[str], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.api.get(f"/v1/writes/{write_id}").json()["status"]
            if status in statuses:
                return status
            time.sleep(0.1)
        raise AssertionError(f"write {write_id} stayed {status}")


def _wait_healthy(base: str, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    raise AssertionError("the gateway did not start")


@pytest.fixture(scope="module")
def live(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``gateway serve`` and ``gateway worker`` around a ConnectWise simulator."""
    redis.Redis.from_url(redis_server.url).flushall()
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    sim.tickets[int(sim.sample_ticket_id())]["summary"] = HOSTILE  # the ticket every test writes to
    server = sim.serve_in_thread()
    config = tmp_path_factory.mktemp("console") / "gateway.toml"
    config.write_text(to_toml({
        # The session's test Redis fsyncs once a second: the fsync default would refuse it.
        "gateway": {"retry_base_seconds": 0.05, "max_attempts": 3, "durability": "everysec"},
        "workspaces": [workspace_config("demo", [connection_config("cw-main", sim.demo_connection(server.base_url))],
                                        {ADMIN: ["tickets:read", "tickets:write", "admin"]})],
    }))
    env = {**os.environ, "REDIS_URL": redis_server.url}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = [sys.executable, "-m", "gateway.cli", "--config", str(config)]
    procs = [
        subprocess.Popen([*gateway, "serve", "--port", str(port)], env=env),
        subprocess.Popen([*gateway, "worker", "--processes", "1"], env=env),
    ]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    try:
        _wait_healthy(base, procs)
        yield Live(base, sim, api, gateway, env)
    finally:
        api.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    try:
        executable = ensure_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def shot(page: object, name: str, *, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)  # type: ignore[attr-defined]


def sign_in(page: object, base: str, key: str = ADMIN) -> None:
    page.goto(f"{base}/console")  # type: ignore[attr-defined]
    page.fill("#key", key)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]


def follow_live(page: object) -> list[str]:
    """Wait until the page follows the event stream; mark the document so that a reload shows
    (the mark is gone after one). Returns the URLs the page requests from now on."""
    page.wait_for_selector("#live[data-state=open]")  # type: ignore[attr-defined]
    page.evaluate("window.notReloaded = true")  # type: ignore[attr-defined]
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))  # type: ignore[attr-defined]
    return requested


def not_reloaded(page: object) -> bool:
    return page.evaluate("window.notReloaded === true")  # type: ignore[attr-defined]


def test_an_operator_sees_a_dead_letter_arrive_retries_it_after_clearing_the_fault_and_it_lands_once(
    live: Live, chromium
) -> None:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []

    def answer(dialog) -> None:  # the retry confirmation; anything else would be injected script
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.goto(f"{live.base}/console")
    shot(page, "sign-in")
    page.fill("#key", ADMIN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.base}/console/dead-letters")
    follow_live(page)
    # A simulator fault makes a dead letter while the list is open: it appears without a reload.
    write_id, ticket = live.dead_letter("browser retry")
    row = page.locator(f"#dead-letters tr[data-key='{write_id}']")
    row.wait_for(timeout=15_000)
    assert not_reloaded(page)
    # The hostile summary is text on the page, and none of it ran.
    assert HOSTILE in row.inner_text()
    assert page.title() != "pwned"
    shot(page, "dead-letters")

    row.locator("a").click()
    page.wait_for_url(f"{live.base}/console/dead-letters/{write_id}")
    bars = page.locator("#timeline .row")
    assert bars.count() >= 3  # the API request, the job run, the refused vendor call
    assert page.locator("#timeline .row.kind-vendor_call.failed").count() >= 1
    assert "rejected" in page.locator("#attempts").inner_text() and "400" in page.locator("#attempts").inner_text()
    assert page.locator("#ticket-summary").inner_text() == HOSTILE
    shot(page, "dead-letter")

    # The fault is cleared; the vendor now answers slowly, so the write page opens before the
    # write lands and can only learn its success from the write.succeeded event.
    live.sim.set_faults(Faults(latency_ms=1500, writes_only=True))
    try:
        page.click("#retry")
        page.wait_for_url(f"{live.base}/console/writes/{write_id}?done=retry")
        assert page.locator("#write-status").inner_text() in {"queued", "running"}
        requested = follow_live(page)
        page.wait_for_selector("#write-status.status-succeeded", timeout=30_000)
    finally:
        live.sim.set_faults(Faults())
    assert not_reloaded(page) and f"{live.base}/console/writes/{write_id}?done=retry" in requested
    assert page.locator("#timeline .row.kind-vendor_call:not(.failed)").count() >= 1  # the retry's call, redrawn
    assert len(dialogs) == 1 and "again" in dialogs[0]
    assert page.title() != "pwned"
    notes = [n for n in live.sim.ticket_notes(ticket) if "browser retry" in (n.get("text") or "")]
    assert len(notes) == 1
    shot(page, "write")

    page.goto(f"{live.base}/console/writes?q={ticket and f'cw-main:{ticket}'}")
    assert page.locator(f"#writes a[href='/console/writes/{write_id}']").count() == 1
    shot(page, "writes")
    context.close()


def test_the_connections_page_shows_a_429_pause_as_it_happens(live: Live, chromium) -> None:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    sign_in(page, live.base)
    page.wait_for_url(f"{live.base}/console/dead-letters")
    page.goto(f"{live.base}/console/connections")
    assert page.locator("#connection-cw-main svg.usage rect").count() >= 1
    follow_live(page)
    live.sim.set_faults(Faults(throttle_rate=1.0, retry_after=2.0, writes_only=True))
    try:
        answer = live.api.post(f"/v1/tickets/cw-main:{live.sim.sample_ticket_id()}/replies",
                               json={"text": "throttled reply"}, headers={"Idempotency-Key": "throttled reply"})
        assert answer.status_code == 202, answer.text
        page.wait_for_selector("#connection-cw-main .badge[data-refresh-in]", timeout=15_000)  # connection.paused
        assert not_reloaded(page)
        shot(page, "connections")
    finally:
        live.sim.set_faults(Faults())
    assert live.wait(answer.json()["write_id"], {"succeeded"}) == "succeeded"
    # The pause runs out (and connection.recovered arrives): the badge goes, still without a reload.
    page.wait_for_selector("#connection-cw-main .badge[data-refresh-in]", state="detached", timeout=15_000)
    assert not_reloaded(page)
    context.close()


def test_pages_read_and_retry_with_javascript_off(live: Live, chromium) -> None:
    write_id, ticket = live.dead_letter("retry without script")
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live.base)
    page.wait_for_url(f"{live.base}/console/dead-letters")
    page.click(f"a[href='/console/dead-letters/{write_id}']")
    assert page.locator("#timeline .row").count() >= 3
    page.click("#retry")
    assert "Are you sure?" in page.content()  # the server asks, since no script can
    assert live.api.get(f"/v1/writes/{write_id}").json()["status"] == "dead"
    page.click("button.primary")
    # The write page refreshes itself (meta refresh in <noscript>) until the write finishes.
    page.wait_for_selector("#write-status.status-succeeded", timeout=30_000)
    assert len([n for n in live.sim.ticket_notes(ticket) if "retry without script" in (n.get("text") or "")]) == 1
    context.close()


def test_the_gateway_stops_while_a_console_page_follows_its_events(live: Live, chromium) -> None:
    """An open event stream never ends by itself; ``gateway serve`` must not wait for it forever."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*live.gateway, "serve", "--port", str(port)], env=live.env)
    context = chromium.new_context()
    try:
        _wait_healthy(base, [server])
        page = context.new_page()
        sign_in(page, base)
        page.wait_for_url(f"{base}/console/dead-letters")
        page.wait_for_selector("#live[data-state=open]")
        server.terminate()
        server.wait(timeout=30)  # before the grace period, uvicorn waited for the stream until the tab closed
        page.wait_for_selector("#live[data-state=connecting]")  # the page knows, and will resume
    finally:
        context.close()
        if server.poll() is None:
            server.kill()
            server.wait()


class _Attacker(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args: object) -> None:
        return None


def test_a_retry_posted_from_another_origin_is_refused(live: Live, chromium) -> None:
    write_id, _ = live.dead_letter("cross-site retry")
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, live.base)
    page.wait_for_url(f"{live.base}/console/dead-letters")
    _Attacker.html = (
        f'<form id="f" method="post" action="{live.base}/console/dead-letters/{write_id}/retry">'
        '<input name="confirmed" value="yes"><input name="csrf" value="guessed"></form>'
        '<script>document.getElementById("f").submit()</script>'
    ).encode()
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        with page.expect_navigation(url=f"{live.base}/console/dead-letters/{write_id}/retry"):
            page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        assert "Refused" in page.content()
    finally:
        attacker.shutdown()
    time.sleep(0.3)
    assert live.api.get(f"/v1/writes/{write_id}").json()["status"] == "dead"
    context.close()


def test_the_api_reference_renders_with_no_request_leaving_the_gateway(live: Live, chromium) -> None:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for path, name in (("/schema", "schema"), ("/schema/swagger", "schema-swagger")):
        page.goto(f"{live.base}{path}")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "MSP integration gateway" in page.locator(".swagger-ui .info .title").inner_text()
        if name == "schema":
            assert page.locator(".opblock").count() > 10  # the operations rendered
            shot(page, name, full_page=False)
    outside = [u for u in requested if not u.startswith(live.base) and not u.startswith("data:")]
    assert requested and not outside, outside
    context.close()
