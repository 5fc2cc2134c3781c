"""The connection settings, and the ConnectWise records the plugin reads (only the fields used).

Records are msgspec Structs decoded straight from the API's camelCase JSON; unknown fields are
ignored, so newer API versions with more fields decode unchanged.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from gateway.models import StatusCategory


class ConnectWiseSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A connection's ``settings`` table. The secrets ``public_key``, ``private_key`` and
    ``client_id`` live in its ``secrets`` table, never here."""

    # The company id typed at the ConnectWise login ("Company" field), e.g. "mymsp".
    company_id: str
    # Status id -> canonical category, overriding the name-based guess for that status.
    status_categories: dict[str, StatusCategory] = {}
    # Web UI root for ticket links, e.g. "https://na.myconnectwise.net/v4_6_release";
    # derived from the API root when unset.
    ui_url: str | None = None
    # Pins the API version with ConnectWise's Accept header (e.g. "2025.16"); unset: latest.
    api_version: str | None = None


class _Record(msgspec.Struct, rename="camel"):
    """Base of ConnectWise records: camelCase names, unknown fields ignored."""


class Info(_Record):
    """The ``_info`` block every record carries."""

    last_updated: datetime | None = None
    date_entered: datetime | None = None
    updated_by: str | None = None
    entered_by: str | None = None


class Ref(_Record):
    """A reference to another record: ``{"id", "name"}`` or ``{"id", "identifier"}``."""

    id: int | None = None
    name: str | None = None
    identifier: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.identifier or (str(self.id) if self.id is not None else "")


class Ticket(_Record):
    id: int
    summary: str = ""
    board: Ref | None = None
    status: Ref | None = None
    company: Ref | None = None
    contact: Ref | None = None
    owner: Ref | None = None
    priority: Ref | None = None
    type: Ref | None = None
    closed_flag: bool = False
    external_x_ref: str | None = None
    initial_description: str | None = None
    date_entered: datetime | None = None
    info: Info | None = msgspec.field(default=None, name="_info")


class Note(_Record):
    """A ServiceNote: the flags say which tab of the ticket it is on."""

    id: int
    text: str = ""
    detail_description_flag: bool = False
    internal_analysis_flag: bool = False
    resolution_flag: bool = False
    member: Ref | None = None
    contact: Ref | None = None
    date_created: datetime | None = None
    created_by: str | None = None
    info: Info | None = msgspec.field(default=None, name="_info")

    @property
    def public(self) -> bool:
        """On the Discussion or Resolution tab, which the customer sees."""
        return self.detail_description_flag or self.resolution_flag


class BoardStatus(_Record):
    id: int
    name: str
    board: Ref | None = None
    sort_order: int = 0
    inactive: bool = False
    closed_status: bool = False
    default_flag: bool = False


class Board(_Record):
    id: int
    name: str
    inactive: bool = False


class Priority(_Record):
    id: int
    name: str
    sort_order: int = 0
    default_flag: bool = False


class BoardType(_Record):
    id: int
    name: str
    inactive: bool = False
    default_flag: bool = False


class Company(_Record):
    id: int
    name: str
    identifier: str | None = None
    deleted_flag: bool = False


class ConfigurationReference(_Record):
    """A configuration item named on a ticket (``GET /service/tickets/{id}/configurations``)."""

    id: int
    device_identifier: str | None = None


class Configuration(_Record):
    """A configuration item (``/company/configurations``): only what matches it to a device."""

    id: int
    name: str = ""
    serial_number: str | None = None
    tag_number: str | None = None
    device_identifier: str | None = None
    company: Ref | None = None


class TimeEntry(_Record):
    id: int
    charge_to_id: int | None = None
    charge_to_type: str | None = None
    member: Ref | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    actual_hours: float | None = None
    notes: str | None = None
    date_entered: datetime | None = None
    info: Info | None = msgspec.field(default=None, name="_info")


class Document(_Record):
    id: int
    title: str = ""
    file_name: str = ""
    size: int | None = None
    info: Info | None = msgspec.field(default=None, name="_info")


class CompanyInfo(msgspec.Struct, rename="pascal", frozen=True):
    """``GET /login/companyinfo/{company_id}``: where the company's API lives."""

    codebase: str
    company_name: str | None = None
    site_url: str | None = None


class CallbackMetadata(msgspec.Struct, frozen=True):
    key_url: str = ""


class Callback(msgspec.Struct, rename="pascal", frozen=True):
    """One callback delivery. ``entity`` is the changed record serialised as a JSON string."""

    action: str
    type: str
    id: int = msgspec.field(name="ID")
    message_id: str | None = None
    from_url: str | None = None
    company_id: str | None = None
    member_id: str | None = None
    entity: str | None = None
    metadata: CallbackMetadata | None = None
    callback_object_rec_id: int | None = None
