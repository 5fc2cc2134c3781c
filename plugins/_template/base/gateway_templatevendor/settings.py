"""The settings table of a Template Vendor connection (``[workspaces.connections.settings]``).

The gateway converts the table to ``TemplateVendorSettings`` at start-up (it is the
``settings_type`` in ``VendorInfo``), so a misspelt or mistyped setting stops start-up with
one message naming it. Secrets never go here: they are ``secret_settings`` read from the
environment.
"""

from __future__ import annotations

import msgspec

from gateway_templatevendor.constants import PAGE_SIZE


class TemplateVendorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-connection settings.

    :param web_url: the address people open the vendor's console at, for record links;
        defaults to the connection's ``base_url``.
    :param page_size: rows asked for per page of a list.
    """

    web_url: str | None = None
    page_size: int = PAGE_SIZE
