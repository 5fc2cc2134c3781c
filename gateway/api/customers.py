"""Customers across tools, and the inline actions a ticket offers on the other tools.

- ``GET /v1/customers[?refresh=true]``, ``GET /v1/customers/{id}``: each customer's record in
  every connected tool and how each link was made (config, integration id, name);
- ``GET /v1/customers/{id}/runbooks``, ``GET /v1/customers/{id}/alerts``;
- from a ticket: ``GET /v1/tickets/{ref}/related`` (alerts, devices, configuration items),
  ``GET /v1/tickets/{ref}/devices`` (the affected devices with their RMM console links),
  ``GET /v1/tickets/{ref}/runbooks`` (its customer's runbooks) and
  ``POST /v1/tickets/{ref}/alert-actions`` (acknowledge or resolve the linked alert, through the
  write pipeline like ``POST /v1/alerts/{ref}/actions``);
- ``GET /v1/alerts/{ref}``: an alert as last seen and the tickets linked to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from gateway import customers, intake, links, writekinds
from gateway.api.auth import Principal
from gateway.api.common import READ, WRITE, accepted, authorize, gateway_of, idempotency_key, own_ref, owned_ticket
from gateway.api.openapi import ALERT_ACTION_EXAMPLES, declared
from gateway.api.problems import ApiError, not_found
from gateway.api.schemas import WriteAccepted
from gateway.core import Gateway
from gateway.customers import CustomerMap, WorkspaceCustomer
from gateway.models import Alert, Capability, Device, RelatedRecord, RunbookLink

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --------------------------------------------------------------------------- bodies


class CustomerList(msgspec.Struct):
    """Every customer of the workspace with its records across tools. ``errors`` names tools
    whose customer list could not be read (their records are missing until the next refresh)."""

    customers: list[WorkspaceCustomer]
    computed_at: datetime
    expires_in: float | None = None
    errors: dict[str, str] = {}


class RunbookList(msgspec.Struct):
    """Runbooks of a customer in its documentation tools, each with the URL that opens it."""

    customer: str | None
    runbooks: list[RunbookLink]
    errors: dict[str, str] = {}


class LinkedAlert(msgspec.Struct):
    """An alert and the tickets linked to it."""

    alert: Alert
    tickets: list[str]


class AlertList(msgspec.Struct):
    customer: str
    alerts: list[LinkedAlert]
    errors: dict[str, str] = {}


class AlertView(msgspec.Struct, omit_defaults=True):
    """An alert as last seen (``alert.active`` false once resolved) and its linked tickets."""

    ref: str
    tickets: list[str]
    alert: Alert | None = None


class TicketAlertAction(msgspec.Struct, forbid_unknown_fields=True):
    """``alert`` names one of the ticket's linked alerts; it may be left out when the ticket has
    exactly one."""

    action: Literal["acknowledge", "resolve"]
    alert: Id | None = None


# --------------------------------------------------------------------------- helpers


def _map(gw: Gateway, principal: Principal, refresh: bool = False) -> CustomerMap:
    return customers.customer_map(gw, principal.workspace, refresh=refresh)


def _customer(gw: Gateway, principal: Principal, customer_id: str) -> WorkspaceCustomer:
    found = _map(gw, principal).get(customer_id)
    if found is None:
        raise not_found(f"customer {customer_id}")
    return found


def _ticket_customer(gw: Gateway, principal: Principal, ref: str) -> WorkspaceCustomer | None:
    ticket = owned_ticket(gw, principal, ref)
    if ticket.customer is None or not ticket.customer.ref:
        return None
    return _map(gw, principal).of_ref(ticket.customer.ref)


def _runbooks(gw: Gateway, customer: WorkspaceCustomer | None) -> RunbookList:
    if customer is None:
        return RunbookList(None, [])
    found = customers.runbooks(gw, customer)
    return RunbookList(customer.id, found.items, found.errors)


# --------------------------------------------------------------------------- customers


@get("/v1/customers", operation_id="listCustomers", sync_to_thread=True)
def list_customers(request: Request, refresh: FromQuery[bool] = False) -> CustomerList:
    """Customers across tools: each one's PSA companies, RMM organization and documentation
    company, with how each link was made (cached; ``refresh=true`` recomputes)."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    mapped = _map(gw, principal, refresh)
    return CustomerList(mapped.customers, mapped.computed_at, customers.expires_in(gw, principal.workspace), mapped.errors)


@get("/v1/customers/{customer_id:str}", operation_id="getCustomer", sync_to_thread=True)
def get_customer(request: Request, customer_id: FromPath[str]) -> WorkspaceCustomer:
    """One customer with its record in every connected tool."""
    principal = authorize(request, READ)
    return _customer(gateway_of(request), principal, customer_id)


@get("/v1/customers/{customer_id:str}/runbooks", operation_id="listCustomerRunbooks", sync_to_thread=True)
def customer_runbooks(request: Request, customer_id: FromPath[str]) -> RunbookList:
    """The customer's runbooks in its documentation tools (Hudu articles), with their URLs."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    return _runbooks(gw, _customer(gw, principal, customer_id))


@get("/v1/customers/{customer_id:str}/alerts", operation_id="listCustomerAlerts", sync_to_thread=True)
def customer_alerts(request: Request, customer_id: FromPath[str]) -> AlertList:
    """The customer's active RMM alerts, each with the tickets linked to it."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    customer = _customer(gw, principal, customer_id)
    found = customers.alerts(gw, customer)
    linked = [LinkedAlert(alert, links.tickets_of_alert(gw, alert.ref)) for alert in found.items]
    return AlertList(customer.id, linked, found.errors)


# --------------------------------------------------------------------------- alerts


@get("/v1/alerts/{ref:str}", operation_id="getAlert", sync_to_thread=True)
def get_alert(request: Request, ref: FromPath[str]) -> AlertView:
    """An alert (as last seen: ``active`` is false once it is resolved) and its tickets."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    connection_id, _ = own_ref(gw, principal, ref, "alert")
    gw.vendors.require(gw.connection(connection_id).vendor, Capability.ALERT_READ)
    tickets = links.tickets_of_alert(gw, ref)
    alert = links.alert_snapshot(gw, ref)
    if alert is None and not tickets:
        raise not_found(f"alert {ref}")
    return AlertView(ref, tickets, alert)


# --------------------------------------------------------------------------- from a ticket


@get("/v1/tickets/{ref:str}/related", operation_id="listTicketRelated", sync_to_thread=True)
def ticket_related(request: Request, ref: FromPath[str]) -> list[RelatedRecord]:
    """Records in other tools linked to the ticket: its alerts, their devices, its
    configuration items and the RMM devices they resolve to (with console links)."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    owned_ticket(gw, principal, ref)
    return links.related_records(gw, ref)


@get("/v1/tickets/{ref:str}/devices", operation_id="listTicketDevices", sync_to_thread=True)
def ticket_devices(request: Request, ref: FromPath[str]) -> list[Device]:
    """The devices the ticket is about, each with ``url``: its page in the RMM console."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    owned_ticket(gw, principal, ref)
    found: list[Device] = []
    for record in links.related_records(gw, ref):
        if record.kind != "device":
            continue
        try:
            device = links.device(gw, record.ref)
        except Exception:  # the RMM is down: still name the device and its link
            device = None
        found.append(device or Device(ref=record.ref, name=record.name, url=record.url))
    return found


@get("/v1/tickets/{ref:str}/runbooks", operation_id="listTicketRunbooks", sync_to_thread=True)
def ticket_runbooks(request: Request, ref: FromPath[str]) -> RunbookList:
    """The runbooks of the ticket's customer (``customer`` is null when the ticket's company
    is not linked to a workspace customer)."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    return _runbooks(gw, _ticket_customer(gw, principal, ref))


@post("/v1/tickets/{ref:str}/alert-actions", operation_id="ticketAlertAction", status_code=202, sync_to_thread=True,
      operation_class=declared(idempotent=True, examples=ALERT_ACTION_EXAMPLES))
def ticket_alert_action(request: Request, ref: FromPath[str], data: JSONBody[TicketAlertAction]) -> WriteAccepted:
    """Acknowledge or resolve the alert linked to the ticket: queued, deduplicated, retried and
    audited like every write (501 where the RMM has no such action, with its reason)."""
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    owned_ticket(gw, principal, ref)
    linked = links.alerts_of_ticket(gw, ref)
    if not linked:
        raise ApiError(409, "No alert linked to this ticket", f"ticket {ref} was not created from an alert",
                       "act on the alert itself at POST /v1/alerts/{ref}/actions")
    if data.alert is not None and data.alert not in linked:
        raise ApiError(422, "Alert not linked to this ticket", f"{data.alert} is not linked to ticket {ref}",
                       "name one of the linked alerts", linked_alerts=linked)
    if data.alert is None and len(linked) > 1:
        raise ApiError(422, "Which alert?", f"ticket {ref} has {len(linked)} linked alerts",
                       "name one of them in \"alert\"", linked_alerts=linked)
    alert_ref = data.alert or linked[0]
    connection_id, _ = own_ref(gw, principal, alert_ref, "alert")
    writekinds.ALERT_ACTION.require(gw, connection_id, data)
    request_body: dict[str, Any] = {"action": data.action, "ticket": ref}
    submitted = intake.submit(
        gw, workspace=principal.workspace, connection=connection_id, kind="alert_action", target=alert_ref,
        steps=writekinds.plan_alert(gw, connection_id, data.action), request=request_body,
        idempotency_key=idempotency_key(request),
    )
    return accepted(gw, submitted)


ROUTES: list[Any] = [
    list_customers, get_customer, customer_runbooks, customer_alerts, get_alert,
    ticket_related, ticket_devices, ticket_runbooks, ticket_alert_action,
]
