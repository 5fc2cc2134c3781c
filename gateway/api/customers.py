"""Customer routes (customers across tools, inline actions): filled in by the customers work."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
