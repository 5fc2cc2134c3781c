"""The API's hot-path Redis connection (``gateway.aio.Channel``) against a real redis-server:
pipelined answers reach the command that asked, errors are redis-py's, a lost connection or a
Redis that stops answering costs an error or a retry and never a hang or a wrong answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.aio import Channel, Target, pack, run_script
from gateway.embedded_redis import EmbeddedRedis


def _target(client: redis.Redis, **overrides: object) -> Target:
    options = {**client.connection_pool.connection_kwargs, **overrides}
    return Target.of_pool(options, tls=False)


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_concurrent_commands_each_get_their_own_answer(redis_client: redis.Redis) -> None:
    redis_client.mset({f"k{i}": f"v{i}" for i in range(300)})

    async def main() -> tuple[list[object], int]:
        channel = Channel(_target(redis_client))
        try:
            answers = list(await asyncio.gather(*(channel.execute("GET", f"k{i}") for i in range(300))))
            return answers, redis_client.info("clients")["connected_clients"]
        finally:
            await channel.aclose()

    answers, clients = run(main())  # type: ignore[misc]
    assert answers == [f"v{i}".encode() for i in range(300)]
    assert clients == 2  # this test's client and one connection the 300 commands shared


def test_an_error_answer_is_redis_pys_and_leaves_the_connection_usable(redis_client: redis.Redis) -> None:
    redis_client.set("text", "x")

    async def main() -> None:
        channel = Channel(_target(redis_client))
        with pytest.raises(NoScriptError):
            await channel.evalsha("0" * 40, 0)
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await channel.execute("HGET", "text", "field")
        assert await channel.execute("GET", "text") == b"x"
        await channel.aclose()

    run(main())


def test_run_script_loads_a_script_redis_does_not_know(redis_client: redis.Redis) -> None:
    script = redis_client.register_script("return {KEYS[1], ARGV[1]}")
    redis_client.script_flush()

    async def main() -> object:
        channel = Channel(_target(redis_client))
        try:
            return await run_script(channel, script, ["a"], [b"b\x00c"])
        finally:
            await channel.aclose()

    assert run(main()) == [b"a", b"b\x00c"]


def test_a_killed_connection_is_opened_again_and_the_command_answered(redis_client: redis.Redis) -> None:
    redis_client.set("k", "v")

    async def main() -> None:
        channel = Channel(_target(redis_client))
        assert await channel.execute("CLIENT", "SETNAME", "hot-path") == b"OK"
        redis_client.client_kill_filter(_type="normal", skipme=True)  # every client but this one
        assert await channel.execute("GET", "k") == b"v"
        await channel.aclose()

    run(main())


def test_a_redis_that_stops_answering_is_a_timeout_not_a_hang(redis_client: redis.Redis) -> None:
    async def main() -> None:
        channel = Channel(_target(redis_client, socket_timeout=0.2))
        with pytest.raises(RedisTimeoutError):
            await channel.execute("BLPOP", "never-filled", 0)  # blocks its connection for ever
        assert await channel.execute("PING") == b"PONG"  # a new connection
        await channel.aclose()

    run(main())


def test_a_blocking_command_alone_does_not_hold_up_the_shared_connection(redis_client: redis.Redis) -> None:
    async def main() -> list[str]:
        channel = Channel(_target(redis_client))
        finished: list[str] = []

        async def blocking() -> None:
            await channel.execute_alone(["SET", "marker", "1"], ["BLPOP", "never-filled", 1])
            finished.append("blocking")

        async def shared() -> None:
            await channel.execute("GET", "marker")
            finished.append("shared")

        await asyncio.gather(blocking(), shared())
        await channel.aclose()
        return finished

    assert run(main()) == ["shared", "blocking"]


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "locked", aof=False).start()
    redis.Redis(port=server.port).config_set("requirepass", "s3cret-pass")
    yield server
    server.stop()


def test_credentials_and_database_are_the_process_clients(locked_redis: EmbeddedRedis) -> None:
    client = redis.Redis(port=locked_redis.port, password="s3cret-pass", db=3)
    client.set("k", "in db 3")

    async def main(target: Target) -> object:
        channel = Channel(target)
        try:
            return await channel.execute("GET", "k")
        finally:
            await channel.aclose()

    assert run(main(_target(client))) == b"in db 3"
    with pytest.raises(AuthenticationError) as refused:
        run(main(_target(client, password="wrong")))
    assert "wrong" not in str(refused.value)


def test_arguments_are_encoded_as_redis_py_encodes_them() -> None:
    assert pack(["SET", b"k", 1.5, 7]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.5\r\n$1\r\n7\r\n"
    with pytest.raises(TypeError):
        pack(["SET", "k", None])
