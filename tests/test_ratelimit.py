"""The per-connection limiter: rolling windows, booking without sleeping, 429 pauses, shared
by every process (two limiter objects on one redis-server stand in for two workers)."""

import time

import redis

from gateway.models import RateLimitPolicy, RateLimitWindow
from gateway.ratelimit import RateLimiter

FIVE_PER_SECOND = RateLimitPolicy(windows=(RateLimitWindow(5, 1.0),))


def test_a_window_allows_its_limit_then_books_the_next_slot(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, guard=0.0)
    waits = [limiter.reserve("c1", FIVE_PER_SECOND) for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    # The sixth and seventh are booked one second after the first and second calls.
    assert 0.9 < waits[5] <= 1.0 and 0.9 < waits[6] <= 1.01


def test_two_processes_share_one_budget(redis_client: redis.Redis, redis_server) -> None:
    other = RateLimiter(redis.Redis.from_url(redis_server.url))
    limiter = RateLimiter(redis_client)
    allowed = sum(1 for i in range(10) if (limiter if i % 2 else other).reserve("c2", FIVE_PER_SECOND) == 0.0)
    assert allowed == 5


def test_connections_do_not_share_budgets(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    for _ in range(5):
        limiter.reserve("busy", FIVE_PER_SECOND)
    assert limiter.reserve("busy", FIVE_PER_SECOND) > 0
    assert limiter.reserve("idle", FIVE_PER_SECOND) == 0.0


def test_asking_without_booking_spends_nothing(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    for _ in range(5):
        limiter.reserve("c3", FIVE_PER_SECOND)
    first = limiter.reserve("c3", FIVE_PER_SECOND, max_wait=0)
    second = limiter.reserve("c3", FIVE_PER_SECOND, max_wait=0)
    assert abs(first - second) < 0.05


def test_every_window_must_allow_the_call(redis_client: redis.Redis) -> None:
    policy = RateLimitPolicy(windows=(RateLimitWindow(100, 1.0), RateLimitWindow(3, 60.0)))
    limiter = RateLimiter(redis_client)
    assert [limiter.reserve("c4", policy) for _ in range(3)] == [0.0] * 3
    assert limiter.reserve("c4", policy) > 59


def test_headroom_keeps_part_of_the_budget_free(redis_client: redis.Redis) -> None:
    policy = RateLimitPolicy(windows=(RateLimitWindow(10, 60.0),), headroom=0.5)
    limiter = RateLimiter(redis_client)
    assert sum(1 for _ in range(10) if limiter.reserve("c5", policy) == 0.0) == 5


def test_a_pause_holds_every_call_until_retry_after(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    limiter.pause("c6", 2.0)
    wait = limiter.reserve("c6", FIVE_PER_SECOND)
    assert 1.5 < wait <= 2.0
    assert limiter.reserve("c6", RateLimitPolicy()) > 1.5  # even with no windows configured


def test_concurrency_slots_cap_calls_in_flight(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    tokens = [limiter.acquire_slot("c7", 3, 30) for _ in range(4)]
    assert tokens[3] is None and all(tokens[:3])
    limiter.release_slot("c7", tokens[0])
    assert limiter.acquire_slot("c7", 3, 30) is not None


def test_booked_slots_drain_at_the_configured_rate(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, guard=0.0)
    policy = RateLimitPolicy(windows=(RateLimitWindow(10, 1.0),))
    waits = [limiter.reserve("c8", policy) for _ in range(50)]
    # 50 calls at 10 per second: the last is booked about 4 seconds out, never sooner.
    assert 3.9 < max(waits) < 4.1
    time.sleep(0)


def test_a_prepaid_slot_does_not_jump_a_429_pause(redis_client: redis.Redis) -> None:
    import httpx
    import pytest
    import respx

    from gateway import context
    from gateway.errors import VendorRateLimited
    from gateway.models import Connection
    from gateway.redact import Redactor
    from gateway.runtime import Runtime
    from gateway.vendor_http import VendorHTTP

    limiter = RateLimiter(redis_client)
    from opentelemetry import trace

    runtime = Runtime(redis_client, limiter, Redactor(), trace.get_tracer("test"))
    conn = Connection(id="p1", workspace="w", vendor="v", base_url="https://vendor.example", runtime=runtime,
                      rate_limit=FIVE_PER_SECOND)
    http = VendorHTTP(conn)
    limiter.pause("p1", 2.0)
    token = context.current.set(context.CallContext(prepaid=True, defer_on_limit=True))
    try:
        with respx.mock(assert_all_called=False) as vendor:
            route = vendor.post("https://vendor.example/notes").mock(return_value=httpx.Response(201, json={}))
            with pytest.raises(VendorRateLimited) as raised:
                http.post("/notes", json={"text": "x"})
            assert not route.called
            assert 1.5 < raised.value.retry_after <= 2.0
    finally:
        context.current.reset(token)
        http.close()


def test_the_guard_books_each_window_a_little_longer_than_the_vendor_counts(redis_client: redis.Redis) -> None:
    """Calls arrive at the vendor a few ms after they are booked, unevenly: booking "five in any
    second" exactly let a sixth land inside the vendor's second. The guard keeps a margin."""
    limiter = RateLimiter(redis_client, guard=0.03)
    first_booked = time.time()
    waits = [limiter.reserve("g1", FIVE_PER_SECOND) for _ in range(5)]
    sixth = limiter.reserve("g1", FIVE_PER_SECOND)
    asked = time.time()
    assert waits == [0.0] * 5
    # The sixth slot is 1.03 s after the first call, not 1.0 s.
    assert 1.03 - 0.001 <= (asked + sixth) - first_booked <= 1.03 + (asked - first_booked) + 0.001


def test_reads_stop_at_their_share_and_leave_the_rest_to_writes(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client, guard=0.0)
    policy = RateLimitPolicy(windows=(RateLimitWindow(10, 60.0),), read_share=0.3)
    reads = [limiter.reserve("s1", policy, read=True, max_wait=0) for _ in range(6)]
    assert reads[:3] == [0.0] * 3 and all(wait > 50 for wait in reads[3:])
    writes = [limiter.reserve("s1", policy, max_wait=0) for _ in range(8)]
    assert writes[:7] == [0.0] * 7 and writes[7] > 50
    used = limiter.budget_used("s1", policy)[0]
    assert (used["reads"], used["writes"], used["read_limit"]) == (3, 7, 3)
