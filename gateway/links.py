"""Links between records in different tools (a ticket and the alert or device it is about).

``related_records`` answers what ``GET /v1/tickets/{ref}`` shows as related records.
"""

from __future__ import annotations

from gateway.core import Gateway
from gateway.models import RelatedRecord


def related_records(gw: Gateway, ticket_ref: str) -> list[RelatedRecord]:
    """Records in other tools linked to the ticket (alerts, devices), oldest link first."""
    return []
