"""A real browser for tests: Debian's ``chromium``, driven by Playwright.

Playwright's own browser download needs the internet; Debian's package does not. When no
chromium is on the PATH and the test run is root (CI, a fresh developer machine), it is
installed with apt-get once; otherwise the caller is told how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

NAMES = ("chromium", "chromium-browser")
INSTALL = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600",
           "chromium", "fonts-dejavu-core"]


def find_chromium() -> str | None:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium() -> str:
    """The chromium executable, installed from Debian's packages first if missing.

    Raises ``RuntimeError`` saying what to do when it is missing and cannot be installed here.
    """
    found = find_chromium()
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise RuntimeError("the browser tests need chromium: run `apt-get install -y chromium` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL)
    done = subprocess.run(INSTALL, env=env, capture_output=True, text=True)
    found = find_chromium()
    if not found:
        raise RuntimeError(f"installing chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return found
