"""The simulator's Autotask query engine: the JSON filter DSL evaluated over dict records.

Top-level conditions are and-ed; ``{"op": "and"|"or", "items": [...]}`` groups nest. Field
names are case-insensitive; comparisons follow the field's data type (strings compare
case-insensitively, as the database collation does); ``null`` is refused as a value; a
missing record value matches only ``notExist`` and ``noteq``/``notIn``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gateway_autotask.query import parse_datetime
from gateway_autotask.simulator.fields import meta

COMPARISONS = {"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains", "in", "notin"}
PRESENCE = {"exist", "notexist"}
GROUPS = {"and", "or"}
MAX_IN_VALUES = 500


class QueryError(ValueError):
    """A query Autotask would refuse; the message goes into ``{"errors": [...]}``."""


class Filter:
    """A checked, compiled filter for one entity."""

    def __init__(self, entity: str, conditions: Any) -> None:
        if not isinstance(conditions, list) or not conditions:
            raise QueryError("A query must contain a filter with at least one condition.")
        self.entity = entity
        self.conditions = [self._check(c) for c in conditions]

    def matches(self, record: dict[str, Any]) -> bool:
        return all(self._eval(c, record) for c in self.conditions)

    # -- checking ---------------------------------------------------------------------------

    def _check(self, cond: Any) -> dict[str, Any]:
        if not isinstance(cond, dict):
            raise QueryError(f"Invalid filter condition: {cond!r}")
        op = str(cond.get("op") or "").lower()
        if op in GROUPS:
            items = cond.get("items")
            if not isinstance(items, list) or not items:
                raise QueryError(f"The '{op}' grouping needs a non-empty items list.")
            return {"op": op, "items": [self._check(i) for i in items]}
        if op not in COMPARISONS and op not in PRESENCE:
            raise QueryError(f"Unknown filter operator '{cond.get('op')}'.")
        name = cond.get("field")
        if not isinstance(name, str) or not name:
            raise QueryError(f"The '{cond.get('op')}' condition names no field.")
        udf = bool(cond.get("udf"))
        field_meta = None if udf else meta(self.entity, name)
        if not udf and field_meta is None:
            raise QueryError(f"Unable to find {name} in the {self.entity} entity.")
        compiled: dict[str, Any] = {"op": op, "field": field_meta["name"] if field_meta else name, "udf": udf}
        compiled["type"] = str((field_meta or {}).get("dataType") or "string").lower()
        if op in PRESENCE:
            return compiled
        if "value" not in cond or cond["value"] is None:
            raise QueryError(f"The value for {name} cannot be null.")
        value = cond["value"]
        if op in ("in", "notin"):
            if not isinstance(value, list):
                raise QueryError(f"The '{cond['op']}' operator needs a list of values for {name}.")
            if len(value) > MAX_IN_VALUES:
                raise QueryError(f"The '{cond['op']}' operator accepts at most {MAX_IN_VALUES} values.")
            compiled["value"] = [self._typed(compiled["type"], v, name) for v in value]
        else:
            compiled["value"] = self._typed(compiled["type"], value, name)
        return compiled

    @staticmethod
    def _typed(data_type: str, value: Any, name: str) -> Any:
        if data_type in ("integer", "long", "short", "double", "decimal"):
            if isinstance(value, bool):
                raise QueryError(f"{value!r} is not a number for {name}.")
            try:
                return float(value)
            except (TypeError, ValueError):
                raise QueryError(f"{value!r} is not a number for {name}.") from None
        if data_type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise QueryError(f"Boolean values must be true or false for {name}.")
        if data_type in ("datetime", "date"):
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None:
                raise QueryError(f"{value!r} is not a valid date and time for {name}.")
            return parsed
        return str(value).lower()

    # -- evaluating -------------------------------------------------------------------------

    def _eval(self, cond: dict[str, Any], record: dict[str, Any]) -> bool:
        op = cond["op"]
        if op == "and":
            return all(self._eval(i, record) for i in cond["items"])
        if op == "or":
            return any(self._eval(i, record) for i in cond["items"])
        raw = self._value(cond, record)
        if op == "exist":
            return raw is not None and raw != ""
        if op == "notexist":
            return raw is None or raw == ""
        if raw is None:
            return op in ("noteq", "notin")
        actual = self._actual(cond["type"], raw)
        if actual is None:
            return op in ("noteq", "notin")
        want = cond["value"]
        if op == "eq":
            return actual == want
        if op == "noteq":
            return actual != want
        if op == "in":
            return actual in want
        if op == "notin":
            return actual not in want
        if op in ("beginswith", "endswith", "contains"):
            text, sub = str(actual).lower(), str(want).lower()
            return text.startswith(sub) if op == "beginswith" else text.endswith(sub) if op == "endswith" else sub in text
        try:
            return {"gt": actual > want, "gte": actual >= want, "lt": actual < want, "lte": actual <= want}[op]
        except TypeError:
            return False

    @staticmethod
    def _value(cond: dict[str, Any], record: dict[str, Any]) -> Any:
        if cond["udf"]:
            wanted = cond["field"].lower()
            for udf in record.get("userDefinedFields") or []:
                if str(udf.get("name", "")).lower() == wanted:
                    return udf.get("value")
            return None
        return record.get(cond["field"])

    @staticmethod
    def _actual(data_type: str, raw: Any) -> Any:
        if data_type in ("integer", "long", "short", "double", "decimal"):
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
        if data_type == "boolean":
            return bool(raw)
        if data_type in ("datetime", "date"):
            if isinstance(raw, datetime):
                return raw if raw.tzinfo else raw.replace(tzinfo=timezone.utc)
            return parse_datetime(raw)
        return str(raw).lower()
