"""What a figure gets: the rig, the run's options, and profiling of a measured window."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import sampler
from bench.rig import Rig, Vendor


@dataclass
class Options:
    quick: bool = False
    rate: int = 20  # R: calls a second allowed on the rate-limited connections
    workers: int = 4
    profile: bool = False


class Context:
    def __init__(self, rig: Rig, options: Options) -> None:
        self.rig = rig
        self.options = options
        self.profiles: dict[str, str] = {}
        self.shared: dict[str, object] = {}  # measurements one figure leaves for another
        self._profile_files: set[Path] = set()

    @property
    def quick(self) -> bool:
        return self.options.quick

    def vendor(self, connection: str) -> Vendor:
        return self.rig.vendors[connection]

    @staticmethod
    def http(base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url, timeout=30.0)

    # -- profiles of measured windows (``--profile``) ---------------------------------------

    def profile_start(self) -> None:
        if not self.options.profile or not self.rig.profile_dir:
            return
        self._profile_files = set(self.rig.profile_dir.glob("*.json"))
        self.rig.profile_signal(signal.SIGUSR1)

    def profile_stop(self, title: str) -> None:
        if not self.options.profile or not self.rig.profile_dir:
            return
        expected = sum(1 for c in [self.rig.api, *self.rig.workers] if c and c.process.poll() is None)
        self.rig.profile_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        new: list[Path] = []
        while time.monotonic() < deadline:
            new = sorted(set(self.rig.profile_dir.glob("*.json")) - self._profile_files)
            if len(new) >= expected:
                break
            time.sleep(0.05)
        self.profiles[title] = sampler.render(title, sampler.merge(new))
