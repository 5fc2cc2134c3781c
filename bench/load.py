"""A loopback HTTP/1.1 load generator that runs in its own process.

A Python client (httpx) costs more CPU per request than a bare Litestar endpoint does, so on
two cores it would cap the baseline of figure 4 and flatter the gateway. This one sends
pre-encoded requests over keep-alive connections with asyncio streams and parses only the
status line and the body length: a few microseconds a request.

``LoadSpec`` says what to send: either ``count`` requests in order (each of ``requests`` once,
cycling), or as many as fit in ``duration`` seconds after ``warmup``. ``start_load`` runs it in
a process of its own and returns a handle whose ``result()`` is the ``LoadResult``.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field


def http_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """An encoded HTTP/1.1 POST with a JSON body."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *[f"{k}: {v}" for k, v in (headers or {}).items()],
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


def http_get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    """An encoded HTTP/1.1 GET."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *[f"{k}: {v}" for k, v in (headers or {}).items()], "", ""]
    return "\r\n".join(lines).encode()


@dataclass
class LoadSpec:
    host: str
    port: int
    requests: list[bytes]
    concurrency: int = 16
    count: int | None = None
    duration: float | None = None
    warmup: float = 0.0
    max_seconds: float = 600.0  # every load loop is bounded in time as well as count


@dataclass
class LoadResult:
    completed: int = 0  # answered inside the measured window
    answered: int = 0  # answered at all, warm-up included
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    first_sent: float = 0.0  # time.monotonic(), one clock across processes on Linux
    last_answered: float = 0.0
    measured_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.completed / self.measured_seconds if self.measured_seconds else 0.0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    index = lower.find(b"content-length:")
    if index >= 0:
        end = lower.find(b"\r\n", index)
        length = int(lower[index + 15:end])
        if length:
            await reader.readexactly(length)
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _run(spec: LoadSpec) -> LoadResult:
    result = LoadResult()
    statuses: dict[int, int] = {}
    next_index = 0
    begin = time.monotonic()
    measure_from = begin + spec.warmup
    stop_at = measure_from + spec.duration if spec.duration is not None else begin + spec.max_seconds
    hard_stop = begin + spec.max_seconds

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(spec.host, spec.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def client() -> None:
        nonlocal next_index
        reader, writer = await connect()
        try:
            while True:
                now = time.monotonic()
                if now >= stop_at or now >= hard_stop:
                    return
                if spec.count is not None:
                    if next_index >= spec.count:
                        return
                    index = next_index
                    next_index += 1
                else:
                    index = next_index
                    next_index += 1
                request = spec.requests[index % len(spec.requests)]
                sent = time.monotonic()
                if not result.first_sent:
                    result.first_sent = sent
                try:
                    writer.write(request)
                    status = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await connect()
                    continue
                answered = time.monotonic()
                result.answered += 1
                if answered >= measure_from and (spec.duration is None or answered <= stop_at):
                    result.completed += 1
                    statuses[status] = statuses.get(status, 0) + 1
                    result.latencies.append(answered - sent)
                result.last_answered = answered
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(spec.concurrency)))
    end = min(time.monotonic(), stop_at) if spec.duration is not None else result.last_answered
    start = measure_from if spec.duration is not None else result.first_sent
    result.measured_seconds = max(0.0, end - start)
    result.statuses = statuses
    return result


def run_load(spec: LoadSpec) -> LoadResult:
    """Run ``spec`` in this process."""
    return asyncio.run(_run(spec))


class LoadRun:
    """A load running in its own process (``python -m bench.load``): its imports are asyncio
    and this module, so it starts in a few tens of milliseconds and competes for nothing."""

    def __init__(self, spec: LoadSpec) -> None:
        self._dir = tempfile.mkdtemp(prefix="bench-load-")
        spec_path = os.path.join(self._dir, "spec.pickle")
        self._result_path = os.path.join(self._dir, "result.pickle")
        with open(spec_path, "wb") as out:
            pickle.dump(spec, out)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.load", spec_path, self._result_path],
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        self._result: LoadResult | None = None

    def done(self) -> bool:
        return self._process.poll() is not None

    def result(self, timeout: float | None = None) -> LoadResult:
        if self._result is None:
            code = self._process.wait(timeout=timeout)
            if code != 0:
                raise RuntimeError(f"the load process failed with exit code {code}")
            with open(self._result_path, "rb") as data:
                self._result = pickle.load(data)
            shutil.rmtree(self._dir, ignore_errors=True)
        return self._result

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def start_load(spec: LoadSpec) -> LoadRun:
    """Run ``spec`` in a new process; ``.result()`` waits for its ``LoadResult``."""
    return LoadRun(spec)


def main(argv: list[str]) -> None:
    with open(argv[0], "rb") as data:
        spec = pickle.load(data)
    result = run_load(spec)
    with open(argv[1], "wb") as out:
        pickle.dump(result, out)


if __name__ == "__main__":
    # Through the package name, so that the result pickles as bench.load.LoadResult.
    from bench.load import main as load_main

    load_main(sys.argv[1:])
