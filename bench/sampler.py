"""A stdlib sampling profiler for the benchmark's API and worker processes.

cProfile sees one thread, but the API answers a write in a worker thread and rq's workers run
a housekeeping thread beside their jobs, so this samples every thread's stack
(``sys._current_frames``) every ``interval`` seconds instead. Each sample is put in one class
by its innermost Python frame: ``idle`` (an event loop, thread pool or worker waiting for
work), ``redis`` (waiting on a Redis reply), ``vendor`` (waiting on a vendor's HTTP answer) or
``python`` (running Python, or waiting for the GIL to run it).

In a benchmark process (``bench.proc``), ``SIGUSR1`` starts a fresh profile and ``SIGUSR2``
stops it and writes the counts as JSON into ``$BENCH_PROFILE_DIR``; ``render`` merges the
files of one window into text for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

MAX_DEPTH = 80

# (file suffix, function) of innermost frames that mean "waiting for work".
_IDLE_LEAVES = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("thread.py", "_worker"),  # concurrent.futures: blocked in SimpleQueue.get
}
# Any frame in the stack that means the thread is waiting for work.
_IDLE_ANYWHERE = {"dequeue_job_and_maintain_ttl", "dequeue_any", "_worker_loop_sleep"}


_REPO = str(Path(__file__).resolve().parent.parent) + "/"
_STDLIB = re.compile(r".*/lib/python3\.\d+/")


def _where(code: Any) -> str:
    """``path:first line:function``, the path relative to site-packages, the repo (plugins by
    package) or the standard library (as ``stdlib/...``)."""
    filename = code.co_filename
    index = filename.rfind("site-packages/")
    if index >= 0:
        filename = filename[index + len("site-packages/"):]
    elif filename.startswith(_REPO):
        filename = filename[len(_REPO):]
        if filename.startswith("plugins/"):
            filename = filename.split("/", 2)[-1]
    elif _STDLIB.match(filename):
        filename = "stdlib/" + _STDLIB.sub("", filename)
    return f"{filename}:{code.co_firstlineno}:{code.co_name}"


# Our own code: the gateway and its plugins.
_OURS = ("gateway/", "gateway_")
# Frames that wrap everything (thread and loop plumbing): left out of the inclusive listing.
_PLUMBING = ("stdlib/", "<frozen", "bench/", "gateway/cli.py", "uvicorn/main.py", "uvicorn/server.py",
             "uvicorn/_compat.py")


def classify(frame: FrameType) -> str:
    leaf = frame.f_code
    leaf_key = (os.path.basename(leaf.co_filename), leaf.co_name)
    if leaf_key in _IDLE_LEAVES:
        return "idle"
    names = set()
    f: FrameType | None = frame
    depth = 0
    while f is not None and depth < MAX_DEPTH:
        names.add(f.f_code.co_name)
        f = f.f_back
        depth += 1
    if names & _IDLE_ANYWHERE:
        return "idle"
    path = leaf.co_filename
    if "/redis/" in path and ("_parsers" in path or path.endswith("connection.py")):
        return "redis"
    if "/httpcore/_backends/" in path:
        return "vendor"
    return "python"


class Sampler(threading.Thread):
    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.interval = interval
        self.active = threading.Event()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.samples = 0
            self.classes: Counter[str] = Counter()
            self.inclusive: Counter[str] = Counter()  # non-idle samples a function was on the stack for
            self.own: Counter[str] = Counter()  # "python" samples a function was innermost for
            self.started = time.monotonic()

    def run(self) -> None:
        me = threading.get_ident()
        while True:
            self.active.wait()
            frames = sys._current_frames()
            with self.lock:
                for ident, frame in frames.items():
                    if ident == me:
                        continue
                    kind = classify(frame)
                    self.samples += 1
                    self.classes[kind] += 1
                    if kind == "idle":
                        continue
                    seen = set()
                    f: FrameType | None = frame
                    depth = 0
                    while f is not None and depth < MAX_DEPTH:
                        key = _where(f.f_code)
                        if key not in seen:
                            seen.add(key)
                            self.inclusive[key] += 1
                        f = f.f_back
                        depth += 1
                    if kind == "python":
                        self.own[_where(frame.f_code)] += 1
            del frames
            time.sleep(self.interval)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "seconds": round(time.monotonic() - self.started, 3),
                "samples": self.samples,
                "classes": dict(self.classes),
                "inclusive": dict(self.inclusive.most_common(400)),
                "own": dict(self.own.most_common(400)),
            }


def install(role: str) -> None:
    """Start a paused sampler in this process, driven by SIGUSR1 / SIGUSR2."""
    out_dir = Path(os.environ["BENCH_PROFILE_DIR"])
    sampler = Sampler()
    sampler.start()
    sequence = [0]

    def start(*_: object) -> None:
        sampler.reset()
        sampler.active.set()

    def stop(*_: object) -> None:
        sampler.active.clear()
        sequence[0] += 1
        data = {"role": role, "pid": os.getpid(), **sampler.snapshot()}
        path = out_dir / f"{role}-{os.getpid()}-{sequence[0]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.rename(path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def merge(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Profiles of one window, merged by role (``serve``, ``worker``)."""
    merged: dict[str, dict[str, Any]] = {}
    for path in files:
        data = json.loads(path.read_text())
        role = merged.setdefault(data["role"], {"processes": 0, "samples": 0, "seconds": 0.0,
                                                "classes": Counter(), "inclusive": Counter(), "own": Counter()})
        role["processes"] += 1
        role["samples"] += data["samples"]
        role["seconds"] = max(role["seconds"], data["seconds"])
        for key in ("classes", "inclusive", "own"):
            role[key].update(data[key])
    return merged


def render(title: str, merged: dict[str, dict[str, Any]], top: int = 22) -> str:
    """Text for docs: per role, where the non-idle samples were, and the hottest functions."""
    lines = [f"### Profile: {title}", ""]
    for role, data in sorted(merged.items()):
        classes: Counter[str] = data["classes"]
        busy = sum(v for k, v in classes.items() if k != "idle")
        if not busy:
            continue
        share = ", ".join(f"{k} {100 * classes[k] / busy:.0f}%" for k in ("python", "redis", "vendor") if classes[k])
        lines.append(f"`{role}` ({data['processes']} process(es), {data['seconds']:.1f} s sampled, "
                     f"{busy} busy thread-samples): {share}")
        lines.append("")
        lines.append("```")
        lines.append(f"{'incl%':>6}  gateway and plugin functions (share of busy samples with it on the stack)")
        ours = [(k, c) for k, c in data["inclusive"].most_common() if k.startswith(_OURS)]
        for key, count in ours[:top]:
            lines.append(f"{100 * count / busy:6.1f}  {key}")
        lines.append("")
        lines.append(f"{'incl%':>6}  libraries (the same, outside the gateway and its plugins)")
        libraries = [(k, c) for k, c in data["inclusive"].most_common()
                     if not k.startswith(_PLUMBING) and not k.startswith(_OURS)]
        for key, count in libraries[:12]:
            lines.append(f"{100 * count / busy:6.1f}  {key}")
        python = classes.get("python", 0)
        if python:
            lines.append("")
            lines.append(f"{'self%':>6}  innermost function while running Python")
            for key, count in data["own"].most_common(12):
                lines.append(f"{100 * count / python:6.1f}  {key}")
        lines.append("```")
        lines.append("")
    return "\n".join(lines)
