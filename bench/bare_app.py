"""The baseline of figure 4: a bare Litestar endpoint that answers 202.

It has the reply route's path and decodes the same JSON body into a msgspec Struct, then
answers with a body of the same shape as the gateway's ``WriteAccepted``, so the difference
from the gateway is the gateway's own work: the API key, ownership and capability checks, the
cached ticket, the dedup key, the write record in Redis, the rq job and the audit span.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import Litestar, post
from litestar.params import FromPath, JSONBody


class Reply(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    internal: bool = False
    status_id: str | None = None


class Accepted(msgspec.Struct):
    write_id: str
    status: str
    dedup_key: str
    duplicate: bool = False


@post("/v1/tickets/{ref:str}/replies", status_code=202, sync_to_thread=False)
def create_reply(ref: FromPath[str], data: JSONBody[Reply]) -> Accepted:
    """Answer 202 as the gateway does, doing none of its work."""
    return Accepted("w_" + uuid.uuid4().hex, "queued", f"gw-{uuid.uuid4().hex}")


def create_bare_app() -> Litestar:
    return Litestar(route_handlers=[create_reply], openapi_config=None, logging_config=None, debug=False)
