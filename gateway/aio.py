"""The API's hot paths on the event loop: a pipelined Redis connection, and the gateway's Lua
scripts run by their digest on it.

``Channel`` is one connection per event loop. Each command is written as it is called and the
answers come back in order (RESP pipelining), so requests served at the same time share the
connection and often one read; hiredis parses the answers. It speaks to the Redis the process's
own client names (a plain or TLS socket, a Unix socket, or Sentinel's primary), with that
client's credentials, database and timeouts. redis-py's asyncio client, which the API used
before, spent about twice the CPU on each command (a pooled connection, a timeout task, its
observability hooks); figure 4 pays that on every write.

Errors are redis-py's (``ResponseError``, ``NoScriptError``, ``ConnectionError``,
``TimeoutError`` ...), parsed by redis-py's own parser, so callers handle them as before. A
command that loses its connection, or times out, is sent again on a new one, up to
``RETRIES`` times with a short backoff (as redis-py does); a ``READONLY`` answer (a primary
demoted by a failover) drops the connection and asks Sentinel for the new primary first.

``run_script``: a script registered once on the process's synchronous client (which gives its
text and SHA-1) is sent as ``EVALSHA``, and its text only when Redis does not know it yet (a
restarted or failed-over Redis). The code that builds a script's keys and arguments, and reads
its answer, is the same for both clients (``WriteStore.accept``, ``TicketStore.page``): only the
round trip differs.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 3
_BACKOFF = (0.008, 0.032, 0.128)


class _ErrorReply(Exception):
    """hiredis's form of an error answer, made a redis-py exception before anyone sees it."""


def pack(args: Sequence[Any]) -> bytes:
    """One command in RESP, its arguments encoded as redis-py encodes them."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bool):
            raise TypeError("Redis takes no booleans: send 0/1 or a string")
        elif isinstance(arg, (int, float)):
            data = repr(arg).encode()
        else:
            raise TypeError(f"Redis takes bytes, strings and numbers, not {type(arg).__name__}")
        out += [b"$%d\r\n" % len(data), data, b"\r\n"]
    return b"".join(out)


@dataclass(frozen=True)
class Target:
    """Where a ``Channel`` connects and how it introduces itself: the process's Redis options
    (``host``/``port`` or ``path``; ``username``/``password``, ``db``, TLS), or Sentinel's
    primary of ``master_name``."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    client_name: str | None = None
    ssl: ssl.SSLContext | None = None
    timeout: float | None = None
    connect_timeout: float | None = None
    sentinel: AsyncSentinel | None = None
    master_name: str = ""

    @classmethod
    def of_pool(cls, options: dict[str, Any], *, tls: bool) -> Target:
        """The target a synchronous connection pool's ``connection_kwargs`` name."""
        context = None
        if tls:
            context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"),
                                                 cadata=options.get("ssl_ca_data"))
            if options.get("ssl_certfile"):
                context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
            requirement = options.get("ssl_cert_reqs", "required")
            if isinstance(requirement, str):
                requirement = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(requirement, ssl.CERT_REQUIRED)
            context.check_hostname = bool(options.get("ssl_check_hostname", True)) and requirement != ssl.CERT_NONE
            context.verify_mode = requirement
        return cls(host=options.get("host", "localhost"), port=int(options.get("port", 6379)), path=options.get("path"),
                   username=options.get("username"), password=options.get("password"), db=int(options.get("db") or 0),
                   client_name=options.get("client_name"), ssl=context, timeout=options.get("socket_timeout"),
                   connect_timeout=options.get("socket_connect_timeout"))

    def hello(self) -> list[list[Any]]:
        """The commands a new connection sends before any other."""
        commands: list[list[Any]] = []
        if self.password is not None:
            commands.append(["AUTH", *([self.username] if self.username else []), self.password])
        if self.db:
            commands.append(["SELECT", self.db])
        if self.client_name:
            commands.append(["CLIENT", "SETNAME", self.client_name])
        return commands


class _Connection(asyncio.Protocol):
    """One socket: futures of the commands sent, answered in order as replies arrive."""

    def __init__(self, timeout: float | None) -> None:
        self.reader = hiredis.Reader(replyError=_ErrorReply)
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.timeout = timeout
        self.timed_out = False
        self.lost = False
        self._watch: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.waiting.append((future, loop.time()))
        assert self.transport is not None
        self.transport.write(command)
        if self.timeout and self._watch is None:
            self._watch = loop.call_later(self.timeout, self._check)
        return future

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.waiting:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError:  # not Redis speaking: nothing more on it can be trusted
                assert self.transport is not None
                self.transport.abort()
                return
            if reply is False:
                return
            future, _ = self.waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, _ErrorReply):
                future.set_exception(BaseParser.parse_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._watch is not None:
            self._watch.cancel()
        kind = RedisTimeoutError if self.timed_out else RedisConnectionError
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(kind("Timeout reading from Redis" if self.timed_out
                                          else "Redis closed the connection"))

    def _check(self) -> None:
        """The oldest command waited longer than the timeout: drop the connection (every
        command on it fails, and is sent again on a new one)."""
        self._watch = None
        if not self.waiting or self.lost:
            return
        loop = asyncio.get_running_loop()
        waited = loop.time() - self.waiting[0][1]
        if waited >= self.timeout:  # type: ignore[operator]
            self.timed_out = True
            assert self.transport is not None
            self.transport.abort()
        else:
            self._watch = loop.call_later(self.timeout - waited, self._check)  # type: ignore[operator]

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.close()


class Channel:
    """One pipelined Redis connection for an event loop's hot paths (see the module). Opened
    lazily, opened again after it is lost; belongs to the loop that first used it. Commands
    that block their connection (``WAIT``) go through ``execute_alone`` instead."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._connection: _Connection | None = None
        self._opening: asyncio.Future[_Connection] | None = None
        self._spare: list[_Connection] = []  # connections of execute_alone, idle

    async def execute(self, *args: Any) -> Any:
        """One command's answer (bytes, int, list ...; errors raised as redis-py's)."""
        command = pack(args)
        for attempt in range(RETRIES + 1):
            try:
                connection = self._connection
                if connection is None or connection.lost:
                    connection = await self._shared()
                return await connection.send(command)
            except Exception as exc:  # noqa: BLE001 - _retry re-raises what is not retried
                await self._retry(exc, attempt)
        raise AssertionError("unreachable")

    async def execute_alone(self, *commands: Sequence[Any]) -> list[Any]:
        """Several commands on a connection no other command shares meanwhile (one of WAIT's
        makes the connection wait for the replicas), sent together; their answers in order."""
        packed = [pack(command) for command in commands]
        for attempt in range(RETRIES + 1):
            connection = None
            try:
                connection = self._spare.pop() if self._spare else await self._connect()
                while connection.lost:
                    connection = self._spare.pop() if self._spare else await self._connect()
                futures = [connection.send(command) for command in packed]
                answers = [await future for future in futures]
                self._spare.append(connection)
                return answers
            except Exception as exc:  # noqa: BLE001 - _retry re-raises what is not retried
                if connection is not None:
                    connection.close()
                await self._retry(exc, attempt)
        raise AssertionError("unreachable")

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    async def script_load(self, script: str) -> Any:
        return await self.execute("SCRIPT", "LOAD", script)

    async def mget(self, *keys: Any) -> list[Any]:
        return await self.execute("MGET", *keys)  # type: ignore[no-any-return]

    async def exists(self, *keys: Any) -> int:
        return int(await self.execute("EXISTS", *keys))

    async def hincrby(self, key: Any, field: Any, amount: int = 1) -> int:
        return int(await self.execute("HINCRBY", key, field, amount))

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        while self._spare:
            self._spare.pop().close()

    async def _retry(self, exc: Exception, attempt: int) -> None:
        """After a failed attempt: return to try again (lost connection, timeout, a demoted
        primary), or raise."""
        if isinstance(exc, ReadOnlyError):
            await self.aclose()  # a demoted primary: ask Sentinel where the primary is now
            if attempt == RETRIES:
                raise RedisConnectionError("Redis answered READONLY: no writable primary") from None
        elif not isinstance(exc, (RedisConnectionError, RedisTimeoutError)) or attempt == RETRIES:
            raise exc
        await asyncio.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])

    async def _shared(self) -> _Connection:
        """The shared connection, opened once however many commands wait for it."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._connect())
        opening = self._opening
        try:
            self._connection = await asyncio.shield(opening)
        finally:
            if self._opening is opening and opening.done():
                self._opening = None
        return self._connection

    async def _connect(self) -> _Connection:
        target = self.target
        loop = asyncio.get_running_loop()

        def factory() -> _Connection:
            return _Connection(target.timeout)

        try:
            opening: Awaitable[tuple[Any, _Connection]]
            if target.sentinel is not None:
                host, port = await target.sentinel.discover_master(target.master_name)
                opening = loop.create_connection(factory, host, port)
            elif target.path:
                opening = loop.create_unix_connection(factory, target.path)
            else:
                opening = loop.create_connection(factory, target.host, target.port, ssl=target.ssl)
            _, connection = await asyncio.wait_for(opening, target.connect_timeout)
        except TimeoutError:
            raise RedisTimeoutError("Timeout connecting to Redis") from None
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis: {exc.strerror or exc}") from None
        try:
            for command in target.hello():
                await connection.send(pack(command))  # an error answer (a bad password) is raised
        except BaseException:
            connection.close()
            raise
        return connection


async def run_script(client: Channel, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """``script`` with ``keys`` and ``args``, in one round trip (two the first time Redis sees it)."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.script)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
