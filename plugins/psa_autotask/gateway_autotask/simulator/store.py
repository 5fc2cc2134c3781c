"""The simulator's records and the Autotask rules for writing them.

Records are plain dicts under Autotask's field names, kept per entity and ordered by id (query
results come back sorted by id, as Autotask's do). Writes are checked the way Autotask checks
them (unknown fields, types, lengths, picklist values, required fields, references) and
refused with every problem listed, for ``{"errors": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from datetime import datetime, timezone
from typing import Any

from gateway_autotask.query import parse_datetime
from gateway_autotask.simulator.fields import ENTITY_FIELDS, field_names, meta, picklist_values

# Where each entity's ids start (realistic-looking, and distinct across entities).
ID_START = {
    "Tickets": 7800,
    "TicketNotes": 30100,
    "TimeEntries": 50200,
    "TicketAttachments": 90,
    "Companies": 175,
    "Contacts": 30682900,
    "Resources": 29682885,
    "ResourceServiceDeskRoles": 400,
    "ConfigurationItems": 29683700,
}


class ApiError(Exception):
    """A refused call: HTTP status and Autotask's list of error strings."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)


def stamp(value: datetime | None = None) -> str:
    """An Autotask datetime string: UTC, milliseconds, ``Z``."""
    value = (value or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class Store:
    """Every entity's records, with id counters."""

    def __init__(self) -> None:
        self.records: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in ENTITY_FIELDS if name != "AttachmentInfo"}
        self._ids = {name: itertools.count(ID_START.get(name, 1)) for name in self.records}

    def table(self, entity: str) -> dict[int, dict[str, Any]]:
        # AttachmentInfo is Autotask's read-only view over every attachment.
        return self.records["TicketAttachments" if entity == "AttachmentInfo" else entity]

    def next_id(self, entity: str) -> int:
        table = self.records[entity]
        while True:
            candidate = next(self._ids[entity])
            if candidate not in table:
                return candidate

    def insert(self, entity: str, record: dict[str, Any], record_id: int | None = None) -> dict[str, Any]:
        """Store a record as given (no checks), filling every field the entity has."""
        full = {f["name"]: None for f in ENTITY_FIELDS[entity]}
        full.update(record)
        full["id"] = record_id if record_id is not None else self.next_id(entity)
        if entity in ("Tickets", "Companies"):
            full.setdefault("userDefinedFields", [])
        self.records[entity][full["id"]] = full
        return full

    def get(self, entity: str, record_id: int) -> dict[str, Any] | None:
        return self.table(entity).get(record_id)

    # -- checking writes --------------------------------------------------------------------

    def normalise(self, entity: str, body: Any, *, errors: list[str]) -> dict[str, Any]:
        """Body keys under their canonical names; read-only fields dropped; unknown ones refused."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        names = field_names(entity)
        out: dict[str, Any] = {}
        for key, value in body.items():
            name = names.get(str(key).lower())
            if name is None:
                if str(key).lower() == "userdefinedfields":
                    out["userDefinedFields"] = value
                    continue
                errors.append(f"Unable to find {key} in the {entity} entity.")
                continue
            field_meta = meta(entity, name) or {}
            if field_meta.get("isReadOnly") and name != "id":
                continue
            out[name] = self._typed(entity, field_meta, value, errors)
        return out

    @staticmethod
    def _typed(entity: str, field_meta: dict[str, Any], value: Any, errors: list[str]) -> Any:
        name = field_meta["name"]
        if value is None:
            return None
        data_type = field_meta["dataType"]
        if data_type in ("integer", "long"):
            if isinstance(value, bool):
                errors.append(f"Field {name} must be an integer.")
                return None
            try:
                number = int(str(value))
            except ValueError:
                errors.append(f"Field {name} must be an integer.")
                return None
            if field_meta["isPickList"] and str(number) not in picklist_values(entity, name):
                errors.append(f"Value {number} is not a valid {name} for {entity}.")
            return number
        if data_type == "double":
            try:
                return float(value)
            except (TypeError, ValueError):
                errors.append(f"Field {name} must be a number.")
                return None
        if data_type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            errors.append(f"Field {name} must be true or false.")
            return None
        if data_type == "datetime":
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None:
                errors.append(f"Field {name} must be a date and time.")
                return None
            return stamp(parsed)
        text = str(value)
        if field_meta["length"] and len(text) > field_meta["length"]:
            errors.append(f"Field {name} exceeds its maximum length of {field_meta['length']} characters.")
        return text

    @staticmethod
    def require(entity: str, values: dict[str, Any], errors: list[str], *, extra: tuple[str, ...] = ()) -> None:
        """Every required (writable) field and every name in ``extra`` must have a value."""
        for f in ENTITY_FIELDS[entity]:
            if (f["isRequired"] and not f["isReadOnly"]) or f["name"] in extra:
                if values.get(f["name"]) in (None, ""):
                    errors.append(f"Field {f['name']} is required.")

    def must_exist(self, entity: str, record_id: Any, label: str, errors: list[str]) -> None:
        if record_id is not None and record_id not in self.records[entity]:
            errors.append(f"{label} {record_id} does not exist.")


def decode_attachment(data: Any, errors: list[str]) -> bytes:
    """The bytes of a base64 ``data`` field."""
    if not isinstance(data, str) or not data:
        errors.append("Field data is required for a FILE_ATTACHMENT.")
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        errors.append("Field data is not valid base64.")
        return b""
