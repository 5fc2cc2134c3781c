"""Write records: accepted atomically, deduplicated by key, chained per ticket."""

import redis

from gateway.writes import WriteRecord, WriteStep, WriteStore, body_hash, now


def record(store: WriteStore, key: str, body: dict, chain: str = "c:1") -> WriteRecord:
    t = now()
    return WriteRecord(
        id=store.new_id(), workspace="w", connection="c", vendor="v", kind="reply", dedup_key=key,
        body_hash=body_hash(body), chain=chain, steps=[WriteStep("reply", body)], request=body,
        created_at=t, updated_at=t, target="c:1",
    )


def test_a_new_write_is_stored_and_heads_its_chain(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    first = record(store, "k1", {"text": "a"})
    accepted = store.accept(first)
    assert accepted.new and accepted.head
    assert store.get(first.id).dedup_key == "k1"
    assert store.chain_head("c:1") == first.id


def test_the_same_key_and_body_returns_the_first_write(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    first = record(store, "k2", {"text": "a"})
    store.accept(first)
    again = store.accept(record(store, "k2", {"text": "a"}))
    assert not again.new and again.write_id == first.id and again.same_body
    assert redis_client.llen("chain:c:1") == 1


def test_the_same_key_with_another_body_is_flagged(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    store.accept(record(store, "k3", {"text": "a"}))
    other = store.accept(record(store, "k3", {"text": "b"}))
    assert not other.new and not other.same_body


def test_dedup_keys_are_kept_at_least_a_day(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    store.accept(record(store, "k4", {"text": "a"}))
    assert redis_client.ttl("dedup:w:k4") >= 24 * 3600 - 5


def test_writes_to_one_ticket_wait_their_turn(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    first, second, third = (record(store, f"k5-{i}", {"text": str(i)}) for i in range(3))
    assert store.accept(first).head
    assert not store.accept(second).head
    assert not store.accept(third).head
    assert store.advance(first) == second.id
    assert store.advance(second) == third.id
    assert store.advance(third) is None


def test_advancing_a_write_that_is_not_the_head_changes_nothing(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    first, second = record(store, "k6a", {"t": 1}), record(store, "k6b", {"t": 2})
    store.accept(first)
    store.accept(second)
    assert store.advance(second) == first.id
    assert store.chain_head("c:1") == first.id


def test_a_lapsed_lock_taken_by_another_run_is_neither_released_nor_extended_by_the_first(redis_client: redis.Redis) -> None:
    store = WriteStore(redis_client)
    first = store.lock("w_lapse", 1)
    assert first is not None
    redis_client.delete("lock:write:w_lapse")  # the first run's lock lapsed...
    second = store.lock("w_lapse", 30)  # ...and another run took it
    assert second is not None
    store.unlock("w_lapse", first)
    assert first.extend(30) is False
    assert store.is_locked("w_lapse"), "the first run freed the second run's lock"
    assert store.lock("w_lapse", 30) is None
    store.unlock("w_lapse", second)
    assert not store.is_locked("w_lapse")
