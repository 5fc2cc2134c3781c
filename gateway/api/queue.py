"""Unified-queue routes (the synced ticket store): filled in by the queue work."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
