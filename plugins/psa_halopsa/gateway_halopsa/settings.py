"""The per-connection settings of a HaloPSA connection (the ``settings`` table in config).

``client_secret`` is the one secret setting: it comes from ``connection.secrets``, never from
this struct.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from gateway.errors import ConfigError
from gateway.models import StatusCategory

from gateway_halopsa import constants


class HaloSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of one HaloPSA connection.

    - ``client_id``: the API application's client id (Configuration > Integrations > Halo API).
    - ``tenant``: sent as ``?tenant=`` on the token request (Halo-hosted shared auth only).
    - ``scope``: OAuth scope; ``all`` or space-separated granular scopes.
    - ``auth_url``: skip ``GET /api/authinfo`` discovery and use this authorisation server.
    - ``status_categories``: status id or name (case-insensitive) -> canonical category,
      overriding the name rules for this tenant's own statuses.
    - ``status_type_categories``: Halo status ``type`` value -> category (Halo does not
      document what the ``type`` numbers mean, so none are assumed by default).
    - ``reply_outcome`` / ``note_outcome`` / ``status_outcome`` / ``time_outcome``: the action
      outcome labels used for public replies, internal notes, bare status changes and time.
    - ``status_note``: the note text of a bare status-change action.
    - ``reply_sends_email``: ``sendemail`` on public replies (Halo emails the end user).
    - ``dedup_field``: the ticket field that carries the gateway's dedup key on create. The
      spec types ``third_party_id`` as int32, so the string twin is the default.
    - ``webhook_signature_header`` / ``webhook_signature_prefix`` /
      ``webhook_signature_encoding``: how inbound webhook signatures are read (provisional;
      match what is configured on the Halo webhook: ``authentication_header``,
      ``signature_prefix``, ``digest``).
    """

    client_id: str = ""
    tenant: str | None = None
    scope: str = "all"
    auth_url: str | None = None
    status_categories: dict[str, str] = {}
    status_type_categories: dict[str, str] = {}
    reply_outcome: str = constants.OUTCOME_PUBLIC_REPLY
    note_outcome: str = constants.OUTCOME_PRIVATE_NOTE
    status_outcome: str = constants.OUTCOME_PRIVATE_NOTE
    time_outcome: str = constants.OUTCOME_PRIVATE_NOTE
    status_note: str = "Status changed"
    reply_sends_email: bool = True
    dedup_field: str = "third_party_id_string"
    webhook_signature_header: str = constants.WEBHOOK_SIGNATURE_HEADER
    webhook_signature_prefix: str = constants.WEBHOOK_SIGNATURE_PREFIX
    webhook_signature_encoding: Literal["hex", "base64"] = "hex"


def load_settings(raw: Any) -> HaloSettings:
    """Accept the converted struct, a plain table, or nothing; check what must be right."""
    if isinstance(raw, HaloSettings):
        settings = raw
    else:
        try:
            settings = msgspec.convert(raw or {}, HaloSettings)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"halopsa settings: {exc}") from None
    valid = {c.value for c in StatusCategory}
    for table in ("status_categories", "status_type_categories"):
        for key, value in getattr(settings, table).items():
            if value not in valid:
                raise ConfigError(
                    f"halopsa settings.{table}.{key}: {value!r} is not one of {sorted(valid)}"
                )
    return settings
