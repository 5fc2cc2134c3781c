"""The API's hot paths on an asyncio Redis client: the gateway's Lua scripts, run by their digest.

Each script is registered once on the process's (synchronous) client, which gives its text and
SHA-1; ``run_script`` sends ``EVALSHA`` on an asyncio client and loads the text only when Redis
does not know it yet (a restarted or failed-over Redis). The code that builds a script's keys
and arguments, and reads its answer, is the same for both clients (``WriteStore.accept``,
``TicketStore.page``): only the round trip differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


async def run_script(client: aioredis.Redis, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """``script`` with ``keys`` and ``args``, in one round trip (two the first time Redis sees it)."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.script)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
