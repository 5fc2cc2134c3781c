"""What the OpenAPI document declares beyond what Litestar reads from handler signatures, so a
client generated from ``/schema/openapi.json`` can make every call:

- the ``Idempotency-Key`` header of every write that honours it, with the length
  ``common.idempotency_key`` enforces;
- the reply route's two encodings, JSON and multipart with ``files`` (its handler reads the body
  itself, so Litestar sees nothing to declare), and the webhook route's raw vendor body;
- request examples that work against ``gateway demo`` (its references and status ids).

Routes opt in with ``operation_class=declared(...)`` in their decorator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import Encoding, Example, OpenAPIMediaType, Operation, Parameter, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from gateway.api.schemas import IDEMPOTENCY_KEY_MAX_LENGTH, ReplyCreate

# The demo's records (gateway demo): its ConnectWise connection, a Help Desk ticket and that
# board's "In Progress" status, a NinjaOne alert, the Acme customer, and the write id shape.
DEMO_TICKET = "cw-main:1"
DEMO_STATUS = "17"
DEMO_ALERT = "ninja-main:1502b9fd-b9f2-5cd9-9f5b-97d45204a8ff"
DEMO_EXAMPLES = {
    "ref": DEMO_TICKET,
    "connection_id": "cw-main",
    "customer_id": "acme",
    "write_id": "w_5f0c1e9a2b7d4c8e9f1a3b5c7d9e1f20",
}

# Request examples, by operation: each one is a call that works against the demo.
REPLY_EXAMPLES = {
    "reply": {"text": "We are on it"},
    "internal_note_with_status": {"text": "Checked the logs", "internal": True, "status_id": DEMO_STATUS},
}
STATUS_EXAMPLES = {"in_progress": {"status_id": DEMO_STATUS}}
TIME_ENTRY_EXAMPLES = {"quarter_hour": {"minutes": 15, "notes": "Replaced the toner"}}
TICKET_EXAMPLES = {
    "connectwise_help_desk": {
        "connection": "cw-main", "summary": "Printer on 3rd floor jammed", "fields": {"board": "1", "company": "250"},
    },
}
ALERT_ACTION_EXAMPLES = {"resolve": {"action": "resolve"}}

IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=IDEMPOTENCY_KEY_MAX_LENGTH),
    description=(
        "Makes a retry safe: the same key with the same body answers the first write "
        "(`duplicate: true`) and the vendor sees one effect; the same key with another body is a 422. "
        f"1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters, remembered for `idempotency_hours`. "
        "Without it the gateway stamps a key of its own."
    ),
    examples={"demo": Example(value="demo-1")},
)


def _examples(values: dict[str, Any]) -> dict[str, Example]:
    return {name: Example(summary=name.replace("_", " "), value=value) for name, value in values.items()}


def _reply_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON body (``ReplyCreate`` as msgspec checks it) and the multipart body: the same
    fields as form fields plus ``files`` parts."""
    found = msgspec.json.schema(ReplyCreate)
    as_json = dict(found["$defs"]["ReplyCreate"])
    as_json.pop("title", None)  # generators name the model after the operation
    properties = dict(as_json["properties"])
    status_id = next(s for s in properties["status_id"]["anyOf"] if s.get("type") == "string")
    form = {
        "type": "object",
        "description": "The reply's fields as form fields, plus one `files` part per attachment.",
        "properties": {
            "text": properties["text"],
            "internal": {"type": "boolean", "default": False,
                         "description": "`true`, `1`, `yes` or `on` make an internal note"},
            "status_id": {**status_id, "description": "a status of `GET /v1/tickets/{ref}/statuses`"},
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "description": "attachments, each at most the PSA's cap (413 names it)"},
        },
        "required": ["text"],
        "additionalProperties": False,
    }
    return as_json, form


_REPLY_JSON, _REPLY_FORM = _reply_schemas()

REPLY_BODY = RequestBody(
    required=True,
    description="JSON, or multipart/form-data with the same fields and `files` parts for attachments.",
    content={
        "application/json": OpenAPIMediaType(
            schema=_REPLY_JSON,  # type: ignore[arg-type]  # a JSON Schema dict, emitted as is
            examples=_examples(REPLY_EXAMPLES),
        ),
        "multipart/form-data": OpenAPIMediaType(
            schema=_REPLY_FORM,  # type: ignore[arg-type]
            encoding={"files": Encoding(content_type="application/octet-stream")},
        ),
    },
)

WEBHOOK_BODY = RequestBody(
    required=True,
    description=(
        "The vendor's own delivery, byte for byte (its signature is computed over it): ConnectWise "
        "callbacks, Autotask and HaloPSA webhooks. The plugin checks the signature header the vendor sends."
    ),
    content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
)


def declared(
    *,
    idempotent: bool = False,
    body: RequestBody | None = None,
    examples: dict[str, Any] | None = None,
    path_examples: dict[str, str] | None = None,
) -> type[Operation]:
    """An ``operation_class`` for a route decorator: adds the ``Idempotency-Key`` header
    (``idempotent``), replaces the request body (``body``), names request ``examples`` and
    gives path parameters the demo's values (``path_examples`` overrides them)."""
    path_values = {**DEMO_EXAMPLES, **(path_examples or {})}

    @dataclass
    class DeclaredOperation(Operation):
        def __post_init__(self) -> None:
            parameters = list(self.parameters or [])
            for parameter in parameters:
                if isinstance(parameter, Parameter) and parameter.param_in == "path" and parameter.name in path_values:
                    parameter.examples = {"demo": Example(value=path_values[parameter.name])}
            if idempotent:
                parameters.append(IDEMPOTENCY_KEY)
            self.parameters = parameters or None
            if body is not None:
                self.request_body = body
            elif examples and isinstance(self.request_body, RequestBody):
                for media in self.request_body.content.values():
                    media.examples = _examples(examples)

    return DeclaredOperation
