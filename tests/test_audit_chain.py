"""The audit hash chain: `gateway audit verify` names every tampering done to the records in
Redis, an untouched chain verifies, concurrent writers cannot fork it, and retention keeps it
verifiable from the trim point."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest
import redis

from gateway import audit, audit_chain
from gateway.cli import main
from gateway.embedded_redis import EmbeddedRedis
from gateway.redact import Redactor


@pytest.fixture
def cli(redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``gateway ARGS`` against the test Redis; answer (exit code, output)."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().out

    return run


def emit(client: redis.Redis, count: int, workspace: str | None = "acme", *, keep_records: int = 200_000,
         label: str = "call") -> None:
    """``count`` audited vendor calls through the gateway's own tracer provider."""
    provider = audit.build_tracer_provider(client, Redactor(), "test", keep_records=keep_records)
    tracer = audit.tracer(provider)
    for i in range(count):
        attributes = {"gateway.kind": "vendor_call", "gateway.write_id": f"w_{label}_{i}", "http.status_code": 201}
        if workspace:
            attributes["gateway.workspace"] = workspace
        with tracer.start_as_current_span(f"{label} {i}", attributes=attributes):
            pass
    provider.shutdown()


def member(client: redis.Redis, seq: int, workspace: str = "acme") -> bytes:
    [raw] = client.zrangebyscore(audit_chain.chain_key(workspace), seq, seq)
    return raw


def ids(raw: bytes) -> str:
    record = json.loads(raw)
    return f"(trace {record['trace_id']}, span {record['span_id']})"


def test_an_untouched_chain_verifies_per_workspace_and_unscoped_records_get_their_own(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 30, "acme")
    emit(redis_client, 12, "globex")
    emit(redis_client, 3, None)
    code, out = cli("audit", "verify")
    assert code == 0, out
    assert "audit chain acme: 30 records verified (seq 1..30)" in out
    assert "audit chain globex: 12 records verified (seq 1..12)" in out
    assert f"audit chain {audit_chain.UNSCOPED}: 3 records verified (seq 1..3)" in out
    code, out = cli("audit", "verify", "--workspace", "globex")
    assert (code, out.strip()) == (0, "audit chain globex: 12 records verified (seq 1..12)")


def test_records_read_back_exactly_as_before_the_chain(redis_client: redis.Redis) -> None:
    emit(redis_client, 2, "acme")
    [first] = audit.read_audit(redis_client, write_id="w_call_0")
    assert first.name == "call 0" and first.attributes["gateway.workspace"] == "acme"
    assert "seq" not in json.loads(audit._encoder.encode(first))
    assert [r.name for r in audit.read_audit(redis_client)] == ["call 0", "call 1"]
    stored = json.loads(member(redis_client, 2))
    assert stored["seq"] == 2 and stored["prev"] == audit_chain.digest(member(redis_client, 1))


def test_an_edited_field_is_named(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 40)
    key = audit_chain.chain_key("acme")
    raw = member(redis_client, 17)
    edited = raw.replace(b'"http.status_code":201', b'"http.status_code":500')
    assert edited != raw
    redis_client.zrem(key, raw)
    redis_client.zadd(key, {edited: 17})
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1
    assert f"BROKEN at seq 17 {ids(raw)} edited" in out


def test_an_edited_newest_record_is_named(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 5)
    key = audit_chain.chain_key("acme")
    raw = member(redis_client, 5)
    redis_client.zrem(key, raw)
    redis_client.zadd(key, {raw.replace(b'"call 4"', b'"call 9"'): 5})
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1 and f"BROKEN at seq 5 {ids(raw)} edited" in out


def test_a_changed_link_is_named_as_an_edit_of_that_record(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 10)
    key = audit_chain.chain_key("acme")
    raw = member(redis_client, 6)
    prev = json.loads(raw)["prev"]
    redis_client.zrem(key, raw)
    redis_client.zadd(key, {raw.replace(prev.encode(), b"f" * 64): 6})
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1 and f"BROKEN at seq 6 {ids(raw)} edited: its link to seq 5 was changed" in out


def test_a_deleted_record_is_named(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 40)
    removed = member(redis_client, 23)
    redis_client.zrem(audit_chain.chain_key("acme"), removed)
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1
    assert (f"BROKEN at seq 23 {ids(removed)} removed: seq 23 missing: the record after seq 22 is seq 24 "
            f"{ids(member(redis_client, 24))}; a copy in audit:all remains") in out
    # With the read-back copy gone too, the break is still named by its place.
    redis_client.lrem(audit.AUDIT_ALL, 0, removed)
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1 and "BROKEN at seq 23 removed: seq 23 missing: the record after seq 22 is seq 24" in out


def test_two_swapped_records_are_named(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 40)
    a, b = member(redis_client, 11), member(redis_client, 12)
    redis_client.zadd(audit_chain.chain_key("acme"), {a: 12, b: 11})
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1
    assert f"BROKEN at seq 11 {ids(a)} reordered: found after seq 12" in out


def test_a_record_moved_far_back_is_named(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 30)
    moved = member(redis_client, 4)
    redis_client.zadd(audit_chain.chain_key("acme"), {moved: 20.5})
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1 and f"BROKEN at seq 4 {ids(moved)} reordered: found after seq 5" in out


def test_a_cut_tail_is_named_from_the_head_or_against_a_checkpoint(redis_client: redis.Redis, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 50)
    checkpoint = tmp_path / "checkpoint.json"
    code, out = cli("audit", "checkpoint", "--out", str(checkpoint))
    assert code == 0
    [saved] = json.loads(checkpoint.read_text())
    assert (saved["workspace"], saved["seq"], saved["digest"]) == ("acme", 50, audit_chain.digest(member(redis_client, 50)))
    assert saved["time"]
    key = audit_chain.chain_key("acme")

    redis_client.zremrangebyscore(key, 46, 50)  # a careless cut: the head still says 50
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1 and "BROKEN at seq 46" in out and "removed: seq 46..50 are missing from the end" in out

    # A careful cut rewinds the head too: only the checkpoint shows it.
    redis_client.hset(audit_chain.head_key("acme"), mapping={"seq": 45, "digest": audit_chain.digest(member(redis_client, 45))})
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 0 and "45 records verified" in out
    code, out = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert code == 1
    assert "BROKEN at seq 46 removed: seq 46..50 are missing from the end" in out and "vouches for seq 50" in out


def test_a_checkpoint_of_an_intact_chain_matches(redis_client: redis.Redis, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 8)
    checkpoint = tmp_path / "acme.json"
    assert cli("audit", "checkpoint", "--workspace", "acme", "--out", str(checkpoint))[0] == 0
    emit(redis_client, 4, label="later")
    code, out = cli("audit", "verify", "--workspace", "acme", "--checkpoint", str(checkpoint))
    assert code == 0 and "12 records verified" in out and "checkpoint: seq 8 matches" in out


def test_a_rewritten_chain_differs_from_its_checkpoint(redis_client: redis.Redis, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 6)
    checkpoint = tmp_path / "acme.json"
    cli("audit", "checkpoint", "--out", str(checkpoint))
    # An attacker rebuilds the whole chain with one record changed, recomputing every link.
    for key in (audit_chain.chain_key("acme"), audit_chain.head_key("acme")):
        redis_client.delete(key)
    chain = audit_chain.AuditChain(redis_client)
    for seq in range(1, 7):
        chain.append("acme", b'{"name":"forged %d"}' % seq, newest_first="scratch", newest_first_cap=10)
    code, out = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert code == 1 and "BROKEN at seq 6 edited: the chain up to this record was rewritten" in out


def _append_from_a_process(url: str, count: int, label: str) -> None:
    emit(redis.Redis.from_url(url), count, label=label)


def test_concurrent_appends_from_threads_and_processes_still_verify(redis_client: redis.Redis, redis_server: EmbeddedRedis, cli) -> None:  # type: ignore[no-untyped-def]
    threads = [threading.Thread(target=emit, args=(redis.Redis.from_url(redis_server.url), 40), kwargs={"label": f"t{i}"})
               for i in range(4)]
    # One provider shared by several threads too (the API's case).
    provider = audit.build_tracer_provider(redis_client, Redactor(), "test")

    def shared(label: str) -> None:
        for i in range(40):
            with audit.tracer(provider).start_as_current_span(label, attributes={
                    "gateway.kind": "vendor_call", "gateway.workspace": "acme"}):
                pass

    threads += [threading.Thread(target=shared, args=(f"s{i}",)) for i in range(3)]
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_append_from_a_process, args=(redis_server.url, 40, f"p{i}")) for i in range(3)]
    for worker in [*threads, *processes]:
        worker.start()
    during = []  # verifying while the appends go on sees no break either
    while any(w.is_alive() for w in threads) or any(p.is_alive() for p in processes):
        during.append(audit_chain.verify(redis_client, "acme"))
    for worker in [*threads, *processes]:
        worker.join(timeout=120)
    assert during and [r.describe() for r in during if not r.ok] == []
    assert all(p.exitcode == 0 for p in processes)
    total = 40 * (4 + 3 + 3)
    assert redis_client.zcard(audit_chain.chain_key("acme")) == total
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 0, out
    assert f"{total} records verified (seq 1..{total})" in out


def test_retention_trims_the_oldest_and_the_rest_still_verifies(redis_client: redis.Redis, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 10, keep_records=20)
    early = tmp_path / "early.json"
    cli("audit", "checkpoint", "--out", str(early))
    emit(redis_client, 40, keep_records=20, label="later")
    assert redis_client.zcard(audit_chain.chain_key("acme")) == 20
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 0, out
    assert "20 records verified (seq 31..50, trimmed by retention before seq 31)" in out
    code, out = cli("audit", "verify", "--checkpoint", str(early))
    assert code == 0 and "seq 10 was trimmed by retention" in out
    # The trim anchor keeps the first kept record honest: removing it is still a break.
    first = member(redis_client, 31)
    redis_client.zrem(audit_chain.chain_key("acme"), first)
    code, out = cli("audit", "verify", "--workspace", "acme")
    assert code == 1 and f"BROKEN at seq 31 {ids(first)} removed: seq 31 missing: the record after seq 30 is seq 32" in out


def test_a_checkpoint_at_the_trim_point_is_checked_against_the_anchor(redis_client: redis.Redis, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 30, keep_records=20)
    checkpoint = tmp_path / "cp.json"
    cli("audit", "checkpoint", "--out", str(checkpoint))
    emit(redis_client, 20, keep_records=20, label="later")  # seq 30 is now the last trimmed record
    code, out = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert code == 0 and "checkpoint: seq 30 matches" in out


def test_a_missing_head_is_a_break(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 5)
    redis_client.delete(audit_chain.head_key("acme"))
    code, out = cli("audit", "verify")
    assert code == 1 and "BROKEN at seq 6 removed: the chain's head (audit:head:acme) is missing" in out


def test_a_head_rewound_over_records_left_in_place_is_a_break(redis_client: redis.Redis, cli) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 9)
    redis_client.hset(audit_chain.head_key("acme"), mapping={"seq": 6, "digest": audit_chain.digest(member(redis_client, 6))})
    code, out = cli("audit", "verify")
    assert code == 1 and "BROKEN at seq 6 edited: the head was rewound: records up to seq 9 lie past it" in out


def test_verification_pages_through_chains_longer_than_one_page(redis_client: redis.Redis, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(audit_chain, "PAGE", 7)
    emit(redis_client, 60)
    assert cli("audit", "verify")[0] == 0
    a, b = member(redis_client, 42), member(redis_client, 43)  # the last of page 6, the first of page 7
    redis_client.zadd(audit_chain.chain_key("acme"), {a: 43, b: 42})
    code, out = cli("audit", "verify")
    assert code == 1 and f"BROKEN at seq 42 {ids(a)} reordered: found after seq 43" in out
    redis_client.zadd(audit_chain.chain_key("acme"), {a: 42, b: 43})
    assert cli("audit", "verify")[0] == 0
    redis_client.zrem(audit_chain.chain_key("acme"), b)
    code, out = cli("audit", "verify")
    assert code == 1 and f"BROKEN at seq 43 {ids(b)} removed: seq 43 missing" in out


def test_an_unreadable_checkpoint_file_is_refused_plainly(redis_client: redis.Redis, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    emit(redis_client, 2)
    bad = tmp_path / "bad.json"
    bad.write_text('{"workspace": "acme"}')
    assert cli("audit", "verify", "--checkpoint", str(bad))[0] == 2
    assert cli("audit", "verify", "--checkpoint", str(tmp_path / "missing.json"))[0] == 2
    assert cli("audit", "checkpoint", "--workspace", "nobody")[0] == 2


def test_a_negative_retention_is_refused_at_start_up() -> None:
    from gateway.errors import ConfigError
    from gateway.settings import parse_settings

    assert parse_settings("[gateway]\naudit_keep_records = 0\n").gateway.audit_keep_records == 0
    with pytest.raises(ConfigError, match="gateway.audit_keep_records"):
        parse_settings("[gateway]\naudit_keep_records = -1\n")


def test_verifying_while_retention_trims_reports_no_false_break(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_chain, "PAGE", 5)  # many pages, so trims land between them
    emit(redis_client, 30, keep_records=30)
    writer = threading.Thread(target=emit, args=(redis_client, 400), kwargs={"keep_records": 30, "label": "busy"})
    writer.start()
    reports = []
    while writer.is_alive():
        reports.append(audit_chain.verify(redis_client, "acme"))
    writer.join()
    assert reports and [r.describe() for r in reports if r.broken] == []
    final = audit_chain.verify(redis_client, "acme")
    assert final.ok and (final.first_seq, final.last_seq) == (401, 430)
