"""Autotask PSA (REST API v1.0) plugin for the MSP integration gateway.

Tickets, their notes (public replies and internal notes), the status picklist, the new-ticket
form, time entries, base64 attachments and signed webhooks, against the API user's zone.
``gateway_autotask.simulator.AutotaskSimulator`` serves the same contract for tests and demos.
"""

from gateway_autotask.constants import VENDOR

__all__ = ["VENDOR"]
