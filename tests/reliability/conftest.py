"""Reliability and security suites: chaos (slow: ``make chaos``), fuzz (slow: ``make fuzz``),
rq failure modes and the security matrix. Each keeps a fast slice in ``make test``.

Shared helpers live in ``reliability_kit.py`` beside this file (put on ``sys.path`` here, as
the suite runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
